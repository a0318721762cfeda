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

    /// The SIMD argmax against the plain scan (first index of the largest value; NaN never wins; all -inf → 0) on
    /// rows of every length 1...40 and a vocabulary-sized one, with ties, NaN and infinities placed at random.
    func testGreedyMatchesTheScalarScan() {
        func scan(_ l: [Float]) -> Int32 {
            var best = 0, value = -Float.infinity
            for i in l.indices where l[i] > value { value = l[i]; best = i }
            return Int32(best)
        }
        var rng = SeededGenerator(seed: 11)
        for n in Array(1...40) + [49_152] {
            for trial in 0..<20 {
                var l = (0..<n).map { _ in Float(Int(rng.next() % 9)) - 4 }   // few distinct values: many ties
                if trial % 4 == 1 { l[Int(rng.next() % UInt64(n))] = .nan }
                if trial % 4 == 2 { l = l.map { _ in -.infinity } }
                if trial % 4 == 3 { l[Int(rng.next() % UInt64(n))] = .infinity }
                XCTAssertEqual(l.withUnsafeBufferPointer { Sampler.greedy($0) }, scan(l), "n \(n) trial \(trial)")
            }
        }
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

    /// The nucleus and min-p sets by the definition (every token sorted, softmax over the whole vocabulary in
    /// double precision), for checking the partial selection that grows k instead of sorting.
    private func referenceKept(_ logits: [Float], topP: Double, minP: Double) -> Set<Int32> {
        let m = logits.max()!
        let e = logits.map { exp(Double($0 - m)) }
        let z = e.reduce(0, +)
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        // vLLM's order: min-p, then top-p over what min-p keeps, renormalised.
        var keep = order.count
        if minP > 0 {
            let threshold = e[order[0]] / z * minP
            var k = 1
            while k < keep && e[order[k]] / z >= threshold { k += 1 }
            keep = k
        }
        if topP < 1 {
            let mass = order[0..<keep].reduce(0.0) { $0 + e[$1] / z }
            var cum = 0.0
            for (j, i) in order[0..<keep].enumerated() { cum += e[i] / z; if cum >= topP * mass { keep = j + 1; break } }
        }
        return Set(order[0..<keep].map { Int32($0) })
    }

    // A nucleus wider than the first 64 candidates (the partial selection must grow), on a vocabulary-sized row
    // whose logits fall off slowly: every draw lies in the reference set and more than 64 distinct tokens appear.
    func testTopPAndMinPBeyondTheFirstCandidates() {
        let v = 20_000
        let logits: [Float] = (0..<v).map { i in Float((i * 7919) % v) * -0.002 }
        // The last case is nearly flat: its nucleus is most of the vocabulary (the full-sort step).
        let flat: [Float] = (0..<v).map { i in Float((i * 7919) % v) * -0.000_005 }
        for (row, topP, minP) in [(logits, 0.6, 0.0), (logits, 1.0, 0.2), (logits, 0.9, 0.3), (flat, 0.95, 0.0)] {
            let logits = row
            let ref = referenceKept(logits, topP: topP, minP: minP)
            XCTAssertGreaterThan(ref.count, 64)
            let draws = sample(logits, SamplingParams(temperature: 1, topP: topP, minP: minP), seed: 5,
                               n: row == flat ? 200 : 1000)   // each flat draw sorts the vocabulary
            XCTAssertTrue(Set(draws).isSubset(of: ref), "top_p \(topP) min_p \(minP)")
            XCTAssertGreaterThan(Set(draws).count, 64, "top_p \(topP) min_p \(minP)")
        }
    }

    /// helper-73: min-p before top-p, as vLLM orders them. The first-token probabilities The .219, A .169, I .048,
    /// One .038 (the rest spread thinly): top-p 0.5 first (llama.cpp's chain) keeps six tokens and min-p 0.2 then
    /// three; vLLM's min-p keeps those three, and top-p 0.5 of their renormalised mass (.50, .39, .11) keeps `The`
    /// alone. Likewise with top-k given (it commutes with min-p).
    func testMinPRunsBeforeTopPAsInVLLM() {
        var p: [Double] = [0.219, 0.169, 0.048, 0.038, 0.030, 0.025]
        let rest = (1 - p.reduce(0, +)) / 200
        p += Array(repeating: rest, count: 200)
        let logits = p.map { Float(log($0)) }
        for topK in [0, 50] {
            let draws = Set(sample(logits, SamplingParams(temperature: 1, topP: 0.5, topK: topK, minP: 0.2), seed: 3, n: 400))
            XCTAssertEqual(draws, [0], "top_k \(topK)")
        }
        // top-p alone keeps the prefix reaching 0.5 of the whole mass: The, A, I, One, the fifth (.529).
        XCTAssertEqual(Set(sample(logits, SamplingParams(temperature: 1, topP: 0.5), seed: 3, n: 2000)), [0, 1, 2, 3, 4])
        // min-p alone: The, A, I (≥ .0438).
        XCTAssertEqual(Set(sample(logits, SamplingParams(temperature: 1, minP: 0.2), seed: 3, n: 2000)), [0, 1, 2])
    }

    func testFrequenciesFollowTheDistribution() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.2)]
        let draws = sample(logits, SamplingParams(temperature: 1), seed: 9, n: 6000)
        let f0 = Double(draws.filter { $0 == 0 }.count) / 6000
        let f2 = Double(draws.filter { $0 == 2 }.count) / 6000
        XCTAssertEqual(f0, 0.5, accuracy: 0.04)
        XCTAssertEqual(f2, 0.2, accuracy: 0.04)
    }

    // Issue 21 item 8: a temperature of 1e-300 made 1/T infinite, and every draw returned token 0.
    func testTinyTemperatureIsGreedy() {
        let logits: [Float] = [0.5, -1, 3, 2.9, 0]
        for t in [1e-300, 1e-30, 1e-6] {
            XCTAssertEqual(sample(logits, SamplingParams(temperature: t), seed: 3, n: 20), Array(repeating: 2, count: 20), "T=\(t)")
            XCTAssertEqual(sample(logits, SamplingParams(temperature: t, topP: 0.9, topK: 3), seed: 3, n: 5),
                           Array(repeating: 2, count: 5), "T=\(t) with truncation")
        }
    }

    // Issue 21 item 3: top-k selection is a heap (O(V log k)); it must match a full sort, ties to the lower id.
    func testPartialTopMatchesFullSort() {
        var rng = SeededGenerator(seed: 9)
        for (v, ks) in [(1, [Int]()), (2, [1]), (7, [1, 2, 3, 6]), (1000, [1, 2, 17, 500, 999]), (4099, [40, 4098])] {
            // Few distinct values, so ties are common.
            let logits: [Float] = (0..<v).map { _ in Float(rng.next() % 13) - 6 }
            let order: [Int32] = (0..<Int32(v)).sorted { (a: Int32, b: Int32) -> Bool in
                let x = logits[Int(a)], y = logits[Int(b)]
                return x > y || (x == y && a < b)
            }
            for k in ks {
                var idx = Array(0..<Int32(v))
                logits.withUnsafeBufferPointer { l in
                    idx.withUnsafeMutableBufferPointer { Sampler.partialTop($0, k: k, logits: l) }
                }
                XCTAssertEqual(Array(idx[0..<k]), Array(order[0..<k]), "V=\(v) k=\(k)")
                XCTAssertEqual(Set(idx), Set(0..<Int32(v)), "a permutation")
            }
        }
    }

    // A top-k of the whole vocabulary or more truncates nothing: the draws are those of top-k 0, seed for seed.
    func testTopKBeyondVocabularyKeepsEveryToken() {
        let logits: [Float] = (0..<64).map { Float($0 % 5) * 0.4 }
        let all = sample(logits, SamplingParams(temperature: 1, topK: 0), seed: 5, n: 40)
        XCTAssertEqual(sample(logits, SamplingParams(temperature: 1, topK: 64), seed: 5, n: 40), all)
        XCTAssertEqual(sample(logits, SamplingParams(temperature: 1, topK: 151_935), seed: 5, n: 40), all)
    }
}
