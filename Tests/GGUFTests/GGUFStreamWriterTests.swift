import Foundation
import GGUF
import GGUFWriting
import XCTest

/// `GGUFStreamWriter` writes the same bytes as the in-memory `GGUFWriter` and rejects out-of-order or
/// wrongly sized tensor data.
final class GGUFStreamWriterTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-stream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("deepseek2")),
        ("deepseek2.block_count", .uint32(3)),
        ("deepseek2.rope.scaling.factor", .float32(40)),
        ("tokenizer.ggml.tokens", .array(.string, [.string("a"), .string("bc"), .string("✓")])),
        ("tokenizer.ggml.add_bos_token", .bool(true)),
        ("sputnik.synth.seed", .uint64(42)),
    ]

    private func tensors() -> [(String, [Int], GGMLType, [UInt8])] {
        [("a.weight", [3], .f32, (0..<12).map { UInt8($0) }),
         ("b.weight", [32, 2], .q8_0, (0..<68).map { UInt8(($0 * 7) & 0xFF) }),
         ("c.weight", [5, 1], .f32, (0..<20).map { UInt8(200 - $0) })]
    }

    func testMatchesInMemoryWriterByteForByte() throws {
        var mem = GGUFWriter()
        for (k, v) in metadata { mem.add(k, v) }
        for (n, d, t, b) in tensors() { mem.addTensor(name: n, dims: d, type: t, data: b) }
        let path = dir.appendingPathComponent("s.gguf").path
        let w = try GGUFStreamWriter(path: path, metadata: metadata,
                                     tensors: tensors().map { .init(name: $0.0, dims: $0.1, type: $0.2) })
        for (n, _, _, b) in tensors() {
            try w.beginTensor(n)
            // in two pieces, as the synthesizer writes chunks
            try b.withUnsafeBytes { raw in
                try w.write(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count / 2)]))
                try w.write(UnsafeRawBufferPointer(rebasing: raw[(raw.count / 2)...]))
            }
            try w.endTensor()
        }
        try w.finish()
        let streamed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(streamed, mem.serialize())

        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.tensors.map(\.name), ["a.weight", "b.weight", "c.weight"])
        XCTAssertEqual(try f.int("deepseek2.block_count"), 3)
        XCTAssertEqual(f.metadata["sputnik.synth.seed"], .uint64(42))
        let b = f.tensorInfo(named: "b.weight")!
        XCTAssertEqual(b.dimensions, [32, 2])
        XCTAssertEqual(b.offset % 32, 0)
        let bytes = UnsafeRawBufferPointer(start: f.data(for: b), count: b.byteCount)
        XCTAssertEqual([UInt8](bytes), tensors()[1].3)
    }

    func testRejectsOutOfOrderAndWrongSizes() throws {
        let path = dir.appendingPathComponent("bad.gguf").path
        let decls = tensors().map { GGUFStreamWriter.TensorDecl(name: $0.0, dims: $0.1, type: $0.2) }
        let w = try GGUFStreamWriter(path: path, metadata: metadata, tensors: decls)
        XCTAssertThrowsError(try w.beginTensor("b.weight")) { XCTAssertTrue("\($0)".contains("out of declaration order")) }
        try w.beginTensor("a.weight")
        let five = [UInt8](repeating: 1, count: 5)
        try five.withUnsafeBytes { try w.write($0) }
        XCTAssertThrowsError(try w.endTensor()) { XCTAssertTrue("\($0)".contains("5 of 12 bytes")) }
        let ten = [UInt8](repeating: 1, count: 10)
        XCTAssertThrowsError(try ten.withUnsafeBytes { try w.write($0) }) { XCTAssertTrue("\($0)".contains("too many bytes")) }
        XCTAssertThrowsError(try w.finish()) { XCTAssertTrue("\($0)".contains("not written")) }
    }

    func testCannotCreateInMissingDirectory() {
        XCTAssertThrowsError(try GGUFStreamWriter(path: dir.appendingPathComponent("no/such/x.gguf").path,
                                                  metadata: [], tensors: [])) {
            guard case .cannotOpen = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
    }
}
