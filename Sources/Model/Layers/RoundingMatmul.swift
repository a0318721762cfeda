// The one matmul every architecture runs: Compute's `Matmul` with llama.cpp's activation format for f16 weights.
//
// llama.cpp (ggml-cpu `ggml_compute_forward_mul_mat`) converts the f32 activations to the weight type's
// `vec_dot_type` before the dot products; for F16 weights that is F16, so every activation row is rounded to
// half precision. With MoE routers near a tie that rounding decides expert choices, so F16 files reproduce
// llama.cpp's logits only when Sputnik rounds the same way. Quantized types already get their partner format
// (q8_0/q8_1/q8_K) inside `Matmul`; f32 weights are untouched; `floatReference` disables the rounding. Dense and
// MoE models follow this same policy (an f16 dense file thus also matches llama.cpp's logits more closely).
import Compute

/// `Matmul` front end that rounds the input rows to f16 for f16 weights (see the file header).
final class RoundingMatmul {
    /// The wrapped matmul (its pool, limits and float-reference switch).
    let base: Matmul
    private let half: UnsafeMutablePointer<UInt16>   // [maxTokens, maxInDim] f16 copy (or 1 element)
    private let rounded: ScratchBuffer               // [maxTokens, maxInDim] f16 values as f32 (or empty)
    private let capacity: Int

    /// Wraps `base`. `hasF16Weights`: whether any weight it will see is f16; only then is the
    /// `[maxTokens, maxInDim]` rounding scratch allocated (f16 weights are a precondition failure otherwise).
    init(_ base: Matmul, hasF16Weights: Bool) {
        self.base = base
        capacity = hasF16Weights ? base.maxTokens * base.maxInDim : 0
        half = .allocate(capacity: max(1, capacity))
        rounded = ScratchBuffer(count: capacity)
    }

    deinit { half.deallocate() }

    /// The pool the work runs on.
    var pool: ThreadPool { base.pool }
    /// Largest `numTokens` one call accepts.
    var maxTokens: Int { base.maxTokens }

    /// `y[numTokens, w.rows] = x[numTokens, w.cols] · wᵀ` (x rounded to f16 first when w is f16).
    func callAsFunction(_ x: UnsafePointer<Float>, numTokens: Int, _ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>) {
        base(input(x, numTokens: numTokens, cols: w.cols, f16: w.type == .f16), numTokens: numTokens, w, y)
    }

    /// Two or three weights with the same input in one pool job (split when only some of them are f16).
    func callAsFunction(_ x: UnsafePointer<Float>, numTokens: Int,
                        _ w0: WeightMatrix, _ y0: UnsafeMutablePointer<Float>,
                        _ w1: WeightMatrix, _ y1: UnsafeMutablePointer<Float>,
                        _ w2: WeightMatrix? = nil, _ y2: UnsafeMutablePointer<Float>? = nil) {
        let f16 = (w0.type == .f16 ? 1 : 0) + (w1.type == .f16 ? 1 : 0) + (w2?.type == .f16 ? 1 : 0)
        if f16 == 0 || f16 == (w2 == nil ? 2 : 3) {
            base(input(x, numTokens: numTokens, cols: w0.cols, f16: f16 > 0), numTokens: numTokens, w0, y0, w1, y1, w2, y2)
            return
        }
        self(x, numTokens: numTokens, w0, y0)
        self(x, numTokens: numTokens, w1, y1)
        if let w2, let y2 { self(x, numTokens: numTokens, w2, y2) }
    }

    /// x itself, or (for f16 weights outside float-reference mode) x rounded to f16 in scratch.
    private func input(_ x: UnsafePointer<Float>, numTokens: Int, cols: Int, f16: Bool) -> UnsafePointer<Float> {
        guard f16, !base.floatReference else { return x }
        let n = numTokens * cols
        precondition(n <= capacity, "matmul input [\(numTokens), \(cols)] exceeds the f16 rounding scratch (\(capacity))")
        Half.encode(x, to: half, count: n)
        Half.decode(half, to: rounded.pointer, count: n)
        return UnsafePointer(rounded.pointer)
    }
}
