import Foundation

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
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); out.append(contentsOf: b) }
        func type(of v: GGUFValue) -> GGUFValueType {
            switch v {
            case .uint8: return .uint8
            case .int8: return .int8
            case .uint16: return .uint16
            case .int16: return .int16
            case .uint32: return .uint32
            case .int32: return .int32
            case .uint64: return .uint64
            case .int64: return .int64
            case .float32: return .float32
            case .float64: return .float64
            case .bool: return .bool
            case .string: return .string
            case .array: return .array
            }
        }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): str(s)
            case .array(let t, let a):
                u32(t.rawValue)
                u64(UInt64(a.count))
                for e in a { value(e) }
            }
        }
        u32(0x4655_4747)
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(kv.count))
        for (k, v) in kv {
            str(k)
            u32(type(of: v).rawValue)
            value(v)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (i, t) in tensors.enumerated() {
            str(t.name)
            u32(UInt32(t.dims.count))
            for d in t.dims { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offsets[i]))
        }
        while out.count % alignment != 0 { out.append(0) }
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
