import Compute
import GGUF

/// Builds a `LanguageModel` from a GGUF file through a registry keyed by `general.architecture`.
public enum ModelLoader {
    /// A builder for one architecture.
    public typealias Builder = @Sendable (GGUFFile, ModelOptions) throws -> LanguageModel

    /// `general.architecture` → builder. One entry per architecture file.
    public static let registry: [String: Builder] = [
        "llama": { gguf, options in
            // Mixtral-style files are `llama` with experts: same attention, MoE feed-forward (MoEDecoder.swift).
            if (try gguf.optionalInt("llama.expert_count") ?? 0) > 0 { return try MoEDecoderModel(gguf: gguf, options: options) }
            return try LlamaModel(gguf: gguf, options: options)
        },
        "deepseek2": { gguf, options in try DeepseekV2Model(gguf: gguf, options: options) },
        "qwen2moe": { gguf, options in try MoEDecoderModel(gguf: gguf, options: options) },
        "qwen3moe": { gguf, options in try MoEDecoderModel(gguf: gguf, options: options) },
        "qwen2": { gguf, options in try Qwen2Model(gguf: gguf, options: options) },
        "gemma3": { gguf, options in try Gemma3Model(gguf: gguf, options: options) },
    ]

    /// Architectures `load` accepts, sorted.
    public static var supportedArchitectures: [String] { registry.keys.sorted() }

    /// Loads the model in `gguf` (which the model keeps alive: weights stay in its mmap).
    /// - Throws: `ModelLoadError` (unsupported architecture, missing tensor, shape mismatch, unsupported tensor
    ///   type, invalid hyper-parameter); `GGUFError` for missing or mistyped metadata keys.
    public static func load(_ gguf: GGUFFile, options: ModelOptions) throws -> LanguageModel {
        let arch = try gguf.architecture()
        guard let builder = registry[arch] else { throw ModelLoadError.unsupportedArchitecture(arch) }
        return try builder(gguf, options)
    }
}

/// Looks tensors up by their GGUF name and checks their shapes (GGUF ne order, fastest first).
struct TensorLoader {
    let gguf: GGUFFile
    /// Float copies of small vectors stored in a non-f32 type (kept alive by the model).
    private(set) var owned: [ScratchBuffer] = []

    init(gguf: GGUFFile) { self.gguf = gguf }

    func info(_ name: String, shape: [Int]) throws -> GGUFTensorInfo {
        guard let info = gguf.tensorInfo(named: name) else { throw ModelLoadError.missingTensor(name) }
        guard info.dimensions == shape else {
            throw ModelLoadError.tensorShapeMismatch(name: name, expected: shape, actual: info.dimensions)
        }
        return info
    }

    func has(_ name: String) -> Bool { gguf.tensorInfo(named: name) != nil }

    /// A `[rows, cols]` matrix (GGUF ne `[cols, rows]`).
    func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let info = try info(name, shape: [cols, rows])
        guard let type = WeightType(ggml: info.type), cols % type.blockSize == 0 else {
            throw ModelLoadError.unsupportedTensorType(name: name, type: "\(info.type)")
        }
        return WeightMatrix(type: type, data: gguf.data(for: info), rows: rows, cols: cols)
    }

    /// A float32 vector `[count]` (converted when stored as another type).
    mutating func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
        let info = try info(name, shape: [count])
        if info.type == .f32 { return gguf.data(for: info).assumingMemoryBound(to: Float.self) }
        guard let type = WeightType(ggml: info.type) else {
            throw ModelLoadError.unsupportedTensorType(name: name, type: "\(info.type)")
        }
        let values = ScratchBuffer(count: count)
        WeightMatrix(type: type, data: gguf.data(for: info), rows: 1, cols: count).dequantizeRow(0, into: values.pointer)
        owned.append(values)
        return UnsafePointer(values.pointer)
    }
}

extension WeightType {
    /// The kernel type for a GGUF tensor type, nil when unsupported.
    init?(ggml: GGMLType) {
        switch ggml {
        case .f32: self = .f32
        case .f16: self = .f16
        case .q4_0: self = .q4_0
        case .q4_1: self = .q4_1
        case .q8_0: self = .q8_0
        case .q5_0: self = .q5_0
        case .q5_1: self = .q5_1
        case .q4_K: self = .q4_K
        case .q5_K: self = .q5_K
        case .q6_K: self = .q6_K
        case .bf16: self = .bf16
        default: return nil
        }
    }
}
