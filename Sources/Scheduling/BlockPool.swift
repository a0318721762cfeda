/// The pool of fixed-size KV blocks, `0..<numBlocks`, with reference counts and prefix caching.
///
/// Block `b` holds the K/V of `blockSize` consecutive tokens of a sequence; a token at position `p` of a sequence
/// whose block table is `table` lives in slot `table[p / blockSize] * blockSize + p % blockSize`.
///
/// NOTE: prefix caching (vLLM's automatic prefix caching). A *full* block is identified by a chained hash of
/// (hash of the previous block, the block's token ids), so equal hashes mean equal prefixes:
///
///     tokens  [t0 … t15][t16 … t31][t32 … t40]
///     hash    h0 = H(0, t0…t15)   h1 = H(h0, t16…t31)   (last block not full: never cached)
///
/// When a block's last holder frees it, a hashed block keeps its K/V and goes to the back of an LRU list of
/// evictable blocks; a new request whose prompt starts with the same full blocks takes them back instead of
/// recomputing. Allocation takes never-hashed free blocks first, then evicts from the LRU front.
public struct BlockPool: Sendable {
    public let numBlocks: Int
    public let blockSize: Int
    /// Whether full blocks are hashed and reused.
    public let enablePrefixCaching: Bool

    private var refCount: [Int32]
    /// Per block: its hash when it is a registered full block.
    private var hashOf: [UInt64?]
    /// Per block: the token ids and parent hash it was registered with (guards against hash collisions).
    private var tokensOf: [[Int32]]
    private var parentOf: [UInt64]
    private var byHash: [UInt64: Int32] = [:]
    /// Free blocks without a cached hash (a stack).
    private var freeUncached: [Int32]
    /// Free blocks with a cached hash, least recently used first (doubly linked list over block ids).
    private var lruPrev: [Int32]
    private var lruNext: [Int32]
    private var lruHead: Int32 = -1
    private var lruTail: Int32 = -1
    private var lruCount = 0

    /// Prefix-cache hits since start (tokens).
    public private(set) var cachedTokensServed = 0

    public init(numBlocks: Int, blockSize: Int, enablePrefixCaching: Bool = true) {
        precondition(numBlocks > 0 && blockSize > 0, "the KV pool needs at least one block")
        self.numBlocks = numBlocks
        self.blockSize = blockSize
        self.enablePrefixCaching = enablePrefixCaching
        refCount = Array(repeating: 0, count: numBlocks)
        hashOf = Array(repeating: nil, count: numBlocks)
        tokensOf = Array(repeating: [], count: numBlocks)
        parentOf = Array(repeating: 0, count: numBlocks)
        freeUncached = (0..<Int32(numBlocks)).reversed()  // pop from the end: low ids first
        lruPrev = Array(repeating: -1, count: numBlocks)
        lruNext = Array(repeating: -1, count: numBlocks)
    }

    /// Blocks that can be handed out now (never-hashed free blocks plus evictable cached ones).
    public var numFreeBlocks: Int { freeUncached.count + lruCount }

    /// Blocks held by at least one request.
    public var numUsedBlocks: Int { numBlocks - numFreeBlocks }

    /// Takes `count` blocks for exclusive use, or returns nil (taking none) when fewer are free.
    public mutating func allocate(_ count: Int) -> [Int32]? {
        guard count <= numFreeBlocks else { return nil }
        var out: [Int32] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let b: Int32
            if let f = freeUncached.popLast() {
                b = f
            } else {
                b = lruHead
                lruRemove(b)
                uncache(b)
            }
            precondition(refCount[Int(b)] == 0)
            refCount[Int(b)] = 1
            out.append(b)
        }
        return out
    }

    /// Takes one more reference to each block (already held by someone): a forked block table shares them.
    public mutating func share(_ blocks: [Int32]) {
        for b in blocks {
            precondition(refCount[Int(b)] > 0, "only blocks in use can be shared")
            refCount[Int(b)] += 1
        }
    }

    /// Drops one reference to each block; a block nobody holds becomes free (kept cached when hashed).
    public mutating func release(_ blocks: [Int32]) {
        // Freed in reverse so that a sequence's tail blocks are evicted before its head blocks.
        for b in blocks.reversed() {
            precondition(refCount[Int(b)] > 0, "KV block released twice")
            refCount[Int(b)] -= 1
            guard refCount[Int(b)] == 0 else { continue }
            if hashOf[Int(b)] != nil { lruAppend(b) } else { freeUncached.append(b) }
        }
    }

    /// The chained hash of a full block: `H(parent, tokens)` (FNV-1a over the parent hash and token ids).
    public static func hash(parent: UInt64, tokens: ArraySlice<Int32>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        @inline(__always) func mix(_ v: UInt64) {
            var x = v
            for _ in 0..<8 {
                h ^= x & 0xff
                h = h &* 0x0000_0100_0000_01b3
                x >>= 8
            }
        }
        mix(parent)
        for t in tokens { mix(UInt64(UInt32(bitPattern: t))) }
        return h
    }

    /// Looks up the longest run of cached full blocks that starts `tokens`, covering at most `maxTokens` tokens,
    /// and takes a reference to each. - Returns: the blocks and their hashes, in sequence order.
    public mutating func acquireCachedPrefix(_ tokens: [Int32], maxTokens: Int) -> (blocks: [Int32], hashes: [UInt64]) {
        guard enablePrefixCaching else { return ([], []) }
        var blocks: [Int32] = []
        var hashes: [UInt64] = []
        var parent: UInt64 = 0
        var start = 0
        while start + blockSize <= min(tokens.count, maxTokens) {
            let slice = tokens[start..<(start + blockSize)]
            let h = Self.hash(parent: parent, tokens: slice)
            guard let b = byHash[h], parentOf[Int(b)] == parent, tokensOf[Int(b)].elementsEqual(slice) else { break }
            if refCount[Int(b)] == 0 { lruRemove(b) }
            refCount[Int(b)] += 1
            blocks.append(b)
            hashes.append(h)
            parent = h
            start += blockSize
        }
        cachedTokensServed += start
        return (blocks, hashes)
    }

    /// Registers `block`, now full with `tokens` after a block whose hash is `parent`, for reuse.
    /// - Returns: its hash. A block whose content is already cached under another id is left unregistered.
    @discardableResult
    public mutating func register(_ block: Int32, parent: UInt64, tokens: ArraySlice<Int32>) -> UInt64 {
        precondition(tokens.count == blockSize)
        let h = Self.hash(parent: parent, tokens: tokens)
        guard enablePrefixCaching, hashOf[Int(block)] == nil, byHash[h] == nil else { return h }
        hashOf[Int(block)] = h
        tokensOf[Int(block)] = Array(tokens)
        parentOf[Int(block)] = parent
        byHash[h] = block
        return h
    }

    /// Forgets every cached hash (blocks in use keep their K/V but are no longer shared).
    public mutating func resetPrefixCache() {
        while lruCount > 0 {
            let b = lruHead
            lruRemove(b)
            uncache(b)
            freeUncached.append(b)
        }
        for b in 0..<numBlocks where hashOf[b] != nil { uncache(Int32(b)) }
    }

    // MARK: private

    private mutating func uncache(_ b: Int32) {
        if let h = hashOf[Int(b)], byHash[h] == b { byHash[h] = nil }
        hashOf[Int(b)] = nil
        tokensOf[Int(b)] = []
    }

    private mutating func lruAppend(_ b: Int32) {
        lruPrev[Int(b)] = lruTail
        lruNext[Int(b)] = -1
        if lruTail >= 0 { lruNext[Int(lruTail)] = b } else { lruHead = b }
        lruTail = b
        lruCount += 1
    }

    private mutating func lruRemove(_ b: Int32) {
        let p = lruPrev[Int(b)], n = lruNext[Int(b)]
        if p >= 0 { lruNext[Int(p)] = n } else { lruHead = n }
        if n >= 0 { lruPrev[Int(n)] = p } else { lruTail = p }
        lruPrev[Int(b)] = -1
        lruNext[Int(b)] = -1
        lruCount -= 1
    }
}

/// Grows, shares and frees the block tables of requests.
public struct KVCacheManager: Sendable {
    public let blockSize: Int
    public internal(set) var pool: BlockPool

    public init(numBlocks: Int, blockSize: Int, enablePrefixCaching: Bool = true) {
        precondition(blockSize > 0)
        self.blockSize = blockSize
        pool = BlockPool(numBlocks: numBlocks, blockSize: blockSize, enablePrefixCaching: enablePrefixCaching)
    }

    /// Blocks needed to hold `numTokens` tokens.
    public func blocksNeeded(_ numTokens: Int) -> Int { (numTokens + blockSize - 1) / blockSize }

    /// Extends `blockIds` so that it covers `numTokens` tokens. Returns false (changing nothing) when the pool
    /// cannot supply the blocks.
    public mutating func ensureCapacity(_ blockIds: inout [Int32], numTokens: Int) -> Bool {
        let missing = blocksNeeded(numTokens) - blockIds.count
        if missing <= 0 { return true }
        guard let got = pool.allocate(missing) else { return false }
        blockIds.append(contentsOf: got)
        return true
    }

    /// Takes the cached full blocks that start `tokens`, leaving at least one token to compute (its logits are
    /// needed). - Returns: the blocks (a block table prefix) and their hashes.
    public mutating func cachedPrefix(_ tokens: [Int32]) -> (blocks: [Int32], hashes: [UInt64]) {
        pool.acquireCachedPrefix(tokens, maxTokens: tokens.count - 1)
    }

    /// Registers the blocks of a sequence that became full: `hashes` holds the hashes of its first
    /// `hashes.count` blocks and grows to cover every full block of the first `numComputed` tokens.
    public mutating func registerFullBlocks(tokens: [Int32], blockIds: [Int32], numComputed: Int, hashes: inout [UInt64]) {
        while (hashes.count + 1) * blockSize <= numComputed {
            let i = hashes.count
            let h = pool.register(blockIds[i], parent: i == 0 ? 0 : hashes[i - 1],
                                  tokens: tokens[(i * blockSize)..<((i + 1) * blockSize)])
            hashes.append(h)
        }
    }

    /// Takes one more reference to each of `blocks` (a forked block table shares them).
    public mutating func share(_ blocks: [Int32]) { pool.share(blocks) }

    /// Releases every block of a table.
    public mutating func free(_ blockIds: inout [Int32]) {
        pool.release(blockIds)
        blockIds.removeAll()
    }

    /// Fraction of blocks held by requests, 0...1 (cached free blocks count as free).
    public var usage: Double { Double(pool.numUsedBlocks) / Double(pool.numBlocks) }
}
