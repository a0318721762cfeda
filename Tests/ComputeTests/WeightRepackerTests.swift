import CKernels
import Compute
import Foundation
import XCTest

/// The load-time weight copies: huge-page memory, the copy/repack per type, and the release of the source pages
/// of a file mapping (which must stay readable).
final class WeightRepackerTests: XCTestCase {
    func testHugePageMemoryIsAlignedZeroedAndWritable() throws {
        let bytes = 2 * HugePageMemory.pageBytes
        let p = try XCTUnwrap(HugePageMemory.allocate(bytes))
        defer { HugePageMemory.free(p, bytes) }
        XCTAssertEqual(UInt(bitPattern: p) % UInt(HugePageMemory.pageBytes), 0, "starts on a 2 MiB boundary")
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in stride(from: 0, to: bytes, by: 4093) { XCTAssertEqual(b[i], 0) }
        b[bytes - 1] = 7
        XCTAssertEqual(b[bytes - 1], 7)
        XCTAssertEqual(HugePageMemory.roundUp(1), HugePageMemory.pageBytes)
        XCTAssertEqual(HugePageMemory.roundUp(HugePageMemory.pageBytes + 1), 2 * HugePageMemory.pageBytes)
    }

    /// A q4_K matrix (copied as is), a q4_1 matrix (repacked) and an f32 matrix (left in place) in a read-only
    /// file mapping: the products through the copies equal those through the file, and after the repacker released
    /// the source pages the mapping still reads the original bytes (they fault back in from the page cache).
    func testCopiesMatchTheFileAndTheFileStaysReadable() throws {
        var rng = TestRNG(state: 41)
        let rows = 16, n = 512, cols = 3
        // Whole K-quant blocks with valid fp16 scales: random bytes, then small d/dmin in each 144-byte block.
        var q4K = (0..<(rows * WeightType.q4_K.rowBytes(n))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for blk in stride(from: 0, to: q4K.count, by: 144) {
            for off in [0, 2] {
                let h = Float16(rng.float(0.01)).bitPattern
                q4K[blk + off] = UInt8(h & 0xff)
                q4K[blk + off + 1] = UInt8(h >> 8)
            }
        }
        var q41 = [UInt8](repeating: 0, count: rows * WeightType.q4_1.rowBytes(n))
        for r in 0..<rows {
            let x = rng.floats(n)
            q41.withUnsafeMutableBytes { raw in
                // q4_1 blocks from a float row: 32 values → d, m and nibbles (a valid block, not random bytes).
                for b in 0..<(n / 32) {
                    let blk = raw.baseAddress! + r * WeightType.q4_1.rowBytes(n) + b * 20
                    let v = x[(b * 32)..<(b * 32 + 32)]
                    let lo = v.min()!, hi = v.max()!
                    let d = (hi - lo) / 15
                    blk.storeBytes(of: Float16(d).bitPattern, as: UInt16.self)
                    blk.storeBytes(of: Float16(lo).bitPattern, toByteOffset: 2, as: UInt16.self)
                    for j in 0..<16 {
                        let a = UInt8(max(0, min(15, ((v[b * 32 + j] - lo) / d).rounded())))
                        let c = UInt8(max(0, min(15, ((v[b * 32 + j + 16] - lo) / d).rounded())))
                        blk.storeBytes(of: a | c << 4, toByteOffset: 4 + j, as: UInt8.self)
                    }
                }
            }
        }
        let f32 = rng.floats(rows * n).withUnsafeBytes { Array($0) }
        // One file, each matrix page-aligned so whole pages of it get released.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (page - b.count % page) % page) }
        let file = padded(q4K) + padded(q41) + padded(f32)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("repack-\(getpid()).bin")
        try Data(file).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let fd = open(url.path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let map = try XCTUnwrap(mmap(nil, file.count, PROT_READ, MAP_PRIVATE, fd, 0))
        XCTAssertNotEqual(map, MAP_FAILED)
        defer { munmap(map, file.count) }
        let base = UnsafeRawPointer(map)
        let offsets = [0, padded(q4K).count, padded(q4K).count + padded(q41).count]
        let types: [WeightType] = [.q4_K, .q4_1, .f32]
        let repacker = WeightRepacker()
        let pool = ThreadPool(threads: 2, spinIterations: 100)
        let matmul = Matmul(pool: pool, maxTokens: cols, maxInDim: n)
        let x = rng.floats(cols * n)
        for (t, off) in zip(types, offsets) {
            let w = WeightMatrix(type: t, data: base + off, rows: rows, cols: n)
            var before = [Float](repeating: .nan, count: cols * rows), after = before
            matmul(x, numTokens: cols, w, &before)
            let r = repacker.repack(w)
            switch t {
            case .q4_K:
                XCTAssertNotEqual(r.data, w.data, "copied")
                XCTAssertEqual(UInt(bitPattern: r.data) % 64, 0)
                XCTAssertEqual(memcmp(r.data, w.data, rows * w.rowBytes), 0)
            case .q4_1:
                XCTAssertNotNil(r.packed, "repacked")
            default:
                XCTAssertEqual(r.data, w.data, "f32 stays in the mapping")
                XCTAssertNil(r.packed)
            }
            matmul(x, numTokens: cols, r, &after)
            if t == .q4_1 {   // the interleaved kernel sums in another order
                for i in 0..<before.count { XCTAssertEqual(after[i], before[i], accuracy: 1e-4 + abs(before[i]) * 1e-5, "\(t) \(i)") }
            } else {
                XCTAssertEqual(before, after, "\(t): the same products through the copy")
            }
            // The released source pages read the original bytes again.
            let expected = t == .q4_K ? q4K : t == .q4_1 ? q41 : f32
            XCTAssertEqual(memcmp(base + off, expected, expected.count), 0, "\(t): the file mapping still reads the file")
        }
        XCTAssertEqual(repacker.bytes, rows * (WeightType.q4_K.rowBytes(n) + WeightType.q4_1.rowBytes(n)))
    }
}
