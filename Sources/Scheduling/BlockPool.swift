/// The pool of fixed-size KV blocks: ids `0..<numBlocks`, handed out and returned by the `KVCacheManager`.
///
/// Block `b` holds the K/V of `blockSize` consecutive tokens of one sequence; the KV slot of a token at
/// position `p` of a sequence whose block table is `table` is `table[p / blockSize] * blockSize + p % blockSize`.
public struct BlockPool: Sendable {
    public let numBlocks: Int
    private var free: [Int32]

    public init(numBlocks: Int) {
        precondition(numBlocks > 0, "the KV pool needs at least one block")
        self.numBlocks = numBlocks
        // Pop from the end: hand out low ids first.
        free = (0..<Int32(numBlocks)).reversed()
    }

    /// Blocks not held by any request.
    public var numFreeBlocks: Int { free.count }

    /// Takes `count` blocks, or returns nil (taking none) when fewer are free.
    public mutating func allocate(_ count: Int) -> [Int32]? {
        guard count <= free.count else { return nil }
        let out = Array(free.suffix(count).reversed())
        free.removeLast(count)
        return out
    }

    /// Returns blocks to the pool. Returning a block twice is a broken invariant.
    public mutating func release(_ blocks: [Int32]) {
        precondition(free.count + blocks.count <= numBlocks, "KV block released twice")
        free.append(contentsOf: blocks.reversed())
    }
}

/// Grows and frees the block tables of requests.
public struct KVCacheManager: Sendable {
    public let blockSize: Int
    public private(set) var pool: BlockPool

    public init(numBlocks: Int, blockSize: Int) {
        precondition(blockSize > 0)
        self.blockSize = blockSize
        pool = BlockPool(numBlocks: numBlocks)
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

    /// Frees every block of a table.
    public mutating func free(_ blockIds: inout [Int32]) {
        pool.release(blockIds)
        blockIds.removeAll()
    }

    /// Fraction of blocks in use, 0...1.
    public var usage: Double { Double(pool.numBlocks - pool.numFreeBlocks) / Double(pool.numBlocks) }
}
