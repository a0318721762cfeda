// The contract between the one decoder (DecoderModel.swift) and an architecture file (Architectures/*.swift):
// the decoder owns the batch, the chunk loop, the embedding, the logits head and the trace hook; an architecture
// owns its weights (by GGUF name) and the per-layer loop over one chunk's residual stream.
import Compute
import GGUF

/// One GGUF architecture's decoder blocks, built by its `load(_:)` from a `ModelContext`.
protocol Architecture: AnyObject {
    /// Hyper-parameters (common keys plus the architecture's own).
    var hyperparameters: ModelHyperparameters { get }
    /// Whether the KV cache holds V rows (false for MLA's latent-only cache).
    var cacheStoresValues: Bool { get }
    /// The latent width (kv_lora_rank) of an MLA cache row, whose other values are the RoPE key; nil for K/V caches.
    var cacheLatentRank: Int? { get }
    /// Factor on the token embeddings (Gemma: √embd), 1 for most.
    var embeddingScale: Float { get }
    /// The MoE runner shared by the MoE blocks, nil for dense models.
    var moe: MoERunner? { get }
    /// Makes attention scratch room for contexts of `contextLength` positions (allocates only for a larger cache
    /// than any before).
    func reserve(contextLength: Int)
    /// Runs every decoder block on the residual stream x `[step.n, embd]`, in place.
    func run(_ x: UnsafeMutablePointer<Float>, _ step: Step)
}

extension Architecture {
    var cacheStoresValues: Bool { true }
    var cacheLatentRank: Int? { nil }
    var embeddingScale: Float { 1 }
    var moe: MoERunner? { nil }
}

/// What an architecture's `load` reads: the common keys (read once), the shape-checked tensors, the options and
/// the matmul its layers run on (sized by `DecoderModel` from the file's widest matrix row).
struct ModelContext {
    let keys: CommonKeys
    var tensors: TensorLoader
    let options: ModelOptions
    let matmul: RoundingMatmul
    /// Most tokens per chunk (`options.maxBatchTokens`); per-step scratch is `[maxTokens, …]`.
    var maxTokens: Int { matmul.maxTokens }
    /// Scratch length of attention scores at load (grows through `Architecture.reserve`).
    var initialContext: Int { min(keys.contextLength, 4096) }
}

/// One chunk of a batch as every layer sees it (pointers valid during `Architecture.run` only).
struct Step {
    /// Tokens in the chunk.
    let n: Int
    /// `[n]` positions in their sequences.
    let positions: UnsafePointer<Int32>
    /// `[n]` KV slots the chunk's K/V rows are written to.
    let slots: UnsafePointer<Int32>
    /// Concatenated block tables of the batch's sequences.
    let tables: UnsafePointer<Int32>
    /// `[n]` offset of each token's block table in `tables`.
    let tableStart: UnsafePointer<Int32>
    let cache: PagedKVCache
    /// `[n, embd]` scratch: a block's normed input.
    let h: UnsafeMutablePointer<Float>
    /// `[n, embd]` scratch: a block's output before the residual add.
    let o: UnsafeMutablePointer<Float>
    /// The named trace hook (a no-op when unset).
    let trace: Trace
}

/// The named trace hook of a forward: `"embeddings"`, `"layer_output"`, `"output_norm"`, `"moe_topk_ids"`,
/// `"moe_topk_weights"` (see `ForwardTrace`), for comparing intermediates with a reference.
struct Trace {
    let hook: ForwardTrace?
    /// Whether a hook is set (tensors only computed for the trace are skipped otherwise).
    var isOn: Bool { hook != nil }

    /// Passes `p [rows, cols]` as `name` of `layer` (-1 when not per layer).
    func callAsFunction(_ name: String, _ layer: Int, _ p: UnsafePointer<Float>, _ rows: Int, _ cols: Int) {
        hook?(name, layer, UnsafeBufferPointer(start: p, count: rows * cols), [rows, cols])
    }
}
