import Foundation
import GGUF
import TestSupport
import XCTest
@testable import Tokenizer

/// llama.cpp's own test vectors (`models/ggml-vocab-*.gguf.inp/.out`, used by its test-tokenizer-0): cases are
/// separated by `\n__ggml_vocab_test__\n`; each `.out` line holds the ids of `llama_tokenize(text,
/// add_special: false, parse_special: false)`.
final class LlamaCppVectorTests: XCTestCase {
    static let vocabs = ["gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "llama-spm", "phi-3"]

    func testAllVectors() throws {
        var total = 0, passed = 0
        for v in Self.vocabs {
            let base = Fixtures.path("tokenizer/ggml-vocab-\(v).gguf")
            let tok = try Tokenizer(gguf: GGUFFile(path: base))
            let inp = try String(contentsOfFile: base + ".inp", encoding: .utf8)
            let out = try String(contentsOfFile: base + ".out", encoding: .utf8)
            var cases = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
            if cases.last == "" { cases.removeLast() }
            let lines = out.components(separatedBy: "\n")
            XCTAssertGreaterThanOrEqual(lines.count, cases.count, v)
            var ok = 0
            for (k, text) in cases.enumerated() {
                let want = lines[k].split(separator: " ").map { Int32($0)! }
                let got = tok.encode(text, addSpecial: false, parseSpecial: false)
                if got == want { ok += 1 } else {
                    print("  FAIL [\(v)] \(text.debugDescription): \(got) != \(want)")
                }
            }
            print("[\(v) .inp/.out] cases checked: \(cases.count), passed: \(ok)")
            XCTAssertGreaterThan(cases.count, 30, v)
            XCTAssertEqual(ok, cases.count, v)
            total += cases.count; passed += ok
        }
        print("[llama.cpp vectors] total \(total), passed \(passed)")
    }
}
