// The registry of architectures: `general.architecture` → the file in Architectures/ that loads it.
import GGUF

/// Builds a `LanguageModel` from a GGUF file through a registry keyed by `general.architecture`.
public enum ModelLoader {
    /// A builder for one architecture.
    public typealias Builder = @Sendable (GGUFFile, ModelOptions) throws -> LanguageModel

    /// `general.architecture` → builder: the one decoder (`DecoderModel`) around an architecture's blocks.
    /// One entry per file in Architectures/ (Mixtral is `llama` with experts, as in llama.cpp).
    public static let registry: [String: Builder] = [
        "llama": { try DecoderModel(gguf: $0, options: $1, load: Llama.load) },
        "qwen2": { try DecoderModel(gguf: $0, options: $1, load: Qwen2.load) },
        "gemma3": { try DecoderModel(gguf: $0, options: $1, load: Gemma3.load) },
        "qwen2moe": { try DecoderModel(gguf: $0, options: $1, load: Qwen2MoE.load) },
        "qwen3moe": { try DecoderModel(gguf: $0, options: $1, load: Qwen3MoE.load) },
        "deepseek2": { try DecoderModel(gguf: $0, options: $1, load: DeepseekV2.load) },
    ]

    /// Architectures `load` accepts, sorted.
    public static var supportedArchitectures: [String] { registry.keys.sorted() }

    /// Loads the model in `gguf` (which the model keeps alive: weights stay in its mmap).
    /// - Throws: `ModelLoadError` (unsupported architecture, missing tensor, shape mismatch, unsupported tensor
    ///   type, invalid or unsupported hyper-parameter); `GGUFError` for missing or mistyped metadata keys
    ///   (e.g. `<arch>.context_length`, `<arch>.attention.layer_norm_rms_epsilon`, which every converter writes).
    public static func load(_ gguf: GGUFFile, options: ModelOptions) throws -> LanguageModel {
        let arch = try gguf.architecture()
        guard let builder = registry[arch] else { throw ModelLoadError.unsupportedArchitecture(arch) }
        return try builder(gguf, options)
    }
}
