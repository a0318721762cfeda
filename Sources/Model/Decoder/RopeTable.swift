// Rotary position embedding tables: inverse frequencies (plain, Llama 3.1 `rope_freqs`, linear position scale,
// YaRN) and the per-chunk cos/sin rows every rotated head reads.
// Sources: RoFormer (Su et al. 2021) §3.2.2–3.4; YaRN (Peng et al. 2023) §3.2 NTK-by-parts; HF
// `modeling_rope_utils` (`_compute_default_rope_parameters`, `_compute_yarn_parameters`); ggml `rope_yarn`.
import Compute
import Foundation

/// cos/sin `[maxTokens, dim / 2]` of one chunk's positions for one set of inverse frequencies (sized at load).
final class RopeTable {
    /// `[dim / 2]` inverse frequencies.
    let invFreq: [Double]
    /// Position multiplier (1 / linear scaling factor; 1 = none).
    let positionScale: Double
    /// Rotated width / 2.
    let half: Int
    private let cosBuf: ScratchBuffer   // [T, dim / 2]
    private let sinBuf: ScratchBuffer   // [T, dim / 2]

    init(invFreq: [Double], positionScale: Double = 1, maxTokens: Int) {
        self.invFreq = invFreq
        self.positionScale = positionScale
        half = invFreq.count
        cosBuf = ScratchBuffer(count: maxTokens * half)
        sinBuf = ScratchBuffer(count: maxTokens * half)
    }

    /// Fills rows 0..<n for `positions[0..<n]`: angle_i = (position · positionScale) · invFreq[i].
    func fill(_ positions: UnsafePointer<Int32>, n: Int) {
        invFreq.withUnsafeBufferPointer { f in
            for t in 0..<n {
                let p = Double(positions[t]) * positionScale
                for i in 0..<half {
                    cosBuf.pointer[t * half + i] = Float(Foundation.cos(p * f[i]))
                    sinBuf.pointer[t * half + i] = Float(Foundation.sin(p * f[i]))
                }
            }
        }
    }

    /// Rotates the `numHeads` heads `[numHeads, headDim]` at x by token t's row (`headDim` = 2 · half).
    @inline(__always)
    func rotate(_ x: UnsafeMutablePointer<Float>, numHeads: Int, token t: Int, mode: Ops.RopeMode) {
        Ops.rope(x, numHeads: numHeads, headDim: 2 * half, cos: cosBuf.pointer + t * half, sin: sinBuf.pointer + t * half,
                 mode: mode)
    }

    /// Plain inverse frequencies θ^(-2i/dim), each divided by `factors[i]` when given (Llama 3.1 long-context
    /// `rope_freqs.weight` `[dim / 2]`, llama.cpp `build_rope_factors`).
    static func frequencies(dim: Int, theta: Double, factors: UnsafePointer<Float>? = nil) -> [Double] {
        var f = Ops.ropeInverseFrequencies(headDim: dim, theta: theta)
        if let factors { for i in 0..<f.count { f[i] /= Double(factors[i]) } }
        return f
    }

    /// YaRN inverse frequencies `[dim / 2]` (Peng et al. 2023, "YaRN", NTK-by-parts interpolation; HF
    /// `_compute_yarn_parameters` with truncation; ggml `rope_yarn` with ext_factor 1): a linear ramp between the
    /// correction dims of `betaFast` and `betaSlow` mixes extrapolated (base^(-2i/d)) and interpolated
    /// (base^(-2i/d) / factor) frequencies.
    static func yarnFrequencies(dim: Int, base: Double, factor: Double, originalContext: Int,
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
}
