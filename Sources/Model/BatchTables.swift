import Compute

/// Per-step index from each token of a `ForwardBatch` to its sequence's block table, shared by every
/// architecture. Its arrays keep their capacity, so after the largest batch has
/// been seen a step allocates nothing.
struct BatchTables {
    /// `[numTokens]` offset of each token's block table in `tables`.
    private(set) var tableStart: [Int32] = []
    /// Concatenated block tables of the batch's sequences.
    private(set) var tables: [Int32] = []

    /// Indexes `batch` for a model with a per-head KV layout, checking also that the cache has the model's
    /// layer/head shape.
    mutating func build(_ batch: ForwardBatch, cache: PagedKVCache, hp: ModelHyperparameters) {
        precondition(cache.numLayers == hp.numLayers && cache.numKVHeads == hp.numKVHeads && cache.headDim == hp.headDim,
                     "KV cache was made for another model")
        index(batch, cache: cache)
    }

    /// Indexes `batch`, checking the forward's preconditions (lengths, sequence tiling, block ids, positions
    /// covered by the block tables, logit rows).
    mutating func index(_ batch: ForwardBatch, cache: PagedKVCache) {
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
}

/// Raw pointers into one batch for a chunk's forward (valid only inside `withChunks`).
struct ChunkInputs {
    let tokens: UnsafePointer<Int32>      // [numTokens]
    let positions: UnsafePointer<Int32>   // [numTokens]
    let slots: UnsafePointer<Int32>       // [numTokens]
    let tables: UnsafePointer<Int32>
    let tableStart: UnsafePointer<Int32>  // [numTokens]
}

extension BatchTables {
    /// Calls `body` for consecutive token ranges of at most `chunk` tokens covering the batch.
    func withChunks(_ batch: ForwardBatch, chunk: Int, _ body: (Range<Int>, ChunkInputs) -> Void) {
        let n = batch.tokens.count
        tables.withUnsafeBufferPointer { tablesPtr in
            tableStart.withUnsafeBufferPointer { startPtr in
                batch.tokens.withUnsafeBufferPointer { tok in
                    batch.positions.withUnsafeBufferPointer { pos in
                        batch.slotMapping.withUnsafeBufferPointer { slots in
                            let inputs = ChunkInputs(tokens: tok.baseAddress!, positions: pos.baseAddress!,
                                                     slots: slots.baseAddress!, tables: tablesPtr.baseAddress!,
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

/// Computes logits `[logitRows.count, vocab]` for the rows of `logitRows` inside `range`: each wanted row of the
/// residual stream `x [range.count, embd]` is normed with `norm` into `scratch` and multiplied by `head`; runs of
/// consecutive wanted rows share one matmul.
func headLogits(range: Range<Int>, logitRows: [Int], x: UnsafePointer<Float>, embd: Int, vocab: Int,
                scratch: UnsafeMutablePointer<Float>, norm: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                matmul: Matmul, head: WeightMatrix, logits: UnsafeMutablePointer<Float>) {
    let n = range.count, t0 = range.lowerBound
    var i = 0
    while i < logitRows.count {
        guard range.contains(logitRows[i]) else { i += 1; continue }
        var j = i
        while j < logitRows.count, range.contains(logitRows[j]), j - i < n { j += 1 }
        for r in i..<j { norm(x + (logitRows[r] - t0) * embd, scratch + (r - i) * embd) }   // [m, embd]
        matmul(scratch, numTokens: j - i, head, logits + i * vocab)                          // [m, vocab]
        i = j
    }
}
