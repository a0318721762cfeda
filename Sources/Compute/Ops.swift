import CKernels
import Foundation

/// Element-wise and row-wise operations of transformer layers over raw float32 memory.
///
/// Each SIMD version has a scalar `_ref` twin (`rmsNormRef`, ...) that tests compare it with.
public enum Ops {
    // MARK: RMSNorm

    /// RMSNorm of `count` rows: `y[r, i] = x[r, i] / sqrt(mean_i(x[r, :]²) + eps) * weight[i]`.
    /// Shapes: x, y `[count, n]` (may alias), weight `[n]`. Source: Zhang & Sennrich 2019 (RMSNorm) §3;
    /// llama.cpp ggml_rms_norm then ggml_mul; HF LlamaRMSNorm. Runs `ck_rms_norm` (sixteen float lanes of fused
    /// multiply-adds; a Swift SIMD16 `addProduct` loop was a libm `fmaf` call per lane, since Swift code is not built
    /// for FMA).
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               n: Int, count: Int = 1, out y: UnsafeMutablePointer<Float>) {
        for r in 0..<count { ck_rms_norm(x + r * n, weight, eps, Int64(n), y + r * n) }
    }

    /// Scalar twin of `rmsNorm` (double accumulation).
    public static func rmsNormRef(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                                  n: Int, count: Int = 1, out y: UnsafeMutablePointer<Float>) {
        for r in 0..<count {
            var sum = 0.0
            for i in 0..<n { sum += Double(x[r * n + i]) * Double(x[r * n + i]) }
            let scale = Float(1 / (sum / Double(n) + Double(eps)).squareRoot())
            for i in 0..<n { y[r * n + i] = x[r * n + i] * scale * weight[i] }
        }
    }

    // MARK: RoPE

    /// Rotary position embedding layouts (llama.cpp `LLAMA_ROPE_TYPE_*`).
    public enum RopeMode: Sendable {
        /// Adjacent pairs (x[2i], x[2i+1]) rotate together (llama.cpp NORM; GGUF `llama`, whose converter permutes
        /// Q/K rows from HF's half-split layout).
        case norm
        /// Halves (x[i], x[i + d/2]) rotate together (llama.cpp NEOX; HF `rotate_half`; qwen2).
        case neox
    }

    /// Fills `cos`/`sin` `[headDim/2]` for one position: angle_i = position * invFreq[i].
    /// `invFreq` `[headDim/2]` = theta^(-2i/headDim) (see `ropeInverseFrequencies`).
    public static func ropeAngles(position: Int, invFreq: UnsafePointer<Double>, half: Int,
                                  cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        for i in 0..<half {
            let a = Double(position) * invFreq[i]
            cos[i] = Float(Foundation.cos(a))
            sin[i] = Float(Foundation.sin(a))
        }
    }

    /// `[headDim/2]` inverse frequencies theta^(-2i/headDim) (RoFormer, Su et al. 2021, §3.2.2).
    public static func ropeInverseFrequencies(headDim: Int, theta: Double) -> [Double] {
        (0..<(headDim / 2)).map { pow(theta, -2.0 * Double($0) / Double(headDim)) }
    }

    /// Rotates `numHeads` heads of one token in place. x `[numHeads, headDim]`, cos/sin `[headDim/2]`.
    public static func rope(_ x: UnsafeMutablePointer<Float>, numHeads: Int, headDim: Int,
                            cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, mode: RopeMode) {
        let half = headDim / 2
        for h in 0..<numHeads {
            let xh = x + h * headDim
            switch mode {
            case .norm:
                for i in 0..<half {
                    let a = xh[2 * i], b = xh[2 * i + 1]
                    xh[2 * i] = a * cos[i] - b * sin[i]
                    xh[2 * i + 1] = a * sin[i] + b * cos[i]
                }
            case .neox:
                var i = 0
                while i + 8 <= half {
                    let a = UnsafeRawPointer(xh + i).loadUnaligned(as: SIMD8<Float>.self)
                    let b = UnsafeRawPointer(xh + i + half).loadUnaligned(as: SIMD8<Float>.self)
                    let c = UnsafeRawPointer(cos + i).loadUnaligned(as: SIMD8<Float>.self)
                    let s = UnsafeRawPointer(sin + i).loadUnaligned(as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(xh + i).storeBytes(of: a * c - b * s, as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(xh + i + half).storeBytes(of: a * s + b * c, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < half {
                    let a = xh[i], b = xh[i + half]
                    xh[i] = a * cos[i] - b * sin[i]
                    xh[i + half] = a * sin[i] + b * cos[i]
                    i += 1
                }
            }
        }
    }

    /// Scalar twin of `rope` computing the angles itself from `position` and `theta`.
    public static func ropeRef(_ x: UnsafeMutablePointer<Float>, numHeads: Int, headDim: Int, position: Int,
                               theta: Double, mode: RopeMode) {
        let half = headDim / 2
        for h in 0..<numHeads {
            for i in 0..<half {
                let angle = Double(position) * pow(theta, -2.0 * Double(i) / Double(headDim))
                let (c, s) = (Float(Foundation.cos(angle)), Float(Foundation.sin(angle)))
                let (ia, ib) = mode == .norm ? (2 * i, 2 * i + 1) : (i, i + half)
                let a = x[h * headDim + ia], b = x[h * headDim + ib]
                x[h * headDim + ia] = a * c - b * s
                x[h * headDim + ib] = a * s + b * c
            }
        }
    }

    // MARK: softmax

    /// In-place softmax of `x[0..<n]` (max-subtracted), through the C kernel (AVX2 polynomial exp when available;
    /// its scalar twin is `ck_softmax_ref`).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, n: Int) {
        ck_softmax(x, Int64(n))
    }

    /// Scalar twin of `softmax` (double sums).
    public static func softmaxRef(_ x: UnsafeMutablePointer<Float>, n: Int) {
        var m = -Float.infinity
        for j in 0..<n { m = Swift.max(m, x[j]) }
        var sum = 0.0
        for j in 0..<n { sum += exp(Double(x[j] - m)) }
        for j in 0..<n { x[j] = Float(exp(Double(x[j] - m)) / sum) }
    }

    // MARK: SiLU · mul

    /// SwiGLU gate: `out[i] = silu(gate[i]) * up[i]`, silu(g) = g / (1 + e^-g). Shapes `[n]` (out may alias).
    /// Source: Shazeer 2020 (GLU variants) eq. 6; HF LlamaMLP. Runs `ck_silu_mul` (AVX2: a polynomial e^x of
    /// ~2 ulp, as ggml's `ggml_v_silu` vectorises it; twin `ck_silu_mul_ref` with libm expf).
    public static func siluMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                               out: UnsafeMutablePointer<Float>) {
        ck_silu_mul(gate, up, out, Int64(n))
    }

    /// `siluMul` (or `geluTanhMul` when `gelu`) split over `pool` when `n` is at least 8 Ki (`[tokens, ffn]` of a
    /// prefill chunk or a batched decode step: 16 tokens of SmolLM2 are 24 Ki), in chunks of 16 Ki elements from
    /// 64 Ki on and about two per thread below; smaller inputs run on the calling thread. Shapes as `siluMul`.
    public static func gatedActivation(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                                       out: UnsafeMutablePointer<Float>, gelu: Bool = false, pool: ThreadPool) {
        if n < 1 << 13 || pool.threadCount == 1 {
            if gelu { geluTanhMul(gate: gate, up: up, n: n, out: out) } else { siluMul(gate: gate, up: up, n: n, out: out) }
            return
        }
        var job = GatedJob(gate: gate, up: up, out: out, gelu: gelu)
        let chunk = n >= 1 << 16 ? 1 << 14 : (n / (2 * pool.threadCount) + 15) / 16 * 16
        pool.parallelFor(n, chunk: chunk, context: &job) { ctx, start, end, _ in
            let j = ctx!.assumingMemoryBound(to: GatedJob.self).pointee
            if j.gelu {
                Ops.geluTanhMul(gate: j.gate + start, up: j.up + start, n: end - start, out: j.out + start)
            } else {
                Ops.siluMul(gate: j.gate + start, up: j.up + start, n: end - start, out: j.out + start)
            }
        }
    }

    /// Scalar twin of `siluMul`.
    public static func siluMulRef(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                                  out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = Float(Double(gate[i]) / (1 + exp(-Double(gate[i]))) * Double(up[i])) }
    }

    // MARK: residual add

    /// Scalar twin of `add`.
    public static func addRef(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// `y[i] += x[i]` for `n` elements.
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, n: Int) {
        var i = 0
        while i + 16 <= n {
            let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            let b = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: a + b, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { y[i] += x[i]; i += 1 }
    }
}

/// Arguments of a pooled `Ops.gatedActivation` (passed by pointer: no closure context).
private struct GatedJob {
    let gate: UnsafePointer<Float>
    let up: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
    let gelu: Bool
}
