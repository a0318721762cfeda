import Foundation

/// One alternative token at a position and its natural-log probability.
public struct TokenAlternative: Sendable, Equatable {
    public var tokenId: Int32
    /// ln p, ≤ 0 (−∞ for a banned token).
    public var logprob: Float

    public init(tokenId: Int32, logprob: Float) {
        self.tokenId = tokenId
        self.logprob = logprob
    }
}

/// The log-probability of a generated token and the most likely alternatives at its position.
public struct TokenLogprobs: Sendable, Equatable {
    /// The generated token.
    public var tokenId: Int32
    /// ln p of `tokenId`, ≤ 0.
    public var logprob: Float
    /// The `top` most likely tokens, descending by probability (ties to the lower id); `[]` when none were asked.
    public var top: [TokenAlternative]

    public init(tokenId: Int32, logprob: Float, top: [TokenAlternative] = []) {
        self.tokenId = tokenId
        self.logprob = logprob
        self.top = top
    }
}

/// Log-probabilities of the distribution a token is sampled from: softmax(l / T) over the whole vocabulary, where
/// `l` are the logits after `LogitsProcessor` (penalties, `logit_bias`, the `min_tokens` ban) and `T` the request's
/// temperature (1 when sampling is greedy). Top-k / top-p / min-p truncation is not applied, so the values are
/// those of the full tempered distribution and sum to one over the vocabulary. Computed in f32.
///
/// Owns a `[vocabSize]` index scratch, sized once.
public struct LogprobCalculator {
    private var indices: [Int32]

    /// - Parameter vocabSize: length of every logits row.
    public init(vocabSize: Int) {
        indices = [Int32](repeating: 0, count: vocabSize)
    }

    /// The temperature the log-probabilities use: the request's, or 1 for greedy requests.
    static func effectiveInverseTemperature(_ params: SamplingParams) -> Float {
        params.temperature < SamplingParams.greedyTemperature ? 1 : Float(1.0 / params.temperature)
    }

    /// ln-probabilities of every token into `out` (`[vocabSize]`), for tests and references.
    public static func logSoftmax(_ logits: UnsafeBufferPointer<Float>, invT: Float, into out: UnsafeMutableBufferPointer<Float>) {
        let (maxLogit, logZ) = normaliser(logits, invT: invT)
        for i in 0..<logits.count { out[i] = (logits[i] - maxLogit) * invT - logZ }
    }

    /// The largest logit and ln Σ exp((l − max) · invT).
    private static func normaliser(_ logits: UnsafeBufferPointer<Float>, invT: Float) -> (Float, Float) {
        var maxLogit = -Float.infinity
        for x in logits where x > maxLogit { maxLogit = x }
        var sum: Float = 0
        for x in logits { sum += expf((x - maxLogit) * invT) }
        return (maxLogit, logf(sum))
    }

    /// The log-probability of `token` and of the `top` most likely tokens (0…20, capped at the vocabulary).
    /// `logits`: `[vocabSize]`, already processed as the sampler saw them.
    public mutating func compute(_ logits: UnsafeBufferPointer<Float>, token: Int32, top: Int,
                                 params: SamplingParams) -> TokenLogprobs {
        precondition(logits.count == indices.count)
        let invT = Self.effectiveInverseTemperature(params)
        let (maxLogit, logZ) = Self.normaliser(logits, invT: invT)
        @inline(__always) func lp(_ i: Int) -> Float { (logits[i] - maxLogit) * invT - logZ }
        var result = TokenLogprobs(tokenId: token, logprob: lp(Int(token)))
        let k = min(top, logits.count)
        guard k > 0 else { return result }
        result.top.reserveCapacity(k)
        if k == logits.count {
            for i in 0..<k { indices[i] = Int32(i) }
            indices.withUnsafeMutableBufferPointer { idx in
                idx.sort { logits[Int($0)] > logits[Int($1)] || (logits[Int($0)] == logits[Int($1)] && $0 < $1) }
            }
        } else {
            for i in 0..<indices.count { indices[i] = Int32(i) }
            indices.withUnsafeMutableBufferPointer { idx in Sampler.partialTop(idx, k: k, logits: logits) }
        }
        for j in 0..<k { result.top.append(TokenAlternative(tokenId: indices[j], logprob: lp(Int(indices[j])))) }
        return result
    }
}
