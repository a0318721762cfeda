import Foundation
import XCTest
import GGUF
import GGUFWriting
import TestSupport

final class GGUFFileTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    private func write(_ bytes: [UInt8], _ name: String = "t.gguf") throws -> String {
        let p = tmp.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// The fixture's tensor table (from its manifest, made by gguf-py) equals what we parse.
    func testLlamaTinyMatchesManifest() throws {
        let dir = "dense/llama-tiny/"
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path(dir + "manifest.json")))) as! [String: Any]
        for variant in ["f32", "f16", "q8_0", "q4_k_m"] {
            let g = (manifest["gguf"] as! [String: Any])[variant] as! [String: Any]
            let f = try GGUFFile(path: Fixtures.path(dir + (g["file"] as! String)))
            XCTAssertEqual(f.version, 3)
            XCTAssertEqual(f.fileSize, g["bytes"] as? Int)
            XCTAssertEqual(try f.architecture(), "llama")
            XCTAssertEqual(try f.int("general.file_type"), g["file_type"] as? Int)
            let expected = g["tensors"] as! [[Any]]
            XCTAssertEqual(f.tensors.count, expected.count)
            for (t, e) in zip(f.tensors, expected) {
                XCTAssertEqual(t.name, e[0] as? String)
                XCTAssertEqual(t.dimensions, e[1] as? [Int])
                XCTAssertEqual(t.type.description, e[2] as? String, t.name)
            }
            XCTAssertEqual(try f.int("llama.block_count"), 2)
            XCTAssertEqual(try f.array("tokenizer.ggml.tokens").count, 512)
        }
    }

    func testRoundTripEveryValueType() throws {
        var w = GGUFWriter(alignment: 64)
        let values: [(String, GGUFValue)] = [
            ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(60000)), ("i16", .int16(-300)),
            ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))),
            ("f32", .float32(1.5)), ("f64", .float64(-2.25)), ("b", .bool(true)), ("s", .string("héllo")),
            ("arr", .array(.string, [.string("a"), .string("b")])), ("empty", .array(.int32, [])),
            ("nested", .array(.array, [.array(.uint8, [.uint8(1)])])),
            ("general.alignment", .uint32(64)),
        ]
        for (k, v) in values { w.add(k, v) }
        w.addTensor(name: "a", dims: [4, 2], floats: [1, 2, 3, 4, 5, 6, 7, 8])
        w.addTensor(name: "b", dims: [3], floats: [9, 10, 11])
        let f = try GGUFFile(path: try write(w.serialize()))
        for (k, v) in values { XCTAssertEqual(f.metadata[k], v, k) }
        XCTAssertEqual(f.keys, values.map(\.0))
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.dataOffset % 64, 0)
        let b = try XCTUnwrap(f.tensorInfo(named: "b"))
        XCTAssertEqual(b.offset % 64, 0)
        let p = f.data(for: b).assumingMemoryBound(to: Float.self)
        XCTAssertEqual([p[0], p[1], p[2]], [9, 10, 11])
        XCTAssertEqual(try f.int("u32"), 4_000_000_000)
        XCTAssertThrowsError(try f.string("u8")) { XCTAssertEqual($0 as? GGUFError, .wrongKeyType(path: f.path, key: "u8", expected: "a string")) }
        XCTAssertThrowsError(try f.int("nope")) { XCTAssertEqual($0 as? GGUFError, .missingKey(path: f.path, key: "nope")) }
        XCTAssertNil(try f.optionalInt("nope"))
    }

    /// touchAllPages makes every page of a file resident that was not (the bench's pre-read): a 4 MiB tensor
    /// written, synced and dropped from the page cache (`POSIX_FADV_DONTNEED`) is mostly not resident after the
    /// header is parsed, and wholly resident after the call. adviseWillNeed succeeds on a mapping.
    func testTouchAllPagesMakesTheFileResident() throws {
        var w = GGUFWriter(alignment: 64)
        w.add("general.architecture", .string("llama"))
        // 16 MiB: the header read through the mapping reads 2 MiB ahead (MADV_HUGEPAGE), not the whole file.
        w.addTensor(name: "big", dims: [4 << 20], floats: (0..<(4 << 20)).map { Float($0 % 251) })
        let path = try write(w.serialize(), "big.gguf")
        // Pages just written can sit in other CPUs' LRU batches, where DONTNEED does not reach them at once: a
        // few bounded attempts, each with the file unmapped (mapped pages are never dropped). The mapping that is
        // measured is the one that is touched: a second mapping's header read can start a readahead of its own
        // (CI once saw 651 of 1,025 pages resident on a reopen right after a measurement of fewer than half).
        var before = (resident: 0, total: 0)
        var f: GGUFFile?
        for attempt in 0..<5 {
            f = nil
            let fd = open(path, O_RDONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            XCTAssertEqual(fsync(fd), 0)
            XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0)
            close(fd)
            let mapped = try GGUFFile(path: path)
            before = try XCTUnwrap(mapped.residentPages())
            if before.resident < before.total / 2 { f = mapped; break }
            if attempt < 4 { usleep(200_000) }
        }
        try XCTSkipIf(f == nil, "this filesystem keeps the file resident (tmpfs?): \(before)")
        let file = try XCTUnwrap(f)
        XCTAssertEqual(file.touchAllPages(), before.total)
        let after = try XCTUnwrap(file.residentPages())
        XCTAssertEqual(after.resident, after.total)
        XCTAssertNil(file.adviseWillNeed())
        XCTAssertNil(try GGUFFile(path: path, mmap: false).residentPages())
    }

    /// Drops `path` from the page cache (after `fsync`), then, when `smallPages`, caches it again by reading it
    /// 4 KiB at a time with readahead off, which leaves it in 4 KiB folios.
    private func recache(_ path: String, smallPages: Bool) throws {
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(fsync(fd), 0)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0)
        guard smallPages else { return }
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0)
        var buf = [UInt8](repeating: 0, count: 4096)
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        for offset in stride(from: 0, to: Int(st.st_size), by: 4096) {
            XCTAssertEqual(pread(fd, &buf, 4096, off_t(offset)), min(4096, Int(st.st_size) - offset))
        }
    }

    /// A file cached in 4 KiB folios is dropped by `settleInHugePages` and comes back, through the mapping, in
    /// 2 MiB pages; one already in 2 MiB pages is left alone. Fails if the drop is skipped or the mapping is not on
    /// a 2 MiB boundary (the kernel then cannot map the 2 MiB folios as huge pages).
    func testSmallPageCacheIsReadAgainInHugePages() throws {
        try XCTSkipUnless(GGUFFile.transparentHugePagesEnabled, "transparent huge pages are off on this machine")
        var w = GGUFWriter(alignment: 64)
        w.add("general.architecture", .string("llama"))
        w.addTensor(name: "big", dims: [6 << 20], floats: (0..<(6 << 20)).map { Float($0 % 251) })
        let path = try write(w.serialize(), "huge.gguf")
        let huge = GGUFFile.hugePageBytes
        // Control: read through a fresh mapping, the file comes in 2 MiB pages if the file system can do that.
        try recache(path, smallPages: false)
        try {
            let fresh = try GGUFFile(path: path)
            XCTAssertEqual(UInt(bitPattern: fresh.data(for: fresh.tensors[0]) - fresh.dataOffset) % UInt(huge), 0)
            fresh.touchAllPages()
            let control = try XCTUnwrap(fresh.hugePageMappedBytes())
            try XCTSkipIf(control == 0, "this file system caches files in small folios only")
            XCTAssertFalse(try XCTUnwrap(fresh.settleInHugePages(minimumSmallBytes: 4 << 20)).dropped)
        }()
        // Unmapped again (mapped pages are never dropped), the file is cached in 4 KiB folios.
        try recache(path, smallPages: true)
        let f = try GGUFFile(path: path)
        let before = try XCTUnwrap(f.settleInHugePages(minimumSmallBytes: 4 << 20))
        XCTAssertEqual(before.residentBytes, f.fileSize / huge * huge)
        XCTAssertLessThan(before.hugeBytes, before.residentBytes / 2)
        XCTAssertTrue(before.dropped)
        f.touchAllPages()
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(f.hugePageMappedBytes()), f.fileSize / 2)
        let again = try XCTUnwrap(f.settleInHugePages(minimumSmallBytes: 4 << 20))
        XCTAssertFalse(again.dropped)
        XCTAssertGreaterThanOrEqual(again.hugeBytes, again.residentBytes / 2)
        // The data read through the mapping is the file's, before and after the drop.
        let p = f.data(for: f.tensors[0]).assumingMemoryBound(to: Float.self)
        XCTAssertEqual(p[5 << 20], Float((5 << 20) % 251))
        // --no-mmap: read into anonymous memory on a 2 MiB boundary, nothing to settle.
        let copy = try GGUFFile(path: path, mmap: false)
        XCTAssertEqual(UInt(bitPattern: copy.data(for: copy.tensors[0]) - copy.dataOffset) % UInt(huge), 0)
        XCTAssertNil(copy.settleInHugePages())
        XCTAssertEqual(copy.data(for: copy.tensors[0]).assumingMemoryBound(to: Float.self)[5 << 20], p[5 << 20])
    }

    /// On tmpfs the cached pages are the file: nothing can be dropped, and the report says so (it claimed a
    /// re-read on every start).
    func testTmpfsFileIsNotReportedAsDropped() throws {
        try XCTSkipUnless(GGUFFile.transparentHugePagesEnabled, "transparent huge pages are off on this machine")
        let shm = "/dev/shm"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: shm), "no /dev/shm")
        var w = GGUFWriter(alignment: 64)
        w.add("general.architecture", .string("llama"))
        w.addTensor(name: "big", dims: [6 << 20], floats: [Float](repeating: 1, count: 6 << 20))
        let path = shm + "/sputnik-gguf-test-\(UUID().uuidString).gguf"
        try Data(w.serialize()).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try GGUFFile(path: path)
        let r = try XCTUnwrap(f.settleInHugePages(minimumSmallBytes: 4 << 20))
        XCTAssertFalse(r.dropped, "\(r)")
        XCTAssertEqual(f.residentPages()?.resident, f.residentPages()?.total)
    }

    func testVersion2IsAccepted() throws {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        var bytes = w.serialize()
        bytes[4] = 2
        XCTAssertEqual(try GGUFFile(path: try write(bytes)).version, 2)
        bytes[4] = 7
        XCTAssertThrowsError(try GGUFFile(path: try write(bytes, "v7.gguf"))) {
            guard case .unsupportedVersion(_, 7) = $0 as! GGUFError else { return XCTFail("\($0)") }
        }
    }

    /// Every prefix of a valid file is rejected with an error (never a crash), and the message names the file.
    func testEveryTruncationIsAnError() throws {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        w.add("tokens", .array(.string, [.string("x"), .string("yz")]))
        w.addTensor(name: "w", dims: [8], floats: Array(repeating: 1, count: 8))
        let bytes = w.serialize()
        let dataEnd = bytes.count
        for n in stride(from: 0, to: dataEnd, by: 1) {
            let p = try write(Array(bytes[0..<n]), "trunc.gguf")
            XCTAssertThrowsError(try GGUFFile(path: p), "prefix \(n)") { e in
                XCTAssertTrue("\(e)".contains(p), "\(e)")
            }
        }
    }

    func testCorruptInputs() throws {
        XCTAssertThrowsError(try GGUFFile(path: try write(Array("NOTAGGUFFILE-at-all-xxxxxxxx".utf8)))) {
            XCTAssertEqual($0 as? GGUFError, .notGGUF(path: self.tmp.appendingPathComponent("t.gguf").path))
        }
        XCTAssertThrowsError(try GGUFFile(path: tmp.appendingPathComponent("missing.gguf").path)) {
            guard case .cannotOpen = $0 as! GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try GGUFFile(path: tmp.path)) {
            guard case .cannotOpen = $0 as! GGUFError else { return XCTFail("\($0)") }
        }
        // Unknown tensor type 99.
        var w = GGUFWriter()
        w.addTensor(name: "w", dims: [8], floats: Array(repeating: 1, count: 8))
        var bytes = w.serialize()
        let typePos = 24 + 8 + 1 + 4 + 8  // header, name length, "w", n_dims, ne[0]
        XCTAssertEqual(bytes[typePos], 0)
        bytes[typePos] = 99
        XCTAssertThrowsError(try GGUFFile(path: try write(bytes))) {
            XCTAssertEqual($0 as? GGUFError, .unknownTensorType(path: self.tmp.appendingPathComponent("t.gguf").path, tensor: "w", type: 99))
        }
        // Huge counts do not allocate or crash.
        var huge = GGUFWriter().serialize()
        huge.replaceSubrange(16..<24, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        XCTAssertThrowsError(try GGUFFile(path: try write(huge)))
        // Unknown metadata value type.
        var w2 = GGUFWriter()
        w2.add("k", .uint8(1))
        var b2 = w2.serialize()
        b2[24 + 8 + 1] = 77
        XCTAssertThrowsError(try GGUFFile(path: try write(b2))) {
            guard case .corrupt = $0 as! GGUFError else { return XCTFail("\($0)") }
        }
    }

    // Issue 21: dimension products from the file are checked once, at parse time. Four dimensions of 2^39 each
    // (every one under the per-dimension bound) made `elementCount` trap with an arithmetic overflow.
    func testDimensionProductOverflowIsCorruptNotATrap() throws {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        for dims in [[UInt64](repeating: 1 << 39, count: 4), [1 << 39, 1 << 39], [1 << 32, 1 << 20]] {
            var b = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(1)) + le(UInt64(0))
            b += le(UInt64(1)) + Array("w".utf8) + le(UInt32(dims.count))
            for d in dims { b += le(d) }
            b += le(UInt32(0)) + le(UInt64(0))
            b += [UInt8](repeating: 0, count: 64)
            XCTAssertThrowsError(try GGUFFile(path: try write(b, "dims.gguf")), "\(dims)") {
                guard case .corrupt = $0 as! GGUFError else { return XCTFail("\($0)") }
            }
        }
    }
}
