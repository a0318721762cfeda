import XCTest
@testable import Engine

final class SamplerTests: XCTestCase {
    private func sample(_ logits: [Float], _ p: SamplingParams, seed: UInt64 = 1, n: Int = 1) -> [Int32] {
        var s = Sampler(vocabSize: logits.count)
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in logits.withUnsafeBufferPointer { s.sample($0, params: p, rng: &rng) } }
    }

    func testGreedyTiesGoToLowestId() {
        XCTAssertEqual(sample([0, 3, 1, 3], SamplingParams(temperature: 0)), [1])
        XCTAssertEqual(sample([0, 3, 1, 3], SamplingParams(temperature: 1, topK: 1)), [1])
    }

    func testSeedReproducesAndDiffers() {
        let logits: [Float] = (0..<50).map { Float($0 % 7) * 0.3 }
        let p = SamplingParams(temperature: 1.0)
        XCTAssertEqual(sample(logits, p, seed: 42, n: 30), sample(logits, p, seed: 42, n: 30))
        XCTAssertNotEqual(sample(logits, p, seed: 42, n: 30), sample(logits, p, seed: 43, n: 30))
    }

    func testTopKRestrictsToTheKBest() {
        let logits: [Float] = [0, 5, 1, 4.9, 2, 4.8]
        let draws = Set(sample(logits, SamplingParams(temperature: 5, topK: 2), n: 300))
        XCTAssertEqual(draws, [1, 3])
    }

    func testTopPKeepsTheSmallestNucleus() {
        // Probabilities ~ [0.64, 0.24, 0.09, 0.03]: top_p 0.7 keeps ids 0 and 1 only.
        let logits: [Float] = [2, 1.02, 0.04, -1.05]
        let draws = Set(sample(logits, SamplingParams(temperature: 1, topP: 0.7), n: 500))
        XCTAssertEqual(draws, [0, 1])
    }

    func testMinPDropsUnlikelyTokens() {
        let logits: [Float] = [0, -0.1, -5, -6]
        let draws = Set(sample(logits, SamplingParams(temperature: 1, minP: 0.1), n: 500))
        XCTAssertEqual(draws, [0, 1])
    }

    func testFrequenciesFollowTheDistribution() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.2)]
        let draws = sample(logits, SamplingParams(temperature: 1), seed: 9, n: 6000)
        let f0 = Double(draws.filter { $0 == 0 }.count) / 6000
        let f2 = Double(draws.filter { $0 == 2 }.count) / 6000
        XCTAssertEqual(f0, 0.5, accuracy: 0.04)
        XCTAssertEqual(f2, 0.2, accuracy: 0.04)
    }
}
