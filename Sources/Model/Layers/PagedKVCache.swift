import Compute

/// Paged KV cache storage: one pre-allocated pool of fixed-size blocks shared by all sequences.
///
/// NOTE: layout per layer, K then V, each `[numBlocks, blockSize, numKVHeads, headDim]`:
/// ```
/// layer l:  K │ block 0: slot 0 [kvHeads × headDim] │ slot 1 │ … │ block 1 … │   V │ same │
/// slot s = blockId * blockSize + offset  →  element (s * numKVHeads + h) * headDim
/// ```
/// Which blocks belong to which sequence is the caller's business (block tables in `ForwardBatch`).
public final class PagedKVCache: @unchecked Sendable {
    /// Blocks in the pool.
    public let numBlocks: Int
    /// Tokens per block.
    public let blockSize: Int
    /// Decoder layers.
    public let numLayers: Int
    /// K/V heads per token.
    public let numKVHeads: Int
    /// Elements per head.
    public let headDim: Int
    /// Element type.
    public let type: KVCacheType
    /// Bytes of one K (or V) row of a layer: `numKVHeads * headDim * elementSize` (q8_0: `MLAQ8Kernels.slotBytes`).
    public let slotBytes: Int
    /// False for a keys-only cache (MLA: one latent row per token, see `MLAAttention`); `values(layer:)` is then
    /// unavailable.
    public let storesValues: Bool
    private let storage: UnsafeMutableRawPointer
    /// Bytes of `storage` when it came from `HugePageMemory` (2 MiB pages), else 0 (`allocate`).
    private let hugePageBytes: Int
    private let layerBytes: Int

    /// Total bytes of K and V storage.
    public var bytes: Int { layerBytes * (storesValues ? 2 : 1) * numLayers }

    /// Allocates the pool and zeroes it, so every page is committed up front (as llama.cpp clears its KV buffer and vLLM
    /// preallocates its blocks): the process's resident size is the pool's from the start instead of growing while
    /// traffic touches blocks for the first time, and a pool larger than memory fails at load, not under load.
    /// `storesValues: false` allocates K only. A q8_0 cache holds MLA latent rows (one KV head, `storesValues`
    /// false, `latentRank` the kv_lora_rank of its `headDim`-value rows, the rest being the RoPE key); its slots are `MLAQ8Kernels.slotBytes` each and its kernels need block
    /// sizes that are multiples of 16 (checked where they run).
    public init(numLayers: Int, numBlocks: Int, blockSize: Int, numKVHeads: Int, headDim: Int, type: KVCacheType,
                storesValues: Bool = true, latentRank: Int = 0) {
        precondition(numBlocks > 0 && blockSize > 0, "a KV cache needs at least one block of one token")
        self.numLayers = numLayers
        self.numBlocks = numBlocks
        self.blockSize = blockSize
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.type = type
        self.storesValues = storesValues
        if type == .q8_0 {
            precondition(numKVHeads == 1 && !storesValues && MLAQ8Kernels.supports(latentRank: latentRank, rope: headDim - latentRank),
                         "a q8_0 KV cache holds MLA latent rows")
            slotBytes = MLAQ8Kernels.slotBytes(latentRank: latentRank, rope: headDim - latentRank)
        } else {
            slotBytes = numKVHeads * headDim * type.elementSize
        }
        layerBytes = numBlocks * blockSize * slotBytes
        let total = max(64, layerBytes * (storesValues ? 2 : 1) * numLayers)
        // In 2 MiB pages: attention streams every cached row of a sequence per token, and through 4 KiB pages each
        // one costs a TLB miss (Qwen2.5-Coder-1.5B decode at 4k tokens +4–5 %: BENCHMARKS.md, 2026-12-07 07:25).
        let rounded = HugePageMemory.roundUp(total)
        if let p = HugePageMemory.allocate(rounded) {
            storage = p
            hugePageBytes = rounded
        } else {
            storage = .allocate(byteCount: total, alignment: 64)
            hugePageBytes = 0
        }
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: total)
    }

    deinit {
        if hugePageBytes > 0 { HugePageMemory.free(storage, hugePageBytes) } else { storage.deallocate() }
    }

    /// Start of layer `layer`'s K storage.
    public func keys(layer: Int) -> UnsafeMutableRawPointer { storage + layerBytes * (storesValues ? 2 * layer : layer) }
    /// Start of layer `layer`'s V storage (precondition: `storesValues`).
    public func values(layer: Int) -> UnsafeMutableRawPointer {
        precondition(storesValues, "this KV cache stores keys only (MLA latent rows)")
        return storage + layerBytes * (2 * layer + 1)
    }
    /// Copies the K (and V) rows of every slot of block `from` into block `to`, in every layer (copy-on-write of a
    /// forked sequence's partial last block).
    public func copyBlock(from: Int32, to: Int32) {
        precondition(from >= 0 && Int(from) < numBlocks && to >= 0 && Int(to) < numBlocks, "block id out of range")
        let blockBytes = blockSize * slotBytes
        for layer in 0..<numLayers {
            let k = keys(layer: layer)
            (k + Int(to) * blockBytes).copyMemory(from: k + Int(from) * blockBytes, byteCount: blockBytes)
            if storesValues {
                let v = values(layer: layer)
                (v + Int(to) * blockBytes).copyMemory(from: v + Int(from) * blockBytes, byteCount: blockBytes)
            }
        }
    }

    /// Number of token slots (`numBlocks * blockSize`).
    public var slotCount: Int { numBlocks * blockSize }
}
