import Foundation
import Model
import XCTest

final class PagedKVCacheTests: XCTestCase {
    /// Resident set size of this process in bytes, from /proc/self/statm (pages × page size).
    private func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let fields = statm.split(separator: " ")
        return Int(fields[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The pool is committed when it is made: a server's RSS does not climb while traffic touches blocks for the
    /// first time (issue 16's soak compares RSS after 2,000 and 10,000 requests).
    func testPoolIsResidentAsSoonAsItIsMade() throws {
        let before = try residentBytes()
        let cache = PagedKVCache(numLayers: 4, numBlocks: 512, blockSize: 16, numKVHeads: 4, headDim: 64, type: .f16)
        XCTAssertEqual(cache.bytes, 4 * 2 * 512 * 16 * 4 * 64 * 2)  // 64 MiB
        let after = try residentBytes()
        XCTAssertGreaterThanOrEqual(after - before, cache.bytes * 9 / 10, "pool pages were not committed at init")
        let k = cache.keys(layer: 3).assumingMemoryBound(to: UInt8.self)
        XCTAssertEqual(k[cache.slotBytes * 100], 0)
        withExtendedLifetime(cache) {}
    }
}
