import Foundation
import GGUF

/// Builds a GGUF v3 file in memory: metadata in insertion order, then tensor infos, then aligned tensor data.
/// Used for test fixtures and synthetic models. Format: ggml `docs/gguf.md`.
public struct GGUFWriter {
    private var kv: [(String, GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []
    /// Data-section alignment in bytes.
    public let alignment: Int

    public init(alignment: Int = 32) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0)
        self.alignment = alignment
    }

    /// Adds a metadata pair (written in call order).
    public mutating func add(_ key: String, _ value: GGUFValue) { kv.append((key, value)) }

    /// Adds a tensor. `dims` is ggml `ne` (fastest first); `data` must hold exactly its bytes.
    public mutating func addTensor(name: String, dims: [Int], type: GGMLType, data: [UInt8]) {
        precondition(type.byteCount(elements: dims.reduce(1, *)) == data.count, "tensor \(name): data size mismatch")
        tensors.append((name, dims, type, data))
    }

    /// Adds an F32 tensor from floats. `dims` is ggml `ne` (fastest first).
    public mutating func addTensor(name: String, dims: [Int], floats: [Float]) {
        let bytes = floats.withUnsafeBytes { Array($0) }
        addTensor(name: name, dims: dims, type: .f32, data: bytes)
    }

    /// The complete file.
    public func serialize() -> [UInt8] {
        var out = GGUFEncoder.header(metadata: kv, tensors: tensors.map { ($0.name, $0.dims, $0.type, $0.data.count) },
                                     alignment: alignment)
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file to `path`. - Throws: Foundation's file errors.
    public func write(to path: String) throws {
        try Data(serialize()).write(to: URL(fileURLWithPath: path))
    }
}
