import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a GGUF v3 file whose tensors are streamed to disk one after another, so a file far larger than memory
/// (a 9–17 GB synthetic model) can be written with a few MB of buffers. Format: ggml `docs/gguf.md`.
///
/// NOTE: layout written, in order:
/// ```
/// magic "GGUF" | version 3 | n_tensors u64 | n_kv u64 | kv pairs | tensor infos (name, n_dims, ne[], type, offset)
/// | zero padding to `alignment` | tensor 0 data | pad | tensor 1 data | pad | ...
/// ```
/// All tensor infos (names, `ne`, types) are declared up front, which fixes every offset; `beginTensor` /
/// `write` / `endTensor` then fill the data section in declaration order.
public final class GGUFStreamWriter {
    /// One declared tensor: GGUF name, ggml `ne` (fastest first) and element type.
    public struct TensorDecl: Sendable, Equatable {
        public let name: String
        public let dims: [Int]
        public let type: GGMLType
        /// A tensor `name` of ggml `ne` `dims` (fastest first) stored as `type`.
        public init(name: String, dims: [Int], type: GGMLType) {
            self.name = name
            self.dims = dims
            self.type = type
        }
        /// Bytes of data (`type.byteCount` of the element count).
        public var byteCount: Int { type.byteCount(elements: dims.reduce(1, *)) }
    }

    /// Output path.
    public let path: String
    /// Data-section alignment in bytes.
    public let alignment: Int
    /// The declared tensors, in file order.
    public let tensors: [TensorDecl]
    private var fd: Int32
    private var next = 0               // index of the tensor to write next
    private var written = 0            // bytes of the current tensor written so far
    private var open = false           // inside beginTensor/endTensor
    private var position: Int          // bytes written to the file

    /// Creates (truncates) `path` and writes the header, the metadata pairs (in order) and the tensor infos.
    /// - Throws: `GGUFError.cannotOpen` when the file cannot be created, `.writeFailed` on I/O errors.
    public init(path: String, metadata: [(String, GGUFValue)], tensors: [TensorDecl], alignment: Int = 32) throws {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        self.path = path
        self.alignment = alignment
        self.tensors = tensors
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        position = 0
        var header = GGUFEncoder()
        header.u32(0x4655_4747)
        header.u32(3)
        header.u64(UInt64(tensors.count))
        header.u64(UInt64(metadata.count))
        for (k, v) in metadata {
            header.string(k)
            header.u32(GGUFEncoder.valueType(v).rawValue)
            header.value(v)
        }
        var offset = 0
        for t in tensors {
            header.string(t.name)
            header.u32(UInt32(t.dims.count))
            for d in t.dims { header.u64(UInt64(d)) }
            header.u32(t.type.rawValue)
            header.u64(UInt64(offset))
            offset += (t.byteCount + alignment - 1) / alignment * alignment
        }
        while header.bytes.count % alignment != 0 { header.bytes.append(0) }
        do {
            try header.bytes.withUnsafeBytes { try writeAll($0) }
        } catch {
            Glibc.close(fd)
            fd = -1
            throw error
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Starts the data of the next declared tensor, which must be named `name`.
    /// - Throws: `GGUFError.writeFailed` when `name` is not the next declared tensor.
    public func beginTensor(_ name: String) throws {
        guard !open, next < tensors.count, tensors[next].name == name else {
            throw GGUFError.writeFailed(path: path, reason: "tensor '\(name)' written out of declaration order")
        }
        open = true
        written = 0
    }

    /// Appends bytes to the current tensor's data.
    /// - Throws: `GGUFError.writeFailed` on I/O errors or when more bytes than the tensor holds are written.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard open, written + bytes.count <= tensors[next].byteCount else {
            throw GGUFError.writeFailed(path: path, reason: "too many bytes for tensor '\(open ? tensors[next].name : "?")'")
        }
        try writeAll(bytes)
        written += bytes.count
    }

    /// Finishes the current tensor (checks its size, pads to `alignment`).
    /// - Throws: `GGUFError.writeFailed` when fewer bytes than the tensor holds were written, or on I/O errors.
    public func endTensor() throws {
        guard open, written == tensors[next].byteCount else {
            throw GGUFError.writeFailed(path: path, reason: "tensor '\(tensors[min(next, tensors.count - 1)].name)': "
                                        + "\(written) of \(tensors[min(next, tensors.count - 1)].byteCount) bytes written")
        }
        let pad = (alignment - position % alignment) % alignment
        if pad > 0 { try [UInt8](repeating: 0, count: pad).withUnsafeBytes { try writeAll($0) } }
        open = false
        next += 1
    }

    /// Closes the file after every declared tensor was written.
    /// - Throws: `GGUFError.writeFailed` when tensors are missing or closing fails.
    public func finish() throws {
        guard !open, next == tensors.count else {
            throw GGUFError.writeFailed(path: path, reason: "\(tensors.count - next) declared tensors were not written")
        }
        let rc = Glibc.close(fd)
        fd = -1
        if rc != 0 { throw GGUFError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw GGUFError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
        position += bytes.count
    }
}

/// Little-endian encoder of GGUF header fields and metadata values.
struct GGUFEncoder {
    var bytes: [UInt8] = []
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
