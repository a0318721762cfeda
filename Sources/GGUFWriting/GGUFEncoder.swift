import GGUF

/// Little-endian encoder of GGUF header fields and metadata values.
struct GGUFEncoder {
    var bytes: [UInt8] = []

    /// Everything before the data section: magic, version 3, counts, the metadata pairs in order, the tensor infos
    /// with offsets packed at `alignment`, then zero padding to `alignment`. `tensors`: `(name, ne (fastest
    /// first), type, data bytes)` in file order.
    static func header(metadata: [(String, GGUFValue)], tensors: [(name: String, dims: [Int], type: GGMLType, byteCount: Int)],
                       alignment: Int) -> [UInt8] {
        var e = GGUFEncoder()
        e.u32(0x4655_4747)
        e.u32(3)
        e.u64(UInt64(tensors.count))
        e.u64(UInt64(metadata.count))
        for (k, v) in metadata {
            e.string(k)
            e.u32(valueType(v).rawValue)
            e.value(v)
        }
        var offset = 0
        for t in tensors {
            e.string(t.name)
            e.u32(UInt32(t.dims.count))
            for d in t.dims { e.u64(UInt64(d)) }
            e.u32(t.type.rawValue)
            e.u64(UInt64(offset))
            offset += (t.byteCount + alignment - 1) / alignment * alignment
        }
        while e.bytes.count % alignment != 0 { e.bytes.append(0) }
        return e.bytes
    }

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        let b = Array(s.utf8)
        u64(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    static func valueType(_ v: GGUFValue) -> GGUFValueType {
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

    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): bytes.append(x)
        case .int8(let x): bytes.append(UInt8(bitPattern: x))
        case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) }
        case .int16(let x): withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) }
        case .uint32(let x): u32(x)
        case .int32(let x): u32(UInt32(bitPattern: x))
        case .uint64(let x): u64(x)
        case .int64(let x): u64(UInt64(bitPattern: x))
        case .float32(let x): u32(x.bitPattern)
        case .float64(let x): u64(x.bitPattern)
        case .bool(let x): bytes.append(x ? 1 : 0)
        case .string(let s): string(s)
        case .array(let t, let a):
            u32(t.rawValue)
            u64(UInt64(a.count))
            for e in a { value(e) }
        }
    }
}
