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
    /// Query rows one work item runs together: a KV head's `group` heads of one token, or up to
    /// `PagedAttention.tokensPerItem` consecutive tokens of one head.
    private let rowsPerItem: Int
    /// Per thread attention weights of one item's query rows `[threads, rowsPerItem, maxContext]`.
    private var scores: ScratchBuffer
    /// Per thread query copy of one item's query rows `[threads, rowsPerItem, headDim]`.
    private let query: ScratchBuffer
    /// Consecutive tokens of one sequence a prefill work item runs together (each K/V row read once for them).
    static let tokensPerItem = 4
    /// Largest K plus V slice (bytes) an item prefetches whole before reading it.
    static let prefetchBytes = 64 << 10

    /// `scale` multiplies q·k (default 1/√headDim).
    init(numHeads: Int, numKVHeads: Int, headDim: Int, maxContext: Int, threads: Int, scale: Float? = nil) {
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        self.maxContext = maxContext
        self.threads = threads
        group = max(1, numHeads / max(1, numKVHeads))
        rowsPerItem = max(group, Self.tokensPerItem)
        scores = ScratchBuffer(count: threads * rowsPerItem * maxContext)
        query = ScratchBuffer(count: threads * rowsPerItem * headDim)
    }

    /// Makes room for contexts of `tokens` positions (a sequence never holds more tokens than the KV cache has
    /// slots). Allocates only when a larger cache than any before is first used.
    func reserve(contextLength tokens: Int) {
        if tokens <= maxContext { return }
        maxContext = tokens
        scores = ScratchBuffer(count: threads * rowsPerItem * tokens)
    }

    /// Writes K and V rows `[count, numKVHeads * headDim]` of `count` tokens to `slots[0..<count]` of `layer`.
    func store(layer: Int, cache: PagedKVCache, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
               slots: UnsafePointer<Int32>, count: Int) {
        let width = numKVHeads * headDim
        let kBase = cache.keys(layer: layer), vBase = cache.values(layer: layer)
        for t in 0..<count {
            let slot = Int(slots[t])
            precondition(slot >= 0 && slot < cache.slotCount, "KV slot \(slot) outside the cache")
            cache.type.encode(k + t * width, to: kBase + slot * cache.slotBytes, count: width)
            cache.type.encode(v + t * width, to: vBase + slot * cache.slotBytes, count: width)
        }
    }

    /// out `[count, numHeads * headDim]` = attention of q `[count, numHeads * headDim]` (RoPE applied) for tokens
    /// with `positions[t]`, whose sequence's block table starts at `tables + tableStart[t]`.
    /// `window` > 0 limits each token to the last `window` positions (sliding-window attention: a token at p sees
    /// p - window + 1 ... p, as llama.cpp's LLAMA_SWA_TYPE_STANDARD mask and HF `sliding_window`); 0 = full causal.
    ///
    /// Work items: with enough work for at least four items per thread, one per (up to four consecutive tokens, KV
    /// head): a token alone runs the KV head's `numHeads / numKVHeads` query heads together (batched decode), a run
    /// of tokens of one sequence at consecutive positions (a prefill chunk, no window) runs each query head for
    /// all of them, so each K and V row is read and converted once per item either way. With less work (a single
    /// decoding sequence), one item per (token, query head), so it still spreads over every thread. The results
    /// are the same every way (per query row the same float operations).
    func run(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, positions: UnsafePointer<Int32>,
             tables: UnsafePointer<Int32>, tableStart: UnsafePointer<Int32>, count: Int,
             out: UnsafeMutablePointer<Float>, pool: ThreadPool, window: Int = 0) {
        let started = StepProfile.now()
        defer { StepProfile.add(.attention, since: started) }
        let grouped = count * numKVHeads >= 4 * threads
        let headsPerItem = grouped ? group : 1
        let tokensPerItem = grouped && window == 0 ? Self.tokensPerItem : 1
        var job = AttentionJob(attention: Unmanaged.passUnretained(self), cache: Unmanaged.passUnretained(cache),
                               layer: layer, q: q, positions: positions, tables: tables, tableStart: tableStart, out: out,
                               count: count, window: window, headsPerItem: headsPerItem, tokensPerItem: tokensPerItem)
        let tokenGroups = (count + tokensPerItem - 1) / tokensPerItem
        pool.parallelFor(tokenGroups * (numHeads / headsPerItem), chunk: 1, context: &job) { ctx, start, end, participant in
            let job = ctx!.assumingMemoryBound(to: AttentionJob.self).pointee
            let a = job.attention.takeUnretainedValue(), cache = job.cache.takeUnretainedValue()
            let width = a.numHeads * a.headDim
            let itemsPerGroup = a.numHeads / job.headsPerItem
            for item in start..<end {
                let first = (item / itemsPerGroup) * job.tokensPerItem, h0 = (item % itemsPerGroup) * job.headsPerItem
                let last = min(job.count, first + job.tokensPerItem)
                var t = first
                while t < last {
                    // The run of tokens continuing t's sequence at consecutive positions.
                    var e = t + 1
                    while e < last && job.tableStart[e] == job.tableStart[t] && job.positions[e] == job.positions[e - 1] + 1 {
                        e += 1
                    }
                    let table = job.tables + Int(job.tableStart[t])
                    if e - t == 1 {
                        if e < last && job.window == 0 {   // the item's next token (another sequence in a decode step)
                            a.prefetch(layer: job.layer, cache: cache, kvHead: h0 / a.group,
                                       table: job.tables + Int(job.tableStart[e]), count: Int(job.positions[e]) + 1)
                        }
                        a.heads(layer: job.layer, cache: cache, q: job.q + t * width + h0 * a.headDim, first: h0,
                                count: job.headsPerItem, position: Int(job.positions[t]), table: table,
                                out: job.out + t * width + h0 * a.headDim, thread: participant, window: job.window)
                    } else {
                        for h in h0..<(h0 + job.headsPerItem) {
                            a.tokens(layer: job.layer, cache: cache, q: job.q + t * width + h * a.headDim, stride: width,
                                     count: e - t, head: h, position: Int(job.positions[t]), table: table,
                                     out: job.out + t * width + h * a.headDim, thread: participant)
                        }
                    }
                    t = e
                }
            }
        }
    }

    /// Query head `h` of `count` consecutive tokens of one sequence at positions `position ..< position + count`
    /// (full causal attention, no window): q and out rows `stride` floats apart. The scores of all are computed
    /// over the last one's positions, each row's softmax over its own, the weights past it set to zero, so every
    /// row gets the float operations of `heads` for that token alone.
    fileprivate func tokens(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, stride: Int, count rows: Int,
                            head h: Int, position: Int, table: UnsafePointer<Int32>, out: UnsafeMutablePointer<Float>,
                            thread: Int) {
        precondition(position + rows <= maxContext, "position \(position + rows - 1) beyond the KV cache capacity \(maxContext)")
        attend(layer: layer, cache: cache, q: q, stride: stride, rows: rows, kvHead: h / group, table: table,
               count: position + rows, masked: 0, step: 1, out: out, thread: thread)
    }

    /// Query heads `first ..< first + count` of one token (all under one KV head): q and out `[count, headDim]`.
    fileprivate func heads(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, first h0: Int, count g: Int,
                           position: Int, table: UnsafePointer<Int32>, out: UnsafeMutablePointer<Float>, thread: Int,
                           window: Int = 0) {
        precondition(position + 1 <= maxContext, "position \(position) beyond the KV cache capacity \(maxContext)")
        // With a window, start at the block holding the first visible position and mask the ones before it.
        let first = window > 0 ? max(0, position - window + 1) : 0
        let firstBlock = first / cache.blockSize
        let start = firstBlock * cache.blockSize
        attend(layer: layer, cache: cache, q: q, stride: headDim, rows: g, kvHead: h0 / group, table: table + firstBlock,
               count: position + 1 - start, masked: first - start, step: 0, out: out, thread: thread)
    }

    /// Hints into L2 the K and V rows of KV head `kvHead` at the first `count` positions of the block table `table`
    /// when they are short (K plus V ≤ `prefetchBytes`): a decode step's contexts are scattered through the pool, and
    /// the kernels would otherwise meet their rows one DRAM miss at a time. An item hints its next token's rows
    /// before computing the current one's, and each token's own before its scores (a no-op when already cached).
    fileprivate func prefetch(layer: Int, cache: PagedKVCache, kvHead: Int, table: UnsafePointer<Int32>, count n: Int) {
        let rowBytes = headDim * cache.type.elementSize
        guard 2 * n * rowBytes <= Self.prefetchBytes else { return }
        let headOffset = kvHead * headDim * cache.type.elementSize
        PagedAttentionKernels.prefetch(rows: cache.keys(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                       blockTable: table, blockSize: cache.blockSize, count: n, rowBytes: rowBytes)
        PagedAttentionKernels.prefetch(rows: cache.values(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                       blockTable: table, blockSize: cache.blockSize, count: n, rowBytes: rowBytes)
    }

    /// Attention of `rows` query rows (q and out rows `stride` floats apart) under KV head `kvHead` over the first
    /// `count` positions of the block table `table`: row r masks the first `masked` positions and sees the first
    /// `count - (rows - 1 - r) * step` (step 0: query heads of one token; step 1: consecutive tokens of one
    /// sequence, the last seeing all `count`); the weights past a row's own positions are zero.
    private func attend(layer: Int, cache: PagedKVCache, q: UnsafePointer<Float>, stride: Int, rows: Int, kvHead: Int,
                        table: UnsafePointer<Int32>, count n: Int, masked: Int, step: Int, out: UnsafeMutablePointer<Float>,
                        thread: Int) {
        let d = headDim
        let s = scores.pointer + thread * rowsPerItem * maxContext
        let kv = cache.type.kernelElement
        let headOffset = kvHead * d * cache.type.elementSize
        var qp = q, qStride = stride
        if cache.type == .f16 {   // llama.cpp converts the query to f16 for its f16·f16 K product
            let qv = query.pointer + thread * rowsPerItem * d
            for r in 0..<rows {
                (qv + r * d).update(from: q + r * stride, count: d)
                Half.round(qv + r * d, count: d)
            }
            qp = UnsafePointer(qv)
            qStride = d
        }
        prefetch(layer: layer, cache: cache, kvHead: kvHead, table: table, count: n)
        PagedAttentionKernels.scores(kv, queries: qp, queryStride: qStride, heads: rows, d: d,
                                     keys: cache.keys(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                     blockTable: table, blockSize: cache.blockSize, count: n, scale: scale,
                                     into: s, scoreStride: maxContext)                   // [rows, n]
        for r in 0..<rows {
            let row = s + r * maxContext
            let own = n - (rows - 1 - r) * step
            for i in 0..<masked { row[i] = -.infinity }
            Ops.softmax(row, n: own)
            for i in own..<n { row[i] = 0 }
        }
        PagedAttentionKernels.values(kv, weights: s, weightStride: maxContext, heads: rows, d: d,
                                     values: cache.values(layer: layer) + headOffset, slotBytes: cache.slotBytes,
                                     blockTable: table, blockSize: cache.blockSize, count: n,
                                     into: out, outStride: stride)                       // [rows, headDim]
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
    let count: Int
    let window: Int
    /// Query heads per work item: 1, or all `numHeads / numKVHeads` of a KV head.
    let headsPerItem: Int
    /// Tokens per work item: 1, or up to `PagedAttention.tokensPerItem`.
    let tokensPerItem: Int
}
