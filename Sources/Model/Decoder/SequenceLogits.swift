/// Logits of every position of one token sequence (the `sputnik logits` tool and reference comparisons).
public enum SequenceLogits {
    /// Runs `tokens` as one sequence through `model` in a fresh KV cache (one forward; the model chunks it by
    /// `ModelOptions.maxBatchTokens`) and returns logits `[tokens.count, vocabSize]`, row-major.
    /// Preconditions: `tokens` is non-empty and every id is in `0..<vocabSize`.
    public static func compute(model: LanguageModel, tokens: [Int32], blockSize: Int = 16) -> [Float] {
        let vocab = model.hyperparameters.vocabSize
        precondition(!tokens.isEmpty, "no tokens")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < vocab }, "token id outside 0..<\(vocab)")
        let numBlocks = (tokens.count + blockSize - 1) / blockSize
        let cache = model.makeKVCache(numBlocks: numBlocks, blockSize: blockSize)
        let n = tokens.count
        let slots = (0..<n).map { Int32($0) }                      // block table is the identity
        let batch = ForwardBatch(tokens: tokens, positions: slots, slotMapping: slots,
                                 sequences: [BatchSequence(tokenStart: 0, tokenCount: n,
                                                           blockTable: (0..<numBlocks).map { Int32($0) }, contextLength: n)],
                                 logitRows: Array(0..<n))
        var logits = [Float](repeating: 0, count: n * vocab)
        logits.withUnsafeMutableBufferPointer { model.forward(batch, cache: cache, logits: $0.baseAddress!) }
        return logits
    }

    /// The `k` largest entries of `row` as (index, value), largest first; ties go to the lower index.
    public static func top<C: RandomAccessCollection>(_ row: C, k: Int) -> [(id: Int, logit: Float)]
        where C.Element == Float, C.Index == Int {
        let base = row.startIndex
        let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
        return order.prefix(max(0, k)).map { (id: $0 - base, logit: row[$0]) }
    }
}
