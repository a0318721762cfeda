// Token embedding lookup: row `id` of `token_embd.weight` [vocab, embd], dequantized, times a per-architecture
// scale (Gemma: √embd, Gemma 3 report §2 / HF Gemma3TextScaledWordEmbedding; llama.cpp gemma3.cpp).
import Compute

/// The token embedding table and its scale.
struct TokenEmbedding {
    /// `[vocab, embd]` (GGUF `token_embd.weight`), read row by row from the file mapping.
    let table: WeightMatrix
    /// Factor on every embedding (1 = none).
    let scale: Float

    /// x `[n, embd]` = scale · table[tokens[t]] for t in 0..<n. Precondition: ids in `0..<vocab`.
    func lookup(_ tokens: UnsafePointer<Int32>, n: Int, into x: UnsafeMutablePointer<Float>) {
        let embd = table.cols
        for t in 0..<n {
            let id = Int(tokens[t])
            precondition(id >= 0 && id < table.rows, "token id \(id) outside the vocabulary")
            table.dequantizeRow(id, into: x + t * embd)
            if scale != 1 { for i in 0..<embd { x[t * embd + i] *= scale } }
        }
    }
}
