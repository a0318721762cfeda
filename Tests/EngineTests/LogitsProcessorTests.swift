import XCTest
@testable import Engine

/// Each adjustment against a reference computed here, in Double, from the published formulas (OpenAI's penalties,
/// HF/vLLM's repetition penalty), on fixed logits.
final class LogitsProcessorTests: XCTestCase {
    private let logits: [Float] = [2.0, -1.5, 0.5, 3.25, -0.25, 1.0, 0.0, -3.0]

    private func processed(_ p: LogitsProcessing, prompt: [Int32] = [], generated: [Int32] = [],
                           banned: [Int32] = [7]) -> [Float] {
        var proc = LogitsProcessor(params: p, vocabSize: logits.count, promptTokens: prompt, maxNewTokens: 16,
                                   bannedBeforeMinTokens: banned)
        for t in generated { proc.accept(t) }
        var row = logits
        row.withUnsafeMutableBufferPointer { proc.apply(to: $0) }
        return row
    }

    func testNeutralChangesNothing() {
        let p = LogitsProcessing()
        let proc = LogitsProcessor(params: p, vocabSize: 8, promptTokens: [1, 2], maxNewTokens: 4, bannedBeforeMinTokens: [7])
        XCTAssertTrue(proc.isNeutral)
        XCTAssertEqual(processed(p, prompt: [1, 2, 3], generated: [3, 3, 5]), logits)
    }

    func testPresenceAndFrequencyFollowOpenAIsFormula() {
        let generated: [Int32] = [3, 5, 3, 3, 0]
        let p = LogitsProcessing(presencePenalty: 0.7, frequencyPenalty: -0.4)
        let got = processed(p, prompt: [1, 2, 4], generated: generated)
        // mu[j] -> mu[j] - c[j] * alpha_frequency - float(c[j] > 0) * alpha_presence, c over generated tokens only.
        for j in 0..<logits.count {
            let c = Double(generated.filter { $0 == Int32(j) }.count)
            let want = Double(logits[j]) - c * -0.4 - (c > 0 ? 0.7 : 0)
            XCTAssertEqual(Double(got[j]), want, accuracy: 1e-5, "token \(j)")
        }
    }

    func testRepetitionPenaltyCoversPromptAndOutput() {
        let prompt: [Int32] = [1, 0, 1]
        let generated: [Int32] = [4, 5]
        let r = 1.3
        let got = processed(LogitsProcessing(repetitionPenalty: Float(r)), prompt: prompt, generated: generated)
        let seen = Set(prompt + generated)
        for j in 0..<logits.count {
            let x = Double(logits[j])
            let want = seen.contains(Int32(j)) ? (x > 0 ? x / r : x * r) : x
            XCTAssertEqual(Double(got[j]), want, accuracy: 1e-5, "token \(j)")
        }
    }

    func testAllPenaltiesTogetherRepetitionFirst() {
        let prompt: [Int32] = [2]
        let generated: [Int32] = [3, 3, 6]
        let got = processed(LogitsProcessing(presencePenalty: 0.5, frequencyPenalty: 0.25, repetitionPenalty: 2),
                            prompt: prompt, generated: generated)
        XCTAssertEqual(got[2], 0.25)                         // prompt only: 0.5 / 2
        XCTAssertEqual(got[3], 3.25 / 2 - 2 * 0.25 - 0.5)    // twice in the output
        XCTAssertEqual(got[6], 0 - 0.25 - 0.5)               // 0 * 2, then once in the output
        XCTAssertEqual(got[1], -1.5)                         // untouched
    }

    func testLogitBiasAddsAndMinus100Bans() {
        let got = processed(LogitsProcessing(logitBias: [0: -100, 1: 10, 6: -0.5]))
        XCTAssertEqual(got[0], -.infinity)
        XCTAssertEqual(got[1], 8.5)
        XCTAssertEqual(got[6], -0.5)
        XCTAssertEqual(Array(got[2...5]), Array(logits[2...5]))
        // The ban holds under greedy sampling even for the otherwise best token.
        let banBest = processed(LogitsProcessing(logitBias: [3: -100]))
        XCTAssertEqual(banBest.withUnsafeBufferPointer { Sampler.greedy($0) }, 0)
    }

    func testMinTokensBansStopTokensUntilReached() {
        let p = LogitsProcessing(minTokens: 2)
        var proc = LogitsProcessor(params: p, vocabSize: 8, promptTokens: [], maxNewTokens: 4, bannedBeforeMinTokens: [3, 7])
        for step in 0..<4 {
            var row = logits
            XCTAssertEqual(proc.isNeutral, step >= 2)
            row.withUnsafeMutableBufferPointer { proc.apply(to: $0) }
            if step < 2 {
                XCTAssertEqual(row[3], -.infinity)
                XCTAssertEqual(row[7], -.infinity)
                XCTAssertEqual(row.withUnsafeBufferPointer { Sampler.greedy($0) }, 0)
            } else {
                XCTAssertEqual(row, logits)
            }
            proc.accept(0)
        }
    }

    func testStopStringsDoNotMatchWhileMatchingIsOff() {
        var m = StopStringMatcher(stops: ["END"])
        XCTAssertEqual(m.append("a END b", matching: false), .text("a END b"))
        XCTAssertEqual(m.append(" EN", matching: false), .text(" "))   // a possible start is still held back
        XCTAssertEqual(m.append("D!", matching: true), .stopped(before: ""))
    }
}

/// Log-probabilities: f32 values of the tempered full distribution, checked against a Double reference.
final class LogprobCalculatorTests: XCTestCase {
    private let logits: [Float] = (0..<97).map { Float(sin(Double($0) * 1.7)) * 4 }

    private func referenceLogSoftmax(_ l: [Float], temperature t: Double) -> [Double] {
        let x = l.map { Double($0) / t }
        let m = x.max()!
        let z = log(x.map { exp($0 - m) }.reduce(0, +))
        return x.map { $0 - m - z }
    }

    func testSumsToOneAndMatchesTheReference() {
        for t in [0.0, 0.5, 1.0, 1.7] {
            var calc = LogprobCalculator(vocabSize: logits.count)
            let p = SamplingParams(temperature: t)
            let r = logits.withUnsafeBufferPointer { calc.compute($0, token: 5, top: 20, params: p) }
            let ref = referenceLogSoftmax(logits, temperature: t == 0 ? 1 : t)   // greedy reports T = 1
            XCTAssertEqual(Double(r.logprob), ref[5], accuracy: 1e-5)
            XCTAssertEqual(r.top.count, 20)
            let order = ref.indices.sorted { ref[$0] > ref[$1] || (ref[$0] == ref[$1] && $0 < $1) }
            XCTAssertEqual(r.top.map { Int($0.tokenId) }, Array(order.prefix(20)), "T=\(t)")
            for a in r.top { XCTAssertEqual(Double(a.logprob), ref[Int(a.tokenId)], accuracy: 1e-5) }
            var all = [Float](repeating: 0, count: logits.count)
            logits.withUnsafeBufferPointer { l in
                all.withUnsafeMutableBufferPointer { LogprobCalculator.logSoftmax(l, invT: t == 0 ? 1 : Float(1 / t), into: $0) }
            }
            XCTAssertEqual(all.reduce(0.0) { $0 + exp(Double($1)) }, 1, accuracy: 1e-5, "T=\(t)")
        }
    }

    func testTopZeroAndTopBeyondTheVocabulary() {
        var calc = LogprobCalculator(vocabSize: 4)
        let l: [Float] = [0, 1, 1, -2]
        let none = l.withUnsafeBufferPointer { calc.compute($0, token: 0, top: 0, params: SamplingParams()) }
        XCTAssertTrue(none.top.isEmpty)
        let all = l.withUnsafeBufferPointer { calc.compute($0, token: 0, top: 20, params: SamplingParams()) }
        XCTAssertEqual(all.top.map(\.tokenId), [1, 2, 0, 3])
        XCTAssertEqual(all.top.reduce(0.0) { $0 + exp(Double($1.logprob)) }, 1, accuracy: 1e-6)
    }

    func testBannedTokenHasMinusInfinity() {
        var calc = LogprobCalculator(vocabSize: 3)
        let l: [Float] = [-.infinity, 1, 0]
        let r = l.withUnsafeBufferPointer { calc.compute($0, token: 1, top: 3, params: SamplingParams()) }
        XCTAssertEqual(r.top.last?.tokenId, 0)
        XCTAssertEqual(r.top.last?.logprob, -.infinity)
        XCTAssertEqual(Double(r.logprob), 1 - log(exp(1.0) + 1), accuracy: 1e-6)
    }
}
