import Foundation
import GGUF
import GGUFWriting
@testable import Model
import TestSupport
import XCTest

/// Routed experts are used from the file mapping: loading a MoE file of a few hundred MB adds almost no anonymous
/// memory (the load-time copy the repacker used to make was as large as the experts).
final class WeightsInPlaceTests: XCTestCase {
    /// Experts per MoE layer of the generated file (the tiny fixture's 8, repeated).
    static let experts = 24_576

    func testLoadingAMoEFileDoesNotCopyTheExperts() throws {
        let src = try GGUFFile(path: MoEModelTests.v3.ggufPath("q8_0"))
        let path = NSTemporaryDirectory() + "sputnik-moe-in-place-\(getpid()).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expertBytes = try Self.writeWideCopy(of: src, experts: Self.experts, to: path)
        XCTAssertGreaterThan(expertBytes, 300 << 20, "the generated experts should be a few hundred MB")

        let before = try Self.anonymousResidentBytes()
        let start = Date()
        let model = try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: 2, kvCacheType: .f32, maxBatchTokens: 4))
        let loadSeconds = Date().timeIntervalSince(start)
        let tokens = try MoEModelTests.v3.sequence("9")
        let logits = SequenceRunner(model: model, numBlocks: 16).run(tokens, chunks: [1])
        let grown = try Self.anonymousResidentBytes() - before
        print(String(format: "in-place MoE load: %d MiB of experts, %.2f s, anonymous RSS +%.1f MiB after %d decode steps",
                     expertBytes >> 20, loadSeconds, Double(grown) / 1_048_576, tokens.count))
        XCTAssertTrue(logits.allSatisfy { $0.allSatisfy(\.isFinite) })
        XCTAssertGreaterThan((model as? DecoderModel)?.moeFusedSteps ?? 0, 0, "decode should take the fused path")
        // Scratch, router logits and the dense weights' copies are a few MB; a copy of the experts is 300+.
        XCTAssertLessThan(grown, 32 << 20, "anonymous memory grew by \(grown >> 20) MiB loading \(expertBytes >> 20) MiB of experts")
        withExtendedLifetime(model) {}
    }

    /// `RssAnon` of this process (bytes): resident anonymous memory, which file-backed weights do not count in.
    static func anonymousResidentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        let kb = try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        return kb * 1024
    }

    /// Writes `src` (a deepseek2 MoE file) with `experts` experts per MoE layer: expert e is the source's expert
    /// e mod E (router rows and selection bias likewise), everything else copied. Returns the routed experts' bytes.
    static func writeWideCopy(of src: GGUFFile, experts: Int, to path: String) throws -> Int {
        let e0 = try XCTUnwrap(src.metadata["deepseek2.expert_count"]?.intValue)
        XCTAssertEqual(experts % e0, 0)
        let scale = experts / e0
        var metadata: [(String, GGUFValue)] = []
        for key in src.keys {
            metadata.append((key, key == "deepseek2.expert_count" ? .uint32(UInt32(experts)) : src.metadata[key]!))
        }
        // Tensors whose last dimension counts experts (3-D expert stacks, the router's rows, the bias).
        func widened(_ info: GGUFTensorInfo) -> Bool {
            info.dimensions.last == e0 && (info.name.contains("_exps") || info.name.contains("ffn_gate_inp") || info.name.contains("exp_probs_b"))
        }
        let decls = src.tensors.map { info -> GGUFStreamWriter.TensorDecl in
            var dims = info.dimensions
            if widened(info) { dims[dims.count - 1] = experts }
            return GGUFStreamWriter.TensorDecl(name: info.name, dims: dims, type: info.type)
        }
        let w = try GGUFStreamWriter(path: path, metadata: metadata, tensors: decls, alignment: src.alignment)
        var expertBytes = 0
        for info in src.tensors {
            let data = src.data(for: info)
            try w.beginTensor(info.name)
            if widened(info) {
                for _ in 0..<scale { try w.write(UnsafeRawBufferPointer(start: data, count: info.byteCount)) }
                if info.name.contains("_exps") { expertBytes += info.byteCount * scale }
            } else {
                try w.write(UnsafeRawBufferPointer(start: data, count: info.byteCount))
            }
            try w.endTensor()
        }
        try w.finish()
        return expertBytes
    }
}
