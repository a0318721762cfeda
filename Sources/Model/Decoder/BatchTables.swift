// Per-step index of a `ForwardBatch`: each token's block table, the forward's preconditions, and the split into
// chunks of at most `maxBatchTokens` tokens.
import Compute

/// Per-step index from each token of a `ForwardBatch` to its sequence's block table. A class so the model's
/// `forward` can index without `mutating`; its arrays keep their capacity, so after the largest batch has been
/// seen a step allocates nothing.
final class BatchTables {
    /// `[numTokens]` offset of each token's block table in `tables`.
    private(set) var tableStart: [Int32] = []
    /// Concatenated block tables of the batch's sequences.
    private(set) var tables: [Int32] = []

    /// Indexes `batch`, checking the forward's preconditions (lengths, sequence tiling, block ids, positions
    /// covered by the block tables, logit rows).
    func index(_ batch: ForwardBatch, cache: PagedKVCache) {
        let n = batch.tokens.count
        precondition(batch.positions.count == n && batch.slotMapping.count == n, "tokens/positions/slotMapping differ in length")
        tableStart.removeAll(keepingCapacity: true)
        tables.removeAll(keepingCapacity: true)
        var covered = 0
        for s in batch.sequences {
            precondition(s.tokenStart == covered, "sequences must tile the batch in token order")
            let start = Int32(tables.count)
            for b in s.blockTable {
                precondition(b >= 0 && Int(b) < cache.numBlocks, "block id \(b) outside the KV cache")
                tables.append(b)
            }
            for t in s.tokenStart..<(s.tokenStart + s.tokenCount) {
                precondition(batch.positions[t] >= 0 && Int(batch.positions[t]) < s.blockTable.count * cache.blockSize,
                             "position \(batch.positions[t]) not covered by the block table")
                tableStart.append(start)
            }
            covered += s.tokenCount
        }
        precondition(covered == n, "sequences cover \(covered) of \(n) tokens")
        for r in batch.logitRows { precondition(r >= 0 && r < n, "logit row \(r) outside 0..<\(n)") }
    }

    /// Calls `body` for consecutive token ranges of at most `chunk` tokens covering the indexed `batch`.
    func withChunks(_ batch: ForwardBatch, chunk: Int, _ body: (Range<Int>, ChunkInputs) -> Void) {
        let n = batch.tokens.count
        if n == 0 { return }
        tables.withUnsafeBufferPointer { tablesPtr in
            tableStart.withUnsafeBufferPointer { startPtr in
                batch.tokens.withUnsafeBufferPointer { tok in
                    batch.positions.withUnsafeBufferPointer { pos in
                        batch.slotMapping.withUnsafeBufferPointer { slots in
                            let inputs = ChunkInputs(tokens: tok.baseAddress!, positions: pos.baseAddress!,
                                                     slots: slots.baseAddress!,
                                                     tables: tablesPtr.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                                     tableStart: startPtr.baseAddress!)
                            var c0 = 0
                            while c0 < n {
                                let c1 = min(n, c0 + max(1, chunk))
                                body(c0..<c1, inputs)
                                c0 = c1
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Raw pointers into one whole batch (valid only inside `BatchTables.withChunks`).
struct ChunkInputs {
    let tokens: UnsafePointer<Int32>      // [numTokens]
    let positions: UnsafePointer<Int32>   // [numTokens]
    let slots: UnsafePointer<Int32>       // [numTokens]
    let tables: UnsafePointer<Int32>      // concatenated block tables
    let tableStart: UnsafePointer<Int32>  // [numTokens]
}
