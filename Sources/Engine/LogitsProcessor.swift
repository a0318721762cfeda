/// Per-request adjustments of the logits before sampling: OpenAI's presence and frequency penalties, the
/// multiplicative repetition penalty, `logit_bias` and `min_tokens`. All neutral: nothing is touched, so the
/// sampled token is exactly what the raw logits give.
public struct LogitsProcessing: Sendable, Equatable {
    /// OpenAI `presence_penalty` in [-2, 2]: subtracted once from every token generated at least once.
    public var presencePenalty: Float = 0
    /// OpenAI `frequency_penalty` in [-2, 2]: subtracted once per earlier occurrence in the generated tokens.
    public var frequencyPenalty: Float = 0
    /// `repetition_penalty` (> 0, 1 = off; llama.cpp / vLLM / HF CTRL semantics): every token of the prompt or the
    /// output has a positive logit divided by it and a negative logit multiplied by it.
    public var repetitionPenalty: Float = 1
    /// `logit_bias` token id → bias added to its logit, in [-100, 100]; a bias of -100 bans the token (its logit
    /// becomes -∞, so it is never sampled whatever its logit was). Ids must be in `0..<vocabSize`.
    public var logitBias: [Int32: Float] = [:]
    /// `min_tokens`: end-of-generation and stop tokens are banned, and stop strings do not match, until this many
    /// tokens have been generated.
    public var minTokens: Int = 0

    /// Neutral values: no adjustment.
    public init(presencePenalty: Float = 0, frequencyPenalty: Float = 0, repetitionPenalty: Float = 1,
                logitBias: [Int32: Float] = [:], minTokens: Int = 0) {
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repetitionPenalty = repetitionPenalty
        self.logitBias = logitBias
        self.minTokens = minTokens
    }

    /// Whether any penalty needs the per-request token counts.
    var hasPenalties: Bool { presencePenalty != 0 || frequencyPenalty != 0 || repetitionPenalty != 1 }
}

/// The state of one request's `LogitsProcessing`: token counts kept incrementally (one `accept` per generated
/// token), in buffers sized once when the request is admitted, so `apply` allocates nothing.
///
/// Order within `apply`, as vLLM v1's sampler: `logit_bias`, then the `min_tokens` ban, then the repetition penalty,
/// then the frequency and presence penalties:
///
///     l[j] += bias[j]                                  (bias -100: l[j] = -∞)
///     l[j] = -∞                                        for j in banned ids while generated < min_tokens
///     l[j] = l[j] > 0 ? l[j] / r : l[j] * r            for j in prompt ∪ output            (r = repetition_penalty)
///     l[j] -= c[j] · frequency_penalty + (c[j] > 0) · presence_penalty   (c[j] = count of j in the output)
public struct LogitsProcessor: Sendable {
    public let params: LogitsProcessing
    /// `[vocabSize]` occurrences of each id in the generated tokens; empty when no penalty is set.
    private var outputCounts: [Int32]
    /// `[vocabSize]` whether the id is in `penalised`; empty when no penalty is set.
    private var listed: [Bool]
    /// Distinct ids the penalties touch, in first-seen order: prompt ∪ output with a repetition penalty, else the
    /// output only. Capacity reserved for every token the request can hold, so appending never reallocates.
    private var penalised: [Int32]
    /// `logitBias` as two parallel arrays (`[numBiased]`), in ascending id order.
    private let biasIds: [Int32]
    private let biasValues: [Float]
    /// Ids banned while fewer than `minTokens` tokens are generated (end-of-generation and stop tokens).
    private let minTokensBanned: [Int32]
    /// Tokens accepted so far.
    public private(set) var numGenerated = 0

    /// - Parameters:
    ///   - params: the request's settings.
    ///   - vocabSize: length of a logits row.
    ///   - promptTokens: `[numPromptTokens]`, counted for the repetition penalty.
    ///   - maxNewTokens: most tokens the request can generate (sizes the id list).
    ///   - bannedBeforeMinTokens: end-of-generation and stop token ids (out-of-range ids are ignored).
    public init(params: LogitsProcessing, vocabSize: Int, promptTokens: [Int32], maxNewTokens: Int,
                bannedBeforeMinTokens: [Int32]) {
        self.params = params
        let sortedBias = params.logitBias.sorted { $0.key < $1.key }
        biasIds = sortedBias.map(\.key)
        biasValues = sortedBias.map(\.value)
        minTokensBanned = params.minTokens > 0 ? bannedBeforeMinTokens.filter { $0 >= 0 && Int($0) < vocabSize } : []
        guard params.hasPenalties else {
            outputCounts = []
            listed = []
            penalised = []
            return
        }
        outputCounts = [Int32](repeating: 0, count: vocabSize)
        listed = [Bool](repeating: false, count: vocabSize)
        penalised = []
        penalised.reserveCapacity(min(vocabSize, promptTokens.count + max(0, maxNewTokens)))
        if params.repetitionPenalty != 1 {
            for t in promptTokens where t >= 0 && Int(t) < vocabSize && !listed[Int(t)] {
                listed[Int(t)] = true
                penalised.append(t)
            }
        }
    }

    /// Counts a generated token (call once per sampled token, before the next `apply`).
    public mutating func accept(_ token: Int32) {
        numGenerated += 1
        guard !outputCounts.isEmpty, token >= 0, Int(token) < outputCounts.count else { return }
        let i = Int(token)
        outputCounts[i] += 1
        if !listed[i] {
            listed[i] = true
            penalised.append(token)
        }
    }

    /// Whether `apply` changes anything at the current step.
    public var isNeutral: Bool {
        outputCounts.isEmpty && biasIds.isEmpty && (minTokensBanned.isEmpty || numGenerated >= params.minTokens)
    }

    /// Adjusts one logits row in place. `logits`: `[vocabSize]`.
    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        for k in 0..<biasIds.count {
            let i = Int(biasIds[k])
            logits[i] = biasValues[k] <= -100 ? -.infinity : logits[i] + biasValues[k]
        }
        if numGenerated < params.minTokens {
            for t in minTokensBanned { logits[Int(t)] = -.infinity }
        }
        guard !outputCounts.isEmpty else { return }
        let r = params.repetitionPenalty, freq = params.frequencyPenalty, presence = params.presencePenalty
        for t in penalised {
            let i = Int(t)
            var x = logits[i]
            if r != 1 { x = x > 0 ? x / r : x * r }
            let c = outputCounts[i]
            if c > 0 { x -= Float(c) * freq + presence }
            logits[i] = x
        }
    }
}
