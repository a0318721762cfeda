// Pieces shared by the MoE decoder models (DeepseekV2Model, MoEDecoderModel): batch validation and block-table
// indexing, chunking into `maxBatchTokens`, RoPE angle tables (plain and YaRN) and the LM head over wanted rows;
// and, for every model, the load-time weight preparation (`WeightRepacker.prepare`).
import Compute
import Foundation

/// The MoE models' handle on a `BatchTables` (a class, so the models' `forward` can index without `mutating`).
final class BatchIndex {
    private var t = BatchTables()
    /// `[numTokens]` offset of each token's block table in `tables`.
    var tableStart: [Int32] { t.tableStart }
    /// Concatenated block tables of the batch's sequences.
    var tables: [Int32] { t.tables }

    func index(_ batch: ForwardBatch, cache: PagedKVCache) { t.index(batch, cache: cache) }
}

/// Raw pointers of one batch, valid during `DecoderSupport.chunks`' body.
struct BatchPointers {
    let tokens: UnsafePointer<Int32>
    let positions: UnsafePointer<Int32>
    let slots: UnsafePointer<Int32>
    let tables: UnsafePointer<Int32>
    let tableStart: UnsafePointer<Int32>
}

enum DecoderSupport {
    /// Calls `body(range, pointers)` for consecutive ranges of at most `maxTokens` tokens of the batch.
    static func chunks(_ batch: ForwardBatch, index: BatchIndex, maxTokens: Int, _ body: (Range<Int>, BatchPointers) -> Void) {
        let n = batch.tokens.count
        if n == 0 { return }
        index.tables.withUnsafeBufferPointer { tb in
            index.tableStart.withUnsafeBufferPointer { ts in
                batch.tokens.withUnsafeBufferPointer { tok in
                    batch.positions.withUnsafeBufferPointer { pos in
                        batch.slotMapping.withUnsafeBufferPointer { sl in
                            let p = BatchPointers(tokens: tok.baseAddress!, positions: pos.baseAddress!, slots: sl.baseAddress!,
                                                  tables: tb.baseAddress ?? UnsafePointer(bitPattern: 8)!, tableStart: ts.baseAddress!)
                            var c0 = 0
                            while c0 < n {
                                let c1 = min(n, c0 + max(1, maxTokens))
                                body(c0..<c1, p)
                                c0 = c1
                            }
                        }
                    }
                }
            }
        }
    }

    /// cos/sin `[n, invFreq.count]` for `n` positions: angle = position * invFreq[i].
    static func ropeTable(positions: UnsafePointer<Int32>, n: Int, invFreq: [Double],
                          cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = invFreq.count
        invFreq.withUnsafeBufferPointer { f in
            for t in 0..<n {
                Ops.ropeAngles(position: Int(positions[t]), invFreq: f.baseAddress!, half: half,
                               cos: cos + t * half, sin: sin + t * half)
            }
        }
    }

    /// YaRN inverse frequencies `[dim / 2]` (Peng et al. 2023, "YaRN", NTK-by-parts interpolation; HF
    /// `modeling_rope_utils._compute_yarn_parameters` with truncation; ggml `rope_yarn` with ext_factor 1):
    /// a linear ramp between the correction dims of `betaFast` and `betaSlow` mixes extrapolated (base^(-2i/d))
    /// and interpolated (base^(-2i/d) / factor) frequencies.
    static func yarnInverseFrequencies(dim: Int, base: Double, factor: Double, originalContext: Int,
                                       betaFast: Double, betaSlow: Double) -> [Double] {
        func correctionDim(_ rotations: Double) -> Double {
            Double(dim) * Foundation.log(Double(originalContext) / (rotations * 2 * Double.pi)) / (2 * Foundation.log(base))
        }
        let low = max(Foundation.floor(correctionDim(betaFast)), 0)
        var high = min(Foundation.ceil(correctionDim(betaSlow)), Double(dim - 1))
        if low == high { high += 0.001 }
        return (0..<(dim / 2)).map { i in
            let extrapolated = Foundation.pow(base, -2 * Double(i) / Double(dim))
            let interpolated = extrapolated / factor
            let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
            let extrapolationWeight = 1 - ramp
            return interpolated * (1 - extrapolationWeight) + extrapolated * extrapolationWeight
        }
    }

    /// logits `[logitRows.count, vocab]` rows for the wanted tokens inside `range`: final RMSNorm of the residual
    /// x `[range.count, embd]` into h, then the LM head (consecutive rows through one matmul).
    static func logits(range: Range<Int>, logitRows: [Int], x: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                       outputNorm: UnsafePointer<Float>, eps: Float, embd: Int, vocab: Int, output: WeightMatrix,
                       matmul: RoundingMatmul, logits: UnsafeMutablePointer<Float>) {
        let t0 = range.lowerBound, n = range.count
        var i = 0
        while i < logitRows.count {
            guard range.contains(logitRows[i]) else { i += 1; continue }
            var j = i
            while j < logitRows.count, range.contains(logitRows[j]), j - i < n { j += 1 }
            for r in i..<j {
                Ops.rmsNorm(x + (logitRows[r] - t0) * embd, weight: outputNorm, eps: eps, n: embd, out: h + (r - i) * embd)
            }
            matmul(h, numTokens: j - i, output, logits + i * vocab)                           // [m, vocab]
            i = j
        }
    }
}

extension WeightRepacker {
    /// `w` as the kernels will read it under `options`: copied into huge-page memory (Q4_1/Q8_0 repacked) by
    /// `repack`, or the file mapping's own view when `options.floatReference` (the float path dequantizes rows)
    /// or `!options.repackWeights` (`--no-repack`).
    func prepare(_ w: WeightMatrix, _ options: ModelOptions) -> WeightMatrix {
        options.floatReference || !options.repackWeights ? w : repack(w)
    }
}
