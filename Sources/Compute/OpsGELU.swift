import Foundation

extension Ops {
    // MARK: GELU (tanh approximation) · mul

    /// GeGLU gate: `out[i] = gelu(gate[i]) * up[i]` with the tanh approximation
    /// gelu(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))). Shapes `[n]` (out may alias gate).
    /// Source: Hendrycks & Gimpel 2016 (GELU) §2; Shazeer 2020 (GLU variants) eq. 5; HF `gelu_pytorch_tanh`,
    /// llama.cpp ggml_geglu (LLM_FFN_GELU + LLM_FFN_PAR) as used by gemma3.
    public static func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                                   out: UnsafeMutablePointer<Float>) {
        let c: Float = 0.7978845608028654, a: Float = 0.044715
        var i = 0
        while i + 8 <= n {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
            let inner = c * (g + a * g * g * g)
            var th = SIMD8<Float>()
            for k in 0..<8 { th[k] = tanhf(inner[k]) }
            UnsafeMutableRawPointer(out + i).storeBytes(of: 0.5 * g * (1 + th) * u, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let g = gate[i]
            out[i] = 0.5 * g * (1 + tanhf(c * (g + a * g * g * g))) * up[i]
            i += 1
        }
    }

    /// Scalar twin of `geluTanhMul` (double precision).
    public static func geluTanhMulRef(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                                      out: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let g = Double(gate[i])
            out[i] = Float(0.5 * g * (1 + tanh((2 / Double.pi).squareRoot() * (g + 0.044715 * g * g * g))) * Double(up[i]))
        }
    }
}
