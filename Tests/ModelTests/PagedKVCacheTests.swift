import Foundation
import Model
import XCTest

final class PagedKVCacheTests: XCTestCase {
    /// How many of the pages under [start, start + count) are resident (mincore): a property of these pages alone, not
    /// of the whole process, whose RSS other tests' threads can move while this one measures.
    private func residentPages(_ start: UnsafeMutableRawPointer, _ count: Int) -> (resident: Int, total: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = Int(bitPattern: start) / page * page
        let end = Int(bitPattern: start) + count
        let pages = (end - first + page - 1) / page
        var vec = [UInt8](repeating: 0, count: pages)
        let rc = mincore(UnsafeMutableRawPointer(bitPattern: first), end - first, &vec)
        precondition(rc == 0, "mincore failed")
        return (vec.filter { $0 & 1 != 0 }.count, pages)
    }

    /// The pool is committed when it is made: a server's RSS does not climb while traffic touches blocks for the
    /// first time (issue 16's soak compares RSS after 2,000 and 10,000 requests).
    func testPoolIsResidentAsSoonAsItIsMade() throws {
        let cache = PagedKVCache(numLayers: 4, numBlocks: 512, blockSize: 16, numKVHeads: 4, headDim: 64, type: .f16)
        XCTAssertEqual(cache.bytes, 4 * 2 * 512 * 16 * 4 * 64 * 2)  // 64 MiB
        let (resident, total) = residentPages(cache.keys(layer: 0), cache.bytes)
        XCTAssertEqual(resident, total, "pool pages were not committed at init")
        let k = cache.keys(layer: 3).assumingMemoryBound(to: UInt8.self)
        XCTAssertEqual(k[cache.slotBytes * 100], 0)
        withExtendedLifetime(cache) {}
    }
}
