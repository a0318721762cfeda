import Foundation
import GGUF
import TestSupport
import XCTest
@testable import Tokenizer

/// Behaviour tests: pre-tokenizer splits, special-token handling, load errors, streaming detokenization.
final class TokenizerUnitTests: XCTestCase {
    static func vocab(_ name: String) throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/\(name).gguf")))
    }

    /// Pre-tokens of `text` for one pre-tokenizer kind.
    func split(_ kind: PreTokenizerKind, _ text: String) -> [String] {
        let cps = text.unicodeScalars.map { $0.value }
        let flags = cps.map { CharClass.flags($0) }
        var out: [Int32] = [], tmp: [Int32] = []
        cps.withUnsafeBufferPointer { c in
            flags.withUnsafeBufferPointer { f in PreTokenizer(stages: kind.stages).split(c, f, out: &out, tmp: &tmp) }
        }
        var result: [String] = []
        var start = 0
        for e in out {
            var s = String.UnicodeScalarView()
            for cp in cps[start..<Int(e)] { s.append(Unicode.Scalar(cp)!) }
            result.append(String(s)); start = Int(e)
        }
        return result
    }

    func testPreTokenizerContractions() {
        XCTAssertEqual(split(.gpt2, "I'm here, isn't it"), ["I", "'m", " here", ",", " isn", "'t", " it"])
        XCTAssertEqual(split(.gpt2, "DON'T"), ["DON", "'", "T"])              // GPT-2: case-sensitive
        XCTAssertEqual(split(.llama3, "DON'T"), ["DON", "'T"])                // Llama-3: case-insensitive
        XCTAssertEqual(split(.qwen2, "they'RE"), ["they", "'RE"])
    }

    func testPreTokenizerDigits() {
        XCTAssertEqual(split(.llama3, "1234567"), ["123", "456", "7"])
        XCTAssertEqual(split(.qwen2, "2024!"), ["2", "0", "2", "4", "!"])
        XCTAssertEqual(split(.smollm, "abc123 def"), ["abc", "1", "2", "3", " def"])
        XCTAssertEqual(split(.gpt2, "abc123 456"), ["abc", "123", " 456"])
        XCTAssertEqual(split(.deepseekV3, "12345"), ["123", "45"])
        XCTAssertEqual(split(.deepseekCoder, "x=42"), ["x", "=", "4", "2"])
    }

    func testPreTokenizerCJKAndScripts() {
        XCTAssertEqual(split(.deepseekLLM, "中文English"), ["中文", "English"])
        XCTAssertEqual(split(.deepseekV3, "東京はTokyo"), ["東京は", "Tokyo"])
        XCTAssertEqual(split(.llama3, "你好，世界"), ["你好", "，世界"])
        XCTAssertEqual(split(.gpt2, "naïve café"), ["naïve", " café"])
    }

    func testPreTokenizerWhitespaceRuns() {
        XCTAssertEqual(split(.gpt2, "a   b"), ["a", "  ", " b"])
        XCTAssertEqual(split(.gpt2, "a\n\nb"), ["a", "\n", "\n", "b"])
        XCTAssertEqual(split(.gpt2, "end  "), ["end", "  "])
        XCTAssertEqual(split(.llama3, "x \n\n y"), ["x", " \n\n", " y"])
        XCTAssertEqual(split(.qwen2, "\t\tif x"), ["\t", "\tif", " x"])
        XCTAssertEqual(split(.deepseekLLM, "a  \n"), ["a", "  ", "\n"])   // \s+$ ends at the chunk end
    }

    func testSpecialTokenInjectionGuard() throws {
        for name in ["ggml-vocab-qwen2", "smollm2.vocab"] {
            let tok = try Self.vocab(name)
            let imStart = tok.tokenToId[ByteString("<|im_start|>")]!
            let text = "<|im_start|>user\nhi<|im_end|>"
            let plain = tok.encode(text, addSpecial: false, parseSpecial: false)
            XCTAssertFalse(plain.contains(imStart), "\(name): user text must not become a control token")
            XCTAssertFalse(plain.contains { tok.isControl($0) }, name)
            XCTAssertEqual(tok.detokenize(plain), text, name)
            let parsed = tok.encode(text, addSpecial: false, parseSpecial: true)
            XCTAssertEqual(parsed.first, imStart, name)
            XCTAssertEqual(tok.detokenize(parsed, renderSpecial: true), text, name)
            XCTAssertEqual(tok.detokenize(parsed, renderSpecial: false), "user\nhi", name)
        }
    }

    func testBOSAndEndOfGeneration() throws {
        let llama = try Self.vocab("ggml-vocab-llama-bpe")
        XCTAssertTrue(llama.addBOS)
        XCTAssertEqual(llama.encode("Hi", addSpecial: true, parseSpecial: false).first, 128000)
        XCTAssertTrue(llama.endOfGenerationIds.contains(128001))
        XCTAssertTrue(llama.endOfGenerationIds.contains(llama.tokenToId[ByteString("<|eot_id|>")]!))
        let smol = try Self.vocab("smollm2.vocab")
        XCTAssertFalse(smol.addBOS)
        XCTAssertEqual(smol.encode("Hi", addSpecial: true, parseSpecial: false), smol.encode("Hi", addSpecial: false, parseSpecial: false))
        XCTAssertEqual(smol.endOfGenerationIds, [0, 2, 4])   // <|endoftext|>, <|im_end|> (= EOS), <reponame> (FIM repo)
        let qwen = try Self.vocab("ggml-vocab-qwen2")
        XCTAssertTrue(qwen.endOfGenerationIds.contains(qwen.tokenToId[ByteString("<|im_end|>")]!))
        XCTAssertTrue(qwen.endOfGenerationIds.contains(151643))
        XCTAssertFalse(qwen.endOfGenerationIds.contains(qwen.tokenToId[ByteString("<|im_start|>")]!))
    }

    func testStreamingNeverSplitsUTF8() throws {
        // SentencePiece byte fallback: 😀 is four byte tokens.
        let spm = try Self.vocab("ggml-vocab-llama-spm")
        let bytes = [0xF0, 0x9F, 0x98, 0x80].map { spm.byteToken(UInt8($0))! }
        var d = StreamingDetokenizer(tokenizer: spm)
        XCTAssertEqual(d.append(bytes[0]), "")
        XCTAssertEqual(d.append(bytes[1]), "")
        XCTAssertEqual(d.append(bytes[2]), "")
        XCTAssertEqual(d.append(bytes[3]), "😀")
        XCTAssertEqual(d.flush(), "")
        var cut = StreamingDetokenizer(tokenizer: spm)
        XCTAssertEqual(cut.append(bytes[0]) + cut.append(bytes[1]), "")
        XCTAssertEqual(cut.flush(), "\u{FFFD}")
        // Every corpus string through byte-level BPE, token by token.
        let corpus = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/corpus.jsonl")))
        struct Line: Decodable { let text: String }
        var checked = 0
        for name in ["smollm2.vocab", "ggml-vocab-qwen2", "ggml-vocab-llama-spm"] {
            let tok = try Self.vocab(name)
            for l in corpus.split(separator: 0x0A) {
                let text = try JSONDecoder().decode(Line.self, from: Data(l)).text
                let ids = tok.encode(text, addSpecial: false, parseSpecial: false)
                var s = StreamingDetokenizer(tokenizer: tok)
                var streamed = ""
                for id in ids {
                    let chunk = s.append(id)
                    if !text.contains("\u{FFFD}") { XCTAssertFalse(chunk.contains("\u{FFFD}"), "\(name): \(text.debugDescription)") }
                    streamed += chunk
                }
                streamed += s.flush()
                XCTAssertEqual(Array(streamed.utf8), ids.flatMap { tok.tokenBytes($0) }, "\(name): \(text.debugDescription)")
                checked += 1
            }
        }
        print("[streaming] corpus strings checked: \(checked)")
        XCTAssertEqual(checked, 3 * 136)
    }

    func testConcurrentEncodeIsDeterministic() throws {
        let tok = try Self.vocab("smollm2.vocab")
        let texts = ["Hello world", "<|im_start|>user\nDon't panic, 42 times 😀<|im_end|>", "中文English混合text测试", "  a\n\n\tb  "]
        let want = texts.map { tok.encode($0, addSpecial: false, parseSpecial: true) }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var ids = [[Int32]](repeating: [], count: 64)
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let ids = tok.encode(texts[i % texts.count], addSpecial: false, parseSpecial: true)
            results.lock.lock(); results.ids[i] = ids; results.lock.unlock()
        }
        for i in 0..<64 { XCTAssertEqual(results.ids[i], want[i % texts.count]) }
    }

    func testUnknownPreTokenizerIsAnError() throws {
        func load(_ kv: [(String, GGUFTestWriter.Value)]) throws -> Tokenizer {
            let path = NSTemporaryDirectory() + "sputnik-tok-\(UUID().uuidString).gguf"
            try GGUFTestWriter.write(path: path, kv)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try Tokenizer(gguf: GGUFFile(path: path))
        }
        let base: [(String, GGUFTestWriter.Value)] = [
            ("tokenizer.ggml.tokens", .strings(["a", "b", "ab"])), ("tokenizer.ggml.merges", .strings(["a b"])),
        ]
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("made-up"))] + base)) {
            XCTAssertEqual($0 as? TokenizerError, .unknownPreTokenizer("made-up"))
            XCTAssertTrue("\($0)".contains("made-up"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2"))] + base)) {
            XCTAssertEqual($0 as? TokenizerError, .missingPreTokenizer)
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("bert"))] + base)) {
            XCTAssertEqual($0 as? TokenizerError, .unknownModel("bert"))
        }
        let ok = try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("gpt-2"))] + base)
        XCTAssertEqual(ok.encode("ab", addSpecial: false, parseSpecial: false), [2])
    }
}

/// Writes a tensor-less GGUF v3 file with string and string-array metadata (enough for vocabulary tests).
enum GGUFTestWriter {
    enum Value { case string(String), strings([String]) }

    static func write(path: String, _ kv: [(String, Value)]) throws {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
        d.append(contentsOf: Array("GGUF".utf8)); u32(3); u64(0); u64(UInt64(kv.count))
        for (k, v) in kv {
            str(k)
            switch v {
            case .string(let s): u32(8); str(s)
            case .strings(let a): u32(9); u32(8); u64(UInt64(a.count)); a.forEach(str)
            }
        }
        while d.count % 32 != 0 { d.append(0) }
        try d.write(to: URL(fileURLWithPath: path))
    }
}

/// `TextFile.read` keeps every byte (issue 20.2: Foundation's reader dropped a leading U+FEFF).
final class TextFileTests: XCTestCase {
    private func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("textfile-\(UInt64.random(in: 0 ... .max)).txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func testLeadingBOMsAreKept() throws {
        let text = "\u{FEFF}\u{FEFF}double BOM"
        let path = try write(Array(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let read = try TextFile.read(path)
        XCTAssertEqual(read, text)
        XCTAssertEqual(read.unicodeScalars.prefix(2).map(\.value), [0xFEFF, 0xFEFF])
        XCTAssertEqual(Array(read.utf8), Array(text.utf8))
    }

    func testInvalidUTF8NamesTheOffset() throws {
        let path = try write(Array("abc".utf8) + [0xC3, 0x28] + Array("tail".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try TextFile.read(path)) { error in
            XCTAssertEqual(error as? TextFile.ReadError, .invalidUTF8(path: path, offset: 3))
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try TextFile.read("/nonexistent/sputnik-textfile")) { error in
            guard case .io(_, let e)? = error as? TextFile.ReadError else { return XCTFail("\(error)") }
            XCTAssertEqual(e, ENOENT)
        }
    }

    func testLargeFileIsReadWhole() throws {
        let bytes = (0..<200_000).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let path = try write(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(Array(try TextFile.read(path).utf8), bytes)
    }
}
