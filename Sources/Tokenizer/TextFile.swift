#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading text files exactly as their bytes say.
///
/// Foundation's `String(contentsOfFile:encoding:)` drops a leading byte-order mark (U+FEFF), so a file whose text
/// starts with one tokenizes differently from the same text sent over HTTP. Every text file the product reads (a
/// `tokenize --file` input, a `--chat-template`) goes through `TextFile.read`, which keeps every byte.
public enum TextFile {
    /// Why a file could not be read as text.
    public enum ReadError: Error, CustomStringConvertible, Equatable {
        /// `open` or `read` failed; `errno` as the C library reported it.
        case io(path: String, errno: Int32)
        /// The bytes are not well-formed UTF-8; `offset` is the byte offset of the first bad sequence.
        case invalidUTF8(path: String, offset: Int)

        /// One line naming the file and the problem.
        public var description: String {
            switch self {
            case .io(let p, let e): return "cannot read \(p): \(String(cString: strerror(e)))"
            case .invalidUTF8(let p, let o): return "\(p) is not valid UTF-8 (first bad byte at offset \(o))"
            }
        }
    }

    /// The file's bytes, unchanged. Throws `ReadError.io`.
    public static func bytes(_ path: String) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// The file decoded as UTF-8 with every byte kept (a leading U+FEFF stays in the text).
    /// Throws `ReadError.io`, or `ReadError.invalidUTF8` for malformed input (never replaced by U+FFFD silently).
    public static func read(_ path: String) throws(ReadError) -> String {
        let b = try bytes(path)
        if let s = String(validating: b, as: UTF8.self) { return s }
        throw .invalidUTF8(path: path, offset: firstInvalidOffset(b))
    }

    /// Byte offset of the first ill-formed UTF-8 sequence in `b` (`b.count` when there is none).
    static func firstInvalidOffset(_ b: [UInt8]) -> Int {
        var decoder = UTF8()
        var it = b.makeIterator()
        var offset = 0
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return b.count
            case .error: return offset
            }
        }
    }
}
