import CKernels
import XCTest

/// The bandwidth probe's read loop (`ck_read_sum`) against its scalar twin and a known sum.
final class MemoryKernelTests: XCTestCase {
    func testReadSumMatchesReferenceAndKnownSum() {
        let words = 64 * 1024 + 16                                   // 512 KiB + 128 bytes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: words * 8, alignment: 64)
        defer { raw.deallocate() }
        let w = raw.bindMemory(to: UInt64.self, capacity: words)
        var expected: UInt64 = 0
        for i in 0..<words {
            w[i] = UInt64(i) &* 0x9E37_79B9_7F4A_7C15                 // wraps: exercises the 64-bit carries
            expected &+= w[i]
        }
        XCTAssertEqual(ck_read_sum_ref(raw, words * 8), expected)
        XCTAssertEqual(ck_read_sum_avx2(raw, words * 8), expected)
        XCTAssertEqual(ck_read_sum(raw, words * 8), expected)
        // Every 128-byte block counts: a sum over all but the last block differs by that block's words.
        var last: UInt64 = 0
        for i in (words - 16)..<words { last &+= w[i] }
        XCTAssertEqual(ck_read_sum(raw, (words - 16) * 8), expected &- last)
        XCTAssertEqual(ck_read_sum(raw, 0), 0)
    }
}
