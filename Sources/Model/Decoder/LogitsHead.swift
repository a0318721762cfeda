// The logits head: final RMSNorm (`output_norm.weight`) of the wanted rows, the LM head (`output.weight`, or the
// tied `token_embd.weight` when the file has none, as llama.cpp `LLM_TENSOR_OUTPUT` falls back), and the optional
// final soft-capping c·tanh(logit/c) (Gemma 2/3: `<arch>.final_logit_softcapping`).
import Compute
import Foundation

/// Output norm and LM head of a decoder.
struct LogitsHead {
    /// `[embd]` final RMSNorm weight.
    let norm: UnsafePointer<Float>
    /// `[vocab, embd]` LM head, prepared for matmuls.
    let output: WeightMatrix
    let eps: Float
    /// Final soft-capping constant, 0 = off.
    let softcap: Float

    /// Loads `output_norm.weight` `[embd]` and `output.weight` `[vocab, embd]` (or ties `embedding`).
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    init(_ c: inout ModelContext, embedding: WeightMatrix) throws {
        let k = c.keys
        norm = try c.tensors.vector("output_norm.weight", count: k.embd)
        output = c.tensors.prepare(c.tensors.has("output.weight")
            ? try c.tensors.matrix("output.weight", rows: k.vocabSize, cols: k.embd) : embedding)
        eps = k.eps
        softcap = Float(try k.optionalDouble("final_logit_softcapping") ?? 0)
    }

    /// Logits `[logitRows.count, vocab]` for the rows of `logitRows` inside the chunk `range`: each wanted row of
    /// the residual x `[range.count, embd]` is normed into `scratch` `[m, embd]`, runs of consecutive wanted rows
    /// share one matmul. Traces `"output_norm"` `[n, embd]` of the whole chunk when the hook is set.
    func callAsFunction(range: Range<Int>, logitRows: [Int], x: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                        matmul: RoundingMatmul, trace: Trace, logits: UnsafeMutablePointer<Float>) {
        let embd = output.cols, vocab = output.rows, n = range.count, t0 = range.lowerBound
        if trace.isOn {
            Ops.rmsNorm(x, weight: norm, eps: eps, n: embd, count: n, out: scratch)             // [n, embd]
            trace("output_norm", -1, scratch, n, embd)
        }
        var i = 0
        while i < logitRows.count {
            guard range.contains(logitRows[i]) else { i += 1; continue }
            var j = i
            while j < logitRows.count, range.contains(logitRows[j]), j - i < n { j += 1 }
            for r in i..<j {
                Ops.rmsNorm(x + (logitRows[r] - t0) * embd, weight: norm, eps: eps, n: embd,
                            out: scratch + (r - i) * embd)                                       // [m, embd]
            }
            matmul(scratch, numTokens: j - i, output, logits + i * vocab)                        // [m, vocab]
            i = j
        }
    }

    /// Applies the soft-capping (if any) to `rows` rows of logits `[rows, vocab]`.
    func cap(_ logits: UnsafeMutablePointer<Float>, rows: Int) {
        guard softcap > 0 else { return }
        for i in 0..<(rows * output.rows) { logits[i] = softcap * tanhf(logits[i] / softcap) }
    }
}
