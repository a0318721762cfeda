import Foundation
import GGUF
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
        let header = GGUFEncoder.header(metadata: metadata, tensors: tensors.map { ($0.name, $0.dims, $0.type, $0.byteCount) },
                                        alignment: alignment)
        do {
            try header.withUnsafeBytes { try writeAll($0) }
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
