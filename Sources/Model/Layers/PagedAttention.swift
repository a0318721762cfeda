import Compute

/// Causal multi-head attention with grouped-query heads over a `PagedKVCache`.
///
/// softmax(q·Kᵀ · scale) · V per query head, where head h reads KV head h / (numHeads / numKVHeads), and a token
/// at position p sees positions 0...p of its own sequence, found through the sequence's block table.
/// Source: Vaswani et al. 2017 §3.2.1; GQA: Ainslie et al. 2023; paging: Kwon et al. 2023 (vLLM) §4.
/// With an F16 cache the query and the attention weights are rounded to f16 before their products with K and
/// V, as llama.cpp's non-flash path does (ggml converts the f32 operand to the f16 operand's type).
final class PagedAttention {
    let numHeads: Int
    let numKVHeads: Int
    let headDim: Int
    let scale: Float
    /// Longest context a token may attend over (grows to the KV cache's slot count, see `reserve`).
    private(set) var maxContext: Int
    private let threads: Int
    /// Query heads per KV head.
    private let group: Int
    /// Per thread attention weights of one item's heads `[threads, group, maxContext]`.
    private var scores: ScratchBuffer
    /// Per thread query copy of one item's heads `[threads, group, headDim]`.
    private let query: ScratchBuffer

    /// `scale` multiplies q·k (default 1/√headDim).
    init(numHeads: Int, numKVHeads: Int, headDim: Int, maxContext: Int, threads: Int, scale: Float? = nil) {
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        self.maxContext = maxContext
        self.threads = threads
        group = max(1, numHeads / max(1, numKVHeads))
        scores = ScratchBuffer(count: threads * group * maxContext)
        query = ScratchBuffer(count: threads * group * headDim)
    }

    /// Makes room for contexts of `tokens` positions (a sequence never holds more tokens than the KV cache has
    /// slots). Allocates only when a larger cache than any before is first used.
    func reserve(contextLength tokens: Int) {
        if tokens <= maxContext { return }
        maxContext = tokens
        scores = ScratchBuffer(count: threads * group * tokens)
    }

    /// Writes K and V rows `[count, numKVHeads * headDim]` of `count` tokens to `slots[0..<count]` of `layer`.
    func store(layer: Int, cache: PagedKVCache, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
               slots: UnsafePointer<Int32>, count: Int) {
        let width = numKVHeads * headDim
        let kBase = cache.keys(layer: layer), vBase = cache.values(layer: layer)
        for t in 0..<count {
            let slot = Int(slots[t])
            precondition(slot >= 0 && slot < cache.slotCount, "KV slot \(slot) outside the cache")
            switch cache.type {
            case .f16:
                Half.encode(k + t * width, to: (kBase + slot * cache.slotBytes).assumingMemoryBound(to: UInt16.self), count: width)
                Half.encode(v + t * width, to: (vBase + slot * cache.slotBytes).assumingMemoryBound(to: UInt16.self), count: width)
            case .f32:
                (kBase + slot * cache.slotBytes).copyMemory(from: k + t * width, byteCount: width * 4)
                (vBase + slot * cache.slotBytes).copyMemory(from: v + t * width, byteCount: width * 4)
            }
        }
    }

    /// out `[count, numHeads * headDim]` = attention of q `[count, numHeads * headDim]` (RoPE applied) for tokens
    /// with `positions[t]`, whose sequence's block table starts at `tables + tableStart[t]`.
    /// `window` > 0 limits each token to the last `window` positions (sliding-window attention: a token at p sees
    /// p - window + 1 ... p, as llama.cpp's LLAMA_SWA_TYPE_STANDARD mask and HF `sliding_window`); 0 = full causal.
    ///
    /// Work items: one per (token, KV head), running the KV head's `numHeads / numKVHeads` query heads together
    /// so each K and V row is read and converted once for all of them, when that leaves at least four items per
    /// thread (batched decode, prefill); otherwise one per (token, query head), so a single decoding sequence
    /// still spreads over every thread. The results are the same either way (per head the same float operations).
    func run(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, positions: UnsafePointer<Int32>,
             tables: UnsafePointer<Int32>, tableStart: UnsafePointer<Int32>, count: Int,
             out: UnsafeMutablePointer<Float>, pool: ThreadPool, window: Int = 0) {
        let started = StepProfile.now()
        defer { StepProfile.add(.attention, since: started) }
        let headsPerItem = count * numKVHeads >= 4 * threads ? group : 1
        var job = AttentionJob(attention: Unmanaged.passUnretained(self), cache: Unmanaged.passUnretained(cache),
                               layer: layer, q: q, positions: positions, tables: tables, tableStart: tableStart, out: out,
                               window: window, headsPerItem: headsPerItem)
        pool.parallelFor(count * (numHeads / headsPerItem), chunk: 1, context: &job) { ctx, start, end, participant in
            let job = ctx!.assumingMemoryBound(to: AttentionJob.self).pointee
            let a = job.attention.takeUnretainedValue(), cache = job.cache.takeUnretainedValue()
            let width = a.numHeads * a.headDim
            let itemsPerToken = a.numHeads / job.headsPerItem
            for item in start..<end {
                let t = item / itemsPerToken, h0 = (item % itemsPerToken) * job.headsPerItem
                a.heads(layer: job.layer, cache: cache, q: job.q + t * width + h0 * a.headDim, first: h0,
                        count: job.headsPerItem, position: Int(job.positions[t]),
                        table: job.tables + Int(job.tableStart[t]), out: job.out + t * width + h0 * a.headDim,
                        thread: participant, window: job.window)
            }
        }
    }

    /// Query heads `first ..< first + count` of one token (all under one KV head): q and out `[count, headDim]`.
    fileprivate func heads(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, first h0: Int, count g: Int,
                           position: Int, table: UnsafePointer<Int32>, out: UnsafeMutablePointer<Float>, thread: Int,
                           window: Int = 0) {
        let d = headDim
        let kvh = h0 / group
        precondition(position + 1 <= maxContext, "position \(position) beyond the KV cache capacity \(maxContext)")
        // With a window, start at the block holding the first visible position and mask the ones before it.
        let first = window > 0 ? max(0, position - window + 1) : 0
        let firstBlock = first / cache.blockSize
        let start = firstBlock * cache.blockSize, masked = first - start
        let table = table + firstBlock
        let n = position + 1 - start
        let s = scores.pointer + thread * group * maxContext
        let qv = query.pointer + thread * group * d
        let kv: PagedAttentionKernels.Element = cache.type == .f16 ? .f16 : .f32
        let headOffset = kvh * d * cache.type.elementSize
        var qp = q
        if cache.type == .f16 {   // llama.cpp converts the query to f16 for its f16·f16 K product
            for i in 0..<(g * d) { qv[i] = Half.round(q[i]) }
            qp = UnsafePointer(qv)
        }
        PagedAttentionKernels.scores(kv, queries: qp, queryStride: d, heads: g, d: d,
                                     keys: cache.keys(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                     blockTable: table, blockSize: cache.blockSize, count: n, scale: scale,
                                     into: s, scoreStride: maxContext)                   // [g, n]
        for h in 0..<g {
            let row = s + h * maxContext
            for i in 0..<masked { row[i] = -.infinity }
            Ops.softmax(row, n: n)
        }
        PagedAttentionKernels.values(kv, weights: s, weightStride: maxContext, heads: g, d: d,
                                     values: cache.values(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                     blockTable: table, blockSize: cache.blockSize, count: n,
                                     into: out, outStride: d)                            // [g, headDim]
    }
}

/// Arguments of one attention call, passed to the pool's chunk function by pointer (no closure context).
private struct AttentionJob {
    let attention: Unmanaged<PagedAttention>
    let cache: Unmanaged<PagedKVCache>
    let layer: Int
    let q: UnsafePointer<Float>
    let positions: UnsafePointer<Int32>
    let tables: UnsafePointer<Int32>
    let tableStart: UnsafePointer<Int32>
    let out: UnsafeMutablePointer<Float>
    let window: Int
    /// Query heads per work item: 1, or all `numHeads / numKVHeads` of a KV head.
    let headsPerItem: Int
}
