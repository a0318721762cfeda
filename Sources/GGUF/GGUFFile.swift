import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors from reading a GGUF file. Every case names the file, so a message alone tells the user what to fix.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notGGUF(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, what: String)
    case corrupt(path: String, what: String)
    case unknownTensorType(path: String, tensor: String, type: UInt32)
    case missingKey(path: String, key: String)
    case wrongKeyType(path: String, key: String, expected: String)
    case missingTensor(path: String, name: String)
    /// Writing a GGUF file failed (`GGUFStreamWriter`): an I/O error or a tensor written out of order/size.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): return "\(p): cannot open: \(r)"
        case .notGGUF(let p): return "\(p): not a GGUF file (bad magic)"
        case .unsupportedVersion(let p, let v): return "\(p): unsupported GGUF version \(v) (2 and 3 are supported)"
        case .truncated(let p, let w): return "\(p): file is truncated (while reading \(w))"
        case .corrupt(let p, let w): return "\(p): corrupt GGUF: \(w)"
        case .unknownTensorType(let p, let t, let ty): return "\(p): tensor '\(t)' has unknown ggml type \(ty)"
        case .missingKey(let p, let k): return "\(p): missing metadata key '\(k)'"
        case .wrongKeyType(let p, let k, let e): return "\(p): metadata key '\(k)' is not \(e)"
        case .missingTensor(let p, let n): return "\(p): missing tensor '\(n)'"
        case .writeFailed(let p, let r): return "\(p): cannot write: \(r)"
        }
    }
}

/// Where one tensor lives in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's GGUF name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// ggml `ne`: element counts per dimension, **fastest-varying first** (a matrix is `[in, out]`).
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset of the data from the start of the file's data section.
    public let offset: Int
    /// Number of elements (product of `dimensions`).
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Bytes of data.
    public var byteCount: Int { type.byteCount(elements: elementCount) }
}

/// A GGUF file (v2 or v3) mapped read-only into memory.
///
/// The header, metadata and tensor infos are parsed eagerly; tensor data stays in the mapping and is
/// handed out as raw pointers that live as long as this object. Format: ggml `docs/gguf.md`.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata in file order of keys is not preserved; use `keys` for the file order.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let keys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Data-section alignment in bytes (`general.alignment`, default 32).
    public let alignment: Int
    /// Byte offset of the data section from the start of the file.
    public let dataOffset: Int
    /// Total file size in bytes.
    public let fileSize: Int

    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]

    /// Whether the data is the file mapping (true) or a private copy read into anonymous memory (`mmap: false`).
    public let isMapped: Bool
    /// The device and inode that were mapped (`settleInHugePages` drops page-cache pages only for that file).
    private let fileID: (dev: UInt64, ino: UInt64)

    /// Maps (or, with `mmap: false`, reads into anonymous memory: llama-server's `--no-mmap`) and parses the file at
    /// `path`.
    /// - Throws: `GGUFError` when the file cannot be opened or read, is not GGUF, is truncated or corrupt, or
    ///   declares a tensor type this build does not know.
    public init(path: String, mmap useMmap: Bool = true) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw GGUFError.cannotOpen(path: path, reason: "is a directory") }
        let size = Int(st.st_size)
        guard size >= 24 else {
            if size >= 4 {
                var magic: UInt32 = 0
                _ = pread(fd, &magic, 4, 0)
                if magic != 0x4655_4747 { throw GGUFError.notGGUF(path: path) }
            }
            throw GGUFError.truncated(path: path, what: "header")
        }
        let m: UnsafeMutableRawPointer
        if useMmap {
            guard let p = Self.mapAligned(size, fd: fd) else {
                throw GGUFError.cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
            }
            m = p
        } else {
            m = try Self.readAll(fd, size: size, path: path)
        }
        isMapped = useMmap
        fileID = (UInt64(st.st_dev), UInt64(st.st_ino))
        let ptr = UnsafeRawPointer(m)
        do {
            var r = Reader(base: ptr, size: size, path: path)
            let parsed = try Self.parse(&r)
            self.base = ptr
            self.fileSize = size
            self.version = parsed.version
            self.metadata = parsed.metadata
            self.keys = parsed.keys
            self.tensors = parsed.tensors
            self.alignment = parsed.alignment
            self.dataOffset = parsed.dataOffset
            var idx: [String: Int] = [:]
            for (i, t) in parsed.tensors.enumerated() { idx[t.name] = i }
            self.tensorIndex = idx
        } catch {
            munmap(m, size)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }

    /// Bytes of one transparent huge page (a PMD mapping on x86-64 and arm64 with 4 KiB base pages).
    public static let hugePageBytes = 2 << 20

    /// Maps `size` bytes at an address on a 2 MiB boundary, so that file offset 0 (and every 2 MiB of the file) falls
    /// on one and the kernel can map 2 MiB page-cache folios with one page-table entry each: the file read-only
    /// (`fd`), or anonymous read-write memory (`fd` nil). Advised `MADV_HUGEPAGE`: page faults then read the file
    /// ahead in 2 MiB folios, and anonymous memory is backed by huge pages. Streaming the weights through 4 KiB pages
    /// reads ~20 % less per second here (one TLB miss per 4 KiB; BENCHMARKS.md, 2026-12-07 07:25).
    /// - Returns: nil when `mmap` fails (`errno` says why).
    private static func mapAligned(_ size: Int, fd: Int32?) -> UnsafeMutableRawPointer? {
        let huge = hugePageBytes
        let span = size + huge
        guard let reserved = mmap(nil, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              reserved != MAP_FAILED else { return nil }
        let start = UInt(bitPattern: reserved)
        let aligned = (start + UInt(huge - 1)) & ~UInt(huge - 1)
        let at = UnsafeMutableRawPointer(bitPattern: aligned)!
        let mapped = fd.map { mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, $0, 0) }
            ?? mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        guard mapped == at else {
            let saved = errno
            munmap(reserved, span)
            errno = saved
            return nil
        }
        // Return the reservation around the mapping: `size` rounded up to pages stays mapped.
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        if aligned > start { munmap(reserved, Int(aligned - start)) }
        let end = aligned + (UInt(size) + page - 1) / page * page
        if start + UInt(span) > end { munmap(UnsafeMutableRawPointer(bitPattern: end), Int(start + UInt(span) - end)) }
        _ = madvise(at, size, MADV_HUGEPAGE)
        return at
    }

    /// The whole file read into anonymous memory (2 MiB-aligned, huge pages advised; read-only afterwards), with
    /// `pread` in 64 MiB pieces.
    private static func readAll(_ fd: Int32, size: Int, path: String) throws -> UnsafeMutableRawPointer {
        guard let p = mapAligned(size, fd: nil) else {
            throw GGUFError.cannotOpen(path: path, reason: "cannot allocate \(size) bytes to read it (--no-mmap): "
                                       + String(cString: strerror(errno)))
        }
        var done = 0
        while done < size {
            let n = pread(fd, p + done, min(64 << 20, size - done), off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = n == 0 ? "the file ended early" : String(cString: strerror(errno))
                munmap(p, size)
                throw GGUFError.cannotOpen(path: path, reason: "read failed at byte \(done): \(why)")
            }
            done += n
        }
        mprotect(p, size, PROT_READ)
        return p
    }

    /// Locks the file's bytes in RAM (`mlock`: llama-server's `--mlock`), faulting them in first, so the weights are
    /// never evicted or swapped; except the address ranges `excluded` (pages whose data was copied elsewhere at load
    /// and released from the mapping: locking them would read them back in and hold the weights twice).
    /// - Returns: nil on success, else the `mlock` error text (commonly `RLIMIT_MEMLOCK`: raise `ulimit -l`, or run
    ///   with CAP_IPC_LOCK).
    public func lockInMemory(excluding excluded: [(start: UInt, end: UInt)] = []) -> String? {
        var at = UInt(bitPattern: base)
        let end = at + UInt(fileSize)
        func lock(_ a: UInt, _ b: UInt) -> String? {
            guard b > a, mlock(UnsafeRawPointer(bitPattern: a), Int(b - a)) != 0 else { return nil }
            return String(cString: strerror(errno))
        }
        for r in excluded.sorted(by: { $0.start < $1.start }) where r.end > at && r.start < end {
            if let why = lock(at, max(at, r.start)) { return why }
            at = max(at, r.end)
        }
        return lock(at, end)
    }

    /// Asks the kernel to read the whole mapped file ahead (`posix_madvise(POSIX_MADV_WILLNEED)`, as llama.cpp does
    /// for its mappings), in the background: without it an MoE's experts are faulted in one readahead window at a
    /// time by the first requests that route to them. Nothing to do for a file read into memory (`mmap: false`).
    /// - Returns: nil on success, else the error text.
    @discardableResult
    public func adviseWillNeed() -> String? {
        guard isMapped else { return nil }
        let rc = posix_madvise(UnsafeMutableRawPointer(mutating: base), fileSize, POSIX_MADV_WILLNEED)
        return rc == 0 ? nil : String(cString: strerror(rc))
    }

    /// Reads one byte of every page of the file, so that every page is resident before it returns (the pages
    /// still on disk are read, with the kernel's readahead); a benchmark calls it so that its first test does not
    /// pay for disk reads. - Returns: the pages touched.
    @discardableResult
    public func touchAllPages() -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var sink: UInt8 = 0
        var pages = 0
        var offset = 0
        while offset < fileSize {
            sink ^= base.load(fromByteOffset: offset, as: UInt8.self)
            pages += 1
            offset += page
        }
        // Stored where the optimizer must assume it is read, so the loads stay.
        Self.pageSink = sink
        return pages
    }

    /// How many of the file's pages are resident now (`mincore` on the mapping), and of how many; nil when the file
    /// was read into memory (`mmap: false`) or `mincore` fails.
    public func residentPages() -> (resident: Int, total: Int)? {
        guard isMapped else { return nil }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let total = (fileSize + page - 1) / page
        var vec = [UInt8](repeating: 0, count: total)
        guard mincore(UnsafeMutableRawPointer(mutating: base), fileSize, &vec) == 0 else { return nil }
        return (vec.reduce(0) { $0 + Int($1 & 1) }, total)
    }

    /// Whether the kernel maps memory in transparent huge pages at all
    /// (`/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`; a kernel without the file has none).
    public static var transparentHugePagesEnabled: Bool {
        guard let s = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)
        else { return false }
        return s.contains("[always]") || s.contains("[madvise]")
    }

    /// Bytes of the file's memory that this process maps through 2 MiB pages now: the `FilePmdMapped` (file
    /// mapping) or `AnonHugePages` (`mmap: false`) lines of `/proc/self/smaps` for the mapping. Only pages that
    /// were accessed through this mapping count. - Returns: nil when smaps cannot be read.
    public func hugePageMappedBytes() -> Int? {
        guard let f = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(f) }
        let lo = UInt(bitPattern: base), hi = lo + UInt(fileSize)
        let field = isMapped ? "FilePmdMapped:" : "AnonHugePages:"
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        defer { free(line) }
        var inside = false
        var kib = 0
        while getline(&line, &cap, f) > 0, let l = line {
            let text = String(cString: l)
            if let dash = text.firstIndex(of: "-"), let start = UInt(text[..<dash], radix: 16) {
                inside = start >= lo && start < hi
            } else if inside, text.hasPrefix(field) {
                kib += Int(text.dropFirst(field.count).split(separator: " ").first ?? "") ?? 0
            }
        }
        return kib << 10
    }

    /// What `settleInHugePages` found and did.
    public struct HugePageReport: Sendable, Equatable {
        /// Bytes of the file, in whole 2 MiB pieces from offset 0, that were in the page cache when it looked.
        public let residentBytes: Int
        /// Of those, bytes that the kernel mapped through 2 MiB pages (2 MiB page-cache folios).
        public let hugeBytes: Int
        /// Whether the file's pages were dropped from the page cache, so that the next reads bring them back in
        /// 2 MiB folios (on file systems with large folios, such as ext4 and xfs on recent kernels).
        public let dropped: Bool
    }

    /// Makes the cached part of a mapped file come back in 2 MiB pages when it sits in the page cache in 4 KiB ones.
    ///
    /// A file that was written, or read in small random pieces, stays cached in 4 KiB folios, and reading the
    /// weights through them costs a TLB miss every 4 KiB (decode of the synthetic DeepSeek-V2-Lite: 17.8 t/s from
    /// 4 KiB folios, 20.6 t/s from 2 MiB ones, same file and build). This looks at every fully cached 2 MiB piece
    /// (`mincore`), maps each with one read, and counts what the kernel mapped as huge pages (`hugePageMappedBytes`).
    /// When at least `minimumSmallBytes` and a tenth of the cached bytes are in small pages, it unmaps the pages from
    /// this process (`MADV_DONTNEED`; the mapping stays valid) and drops the file's cached pages
    /// (`POSIX_FADV_DONTNEED`; pages other processes map are kept), so that the caller's readahead
    /// (`adviseWillNeed` or `touchAllPages`) reads the file again, once, into 2 MiB folios; the next start then
    /// finds them. Call it before the weights are used by other threads. Nothing is done for `mmap: false`,
    /// without transparent huge pages, or for files under four huge pages. On tmpfs (whose pages are the file) or
    /// when other processes map the pages, nothing is dropped and `dropped` is false.
    /// - Returns: what it saw and did; nil when it did not look (see above) or `mincore` / smaps failed.
    @discardableResult
    public func settleInHugePages(minimumSmallBytes: Int = 16 << 20) -> HugePageReport? {
        let huge = Self.hugePageBytes
        guard isMapped, fileSize >= 4 * huge, Self.transparentHugePagesEnabled else { return nil }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vec = [UInt8](repeating: 0, count: (fileSize + page - 1) / page)
        guard mincore(UnsafeMutableRawPointer(mutating: base), fileSize, &vec) == 0 else { return nil }
        let perChunk = huge / page
        var sink: UInt8 = 0
        var residentChunks = 0
        for c in 0..<(fileSize / huge) where !vec[(c * perChunk)..<((c + 1) * perChunk)].contains(where: { $0 & 1 == 0 }) {
            sink ^= base.load(fromByteOffset: c * huge, as: UInt8.self)
            residentChunks += 1
        }
        Self.pageSink = sink
        guard let hugeBytes = hugePageMappedBytes() else { return nil }
        let residentBytes = residentChunks * huge
        let small = max(0, residentBytes - hugeBytes)
        guard small >= minimumSmallBytes, small * 10 >= residentBytes else {
            return HugePageReport(residentBytes: residentBytes, hugeBytes: hugeBytes, dropped: false)
        }
        // The same file (not one renamed over it since it was mapped), or nothing is dropped.
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return HugePageReport(residentBytes: residentBytes, hugeBytes: hugeBytes, dropped: false) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_dev) == fileID.dev, UInt64(st.st_ino) == fileID.ino else {
            return HugePageReport(residentBytes: residentBytes, hugeBytes: hugeBytes, dropped: false)
        }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), fileSize, MADV_DONTNEED)
        guard posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0,
              mincore(UnsafeMutableRawPointer(mutating: base), fileSize, &vec) == 0 else {
            return HugePageReport(residentBytes: residentBytes, hugeBytes: hugeBytes, dropped: false)
        }
        // Dropped only if the pages went: tmpfs keeps them (they are the file), as do pages other processes map.
        let residentAfter = vec.reduce(0) { $0 + Int($1 & 1) }
        return HugePageReport(residentBytes: residentBytes, hugeBytes: hugeBytes,
                              dropped: residentAfter * page < residentBytes / 2)
    }

    /// Where touchAllPages leaves its XOR of the bytes it read (only so that the reads are not optimized away; a
    /// racy write of a value nobody reads is harmless).
    nonisolated(unsafe) private static var pageSink: UInt8 = 0

    /// The tensor info named `name`, or nil.
    public func tensorInfo(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// A pointer to the first byte of a tensor's data, valid while this object lives.
    public func data(for info: GGUFTensorInfo) -> UnsafeRawPointer { base + dataOffset + info.offset }

    /// The architecture (`general.architecture`).
    /// - Throws: `GGUFError.missingKey` when absent.
    public func architecture() throws -> String { try string("general.architecture") }

    // MARK: typed metadata access

    /// The string at `key`. - Throws: `missingKey`, `wrongKeyType`.
    public func string(_ key: String) throws -> String {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let s = v.stringValue else { throw GGUFError.wrongKeyType(path: path, key: key, expected: "a string") }
        return s
    }

    /// The integer at `key` (any integer type). - Throws: `missingKey`, `wrongKeyType`.
    public func int(_ key: String) throws -> Int {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let i = v.intValue else { throw GGUFError.wrongKeyType(path: path, key: key, expected: "an integer") }
        return i
    }

    /// The number at `key` (any numeric type). - Throws: `missingKey`, `wrongKeyType`.
    public func double(_ key: String) throws -> Double {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let d = v.doubleValue else { throw GGUFError.wrongKeyType(path: path, key: key, expected: "a number") }
        return d
    }

    /// The bool at `key`. - Throws: `missingKey`, `wrongKeyType`.
    public func bool(_ key: String) throws -> Bool {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let b = v.boolValue else { throw GGUFError.wrongKeyType(path: path, key: key, expected: "a bool") }
        return b
    }

    /// The array at `key`. - Throws: `missingKey`, `wrongKeyType`.
    public func array(_ key: String) throws -> [GGUFValue] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let a = v.arrayValue else { throw GGUFError.wrongKeyType(path: path, key: key, expected: "an array") }
        return a
    }

    /// Optional variants: nil when the key is absent. - Throws: `wrongKeyType` when present with another type.
    public func optionalString(_ key: String) throws -> String? { metadata[key] == nil ? nil : try string(key) }
    public func optionalInt(_ key: String) throws -> Int? { metadata[key] == nil ? nil : try int(key) }
    public func optionalDouble(_ key: String) throws -> Double? { metadata[key] == nil ? nil : try double(key) }
    public func optionalBool(_ key: String) throws -> Bool? { metadata[key] == nil ? nil : try bool(key) }
    public func optionalArray(_ key: String) throws -> [GGUFValue]? { metadata[key] == nil ? nil : try array(key) }

    // MARK: parsing

    private struct Parsed {
        var version: UInt32
        var metadata: [String: GGUFValue]
        var keys: [String]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
    }

    private static func parse(_ r: inout Reader) throws -> Parsed {
        let magic: UInt32 = try r.read("magic")
        guard magic == 0x4655_4747 else { throw GGUFError.notGGUF(path: r.path) }  // "GGUF" little-endian
        let version: UInt32 = try r.read("version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: r.path, version: version) }
        let tensorCount = try r.readCount("tensor count")
        let kvCount = try r.readCount("metadata count")
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(min(kvCount, 4096))
        for _ in 0..<kvCount {
            let key = try r.readString("metadata key")
            let rawType: UInt32 = try r.read("type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.corrupt(path: r.path, what: "metadata key '\(key)' has unknown value type \(rawType)")
            }
            metadata[key] = try r.readValue(type, key: key)
            keys.append(key)
        }
        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.intValue, v > 0, v & (v - 1) == 0 else {
                throw GGUFError.corrupt(path: r.path, what: "general.alignment is not a power of two")
            }
            alignment = v
        }
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(min(tensorCount, 4096))
        for _ in 0..<tensorCount {
            let name = try r.readString("tensor name")
            let nDims: UInt32 = try r.read("dimensions of '\(name)'")
            guard nDims >= 1, nDims <= 4 else {
                throw GGUFError.corrupt(path: r.path, what: "tensor '\(name)' has \(nDims) dimensions")
            }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<nDims {
                let d: UInt64 = try r.read("shape of '\(name)'")
                guard d >= 1, d < (1 << 40) else { throw GGUFError.corrupt(path: r.path, what: "tensor '\(name)' dimension \(d)") }
                // The element count is checked here, once, so `elementCount` and `byteCount` cannot overflow later.
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
                guard !overflow, product < (1 << 50) else {
                    throw GGUFError.corrupt(path: r.path, what: "tensor '\(name)' has more than 2^50 elements")
                }
                elements = product
                dims.append(Int(d))
            }
            let rawType: UInt32 = try r.read("type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownTensorType(path: r.path, tensor: name, type: rawType)
            }
            let offset: UInt64 = try r.read("offset of '\(name)'")
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError.corrupt(path: r.path, what: "tensor '\(name)' row of \(dims[0]) is not a whole number of \(type) blocks")
            }
            guard offset % UInt64(alignment) == 0, offset < (1 << 50) else {
                throw GGUFError.corrupt(path: r.path, what: "tensor '\(name)' offset \(offset) is not aligned to \(alignment)")
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: Int(offset)))
        }
        let dataOffset = (r.pos + alignment - 1) / alignment * alignment
        for t in tensors where dataOffset + t.offset + t.byteCount > r.size {
            throw GGUFError.truncated(path: r.path, what: "data of tensor '\(t.name)'")
        }
        // Tensor data may not overlap (a changed type id or shape makes a tensor run into the next one).
        let byOffset = tensors.sorted { $0.offset < $1.offset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError.corrupt(path: r.path, what: "data of tensor '\(a.name)' (\(a.type), \(a.dimensions)) runs into tensor '\(b.name)'")
        }
        return Parsed(version: version, metadata: metadata, keys: keys, tensors: tensors,
                      alignment: alignment, dataOffset: dataOffset)
    }
}

/// Bounds-checked little-endian reader over the mapping.
private struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var pos = 0

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    mutating func read<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws -> T {
        let n = MemoryLayout<T>.size
        guard pos + n <= size else { throw GGUFError.truncated(path: path, what: what()) }
        let v = base.loadUnaligned(fromByteOffset: pos, as: T.self)
        pos += n
        return T(littleEndian: v)
    }

    /// A u64 count that must fit what the remaining bytes could possibly hold.
    mutating func readCount(_ what: String) throws -> Int {
        let v: UInt64 = try read(what)
        guard v <= UInt64(size - pos) else { throw GGUFError.corrupt(path: path, what: "\(what) \(v) exceeds the file size") }
        return Int(v)
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let len: UInt64 = try read(what())
        guard len <= UInt64(size - pos) else { throw GGUFError.truncated(path: path, what: what()) }
        let n = Int(len)
        let s = String(decoding: UnsafeRawBufferPointer(start: base + pos, count: n), as: UTF8.self)
        pos += n
        return s
    }

    mutating func readValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(key))
        case .int8: return .int8(try read(key))
        case .uint16: return .uint16(try read(key))
        case .int16: return .int16(try read(key))
        case .uint32: return .uint32(try read(key))
        case .int32: return .int32(try read(key))
        case .uint64: return .uint64(try read(key))
        case .int64: return .int64(try read(key))
        case .float32: return .float32(Float(bitPattern: try read(key)))
        case .float64: return .float64(Double(bitPattern: try read(key)))
        case .bool:
            let b: UInt8 = try read(key)
            guard b <= 1 else { throw GGUFError.corrupt(path: path, what: "bool value \(b) for '\(key)'") }
            return .bool(b == 1)
        case .string: return .string(try readString(key))
        case .array:
            guard depth < 4 else { throw GGUFError.corrupt(path: path, what: "arrays nested too deep in '\(key)'") }
            let rawType: UInt32 = try read(key)
            guard let et = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.corrupt(path: path, what: "array '\(key)' has unknown element type \(rawType)")
            }
            let count = try readCount("length of array '\(key)'")
            var out: [GGUFValue] = []
            out.reserveCapacity(min(count, 1 << 16))   // the count is bounded by the file, not by memory
            for _ in 0..<count { out.append(try readValue(et, key: key, depth: depth + 1)) }
            return .array(et, out)
        }
    }
}
