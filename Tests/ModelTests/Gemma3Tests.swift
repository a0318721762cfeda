import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// The real Gemma 3 270m Q4_K_M (Q8_0/Q5_0/Q4_K/Q6_K tensors, sliding-window layers) against llama.cpp logits
/// (Tests/Fixtures/real/gemma-3-270m-q4_k_m.json, made by make_gemma3_reference.py next to it; the `long` prompt
/// exceeds the 512-token window). Skipped with a message when the model is absent.
/// Tolerance: llama.cpp's own F16-vs-F32 KV cache runs differ by up to 0.76 on these top-64 logits (top logit ≈ 20),
/// so activation-rounding differences between two Q8_0/Q8_K implementations are of that order (measured ≤ 1.2);
/// greedy ids must match exactly up to the first near-tie.
final class Gemma3Tests: XCTestCase {
    let check = RealModelCheck(fixture: "gemma-3-270m-q4_k_m.json", modelFile: "gemma-3-270m-q4_k_m.gguf")

    func testGreedyMatchesLlamaCppF32Cache() throws {
        let r = try check.run(self, record: "kv_f32", options: ModelOptions(threads: 2, kvCacheType: .f32, maxBatchTokens: 1024),
                              tieGap: 0.25, top64Tolerance: 1.5, maxSteps: 24)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }

    func testGreedyMatchesLlamaCppF16Cache() throws {
        let r = try check.run(self, record: "kv_f16", options: ModelOptions(threads: 2, kvCacheType: .f16, maxBatchTokens: 1024),
                              tieGap: 0.25, top64Tolerance: 1.5, maxSteps: 24)
        XCTAssertEqual(r.matched, r.compared)
        XCTAssertGreaterThan(r.compared, 0)
    }
}
