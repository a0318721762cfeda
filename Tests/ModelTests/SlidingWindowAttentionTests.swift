import Compute
import Foundation
@testable import Model
import XCTest

/// PagedAttention with a sliding window against a direct softmax over the visible positions.
final class SlidingWindowAttentionTests: XCTestCase {
    func testWindowedAttentionMatchesDirectComputation() {
        let heads = 2, kvHeads = 1, d = 8, blockSize = 4, numBlocks = 8, ctx = 23
        let cache = PagedKVCache(numLayers: 1, numBlocks: numBlocks, blockSize: blockSize, numKVHeads: kvHeads,
                                 headDim: d, type: .f32)
        let attention = PagedAttention(numHeads: heads, numKVHeads: kvHeads, headDim: d, maxContext: 64, threads: 1)
        let pool = ThreadPool(threads: 1)
        var seed: UInt64 = 17
        func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1 }
        let table: [Int32] = [5, 2, 7, 0, 3, 6, 1, 4]                       // scrambled block order
        let k = (0..<(ctx * d)).map { _ in rnd() }, v = (0..<(ctx * d)).map { _ in rnd() }
        let slots = (0..<ctx).map { p in table[p / blockSize] * Int32(blockSize) + Int32(p % blockSize) }
        attention.store(layer: 0, cache: cache, k: k, v: v, slots: slots, count: ctx)
        let q = (0..<(heads * d)).map { _ in rnd() }
        for window in [0, 1, 5, 8, 30] {
            let position = ctx - 1
            var out = [Float](repeating: 0, count: heads * d)
            attention.run(layer: 0, cache: cache, q: q, positions: [Int32(position)], tables: table, tableStart: [0],
                          count: 1, out: &out, pool: pool, window: window)
            let first = window > 0 ? max(0, position - window + 1) : 0
            for h in 0..<heads {
                var s = (first...position).map { p in (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(k[p * d + $1]) } / Double(d).squareRoot() }
                let m = s.max()!
                s = s.map { exp($0 - m) }
                let z = s.reduce(0, +)
                for i in 0..<d {
                    var want = 0.0
                    for (j, p) in (first...position).enumerated() { want += s[j] / z * Double(v[p * d + i]) }
                    XCTAssertEqual(Double(out[h * d + i]), want, accuracy: 1e-5, "window \(window) head \(h) dim \(i)")
                }
            }
        }
    }
}
