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
