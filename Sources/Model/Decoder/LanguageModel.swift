/// One engine step: all scheduled tokens of all sequences, flattened.
public struct ForwardBatch: Sendable {
    /// `[numTokens]` token ids.
    public var tokens: [Int32]
    /// `[numTokens]` position of each token in its sequence (0-based).
    public var positions: [Int32]
    /// `[numTokens]` KV slot = blockId * blockSize + offset where this token's K/V is written.
    public var slotMapping: [Int32]
    /// Per sequence, in token order; their token ranges tile `0..<numTokens`.
    public var sequences: [BatchSequence]
    /// Token indices (into `tokens`) whose logits are wanted, e.g. the last of each sequence.
    public var logitRows: [Int]
    /// Some sequence computes prompt positions this step. Every matmul then runs the arithmetic of many-token
    /// batches whatever the token count (`Matmul.gemmForAnyTokenCount`), so a prompt's logits and KV do not
    /// depend on how it was split into steps (prefix-cache hits, chunks) and a repeated request reproduces its
    /// output.
    public var computesPrompt = false

    /// A batch; see the properties for shapes.
    public init(tokens: [Int32], positions: [Int32], slotMapping: [Int32], sequences: [BatchSequence],
                logitRows: [Int]) {
        self.tokens = tokens
        self.positions = positions
        self.slotMapping = slotMapping
        self.sequences = sequences
        self.logitRows = logitRows
    }
}

/// One sequence's part of a `ForwardBatch`.
public struct BatchSequence: Sendable {
    /// Index of its first token in `ForwardBatch.tokens`.
    public var tokenStart: Int
    /// Number of its tokens in this step.
    public var tokenCount: Int
    /// Block ids of the sequence in position order: position p lives in slot blockTable[p / blockSize] * blockSize + p % blockSize.
    public var blockTable: [Int32]
    /// Tokens in the KV cache after this step, these included.
    public var contextLength: Int

    /// A sequence part; see the properties.
    public init(tokenStart: Int, tokenCount: Int, blockTable: [Int32], contextLength: Int) {
        self.tokenStart = tokenStart
        self.tokenCount = tokenCount
        self.blockTable = blockTable
        self.contextLength = contextLength
    }
}

/// Receives named intermediate tensors during a forward (for comparisons with a reference implementation).
/// Arguments: name (`"embeddings"`, `"layer_output"`, `"output_norm"`; MoE layers also `"moe_topk_ids"` (expert
/// ids as floats) and `"moe_topk_weights"`, `[numTokens, k]`), layer index (-1 when not per layer),
/// data, shape outermost first (`[numTokens, embeddingLength]`). Called on the forward's thread; the data is
/// valid only during the call.
public typealias ForwardTrace = (_ name: String, _ layer: Int, _ data: UnsafeBufferPointer<Float>, _ shape: [Int]) -> Void

/// A decoder-only language model over a paged KV cache.
public protocol LanguageModel: AnyObject {
    /// Shape-defining hyper-parameters.
    var hyperparameters: ModelHyperparameters { get }
    /// Optional hook receiving per-layer hidden states (costs a little time when set).
    var trace: ForwardTrace? { get set }
    /// Tokens routed to each expert of each layer since load (MoE models; nil for dense ones).
    var expertTokenCounts: ExpertTokenCounts? { get }
    /// Locks the weights the model reads in RAM (`--mlock`): the load-time copies and the parts of the file that
    /// are still read from the mapping, not the file pages a copy replaced. - Returns: nil on success, else the
    /// `mlock` error text (commonly `RLIMIT_MEMLOCK`).
    func lockWeightsInMemory() -> String?
    /// A KV cache `[numLayers][numBlocks, blockSize, numKVHeads, headDim]` (K and V) of the options' type.
    func makeKVCache(numBlocks: Int, blockSize: Int) -> PagedKVCache
    /// Runs one forward; writes logits `[batch.logitRows.count, vocabSize]` into `logits`, row i for token
    /// `batch.logitRows[i]`. K/V of every token are written to `cache` at `batch.slotMapping`; a token at
    /// position p attends to positions 0...p of its sequence through its block table. Batches larger than
    /// `ModelOptions.maxBatchTokens` run in chunks. Not re-entrant: one thread (the engine's) calls it; it
    /// allocates nothing after the first call with a given cache. Broken invariants (lengths, sequence tiling,
    /// block ids, positions beyond the block table, logit rows) are preconditions.
    func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>)
}

extension LanguageModel {
    /// Default for models without tracing (e.g. test doubles): always nil, setting it is ignored.
    public var trace: ForwardTrace? {
        get { nil }
        set {}
    }

    /// Default for models without experts: nil.
    public var expertTokenCounts: ExpertTokenCounts? { nil }
}
