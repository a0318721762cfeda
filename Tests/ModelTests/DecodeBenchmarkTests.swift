import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// Decode and prefill throughput of SmolLM2-135M Q4_1 (runs only with SPUTNIK_BENCH=1; prints, never asserts a
/// time). Build in release for meaningful numbers.
final class DecodeBenchmarkTests: XCTestCase {
    func testSmolLM2DecodeThroughput() throws {
        guard ProcessInfo.processInfo.environment["SPUTNIK_BENCH"] == "1" else {
            throw XCTSkip("benchmark: set SPUTNIK_BENCH=1 to run")
        }
        guard let path = Fixtures.model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf not found (set SPUTNIK_MODELS_DIR)")
        }
        let threads = Int(ProcessInfo.processInfo.environment["SPUTNIK_THREADS"] ?? "2") ?? 2
        let model = try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: threads))
        let r = DecodeBenchmark.run(model: model, promptLength: 128, decodeTokens: 128)
        print(String(format: "SmolLM2 Q4_1, %d threads: prefill %.1f tok/s, decode %.1f tok/s", threads, r.prefill, r.decode))
        XCTAssertGreaterThan(r.decode, 0)
    }
}

enum DecodeBenchmark {
    /// Prefills `promptLength` tokens then greedy-decodes `decodeTokens`; returns tokens/s of both phases.
    static func run(model: LanguageModel, promptLength: Int, decodeTokens: Int) -> (prefill: Double, decode: Double) {
        let runner = SequenceRunner(model: model, numBlocks: (promptLength + decodeTokens) / 16 + 2, blockSize: 16)
        let seq = runner.newSequence()
        let prompt = (0..<promptLength).map { Int32(($0 * 7919) % 30_000 + 100) }
        var t = Date()
        var logits = runner.step([(seq, prompt)]).last!
        let prefill = Double(promptLength) / Date().timeIntervalSince(t)
        t = Date()
        for _ in 0..<decodeTokens { logits = runner.step([(seq, [Int32(argmax(logits))])])[0] }
        return (prefill, Double(decodeTokens) / Date().timeIntervalSince(t))   // includes the test harness copies
    }
}
