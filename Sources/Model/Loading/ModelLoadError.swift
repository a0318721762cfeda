/// Errors of loading a model from GGUF.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable {
    /// `general.architecture` has no builder in `ModelLoader`.
    case unsupportedArchitecture(String)
    /// A tensor the architecture needs is absent.
    case missingTensor(String)
    /// A tensor has a different shape (GGUF ne order, fastest first) than the hyper-parameters imply.
    case tensorShapeMismatch(name: String, expected: [Int], actual: [Int])
    /// A tensor's element type has no kernel here.
    case unsupportedTensorType(name: String, type: String)
    /// A hyper-parameter is missing, inconsistent or names an unsupported variant.
    case invalidHyperparameter(key: String, reason: String)
    /// A load option the model cannot take (the reason names the option and what to use instead).
    case unsupportedOption(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "unsupported model architecture '\(a)' (supported: \(ModelLoader.supportedArchitectures.joined(separator: ", ")))"
        case .missingTensor(let n): return "missing tensor '\(n)'"
        case .tensorShapeMismatch(let n, let e, let a): return "tensor '\(n)' has shape \(a), expected \(e)"
        case .unsupportedTensorType(let n, let t): return "tensor '\(n)' has unsupported type \(t)"
        case .invalidHyperparameter(let k, let r): return "hyper-parameter '\(k)': \(r)"
        case .unsupportedOption(let r): return r
        }
    }
}
