/// Errors from building a `Tokenizer` out of GGUF metadata. Each names the key or value at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.ggml.model` names a tokenizer family Sputnik does not implement.
    case unknownModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer Sputnik does not implement (never silently replaced).
    case unknownPreTokenizer(String)
    /// A byte-level BPE vocabulary without `tokenizer.ggml.pre`.
    case missingPreTokenizer
    /// A required key is absent or has the wrong type.
    case missingKey(String)
    /// A metadata value is malformed (wrong length, duplicate token, ...).
    case invalid(key: String, reason: String)

    /// A one-line message naming the key or value at fault.
    public var description: String {
        switch self {
        case .unknownModel(let m):
            return "unsupported tokenizer model '\(m)' in tokenizer.ggml.model (supported: gpt2, llama)"
        case .unknownPreTokenizer(let p):
            return "unsupported pre-tokenizer '\(p)' in tokenizer.ggml.pre (supported: "
                + PreTokenizerTable.supportedNames.joined(separator: ", ") + ")"
        case .missingPreTokenizer:
            return "byte-level BPE vocabulary has no tokenizer.ggml.pre; regenerate the GGUF with a current converter"
        case .missingKey(let k): return "missing or mistyped tokenizer key '\(k)'"
        case .invalid(let k, let r): return "invalid tokenizer metadata '\(k)': \(r)"
        }
    }
}

/// Per-token attributes (llama.cpp `llama_token_attr`, derived from `tokenizer.ggml.token_type`).
struct TokenAttr: OptionSet, Sendable {
    let rawValue: UInt16
    static let unknown = TokenAttr(rawValue: 1 << 1)
    static let unused = TokenAttr(rawValue: 1 << 2)
    static let normal = TokenAttr(rawValue: 1 << 3)
    static let control = TokenAttr(rawValue: 1 << 4)
    static let userDefined = TokenAttr(rawValue: 1 << 5)
    static let byte = TokenAttr(rawValue: 1 << 6)
    static let lstrip = TokenAttr(rawValue: 1 << 8)
    static let rstrip = TokenAttr(rawValue: 1 << 9)

    /// From a GGUF token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }
    init(rawValue: UInt16) { self.rawValue = rawValue }
}

/// What each `tokenizer.ggml.pre` value means for a byte-level BPE vocabulary (llama.cpp `llama_vocab::impl::load`).
struct PreTokenizerTable {
    struct Entry { let kind: PreTokenizerKind; let cleanSpaces: Bool; let ignoreMerges: Bool; let addBOS: Bool }

    static let entries: [String: Entry] = {
        var t: [String: Entry] = [:]
        func put(_ names: [String], _ k: PreTokenizerKind, clean: Bool, ignore: Bool = false, bos: Bool = false) {
            for n in names { t[n] = Entry(kind: k, cleanSpaces: clean, ignoreMerges: ignore, addBOS: bos) }
        }
        put(["default"], .bpeDefault, clean: true)
        put(["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
            .llama3, clean: true, ignore: true, bos: true)
        put(["dbrx", "smaug-bpe"], .llama3, clean: true)
        put(["deepseek-llm"], .deepseekLLM, clean: false)
        put(["deepseek-coder"], .deepseekCoder, clean: false)
        put(["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"], .deepseekV3, clean: false)
        put(["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "mpt", "olmo", "jais", "exaone4"], .gpt2, clean: true)
        put(["trillion", "granite-docling"], .gpt2, clean: false)
        put(["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], .smollm, clean: true)
        put(["smollm", "command-r"], .smollm, clean: false)
        put(["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"], .qwen2, clean: false)
        put(["stablelm2", "megrez"], .qwen2, clean: true)
        return t
    }()

    static var supportedNames: [String] { entries.keys.sorted() }
}
