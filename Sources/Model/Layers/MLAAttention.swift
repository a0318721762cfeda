// Multi-head Latent Attention (MLA) over a paged latent KV cache.
//
// Sources: DeepSeek-V2 paper §2.1 (low-rank KV joint compression c^KV = W^DKV h, decoupled RoPE key
// k^R = RoPE(W^KR h) shared by all heads, optional low-rank query compression; "absorb W^UK into W^Q and
// W^UV into W^O" for inference); llama.cpp src/models/deepseek2.cpp (is_mla branch: `wk_b` absorbed into q_nope,
// `wv_b` applied to the attention-weighted latent); HF modeling_deepseek_v3.py `DeepseekV3Attention` (expanded form).
//
// NOTE: cache row of one token in one layer (a single "KV head" of kvLoraRank + qkRopeHeadDim values):
// ```
// │ c^KV = RMSNorm(kv_a[:kvLora]) (kvLoraRank) │ k^R = RoPE(kv_a[kvLora:]) (qkRopeHeadDim) │
// ```
// Absorbed attention per head h (q^C_h = q_nope, q^R_h = q_pe):
// ```
// q̃_h = [ W^UK_hᵀ q^C_h (kvLoraRank) │ q^R_h (rope) ]    score_j = q̃_h · row_j · scale
// o_h = W^UV_h Σ_j softmax(score)_j c^KV_j              (v_head_dim)
// ```
// The expanded reference instead materialises k_h,j = [W^UK_h c_j │ k^R_j] and v_h,j = W^UV_h c_j per position.
import Compute
import Foundation

/// Per-layer MLA sizes (GGUF `deepseek2.attention.*`).
struct MLADims {
    let numHeads: Int
    /// Query compression rank; 0 = no compression (`attn_q` used directly, DeepSeek-V2-Lite).
    let qLoraRank: Int
    let kvLoraRank: Int
    let nope: Int
    let rope: Int
    let v: Int
    /// Width of one query head `nope + rope`.
    var qHead: Int { nope + rope }
    /// Width of a latent cache row `kvLoraRank + rope`.
    var cacheRow: Int { kvLoraRank + rope }
}

/// Weights of one MLA block (GGUF `blk.N.attn_*`).
struct MLAWeights {
    let wqA: WeightMatrix?                 // [qLora, embd]
    let qANorm: UnsafePointer<Float>?      // [qLora]
    let wqB: WeightMatrix?                 // [H * qHead, qLora]
    let wq: WeightMatrix?                  // [H * qHead, embd] (no query compression)
    let wkvA: WeightMatrix                 // [kvLora + rope, embd]
    let kvANorm: UnsafePointer<Float>      // [kvLora]
    let kB: [WeightMatrix]                 // per head [kvLora, nope] = W^UK_hᵀ (q_nope → latent)
    let vB: [WeightMatrix]                 // per head [v, kvLora] = W^UV_h
    let wo: WeightMatrix                   // [embd, H * v]
    /// Transposed float copies made for the fused `attn_kv_b` layout (kept alive here).
    let owned: [ScratchBuffer]

    /// Loads `blk.<layer>.` attention weights. Uses `attn_q_a`/`attn_q_b` when present, else `attn_q`; the split
    /// `attn_k_b`/`attn_v_b` when present, else the fused `attn_kv_b` (ne `[kvLora, H * (nope + v)]`).
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    static func load(_ c: inout ModelContext, layer: Int, dims d: MLADims) throws -> MLAWeights {
        let p = "blk.\(layer).", embd = c.keys.embd
        let H = d.numHeads
        var wqA: WeightMatrix?, qANorm: UnsafePointer<Float>?, wqB: WeightMatrix?, wq: WeightMatrix?
        if d.qLoraRank > 0 {
            wqA = try c.tensors.weight(p + "attn_q_a.weight", rows: d.qLoraRank, cols: embd)
            qANorm = try c.tensors.vector(p + "attn_q_a_norm.weight", count: d.qLoraRank)
            wqB = try c.tensors.weight(p + "attn_q_b.weight", rows: H * d.qHead, cols: d.qLoraRank)
        } else {
            wq = try c.tensors.weight(p + "attn_q.weight", rows: H * d.qHead, cols: embd)
        }
        var kB: [WeightMatrix] = [], vB: [WeightMatrix] = [], owned: [ScratchBuffer] = []
        if c.tensors.has(p + "attn_k_b.weight") {
            kB = try c.tensors.slices(p + "attn_k_b.weight", count: H, rows: d.kvLoraRank, cols: d.nope)
            vB = try c.tensors.slices(p + "attn_v_b.weight", count: H, rows: d.v, cols: d.kvLoraRank)
        } else {
            let kvB = try c.tensors.matrix(p + "attn_kv_b.weight", rows: H * (d.nope + d.v), cols: d.kvLoraRank)
            let row = ScratchBuffer(count: d.kvLoraRank)
            for h in 0..<H {
                let base = h * (d.nope + d.v)
                // W^UK_h rows [nope, kvLora] → transposed float copy [kvLora, nope].
                let t = ScratchBuffer(count: d.kvLoraRank * d.nope)
                for i in 0..<d.nope {
                    kvB.dequantizeRow(base + i, into: row.pointer)
                    for j in 0..<d.kvLoraRank { t.pointer[j * d.nope + i] = row.pointer[j] }
                }
                owned.append(t)
                kB.append(WeightMatrix(type: .f32, data: UnsafeRawPointer(t.pointer), rows: d.kvLoraRank, cols: d.nope))
                vB.append(WeightMatrix(type: kvB.type, data: kvB.data + (base + d.nope) * kvB.rowBytes,
                                       rows: d.v, cols: d.kvLoraRank))
            }
        }
        return MLAWeights(
            wqA: wqA, qANorm: qANorm, wqB: wqB, wq: wq,
            wkvA: try c.tensors.weight(p + "attn_kv_a_mqa.weight", rows: d.cacheRow, cols: embd),
            kvANorm: try c.tensors.vector(p + "attn_kv_a_norm.weight", count: d.kvLoraRank),
            kB: kB, vB: vB,
            wo: try c.tensors.weight(p + "attn_output.weight", rows: embd, cols: H * d.v),
            owned: owned)
    }
}

/// Computes MLA for a chunk of tokens: projections, RoPE on the decoupled part, latent cache write, attention.
final class MLAAttention {
    let dims: MLADims
    let eps: Float
    /// Softmax scale (mscale² / sqrt(nope + rope) with YaRN, else 1 / sqrt(nope + rope)).
    let scale: Float
    private let matmul: RoundingMatmul
    private let pool: ThreadPool
    private let threads: Int
    private(set) var maxContext: Int

    private let qa: ScratchBuffer      // [T, qLora]
    private let q: ScratchBuffer       // [T, H * qHead]
    private let kva: ScratchBuffer     // [T, kvLora + rope]
    private let qn: ScratchBuffer      // [T, max(nope, kvLora)] one head's q_nope / latent output, gathered
    private let tmp: ScratchBuffer     // [T, max(kvLora, v)] one head's matmul output
    private let qFull: ScratchBuffer   // [T, H, kvLora + rope] absorbed queries
    private let oLat: ScratchBuffer    // [T, H, kvLora] attention-weighted latents
    private var scores: ScratchBuffer  // [threads, maxHeadsPerItem, maxContext]
    private let partial: ScratchBuffer // [threads, H, kvLora] a q8_0 decode's per-thread sums over its positions
    /// Most query heads one attention work item runs together over the latent rows (each row read once for them).
    static let maxHeadsPerItem = 16

    /// Scratch for `c.maxTokens` tokens of MLA blocks of `dims`; `scale` multiplies the scores.
    init(_ c: ModelContext, dims: MLADims, scale: Float) {
        let T = c.maxTokens
        self.dims = dims
        eps = c.keys.eps
        self.scale = scale
        matmul = c.matmul
        pool = c.matmul.pool
        threads = pool.threadCount
        maxContext = c.initialContext
        let H = dims.numHeads
        qa = ScratchBuffer(count: T * max(dims.qLoraRank, 1))
        q = ScratchBuffer(count: T * H * dims.qHead)
        kva = ScratchBuffer(count: T * dims.cacheRow)
        qn = ScratchBuffer(count: T * max(dims.nope, dims.kvLoraRank))
        tmp = ScratchBuffer(count: T * max(dims.kvLoraRank, dims.v))
        qFull = ScratchBuffer(count: T * H * dims.cacheRow)
        oLat = ScratchBuffer(count: T * H * dims.kvLoraRank)
        scores = ScratchBuffer(count: threads * Self.maxHeadsPerItem * maxContext)
        partial = ScratchBuffer(count: c.options.kvCacheType == .q8_0 ? threads * H * dims.kvLoraRank : 1)
    }

    /// Makes room for contexts of `tokens` positions (allocates only when a larger cache than before is used).
    func reserve(contextLength tokens: Int) {
        if tokens <= maxContext { return }
        maxContext = tokens
        scores = ScratchBuffer(count: threads * Self.maxHeadsPerItem * tokens)
    }

    /// Query heads per attention work item for `tokens` tokens on `threads` threads: every head of a token reads
    /// the same latent rows (one "KV head"), so a work item runs as many heads as keep every thread busy — the
    /// largest divisor g of `heads`, at most `maxHeadsPerItem`, with `tokens × heads / g ≥ threads` items (else 1).
    static func headsPerItem(heads: Int, tokens: Int, threads: Int) -> Int {
        var g = min(maxHeadsPerItem, heads)
        while g > 1 && (heads % g != 0 || tokens * (heads / g) < threads) { g -= 1 }
        return g
    }

    /// out `[n, H * v]` = MLA of normed input x `[n, embd]` for the chunk's tokens (RoPE of the decoupled part from
    /// `rope`, filled for the chunk); writes each token's latent row to its slot of `layer`. `expanded` selects the
    /// materialised-K/V reference instead of the absorbed form.
    func run(_ w: MLAWeights, layer: Int, x: UnsafePointer<Float>, rope: RopeTable, _ s: Step, expanded: Bool,
             out: UnsafeMutablePointer<Float>) {
        let n = s.n, cache = s.cache, positions = s.positions, tables = s.tables, tableStart = s.tableStart
        let d = dims, H = d.numHeads, row = d.cacheRow
        let q = q.pointer, kva = kva.pointer
        // Projections.
        if let wqA = w.wqA, let wqB = w.wqB, let qn = w.qANorm {
            matmul(x, numTokens: n, wqA, qa.pointer, w.wkvA, kva)        // qa [n, qLora], kva [n, kvLora + rope]
            Ops.rmsNorm(qa.pointer, weight: qn, eps: eps, n: d.qLoraRank, count: n, out: qa.pointer)
            matmul(qa.pointer, numTokens: n, wqB, q)                      // [n, H * qHead]
        } else {
            matmul(x, numTokens: n, w.wq!, q, w.wkvA, kva)                // q [n, H * qHead], kva [n, kvLora + rope]
        }
        for t in 0..<n {
            let kv = kva + t * row
            Ops.rmsNorm(kv, weight: w.kvANorm, eps: eps, n: d.kvLoraRank, out: kv)              // c^KV [kvLora]
            rope.rotate(kv + d.kvLoraRank, numHeads: 1, token: t, mode: .norm)                  // k^R [rope]
            for h in 0..<H {
                rope.rotate(q + t * H * d.qHead + h * d.qHead + d.nope, numHeads: 1, token: t, mode: .norm)  // q^R_h [rope]
            }
        }
        store(layer: layer, cache: cache, slots: s.slots, n: n)
        if expanded {
            expandedAttention(w, layer: layer, n: n, cache: cache, positions: positions, tables: tables,
                              tableStart: tableStart, out: out)
            return
        }
        // Absorb W^UK into the query: q̃_h = [kB_h · q_nope_h │ q_pe_h].          qFull [n, H, kvLora + rope]
        let qFull = qFull.pointer, qHead = d.qHead, nope = d.nope, kvLora = d.kvLoraRank, ropeDim = d.rope
        headMatmuls(w.kB, n: n, input: { h, t -> UnsafePointer<Float> in UnsafePointer(q + (t * H + h) * qHead) }) {
            (h: Int, t: Int, k: UnsafePointer<Float>) in                                          // kB_h · q_nope_h
            let dst: UnsafeMutablePointer<Float> = qFull + (t * H + h) * row
            dst.update(from: k, count: kvLora)
            (dst + kvLora).update(from: q + (t * H + h) * qHead + nope, count: ropeDim)
        }
        // With an f16 cache llama.cpp multiplies f16 K by the query converted to f16; do the same.
        if cache.type == .f16 {
            Half.round(qFull, count: n * H * row)
        }
        if cache.type == .q8_0 {
            q8Attention(layer: layer, n: n, cache: cache, positions: positions, tables: tables, tableStart: tableStart,
                        qFull: qFull)
        } else {
            let kvType = cache.type.kernelElement, keys = UnsafeRawPointer(cache.keys(layer: layer))
            headGroupAttention(n: n, positions: positions, tables: tables, tableStart: tableStart, qFull: qFull) {
                q, g, table, ctx, s, stride, o in
                PagedAttentionKernels.scores(kvType, queries: q, queryStride: row, heads: g, d: row, keys: keys,
                                             slotBytes: cache.slotBytes, blockTable: table, blockSize: cache.blockSize,
                                             count: ctx, scale: self.scale, into: s, scoreStride: stride)
                for r in 0..<g { Ops.softmax(s + r * stride, n: ctx) }
                PagedAttentionKernels.values(kvType, weights: s, weightStride: stride, heads: g, d: kvLora, values: keys,
                                             slotBytes: cache.slotBytes, blockTable: table, blockSize: cache.blockSize,
                                             count: ctx, into: o, outStride: kvLora)
            }
        }
        // o_h = W^UV_h · oLat_h.                                                 out [n, H * v]
        let lat = oLat.pointer, v = d.v
        headMatmuls(w.vB, n: n, input: { h, t -> UnsafePointer<Float> in UnsafePointer(lat + (t * H + h) * kvLora) }) {
            (h: Int, t: Int, o: UnsafePointer<Float>) in
            (out + (t * H + h) * v).update(from: o, count: v)
        }
    }

    /// oLat `[n, H, kvLora]` = attention of the absorbed queries qFull `[n, H, kvLora + rope]` over the latent rows,
    /// in work items of g heads of one token, which read each latent row once (the grouped kernels: per head the same
    /// float operations as one head alone). `attend(q, g, table, ctx, s, stride, out)` runs one item: the g query rows
    /// q `[g, kvLora + rope]` of a token whose context is `ctx` positions through block table `table`, its scratch s
    /// `[g, stride]` for scores and weights, its output rows out `[g, kvLora]`.
    private func headGroupAttention(n: Int, positions: UnsafePointer<Int32>, tables: UnsafePointer<Int32>,
                                    tableStart: UnsafePointer<Int32>, qFull: UnsafeMutablePointer<Float>,
                                    attend: (UnsafePointer<Float>, Int, UnsafePointer<Int32>, Int,
                                             UnsafeMutablePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void) {
        let d = dims, H = d.numHeads, row = d.cacheRow
        let g = Self.headsPerItem(heads: H, tokens: n, threads: threads), groups = H / g
        let started = StepProfile.now()
        pool.forEach(n * groups) { item, participant in
            let t = item / groups, h0 = (item % groups) * g
            let ctx = Int(positions[t]) + 1
            let stride = self.maxContext
            precondition(ctx <= stride, "position \(ctx - 1) beyond the KV cache capacity \(stride)")
            let s = self.scores.pointer + participant * Self.maxHeadsPerItem * stride          // [g, maxContext]
            attend(qFull + (t * H + h0) * row, g, tables + Int(tableStart[t]), ctx, s, stride,
                   self.oLat.pointer + (t * H + h0) * d.kvLoraRank)                            // [g, kvLora]
        }
        StepProfile.add(.attention, since: started)
    }

    /// oLat `[n, H, kvLora]` = attention of the absorbed queries qFull `[n, H, kvLora + rope]` over the latent rows
    /// of a q8_0 cache (`MLAQ8Kernels`): one token's decode split by positions between the threads from 256 positions
    /// per thread (`q8DecodeSplit`), else the head-group items of `headGroupAttention`.
    private func q8Attention(layer: Int, n: Int, cache: PagedKVCache, positions: UnsafePointer<Int32>,
                             tables: UnsafePointer<Int32>, tableStart: UnsafePointer<Int32>,
                             qFull: UnsafeMutablePointer<Float>) {
        let d = dims, H = d.numHeads, row = d.cacheRow, kvLora = d.kvLoraRank, ropeDim = d.rope
        precondition(cache.blockSize % 16 == 0, "a q8_0 KV cache needs blocks of a multiple of 16 slots")
        let base = UnsafeRawPointer(cache.keys(layer: layer))
        if n == 1 && threads > 1 && H <= threads * Self.maxHeadsPerItem && Int(positions[0]) + 1 >= 256 * threads {
            q8DecodeSplit(layer: layer, cache: cache, ctx: Int(positions[0]) + 1, table: tables + Int(tableStart[0]),
                          qFull: qFull)
            return
        }
        headGroupAttention(n: n, positions: positions, tables: tables, tableStart: tableStart, qFull: qFull) {
            q, g, table, ctx, s, stride, o in
            MLAQ8Kernels.scores(queries: q, queryStride: row, heads: g, latentRank: kvLora, rope: ropeDim, base: base,
                                slotBytes: cache.slotBytes, blockTable: table, blockSize: cache.blockSize, count: ctx,
                                scale: self.scale, into: s, scoreStride: stride)
            for r in 0..<g { Ops.softmax(s + r * stride, n: ctx) }
            MLAQ8Kernels.values(weights: s, weightStride: stride, heads: g, latentRank: kvLora, rope: ropeDim,
                                base: base, slotBytes: cache.slotBytes, blockTable: table, blockSize: cache.blockSize,
                                count: ctx, into: o, outStride: kvLora)
        }
    }

    /// One token's q8_0 attention split by positions instead of heads (flash-decoding's split of the context): every
    /// thread runs all H heads over its share of the latent rows (whole 128-position pieces), so each row is read from
    /// memory once, by one thread, for every head (split by heads, both threads stream the whole cache). Scores of
    /// every head into `scores` `[H, maxContext]`, one softmax per head over all positions, then each thread's
    /// weighted sums into `partial` `[threads, H, kvLora]`, added into oLat `[H, kvLora]`. The values kernel
    /// quantizes the weights per 64 positions from the first, so the split changes only the order of that final sum.
    private func q8DecodeSplit(layer: Int, cache: PagedKVCache, ctx: Int, table: UnsafePointer<Int32>,
                               qFull: UnsafeMutablePointer<Float>) {
        let d = dims, H = d.numHeads, row = d.cacheRow, kvLora = d.kvLoraRank, ropeDim = d.rope
        let base = UnsafeRawPointer(cache.keys(layer: layer)), bs = cache.blockSize, slotBytes = cache.slotBytes
        let stride = maxContext, parts = threads, s = scores.pointer, part = partial.pointer
        precondition(ctx <= stride, "position \(ctx - 1) beyond the KV cache capacity \(stride)")
        let align = max(128, bs)   // whole blocks and whole 64-position weight chunks
        let started = StepProfile.now()
        pool.forEach(parts) { i, _ in
            let r = ThreadPool.chunk(ctx, parts: parts, index: i, align: align)
            if r.isEmpty { return }
            MLAQ8Kernels.scores(queries: qFull, queryStride: row, heads: H, latentRank: kvLora, rope: ropeDim,
                                base: base, slotBytes: slotBytes, blockTable: table + r.lowerBound / bs, blockSize: bs,
                                count: r.count, scale: self.scale, into: s + r.lowerBound, scoreStride: stride)
        }
        pool.forEach(H) { h, _ in Ops.softmax(s + h * stride, n: ctx) }
        pool.forEach(parts) { i, _ in
            let r = ThreadPool.chunk(ctx, parts: parts, index: i, align: align)
            let out = part + i * H * kvLora
            if r.isEmpty {
                out.update(repeating: 0, count: H * kvLora)
                return
            }
            MLAQ8Kernels.values(weights: s + r.lowerBound, weightStride: stride, heads: H, latentRank: kvLora,
                                rope: ropeDim, base: base, slotBytes: slotBytes, blockTable: table + r.lowerBound / bs,
                                blockSize: bs, count: r.count, into: out, outStride: kvLora)
        }
        let o = oLat.pointer
        o.update(from: part, count: H * kvLora)
        for i in 1..<parts {
            let p = part + i * H * kvLora
            for j in 0..<(H * kvLora) { o[j] += p[j] }
        }
        StepProfile.add(.attention, since: started)
    }

    /// `y_h[n, rows] = x_h[n, cols] · ws[h]ᵀ` for every head h of the per-head matrices `ws` (W^UK or W^UV): token t's
    /// input row of head h is `input(h, t)` (`cols` floats), its output row is handed to `output(h, t, row)`. One
    /// batched pool job for all heads (`Matmul.batched`) when the heads' inputs fit the activation scratch and no f16
    /// rounding or float reference is involved; else one `RoundingMatmul` call per head. Same results either way.
    private func headMatmuls(_ ws: [WeightMatrix], n: Int, input: (Int, Int) -> UnsafePointer<Float>,
                             output: (Int, Int, UnsafePointer<Float>) -> Void) {
        let heads = ws.count, cols = ws[0].cols, rows = ws[0].rows
        let x = qn.pointer, y = tmp.pointer
        if heads * n <= matmul.maxTokens && !matmul.base.floatReference && ws[0].type != .f16 {
            for h in 0..<heads {                                                                  // x [heads, n, cols]
                for t in 0..<n { (x + (h * n + t) * cols).update(from: input(h, t), count: cols) }
            }
            matmul.base.batched(x, numTokens: n, ws, y)                                           // y [heads, n, rows]
            for h in 0..<heads { for t in 0..<n { output(h, t, y + (h * n + t) * rows) } }
            return
        }
        for h in 0..<heads {
            for t in 0..<n { (x + t * cols).update(from: input(h, t), count: cols) }              // x [n, cols]
            matmul(x, numTokens: n, ws[h], y)                                                     // y [n, rows]
            for t in 0..<n { output(h, t, y + t * rows) }
        }
    }

    /// Writes the latent rows kva `[n, kvLora + rope]` to the cache.
    private func store(layer: Int, cache: PagedKVCache, slots: UnsafePointer<Int32>, n: Int) {
        let row = dims.cacheRow
        precondition(cache.numKVHeads * cache.headDim == row, "KV cache rows hold \(cache.numKVHeads * cache.headDim) values, MLA needs \(row)")
        let base = cache.keys(layer: layer)
        for t in 0..<n {
            let slot = Int(slots[t])
            precondition(slot >= 0 && slot < cache.slotCount, "KV slot \(slot) outside the cache")
            if cache.type == .q8_0 {
                precondition(cache.blockSize % 16 == 0, "a q8_0 KV cache needs blocks of a multiple of 16 slots")
                MLAQ8Kernels.store(kva.pointer + t * row, latentRank: dims.kvLoraRank, rope: dims.rope, base: base,
                                   slotBytes: cache.slotBytes, slot: slot)
                continue
            }
            let dst = base + slot * cache.slotBytes
            cache.type.encode(kva.pointer + t * row, to: dst, count: row)
        }
    }

    /// Reference: materialise k_h,j = [W^UK_h c_j │ k^R_j] and v_h,j = W^UV_h c_j for every visible position
    /// (HF `DeepseekV3Attention` form). Serial and allocating: verification only.
    private func expandedAttention(_ w: MLAWeights, layer: Int, n: Int, cache: PagedKVCache,
                                   positions: UnsafePointer<Int32>, tables: UnsafePointer<Int32>,
                                   tableStart: UnsafePointer<Int32>, out: UnsafeMutablePointer<Float>) {
        let d = dims, H = d.numHeads, L = d.kvLoraRank, row = d.cacheRow
        // Float weights: wuk [H, nope, L] (transposed back from kB), wuv [H, v, L].
        var wuk = [Float](repeating: 0, count: H * d.nope * L), wuv = [Float](repeating: 0, count: H * d.v * L)
        var buf = [Float](repeating: 0, count: max(L, d.nope))
        for h in 0..<H {
            for c in 0..<L {
                buf.withUnsafeMutableBufferPointer { w.kB[h].dequantizeRow(c, into: $0.baseAddress!) }
                for i in 0..<d.nope { wuk[(h * d.nope + i) * L + c] = buf[i] }
            }
            for m in 0..<d.v {
                wuv.withUnsafeMutableBufferPointer { w.vB[h].dequantizeRow(m, into: $0.baseAddress! + (h * d.v + m) * L) }
            }
        }
        let keys = cache.keys(layer: layer)
        let q = q.pointer
        for t in 0..<n {
            let ctx = Int(positions[t]) + 1
            let table = tables + Int(tableStart[t])
            // Latent rows of the visible positions as float.                     lat [ctx, kvLora + rope]
            var lat = [Float](repeating: 0, count: ctx * row)
            for j in 0..<ctx {
                let slot = Int(table[j / cache.blockSize]) * cache.blockSize + j % cache.blockSize
                let src = keys + slot * cache.slotBytes
                lat.withUnsafeMutableBufferPointer { l in
                    let dst = l.baseAddress! + j * row
                    if cache.type == .q8_0 {
                        MLAQ8Kernels.loadRow(base: keys, slotBytes: cache.slotBytes, slot: slot, latentRank: L,
                                             rope: d.rope, into: dst)
                    } else {
                        cache.type.decode(src, to: dst, count: row)
                    }
                }
            }
            for h in 0..<H {
                let qh = q + t * H * d.qHead + h * d.qHead
                var s = [Float](repeating: 0, count: ctx)
                for j in 0..<ctx {
                    var dot: Float = 0
                    for i in 0..<d.nope {                                          // k^C_h,j[i] = W^UK_h[i] · c_j
                        var k: Float = 0
                        for c in 0..<L { k += wuk[(h * d.nope + i) * L + c] * lat[j * row + c] }
                        dot += qh[i] * k
                    }
                    for i in 0..<d.rope { dot += qh[d.nope + i] * lat[j * row + L + i] }
                    s[j] = dot * scale
                }
                s.withUnsafeMutableBufferPointer { Ops.softmax($0.baseAddress!, n: ctx) }
                for m in 0..<d.v {                                                 // o_h[m] = Σ_j p_j W^UV_h[m] · c_j
                    var acc: Float = 0
                    for j in 0..<ctx {
                        var vv: Float = 0
                        for c in 0..<L { vv += wuv[(h * d.v + m) * L + c] * lat[j * row + c] }
                        acc += s[j] * vv
                    }
                    out[t * H * d.v + h * d.v + m] = acc
                }
            }
        }
    }
}
