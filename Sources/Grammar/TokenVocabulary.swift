import Tokenizer

/// A model's vocabulary as the grammar matcher sees it: each token's output bytes, sorted so that tokens sharing a
/// prefix are neighbours (walking them in order is a walk of the token trie: the common prefix with the previous
/// token is already matched). Immutable; built once per served model.
public final class TokenVocabulary: Sendable {
    /// Length of a logits row (ids 0..<size; ids the tokenizer lacks are never allowed).
    public let size: Int
    /// Token ids that can appear in constrained text, sorted by their bytes. `[numTokens]`
    let sorted: [Int32]
    /// Byte offsets of `sorted[i]`'s bytes in `bytes`. `[numTokens + 1]`
    let offsets: [Int32]
    /// All tokens' bytes, in sorted order. `[totalBytes]`
    let bytes: [UInt8]
    /// Common prefix length of `sorted[i]` and `sorted[i - 1]` (0 for i = 0). `[numTokens]`
    let lcpPrevious: [Int32]
    /// Index of each id in `sorted`, -1 when the token is not part of constrained text. `[size]`
    let sortedIndex: [Int32]
    /// End-of-generation ids (allowed only where the grammar is complete).
    public let endOfGeneration: [Int32]
    /// Token sets of JSON string content, shared by every grammar over this vocabulary.
    let stringSets = StringTokenSets()

    /// The tokens' detokenized bytes (`Tokenizer.tokenBytes`). Control tokens (empty bytes) and end-of-generation
    /// tokens take no part in constrained text; user-defined tokens (e.g. `<tool_call>`) do, as their text.
    /// - Parameters: `size` is the logits row length (the model's vocabulary size, at least the tokenizer's).
    public convenience init(tokenizer: Tokenizer, size: Int) {
        let n = min(size, tokenizer.vocabSize)
        let eog = tokenizer.endOfGenerationIds.filter { Int($0) < size }.sorted()
        let eogSet = Set(eog)
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(n)
        for id in 0..<n { tokens.append(eogSet.contains(Int32(id)) ? [] : tokenizer.tokenBytes(Int32(id))) }
        self.init(tokens: tokens, size: size, endOfGeneration: eog)
    }

    /// A vocabulary from explicit token bytes (`tokens[id]`; empty: never allowed).
    public init(tokens: [[UInt8]], size: Int, endOfGeneration: [Int32]) {
        precondition(size >= tokens.count)
        self.size = size
        self.endOfGeneration = endOfGeneration
        let ids = (0..<tokens.count).filter { !tokens[$0].isEmpty }.sorted { tokens[$0].lexicographicallyPrecedes(tokens[$1]) }
        var offsets: [Int32] = [0], bytes: [UInt8] = [], lcp: [Int32] = []
        var index = [Int32](repeating: -1, count: size)
        var previous: [UInt8] = []
        for (i, id) in ids.enumerated() {
            let t = tokens[id]
            var common = 0
            while common < t.count && common < previous.count && t[common] == previous[common] { common += 1 }
            lcp.append(Int32(common))
            bytes += t
            offsets.append(Int32(bytes.count))
            index[id] = Int32(i)
            previous = t
        }
        sorted = ids.map { Int32($0) }
        self.offsets = offsets
        self.bytes = bytes
        lcpPrevious = lcp
        sortedIndex = index
    }

    /// Number of tokens that can appear in constrained text.
    public var textTokenCount: Int { sorted.count }

    /// The bytes of token `id` (empty for tokens outside constrained text).
    public func bytes(of id: Int32) -> ArraySlice<UInt8> {
        guard id >= 0, Int(id) < size, sortedIndex[Int(id)] >= 0 else { return [] }
        let i = Int(sortedIndex[Int(id)])
        return bytes[Int(offsets[i])..<Int(offsets[i + 1])]
    }

    /// Byte `k` of token `id` (nil past its end or for tokens outside constrained text); no slice is made.
    @inline(__always) func byte(of id: Int32, at k: Int) -> UInt8? {
        guard id >= 0, Int(id) < size, sortedIndex[Int(id)] >= 0 else { return nil }
        let i = Int(sortedIndex[Int(id)])
        let at = Int(offsets[i]) + k
        return at < Int(offsets[i + 1]) ? bytes[at] : nil
    }

    /// The first sorted index after `i` whose token does not start with the first `p` bytes of token `i`.
    func subtreeEnd(_ i: Int, prefix p: Int) -> Int {
        let base = Int(offsets[i])
        var lo = i + 1, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let o = Int(offsets[mid]), len = Int(offsets[mid + 1]) - o
            var same = len >= p
            if same {
                for k in 0..<p where bytes[o + k] != bytes[base + k] { same = false; break }
            }
            if same { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// Allowed tokens: one bit per id of a logits row.
public struct TokenMask: Sendable, Equatable {
    /// `[(size + 63) / 64]` bit words; bit `id % 64` of word `id / 64`.
    public private(set) var words: [UInt64]
    /// Row length in tokens.
    public let size: Int

    /// Nothing allowed.
    public init(size: Int) {
        self.size = size
        words = [UInt64](repeating: 0, count: (size + 63) / 64)
    }

    @inline(__always) public func allows(_ id: Int32) -> Bool {
        words[Int(id) >> 6] & (UInt64(1) << UInt64(id & 63)) != 0
    }

    @inline(__always) mutating func insert(_ id: Int32) {
        words[Int(id) >> 6] |= UInt64(1) << UInt64(id & 63)
    }

    mutating func formUnion(_ o: TokenMask) {
        for i in 0..<words.count { words[i] |= o.words[i] }
    }

    /// Number of allowed tokens.
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Sets every disallowed logit to -infinity, in place, allocating nothing. `logits`: `[size]`.
    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        precondition(logits.count == size)
        words.withUnsafeBufferPointer { w in
            for i in 0..<w.count {
                var off = ~w[i]
                if off == 0 { continue }
                let base = i << 6
                while off != 0 {
                    let t = base + off.trailingZeroBitCount
                    if t < size { logits[t] = -.infinity }
                    off &= off - 1
                }
            }
        }
    }
}
