import Compute
import Foundation

/// Per-request sampling settings (OpenAI names; `top_k` and `min_p` as llama-server and vLLM take them).
public struct SamplingParams: Sendable, Equatable {
    /// 0 (or anything below `greedyTemperature`) means greedy (argmax, ties to the lowest id).
    public var temperature: Double = 1.0
    /// Nucleus mass in (0, 1]; 1 disables.
    public var topP: Double = 1.0
    /// Keep the k most likely tokens; 0, or k of at least the vocabulary size, disables.
    public var topK: Int = 0
    /// Drop tokens whose probability is below `minP` × the top probability; 0 disables.
    public var minP: Double = 0.0
    /// Seed of the request's own random stream; nil draws one from the system generator.
    public var seed: UInt64?

    public init(temperature: Double = 1.0, topP: Double = 1.0, topK: Int = 0, minP: Double = 0.0, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.seed = seed
    }

    /// Temperatures below this are greedy: `1 / temperature` would overflow `Float` (a temperature of 1e-300
    /// made every draw token 0) long before a smaller temperature changes which token wins.
    public static let greedyTemperature = 1e-5

    /// Whether this samples deterministically by argmax (temperature below `greedyTemperature`, or top-k 1).
    public var isGreedy: Bool { temperature < Self.greedyTemperature || topK == 1 }
}

/// A small, fast, seedable generator (xoshiro256**), so `seed` reproduces a request's samples whatever else
/// runs in the batch.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// Chooses the next token from one row of logits. Owns its scratch, sized once for the vocabulary, so sampling
/// allocates nothing per token.
///
/// Order of filters as llama.cpp's default chain: top-k → top-p → min-p → temperature → draw.
/// (Temperature applied last changes nothing about which tokens the truncation keeps for top-k and min-p; for
/// top-p llama.cpp also applies it after, and so does this.)
public struct Sampler {
    private var indices: [Int32]
    private var probs: [Float]
    /// The softmax over the whole vocabulary in token order `[vocabSize]` (full-vocabulary draws, top-p, min-p).
    private var fullProbs: [Float]

    /// - Parameter vocabSize: length of every logits row.
    public init(vocabSize: Int) {
        indices = [Int32](repeating: 0, count: vocabSize)
        probs = [Float](repeating: 0, count: vocabSize)
        fullProbs = [Float](repeating: 0, count: vocabSize)
    }

    /// Argmax, ties to the lowest id. `logits`: `[vocabSize]`.
    ///
    /// Two passes of SIMD8: the maximum (NaN never compares greater, as in the scalar scan), then the first index
    /// holding it; a scalar scan of a 49k vocabulary took ~28 µs per token, a sixtieth of a batch-16 step.
    public static func greedy(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        let n = logits.count
        guard let base = logits.baseAddress, n > 0 else { return 0 }
        let raw = UnsafeRawPointer(base)
        var i = 0
        var top = -Float.infinity
        if n >= 8 {
            var m = SIMD8<Float>(repeating: -.infinity)
            while i + 8 <= n {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                m.replace(with: v, where: v .> m)
                i += 8
            }
            top = m.max()
        }
        while i < n {
            if logits[i] > top { top = logits[i] }
            i += 1
        }
        guard top > -.infinity else { return 0 }   // every logit -inf or NaN: the scalar scan's answer
        let target = SIMD8<Float>(repeating: top)
        i = 0
        while i + 8 <= n {
            let hit = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) .== target
            if any(hit) {
                for j in 0..<8 where hit[j] { return Int32(i + j) }
            }
            i += 8
        }
        while i < n {
            if logits[i] == top { return Int32(i) }
            i += 1
        }
        return 0
    }

    /// Samples one token id from `logits` (`[vocabSize]`, unnormalised log-probabilities).
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, params: SamplingParams,
                                rng: inout SeededGenerator) -> Int32 {
        precondition(logits.count == indices.count)
        if params.isGreedy { return Self.greedy(logits) }
        let n = logits.count
        // A top-k of the whole vocabulary or more keeps every token: it truncates nothing.
        let topK = params.topK > 0 && params.topK < n ? params.topK : 0
        if topK == 0 && params.topP >= 1 && params.minP <= 0 {
            return fullProbs.withUnsafeMutableBufferPointer {
                Self.sampleFull(logits, invT: Float(1.0 / params.temperature), scratch: $0.baseAddress!, rng: &rng)
            }
        }
        let invT = Float(1.0 / params.temperature)
        var count: Int
        if topK > 0 {
            // Candidates: the top-k (partial selection by sorting only what is needed).
            count = topK
            for i in 0..<n { indices[i] = Int32(i) }
            indices.withUnsafeMutableBufferPointer { idx in
                Self.partialTop(idx, k: count, logits: logits)
            }
            // Softmax over candidates with temperature (candidates are sorted by logit, descending).
            let maxLogit = logits[Int(indices[0])]
            var sum: Float = 0
            for j in 0..<count {
                let p = Float(exp(Double((logits[Int(indices[j])] - maxLogit) * invT)))
                probs[j] = p
                sum += p
            }
            for j in 0..<count { probs[j] /= sum }
            let k = count
            count = probs.withUnsafeBufferPointer { Self.truncate(probs: UnsafeBufferPointer(rebasing: $0[0..<k]), params: params).keep }
        } else {
            count = fullVocabularyCandidates(logits, params: params, invT: invT)
        }
        var mass: Float = 0
        for j in 0..<count { mass += probs[j] }
        let r = Float(rng.nextUnit()) * mass
        var acc: Float = 0
        for j in 0..<count {
            acc += probs[j]
            if r < acc { return indices[j] }
        }
        return indices[count - 1]
    }

    /// The number of leading candidates that min-p and then top-p keep, in vLLM's order (`vllm/v1/sample/sampler.py`:
    /// temperature, then the argmax-invariant min-p, then top-k / top-p on what is left, renormalised), for `probs`
    /// sorted descending (the candidates' probabilities under the softmax over the whole candidate set): min-p keeps
    /// those at least `minP` × the top probability, then top-p the smallest prefix of them whose share of their mass
    /// reaches `topP` (at least one token; all when rounding keeps the sum below it). Top-k commutes with min-p (a
    /// ratio to the top probability), so the top-k candidates may be given. `complete` is false when the answer may
    /// lie beyond the candidates given (min-p, when on, did not stop inside them; else top-p did not), so a caller
    /// holding only the best k of a larger set must look at more. (helper-73: top-p ran first, as llama.cpp's chain
    /// runs it, and kept tokens vLLM's min-p leaves out of the nucleus.)
    static func truncate(probs: UnsafeBufferPointer<Float>, params: SamplingParams) -> (keep: Int, complete: Bool) {
        var keep = probs.count
        var mass = 1.0            // of the tokens min-p keeps; the whole set's probabilities sum to 1
        var minCut = false, topCut = false
        if params.minP > 0 {
            let threshold = probs[0] * Float(params.minP)
            var k = 1
            while k < keep && probs[k] >= threshold { k += 1 }
            minCut = k < probs.count
            keep = k
            if minCut { mass = probs[0..<k].reduce(0.0) { $0 + Double($1) } }
        }
        if params.topP < 1.0 {
            var cum = 0.0
            for j in 0..<keep {
                cum += Double(probs[j])
                if cum >= params.topP * mass { keep = j + 1; topCut = true; break }
            }
        }
        return (keep, params.minP > 0 ? minCut : topCut)
    }

    /// Top-p and/or min-p with no top-k: the softmax over the whole vocabulary once (`ck_softmax`, into
    /// `fullProbs`), then the best tokens in order, 64 at first and four times as many each time the kept prefix
    /// may reach past them (partial selection instead of sorting the vocabulary; the whole vocabulary sorted once
    /// the next step would pass a quarter of it). Leaves the kept candidates in
    /// `indices[0..<keep]` and their probabilities in `probs[0..<keep]`; returns keep.
    private mutating func fullVocabularyCandidates(_ logits: UnsafeBufferPointer<Float>, params: SamplingParams,
                                                   invT: Float) -> Int {
        let n = logits.count
        fullProbs.withUnsafeMutableBufferPointer { full in
            for i in 0..<n { full[i] = logits[i] * invT }
            Ops.softmax(full.baseAddress!, n: n)
        }
        for i in 0..<n { indices[i] = Int32(i) }
        var k = min(n, 64)
        while true {
            indices.withUnsafeMutableBufferPointer { idx in
                if k < n {
                    Self.partialTop(idx, k: k, logits: logits)
                } else {
                    idx.sort { logits[Int($0)] > logits[Int($1)] || (logits[Int($0)] == logits[Int($1)] && $0 < $1) }
                }
            }
            for j in 0..<k { probs[j] = fullProbs[Int(indices[j])] }
            let cut = probs.withUnsafeBufferPointer {
                Self.truncate(probs: UnsafeBufferPointer(rebasing: $0[0..<k]), params: params)
            }
            if cut.complete || k == n { return cut.keep }
            k = k * 4 > n / 4 ? n : k * 4   // past a quarter of the vocabulary a full sort is cheaper than another selection
        }
    }

    /// Draws from softmax(logits × invT) over the whole vocabulary: the vectorised softmax (`ck_softmax`) into
    /// `scratch` `[V]`, then one scan for the draw (no sort: with no top-k/top-p/min-p truncation the order of
    /// candidates does not matter). Scaling the logits before the softmax is the same as the temperature inside it.
    private static func sampleFull(_ logits: UnsafeBufferPointer<Float>, invT: Float, scratch: UnsafeMutablePointer<Float>,
                                   rng: inout SeededGenerator) -> Int32 {
        let n = logits.count
        for i in 0..<n { scratch[i] = logits[i] * invT }
        Ops.softmax(scratch, n: n)
        // The mass in eight running sums (vectorisable), so the draw does not depend on the sum being exactly 1.
        var part = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            part += UnsafeRawPointer(scratch + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var mass = part.sum()
        while i < n { mass += scratch[i]; i += 1 }
        let r = Float(rng.nextUnit()) * mass
        var acc: Float = 0
        var last = 0
        for j in 0..<n {
            let p = scratch[j]
            if p > 0 { last = j }
            acc += p
            if r < acc { return Int32(j) }
        }
        return Int32(last)
    }

    /// Moves the `k` largest logits to the front of `idx`, sorted descending (ties to the lower id), in
    /// O(V log k) time and no allocation: `idx[0..<k]` is kept as a binary heap whose root is the worst of the best
    /// k seen so far, then heap-sorted. `idx`: `[V]` token ids; `k` in `1..<V`.
    static func partialTop(_ idx: UnsafeMutableBufferPointer<Int32>, k: Int, logits: UnsafeBufferPointer<Float>) {
        /// Whether token `a` ranks before token `b` (higher logit, then lower id).
        @inline(__always) func before(_ a: Int32, _ b: Int32) -> Bool {
            let x = logits[Int(a)], y = logits[Int(b)]
            return x > y || (x == y && a < b)
        }
        /// Restores the heap property below `root` in `idx[0..<n]`: every parent ranks after its children.
        @inline(__always) func siftDown(_ root: Int, _ n: Int) {
            var i = root
            let v = idx[i]
            while true {
                var child = 2 * i + 1
                if child >= n { break }
                if child + 1 < n && before(idx[child], idx[child + 1]) { child += 1 }
                guard before(v, idx[child]) else { break }
                idx[i] = idx[child]
                i = child
            }
            idx[i] = v
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, k) }
        for i in k..<idx.count where before(idx[i], idx[0]) {
            idx.swapAt(0, i)   // the evicted id goes to the tail, so `idx` stays a permutation
            siftDown(0, k)
        }
        // Heap sort: the worst goes to the back each time, leaving the best k in descending order.
        var n = k
        while n > 1 {
            n -= 1
            idx.swapAt(0, n)
            siftDown(0, n)
        }
    }
}
