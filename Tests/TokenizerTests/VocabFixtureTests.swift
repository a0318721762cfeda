import Foundation
import GGUF
import TestSupport
import XCTest
@testable import Tokenizer

/// Every record of `Tests/Fixtures/tokenizer/<vocab>.jsonl` (llama.cpp 0.3.36 via llama-cpp-python) must match:
/// ids for `encode` with parse_special false and true, `detokenize` with and without special text, and the
/// concatenated streaming pieces.
final class VocabFixtureTests: XCTestCase {
    static let vocabs = [
        "smollm2.vocab", "ggml-vocab-gpt-2", "ggml-vocab-llama-bpe", "ggml-vocab-qwen2",
        "deepseek-r1-distill-qwen.vocab", "ggml-vocab-deepseek-llm", "ggml-vocab-deepseek-coder",
        "ggml-vocab-llama-spm", "ggml-vocab-phi-3",
    ]

    static func load(_ vocab: String) throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/\(vocab).gguf")))
    }

    /// One line of `<vocab>.jsonl` (see Tests/Fixtures/README.md, tokenizer section).
    struct Record: Decodable {
        let i: Int
        let text: String
        let ids_plain: [Int32]
        let ids_special: [Int32]
        let detok: String
        let detok_special: String
        let detok_pieces: String
        let detok_hex: String?
        let detok_special_hex: String?
        let detok_pieces_hex: String?
    }

    /// Parsed with JSONDecoder: corelibs' JSONSerialization drops a literal U+FEFF inside strings.
    static func records(_ vocab: String) throws -> [Record] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/\(vocab).jsonl")))
        return try data.split(separator: 0x0A).map { try JSONDecoder().decode(Record.self, from: Data($0)) }
    }

    static func hexBytes(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        return stride(from: 0, to: u.count - 1, by: 2).map { UInt8(String(decoding: u[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
    }

    /// Expected bytes of a detok field: the `_hex` twin when present (invalid UTF-8), else the string.
    static func expectedBytes(_ text: String, _ hex: String?) -> [UInt8] {
        if let hex { return hexBytes(hex) }
        return Array(text.utf8)
    }

    func check(_ vocab: String) throws {
        let tok = try Self.load(vocab)
        let recs = try Self.records(vocab)
        var passed = 0
        var failures: [String] = []
        for r in recs {
            let text = r.text
            let plain = r.ids_plain
            let special = r.ids_special
            var problems: [String] = []
            let gotPlain = tok.encode(text, addSpecial: false, parseSpecial: false)
            if gotPlain != plain { problems.append("ids_plain \(gotPlain) != \(plain)") }
            let gotSpecial = tok.encode(text, addSpecial: false, parseSpecial: true)
            if gotSpecial != special { problems.append("ids_special \(gotSpecial) != \(special)") }
            let detok = tok.detokenizeBytes(plain, renderSpecial: false)
            if detok != Self.expectedBytes(r.detok, r.detok_hex) { problems.append("detok \(String(decoding: detok, as: UTF8.self).debugDescription)") }
            let detokS = tok.detokenizeBytes(special, renderSpecial: true)
            if detokS != Self.expectedBytes(r.detok_special, r.detok_special_hex) { problems.append("detok_special \(String(decoding: detokS, as: UTF8.self).debugDescription)") }
            let pieces = plain.flatMap { tok.tokenBytes($0) }
            if pieces != Self.expectedBytes(r.detok_pieces, r.detok_pieces_hex) { problems.append("detok_pieces \(String(decoding: pieces, as: UTF8.self).debugDescription)") }
            if problems.isEmpty { passed += 1 } else {
                failures.append("#\(r.i) \(text.debugDescription.prefix(60)): " + problems.joined(separator: "; "))
            }
        }
        print("[\(vocab)] records checked: \(recs.count), passed: \(passed)")
        for f in failures.prefix(8) { print("  FAIL \(f.prefix(400))") }
        XCTAssertEqual(recs.count, 136, vocab)
        XCTAssertEqual(passed, recs.count, "\(vocab): \(recs.count - passed) records differ from llama.cpp")
    }

    /// Vocabulary facts against `manifest.json` (llama.cpp's n_vocab, bos, eos, add_bos, add_eos).
    func testManifestFacts() throws {
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/manifest.json")))) as! [String: Any]
        let files = m["vocab_files"] as! [String: [String: Any]]
        var checked = 0
        for v in Self.vocabs {
            let facts = files[v + ".gguf"]!
            let tok = try Self.load(v)
            XCTAssertEqual(tok.vocabSize, facts["n_vocab"] as? Int, v)
            XCTAssertEqual(tok.bosTokenId.map(Int.init), facts["bos"] as? Int, v)
            XCTAssertEqual(tok.eosTokenId.map(Int.init), facts["eos"] as? Int, v)
            XCTAssertEqual(tok.addBOS, facts["add_bos (llama_vocab_get_add_bos)"] as? Bool, v)
            XCTAssertEqual(tok.addEOS, facts["add_eos (llama_vocab_get_add_eos)"] as? Bool, v)
            if let eos = tok.eosTokenId { XCTAssertTrue(tok.endOfGenerationIds.contains(eos), v) }
            if tok.addBOS, let bos = tok.bosTokenId {
                XCTAssertEqual(tok.encode("Hi", addSpecial: true, parseSpecial: false).first, bos, v)
            }
            checked += 1
        }
        print("[manifest] vocabularies checked: \(checked)")
        XCTAssertEqual(checked, Self.vocabs.count)
    }

    func testSmolLM2() throws { try check("smollm2.vocab") }
    func testGPT2() throws { try check("ggml-vocab-gpt-2") }
    func testLlamaBPE() throws { try check("ggml-vocab-llama-bpe") }
    func testQwen2() throws { try check("ggml-vocab-qwen2") }
    func testDeepSeekR1Qwen() throws { try check("deepseek-r1-distill-qwen.vocab") }
    func testDeepSeekLLM() throws { try check("ggml-vocab-deepseek-llm") }
    func testDeepSeekCoder() throws { try check("ggml-vocab-deepseek-coder") }
    func testLlamaSPM() throws { try check("ggml-vocab-llama-spm") }
    func testPhi3() throws { try check("ggml-vocab-phi-3") }
}
