// The `<arch>.*` keys every architecture shares, read once (llama.cpp src/llama-model.cpp `load_hparams`, the
// part before the per-architecture switch; key names from gguf-py `constants.py` `Keys.LLM` / `Keys.Attention`).
import GGUF

/// The common hyper-parameters of a GGUF file, and typed access to its other `<arch>.*` keys.
struct CommonKeys {
    let gguf: GGUFFile
    /// `general.architecture`, the prefix of every other key.
    let arch: String
    /// Rows of `token_embd.weight` (`<arch>.vocab_size`, else the tensor's outer dimension).
    let vocabSize: Int
    /// `<arch>.context_length` (required, as in llama.cpp).
    let contextLength: Int
    /// `<arch>.block_count`.
    let numLayers: Int
    /// `<arch>.embedding_length`.
    let embd: Int
    /// `<arch>.attention.head_count`.
    let numHeads: Int
    /// `<arch>.attention.head_count_kv`, default `numHeads`.
    let numKVHeads: Int
    /// `<arch>.attention.key_length`, default `embd / numHeads`.
    let headDim: Int
    /// `<arch>.attention.layer_norm_rms_epsilon` (required, as in llama.cpp).
    let eps: Float
    /// `<arch>.rope.freq_base`, default 10000.
    let ropeTheta: Double

    /// Reads the common keys.
    /// - Throws: `GGUFError` for a missing or mistyped required key; `ModelLoadError.missingTensor` without
    ///   `token_embd.weight`.
    init(_ gguf: GGUFFile) throws {
        self.gguf = gguf
        let arch = try gguf.architecture()
        self.arch = arch
        func key(_ k: String) -> String { "\(arch).\(k)" }
        numLayers = try gguf.int(key("block_count"))
        let embd = try gguf.int(key("embedding_length")), numHeads = try gguf.int(key("attention.head_count"))
        self.embd = embd
        self.numHeads = numHeads
        numKVHeads = try gguf.optionalInt(key("attention.head_count_kv")) ?? numHeads
        headDim = try gguf.optionalInt(key("attention.key_length")) ?? embd / max(numHeads, 1)
        contextLength = try gguf.int(key("context_length"))
        eps = Float(try gguf.double(key("attention.layer_norm_rms_epsilon")))
        ropeTheta = try gguf.optionalDouble(key("rope.freq_base")) ?? 10_000
        guard let embdInfo = gguf.tensorInfo(named: "token_embd.weight") else { throw ModelLoadError.missingTensor("token_embd.weight") }
        vocabSize = try gguf.optionalInt(key("vocab_size")) ?? embdInfo.dimensions.last ?? 0
    }

    /// `<arch>.<suffix>`.
    func key(_ suffix: String) -> String { "\(arch).\(suffix)" }
    /// `ModelLoadError.invalidHyperparameter` for `<arch>.<suffix>`.
    func invalid(_ suffix: String, _ reason: String) -> ModelLoadError { .invalidHyperparameter(key: key(suffix), reason: reason) }

    func int(_ suffix: String) throws -> Int { try gguf.int(key(suffix)) }
    func optionalInt(_ suffix: String) throws -> Int? { try gguf.optionalInt(key(suffix)) }
    func optionalDouble(_ suffix: String) throws -> Double? { try gguf.optionalDouble(key(suffix)) }
    func optionalString(_ suffix: String) throws -> String? { try gguf.optionalString(key(suffix)) }
    func optionalBool(_ suffix: String) throws -> Bool? { try gguf.optionalBool(key(suffix)) }

    /// Checks what grouped-query attention over full-width RoPE needs: query heads in whole groups per KV head, an
    /// even head width, values as wide as keys, RoPE over the whole head.
    /// - Throws: `ModelLoadError.invalidHyperparameter` naming the key of an unsupported variant.
    func requireGroupedQueryAttention() throws {
        guard numHeads > 0, numKVHeads > 0, numHeads % numKVHeads == 0, headDim % 2 == 0 else {
            throw invalid("attention.head_count_kv", "\(numHeads) heads not divisible into \(numKVHeads) KV heads of even width")
        }
        if let vl = try optionalInt("attention.value_length"), vl != headDim {
            throw invalid("attention.value_length", "\(vl) != key_length \(headDim)")
        }
        if let rd = try optionalInt("rope.dimension_count"), rd != headDim {
            throw invalid("rope.dimension_count", "partial RoPE (\(rd) of \(headDim)) is not supported")
        }
    }

    /// The RoPE position scale: 1 / `rope.scaling.factor` for linear scaling, 1 without scaling.
    /// - Throws: `ModelLoadError.invalidHyperparameter` for another scaling type (e.g. YaRN outside deepseek2).
    func linearRopePositionScale() throws -> Double {
        guard let scaling = try optionalString("rope.scaling.type"), scaling != "none" else { return 1 }
        guard scaling == "linear", let factor = try optionalDouble("rope.scaling.factor"), factor > 0 else {
            throw invalid("rope.scaling.type", "RoPE scaling '\(scaling)' is not supported by \(arch)")
        }
        return 1 / factor
    }

    /// The public hyper-parameters: the common keys with the architecture's feed-forward width, RoPE position
    /// scale and (MLA) KV row shape.
    func hyperparameters(feedForwardLength: Int, ropePositionScale: Double = 1, kvHeads: Int? = nil,
                         kvHeadDim: Int? = nil) -> ModelHyperparameters {
        ModelHyperparameters(architecture: arch, vocabSize: vocabSize, contextLength: contextLength, numLayers: numLayers,
                             embeddingLength: embd, numHeads: numHeads, numKVHeads: kvHeads ?? numKVHeads,
                             headDim: kvHeadDim ?? headDim, feedForwardLength: feedForwardLength, rmsNormEpsilon: eps,
                             ropeTheta: ropeTheta, ropePositionScale: ropePositionScale)
    }
}
