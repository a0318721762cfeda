import Foundation
import GGUF
import GGUFWriting
import Model
import XCTest

/// Writes small GGUF v3 files for loader tests (metadata strings / u32s and zero-filled tensors).
struct TestGGUFWriter {
    var strings: [(String, String)] = []
    var ints: [(String, UInt32)] = []
    var floats: [(String, Float)] = []
    /// name, ne (fastest first), ggml type id, bytes
    var tensors: [(String, [Int], UInt32, Int)] = []

    func write(to path: String) throws {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
        d.append(contentsOf: Array("GGUF".utf8))
        u32(3); u64(UInt64(tensors.count)); u64(UInt64(strings.count + ints.count + floats.count))
        for (k, v) in strings { str(k); u32(8); str(v) }
        for (k, v) in ints { str(k); u32(4); u32(v) }
        for (k, v) in floats { str(k); u32(6); u32(v.bitPattern) }
        var offset = 0
        for (name, ne, type, bytes) in tensors {
            str(name); u32(UInt32(ne.count)); for n in ne { u64(UInt64(n)) }; u32(type); u64(UInt64(offset))
            offset += (bytes + 31) / 32 * 32
        }
        while d.count % 32 != 0 { d.append(0) }
        d.append(Data(count: offset))
        try d.write(to: URL(fileURLWithPath: path))
    }
}

final class ModelLoaderTests: XCTestCase {
    var path: String!

    override func setUp() {
        path = NSTemporaryDirectory() + "sputnik-loader-\(UUID().uuidString).gguf"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: path) }

    func tinyLlama() -> TestGGUFWriter {
        var w = TestGGUFWriter()
        w.strings = [("general.architecture", "llama")]
        w.ints = [("llama.embedding_length", 64), ("llama.attention.head_count", 4), ("llama.attention.head_count_kv", 2),
                  ("llama.block_count", 1), ("llama.feed_forward_length", 96), ("llama.context_length", 32)]
        w.floats = [("llama.attention.layer_norm_rms_epsilon", 1e-5)]
        w.tensors = [("token_embd.weight", [64, 16], 0, 64 * 16 * 4), ("output_norm.weight", [64], 0, 256)]
        return w
    }

    func load(_ w: TestGGUFWriter) throws -> LanguageModel {
        try w.write(to: path)
        return try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 1))
    }

    func expect(_ w: TestGGUFWriter, _ error: ModelLoadError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(w), file: file, line: line) { e in
            XCTAssertEqual(e as? ModelLoadError, error, file: file, line: line)
            XCTAssertFalse("\(e)".isEmpty)
        }
    }

    func testUnsupportedArchitecture() {
        var w = TestGGUFWriter()
        w.strings = [("general.architecture", "mamba")]
        expect(w, .unsupportedArchitecture("mamba"))
        XCTAssertTrue("\(ModelLoadError.unsupportedArchitecture("mamba"))".contains("llama"))
    }

    func testMissingTensor() {
        expect(tinyLlama(), .missingTensor("blk.0.attn_norm.weight"))
    }

    /// `<arch>.attention.layer_norm_rms_epsilon` and `<arch>.context_length` are required, as in llama.cpp.
    func testMissingRequiredKeyFailsAtLoad() throws {
        var w = tinyLlama()
        w.floats = []
        try w.write(to: path)
        XCTAssertThrowsError(try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 1))) { e in
            XCTAssertTrue("\(e)".contains("layer_norm_rms_epsilon"), "\(e)")
        }
    }

    func testShapeMismatch() {
        var w = tinyLlama()
        w.tensors[1] = ("output_norm.weight", [32], 0, 128)
        expect(w, .tensorShapeMismatch(name: "output_norm.weight", expected: [64], actual: [32]))
    }

    func testUnsupportedTensorType() {
        var w = tinyLlama()
        w.tensors[0] = ("token_embd.weight", [64, 16], 39, 16 * 2 * 17)   // mxfp4: no kernel
        expect(w, .unsupportedTensorType(name: "token_embd.weight", type: "\(GGMLType.mxfp4)"))
        XCTAssertThrowsError(try load(w)) { e in   // the message a user sees names the tensor and the type
            XCTAssertTrue("\(e)".contains("'token_embd.weight'") && "\(e)".contains("MXFP4"), "\(e)")
        }
    }

    func testFullTinyLlamaLoadsAndReportsHyperparameters() throws {
        var w = tinyLlama()
        for (n, ne) in [("attn_norm", [64]), ("ffn_norm", [64]), ("attn_q", [64, 64]), ("attn_k", [64, 32]),
                        ("attn_v", [64, 32]), ("attn_output", [64, 64]), ("ffn_gate", [64, 96]), ("ffn_up", [64, 96]),
                        ("ffn_down", [96, 64])] {
            w.tensors.append(("blk.0.\(n).weight", ne, 0, ne.reduce(4, *)))
        }
        let model = try load(w)
        let hp = model.hyperparameters
        XCTAssertEqual([hp.vocabSize, hp.embeddingLength, hp.numHeads, hp.numKVHeads, hp.headDim, hp.numLayers], [16, 64, 4, 2, 16, 1])
        let cache = model.makeKVCache(numBlocks: 2, blockSize: 16)
        XCTAssertEqual(cache.bytes, 1 * 2 * 2 * 16 * 2 * 16 * 2)   // layers·(K,V)·blocks·blockSize·kvHeads·headDim·f16
        // Zero weights: every logit is 0.
        var logits = [Float](repeating: .nan, count: 16)
        let batch = ForwardBatch(tokens: [3], positions: [0], slotMapping: [16],
                                 sequences: [BatchSequence(tokenStart: 0, tokenCount: 1, blockTable: [1], contextLength: 1)],
                                 logitRows: [0])
        logits.withUnsafeMutableBufferPointer { model.forward(batch, cache: cache, logits: $0.baseAddress!) }
        XCTAssertEqual(logits, [Float](repeating: 0, count: 16))
    }
}

/// A language model without its own trace hook still satisfies the protocol (default: nil, ignored).
final class TraceDefaultTests: XCTestCase {
    final class Fake: LanguageModel {
        let hyperparameters = ModelHyperparameters(
            architecture: "fake", vocabSize: 2, contextLength: 4, numLayers: 1, embeddingLength: 2, numHeads: 1,
            numKVHeads: 1, headDim: 2, feedForwardLength: 2, rmsNormEpsilon: 1e-5, ropeTheta: 10_000, ropePositionScale: 1)
        func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache {
            PagedKVCache(numLayers: 1, numBlocks: numBlocks, blockSize: blockSize, numKVHeads: 1, headDim: 2, type: .f32)
        }
        func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) {}
        func lockWeightsInMemory() -> String? { nil }
    }

    func testDefaultTraceIsNil() {
        let m: LanguageModel = Fake()
        m.trace = { _, _, _, _ in }
        XCTAssertNil(m.trace)
        XCTAssertEqual(m.makeKVCache(numBlocks: 3, blockSize: 4).bytes, 3 * 4 * 2 * 4 * 2)
    }
}
