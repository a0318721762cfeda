import GGUF

/// Element type of the KV cache.
public enum KVCacheType: String, Sendable {
    /// IEEE half precision (llama.cpp's default).
    case f16
    /// float32.
    case f32

    /// Bytes per element.
    public var elementSize: Int { self == .f16 ? 2 : 4 }
}

/// Run-time options of a loaded model.
public struct ModelOptions: Sendable {
    /// Compute threads (the calling thread included).
    public var threads: Int
    /// KV cache element type.
    public var kvCacheType: KVCacheType = .f16
    /// Most tokens one internal step processes; larger batches are processed in chunks of this size. Sizes the
    /// per-step scratch allocated at load.
    public var maxBatchTokens: Int = 512
    /// Computes every matmul in float32 on dequantized weights without activation quantization (slow; the
    /// fixtures' `dequant_f32` reference behaviour, for verification).
    public var floatReference: Bool = false
    /// Copy (and for Q4_1/Q8_0 repack) the quantized weights into huge-page memory at load (`WeightRepacker`,
    /// default true). False keeps them in the file mapping: no copy at load, but decode is slower (4 KiB pages,
    /// plain Q4_1/Q8_0 layout). llama-server's `--no-repack`.
    public var repackWeights: Bool = true

    /// Options with `threads` compute threads.
    public init(threads: Int, kvCacheType: KVCacheType = .f16, maxBatchTokens: Int = 512, floatReference: Bool = false,
                repackWeights: Bool = true) {
        self.threads = threads
        self.kvCacheType = kvCacheType
        self.maxBatchTokens = maxBatchTokens
        self.floatReference = floatReference
        self.repackWeights = repackWeights
    }
}

/// Shape-defining hyper-parameters read from GGUF metadata (`<arch>.*` keys).
public struct ModelHyperparameters: Sendable {
    /// `general.architecture`.
    public let architecture: String
    /// Rows of the token embedding / logits width.
    public let vocabSize: Int
    /// Trained context length in tokens (`<arch>.context_length`).
    public let contextLength: Int
    /// Decoder blocks (`<arch>.block_count`).
    public let numLayers: Int
    /// Residual stream width (`<arch>.embedding_length`).
    public let embeddingLength: Int
    /// Query heads (`<arch>.attention.head_count`).
    public let numHeads: Int
    /// Key/value heads (`<arch>.attention.head_count_kv`; < numHeads means grouped-query attention).
    public let numKVHeads: Int
    /// Width of one head (`<arch>.attention.key_length`, default embeddingLength / numHeads).
    public let headDim: Int
    /// Hidden width of the feed-forward block (`<arch>.feed_forward_length`).
    public let feedForwardLength: Int
    /// RMSNorm epsilon (`<arch>.attention.layer_norm_rms_epsilon`).
    public let rmsNormEpsilon: Float
    /// RoPE base frequency (`<arch>.rope.freq_base`, default 10000).
    public let ropeTheta: Double
    /// RoPE linear position scale (1 / `<arch>.rope.scaling.factor` for linear scaling, else 1).
    public let ropePositionScale: Double

    /// Hyper-parameters given explicitly (loaders read them from GGUF; tests and fakes build them directly).
    public init(architecture: String, vocabSize: Int, contextLength: Int, numLayers: Int, embeddingLength: Int,
                numHeads: Int, numKVHeads: Int, headDim: Int, feedForwardLength: Int, rmsNormEpsilon: Float,
                ropeTheta: Double, ropePositionScale: Double = 1) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.numLayers = numLayers
        self.embeddingLength = embeddingLength
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.feedForwardLength = feedForwardLength
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.ropePositionScale = ropePositionScale
    }
}

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
/// Arguments: name (`"embeddings"`, `"layer_output"`, `"output_norm"`), layer index (-1 when not per layer),
/// data, shape outermost first (`[numTokens, embeddingLength]`). Called on the forward's thread; the data is
/// valid only during the call.
public typealias ForwardTrace = (_ name: String, _ layer: Int, _ data: UnsafeBufferPointer<Float>, _ shape: [Int]) -> Void

/// A decoder-only language model over a paged KV cache.
public protocol LanguageModel: AnyObject {
    /// Shape-defining hyper-parameters.
    var hyperparameters: ModelHyperparameters { get }
    /// Optional hook receiving per-layer hidden states (costs a little time when set).
    var trace: ForwardTrace? { get set }
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
}

/// Errors of loading a model from GGUF.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable {
    /// `general.architecture` has no builder in `ModelLoader`.
    case unsupportedArchitecture(String)
    /// A tensor the architecture needs is absent.
    case missingTensor(String)
    /// A tensor has a different shape (GGUF ne order, fastest first) than the hyper-parameters imply.
    case tensorShapeMismatch(name: String, expected: [Int], actual: [Int])
    /// A tensor's element type has no kernel here.
    case unsupportedTensorType(name: String, type: String)
    /// A hyper-parameter is missing, inconsistent or names an unsupported variant.
    case invalidHyperparameter(key: String, reason: String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "unsupported model architecture '\(a)' (supported: \(ModelLoader.supportedArchitectures.joined(separator: ", ")))"
        case .missingTensor(let n): return "missing tensor '\(n)'"
        case .tensorShapeMismatch(let n, let e, let a): return "tensor '\(n)' has shape \(a), expected \(e)"
        case .unsupportedTensorType(let n, let t): return "tensor '\(n)' has unsupported type \(t)"
        case .invalidHyperparameter(let k, let r): return "hyper-parameter '\(k)': \(r)"
        }
    }
}
