import Compute
import Foundation
@testable import Model
import XCTest

/// PagedAttention's work items (issue 20 item 3, issue 18 item 3): a prefill chunk runs four consecutive tokens of a
/// sequence per item, a batched decode step a KV head's query heads per item, a single sequence one head per item.
/// Every way must give each token exactly (bit for bit) what it gets run alone, so greedy outputs do not depend on
/// how a step is batched.
final class PagedAttentionBatchingTests: XCTestCase {
    private func rnd(_ seed: inout UInt64) -> Float {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
    }

    func testBatchedItemsMatchTokensRunAlone() {
        for (heads, kvHeads) in [(6, 2), (4, 4), (3, 1)] {
            for type in [KVCacheType.f16, .f32] {
                let d = 16, blockSize = 4, numBlocks = 24
                let cache = PagedKVCache(numLayers: 1, numBlocks: numBlocks, blockSize: blockSize, numKVHeads: kvHeads,
                                         headDim: d, type: type)
                let attention = PagedAttention(numHeads: heads, numKVHeads: kvHeads, headDim: d, maxContext: 64, threads: 2)
                let pool = ThreadPool(threads: 2)
                var seed: UInt64 = 29
                // Sequence A: blocks 5, 2, 7, 0, 9, 11 (positions 0..<23); sequence B: blocks 3, 8, 1 (positions 0..<10).
                let tables: [Int32] = [5, 2, 7, 0, 9, 11, 3, 8, 1]
                let starts: [Int32] = [0, 6]
                let lengths = [23, 10]
                for (sq, len) in lengths.enumerated() {
                    let kv = kvHeads * d
                    let k = (0..<(len * kv)).map { _ in rnd(&seed) }, v = (0..<(len * kv)).map { _ in rnd(&seed) }
                    let slots = (0..<len).map { p in tables[Int(starts[sq]) + p / blockSize] * Int32(blockSize) + Int32(p % blockSize) }
                    attention.store(layer: 0, cache: cache, k: k, v: v, slots: slots, count: len)
                }
                // A step: A's positions 3..<20 (a prefill chunk), then B's 6..<10, then A's 22 (a decode token).
                var positions: [Int32] = [], tableStart: [Int32] = []
                for p in 3..<20 { positions.append(Int32(p)); tableStart.append(starts[0]) }
                for p in 6..<10 { positions.append(Int32(p)); tableStart.append(starts[1]) }
                positions.append(22); tableStart.append(starts[0])
                let count = positions.count, width = heads * d
                let q = (0..<(count * width)).map { _ in rnd(&seed) }
                var batched = [Float](repeating: .nan, count: count * width)
                attention.run(layer: 0, cache: cache, q: q, positions: positions, tables: tables, tableStart: tableStart,
                              count: count, out: &batched, pool: pool)
                for t in 0..<count {
                    var alone = [Float](repeating: .nan, count: width)
                    q.withUnsafeBufferPointer { qp in
                        attention.run(layer: 0, cache: cache, q: qp.baseAddress! + t * width, positions: [positions[t]],
                                      tables: tables, tableStart: [tableStart[t]], count: 1, out: &alone, pool: pool)
                    }
                    XCTAssertEqual(Array(batched[(t * width)..<((t + 1) * width)]), alone,
                                   "heads \(heads)/\(kvHeads) \(type) token \(t) at position \(positions[t])")
                }
                // And a decode-shaped step (one token per sequence, enough items to group the KV heads' query heads).
                let decodePositions: [Int32] = [22, 9, 21, 8, 20, 7, 19, 6]
                let decodeStarts: [Int32] = [0, 6, 0, 6, 0, 6, 0, 6]
                var grouped = [Float](repeating: .nan, count: 8 * width)
                attention.run(layer: 0, cache: cache, q: q, positions: decodePositions, tables: tables,
                              tableStart: decodeStarts, count: 8, out: &grouped, pool: pool)
                for t in 0..<8 {
                    var alone = [Float](repeating: .nan, count: width)
                    q.withUnsafeBufferPointer { qp in
                        attention.run(layer: 0, cache: cache, q: qp.baseAddress! + t * width, positions: [decodePositions[t]],
                                      tables: tables, tableStart: [decodeStarts[t]], count: 1, out: &alone, pool: pool)
                    }
                    XCTAssertEqual(Array(grouped[(t * width)..<((t + 1) * width)]), alone, "decode token \(t)")
                }
            }
        }
    }
}
