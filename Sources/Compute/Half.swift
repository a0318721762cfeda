import CKernels

/// IEEE binary16 conversions (round to nearest even, as ggml's `GGML_FP32_TO_FP16`), for f16 KV caches and the
/// f16-activation policy. Rows use the F16C kernels where the CPU has them.
public enum Half {
    /// `x` rounded to the nearest f16 and back.
    @inline(__always) public static func round(_ x: Float) -> Float { ck_fp16_to_fp32(ck_fp32_to_fp16(x)) }

    /// `x[0..<count]` each rounded to the nearest f16 and back, in place (as `round`, with the F16C kernel where the
    /// CPU has one).
    @inline(__always)
    public static func round(_ x: UnsafeMutablePointer<Float>, count: Int) { ck_fp16_round_row(x, Int64(count)) }

    /// The float value of the f16 bit pattern `h`.
    @inline(__always) public static func decode(_ h: UInt16) -> Float { ck_fp16_to_fp32(h) }

    /// `y[0..<count]` = f16 bit patterns of `x[0..<count]`.
    @inline(__always)
    public static func encode(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<UInt16>, count: Int) {
        ck_fp32_to_fp16_row(x, y, Int64(count))
    }

    /// `y[0..<count]` = float values of the f16 bit patterns `x[0..<count]`.
    @inline(__always)
    public static func decode(_ x: UnsafePointer<UInt16>, to y: UnsafeMutablePointer<Float>, count: Int) {
        ck_fp16_to_fp32_row(x, y, Int64(count))
    }
}

/// bfloat16 conversions (float32's top 16 bits, rounded to nearest even as ggml's `GGML_FP32_TO_BF16`), for bf16
/// KV caches.
public enum BFloat16 {
    /// `y[0..<count]` = bf16 bit patterns of `x[0..<count]`.
    @inline(__always)
    public static func encode(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<UInt16>, count: Int) {
        ck_fp32_to_bf16_row(x, y, Int64(count))
    }

    /// `y[0..<count]` = float values of the bf16 bit patterns `x[0..<count]` (exact).
    @inline(__always)
    public static func decode(_ x: UnsafePointer<UInt16>, to y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Float(bitPattern: UInt32(x[i]) << 16) }
    }
}

/// The paged-attention kernels over a block table: the query rows of the heads that share one KV head against
/// the K (or V) rows a sequence holds in the KV pool. Slot `p` of a sequence lives at
/// `base + (table[p / blockSize] * blockSize + p % blockSize) * slotBytes`. Source: the attention of llama.cpp's
/// non-flash path (`ggml_compute_forward_soft_max` around `ggml_mul_mat` of K and V), vLLM's paged attention for the
/// addressing.
public enum PagedAttentionKernels {
    /// Element type of the cached rows. With `bf16` the kernels round the queries and the attention weights to bf16
    /// and multiply in bf16 pairs (`ckernels.h`, "attention over a paged KV cache"); d % 16 == 0, d ≤ 1024.
    public enum Element: Sendable { case f16, f32, bf16 }

    /// Whether the kernels take a bf16 cache of `d`-wide rows (d % 16 == 0, d ≤ `CK_ATTN_BF16_MAX_D`).
    public static func bf16Supports(headSize d: Int) -> Bool { d > 0 && d % 16 == 0 && d <= Int(CK_ATTN_BF16_MAX_D) }

    @inline(__always) static func code(_ e: Element) -> Int32 {
        switch e {
        case .f16: return Int32(CK_F16.rawValue)
        case .f32: return Int32(CK_F32.rawValue)
        case .bf16: return Int32(CK_BF16.rawValue)
        }
    }

    /// Grouped-query scores: `scores[h × scoreStride + p] = scale × dot(q + h × queryStride, K_p)` for the `heads`
    /// query heads that share one KV head (each K row read once), positions `p` in `0..<count`. Per head the same
    /// float operations as one head alone (`ck_attn_scores_avx2`, the g = 1 case; same results).
    /// `q`: `[heads, queryStride]`; `scores`: `[heads, scoreStride]`.
    @inline(__always)
    public static func scores(_ element: Element, queries q: UnsafePointer<Float>, queryStride: Int, heads: Int, d: Int,
                              keys: UnsafeRawPointer, slotBytes: Int, blockTable: UnsafePointer<Int32>, blockSize: Int,
                              count: Int, scale: Float, into scores: UnsafeMutablePointer<Float>, scoreStride: Int) {
        ck_attn_scores_gqa(code(element), q, Int64(queryStride), Int64(heads), Int64(d), keys, slotBytes, blockTable,
                           Int64(blockSize), Int64(count), scale, scores, Int64(scoreStride))
    }

    /// Grouped-query values: `out[h × outStride + i] = Σ_p w[h × weightStride + p] × V_p[i]` for `heads` heads
    /// sharing one KV head (each V row read once); per head as one head alone (same results; with an f16 cache each
    /// weight is first rounded to f16, as llama.cpp multiplies f16 V by f16-converted weights). `w`: `[heads,
    /// weightStride]`; `out`: `[heads, outStride]`.
    @inline(__always)
    public static func values(_ element: Element, weights w: UnsafePointer<Float>, weightStride: Int, heads: Int, d: Int,
                              values: UnsafeRawPointer, slotBytes: Int, blockTable: UnsafePointer<Int32>, blockSize: Int,
                              count: Int, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        ck_attn_values_gqa(code(element), w, Int64(weightStride), Int64(heads), Int64(d), values, slotBytes, blockTable,
                           Int64(blockSize), Int64(count), out, Int64(outStride))
    }

    /// Hints into L2 the first `rowBytes` bytes of the rows of positions `0..<count` (addressed as in `scores`), so
    /// that a short context's scattered rows are fetched together before the kernels walk them one by one.
    @inline(__always)
    public static func prefetch(rows base: UnsafeRawPointer, slotBytes: Int, blockTable: UnsafePointer<Int32>,
                                blockSize: Int, count: Int, rowBytes: Int) {
        ck_prefetch_paged_rows(base, slotBytes, blockTable, Int64(blockSize), Int64(count), rowBytes)
    }
}

/// The 8-bit MLA latent cache's kernels (`ckernels.h`, "8-bit MLA latent cache"): rows of `latentRank` (kv_lora_rank,
/// the compressed c^KV) + `rope` (the RoPE key k^R) values kept as int8 twice, in tiles of 16 slots, in the layouts
/// of VPDPBUSD scores and values; queries and attention weights are quantized to unsigned bytes per head. The
/// AVX512-VNNI build where the CPU has it, the scalar twins elsewhere (the same bits). Source of the attention form:
/// DeepSeek-V2 (arXiv 2405.04434) §2.1.3, weight absorption, every head reading the same latent rows.
public enum MLAQ8Kernels {
    /// Whether the kernels take rows of these widths: latentRank % 16 == 0, rope % 4 == 0 in 4...256, the sum
    /// at most `CK_MLA_Q8_MAX_D`.
    public static func supports(latentRank: Int, rope: Int) -> Bool {
        latentRank > 0 && latentRank % 16 == 0 && rope >= 4 && rope <= 256 && rope % 4 == 0
            && latentRank + rope <= Int(CK_MLA_Q8_MAX_D)
    }

    /// Bytes per cache slot (a 16-slot tile's bytes / 16): the two int8 copies and the scales.
    public static func slotBytes(latentRank: Int, rope: Int) -> Int {
        ck_mla_q8_tile_bytes(Int64(latentRank), Int64(rope)) / Int(CK_MLA_Q8_TILE)
    }

    /// Quantizes `row` [latentRank + rope] into slot `slot` of the layer at `base`.
    @inline(__always)
    public static func store(_ row: UnsafePointer<Float>, latentRank: Int, rope: Int, base: UnsafeMutableRawPointer,
                             slotBytes: Int, slot: Int) {
        ck_mla_q8_store(row, Int64(latentRank), Int64(rope), base, slotBytes, Int64(slot))
    }

    /// out [latentRank + rope] = the dequantized row of slot `slot`.
    public static func loadRow(base: UnsafeRawPointer, slotBytes: Int, slot: Int, latentRank: Int, rope: Int,
                               into out: UnsafeMutablePointer<Float>) {
        ck_mla_q8_load_row(base, slotBytes, Int64(slot), Int64(latentRank), Int64(rope), out)
    }

    /// `scores[h × scoreStride + p] = scale × q̃_h · row_p` for `heads` query heads (`q` `[heads, queryStride]`, each
    /// latentRank + rope floats), positions `p` in `0..<count` through `blockTable` (blocks of `blockSize` slots, a
    /// multiple of 16).
    @inline(__always)
    public static func scores(queries q: UnsafePointer<Float>, queryStride: Int, heads: Int, latentRank: Int, rope: Int,
                              base: UnsafeRawPointer, slotBytes: Int, blockTable: UnsafePointer<Int32>, blockSize: Int,
                              count: Int, scale: Float, into scores: UnsafeMutablePointer<Float>, scoreStride: Int) {
        ck_mla_q8_scores(q, Int64(queryStride), Int64(heads), Int64(latentRank), Int64(rope), base, slotBytes, blockTable,
                         Int64(blockSize), Int64(count), scale, scores, Int64(scoreStride))
    }

    /// `out[h × outStride + i] = Σ_p w[h × weightStride + p] × c_p[i]` for `heads` heads, the latent values `i` in
    /// `0..<latentRank`, positions as in `scores` (`w`: softmax weights, ≥ 0).
    @inline(__always)
    public static func values(weights w: UnsafePointer<Float>, weightStride: Int, heads: Int, latentRank: Int, rope: Int,
                              base: UnsafeRawPointer, slotBytes: Int, blockTable: UnsafePointer<Int32>, blockSize: Int,
                              count: Int, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        ck_mla_q8_values(w, Int64(weightStride), Int64(heads), Int64(latentRank), Int64(rope), base, slotBytes,
                         blockTable, Int64(blockSize), Int64(count), out, Int64(outStride))
    }
}
