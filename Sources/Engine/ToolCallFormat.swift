/// The tool-call markup a model writes, chosen from its chat template (the template renders earlier calls in the same
/// markup the model was trained to emit).
public enum ToolCallFormat: String, Sendable, Equatable, CaseIterable {
    /// Hermes / Qwen 2.5 / Qwen 3: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, one block per call.
    case hermes
    /// Llama 3.1–3.3: the whole reply is `{"name": …, "parameters": {…}}` (optionally after `<|python_tag|>`;
    /// several calls separated by `;`).
    case llama3JSON = "llama3_json"
    /// Mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]` (Nemo) or `[TOOL_CALLS]name[ARGS]{…}` (Small 3.2).
    case mistral
    /// DeepSeek V3 / R1: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{…}\n```
    /// <｜tool▁call▁end｜>…<｜tool▁calls▁end｜>`.
    case deepSeekV3 = "deepseek_v3"
    /// DeepSeek V3.1: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>name<｜tool▁sep｜>{…}<｜tool▁call▁end｜>…
    /// <｜tool▁calls▁end｜>`.
    case deepSeekV31 = "deepseek_v31"

    /// The format a chat template's source renders tool calls in, or nil when it renders none this server parses
    /// (e.g. SmolLM2's, or DeepSeek V3.2's DSML markup).
    public static func detect(templateSource s: String) -> ToolCallFormat? {
        if s.contains("DSML") { return nil }
        if s.contains("<｜tool▁call▁begin｜>") && s.contains("<｜tool▁sep｜>") {
            return s.contains("```json") ? .deepSeekV3 : .deepSeekV31
        }
        if s.contains("[TOOL_CALLS]") { return .mistral }
        if s.contains("<tool_call>") { return .hermes }
        if s.contains("<|start_header_id|>") && s.contains("tool_call") && s.contains("parameters") { return .llama3JSON }
        return nil
    }

    /// Tool-call ids as the format's templates accept them back in history: Mistral's check for exactly 9
    /// alphanumerics, OpenAI's `call_…` otherwise.
    public func makeCallId<G: RandomNumberGenerator>(using rng: inout G) -> String {
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        let n = self == .mistral ? 9 : 24
        let body = String((0..<n).map { _ in chars.randomElement(using: &rng)! })
        return self == .mistral ? body : "call_" + body
    }

    /// The text every call (or, for DeepSeek, every group of calls) starts with: where `tool_choice` `auto`'s lazy
    /// grammar takes over (llama-server's grammar trigger). `callSkeleton`'s prefix starts with it.
    public var callTrigger: String {
        switch self {
        case .hermes: return "<tool_call>"
        case .llama3JSON: return "{\"name\": \""
        case .mistral: return "[TOOL_CALLS]"
        case .deepSeekV3, .deepSeekV31: return "<｜tool▁calls▁begin｜>"
        }
    }

    /// For markup that wraps all of a reply's calls in one group (DeepSeek): the text that closes the group, with
    /// which `callSkeleton`'s suffix ends. nil where each call stands alone.
    public var groupClose: String? {
        switch self {
        case .deepSeekV3, .deepSeekV31: return "<｜tool▁calls▁end｜>"
        case .hermes, .llama3JSON, .mistral: return nil
        }
    }

    /// Whether the markup writes the function name inside a JSON string (`"name": "…"`), so that it needs JSON escaping.
    public var namesInJSONString: Bool { self == .hermes || self == .llama3JSON }

    /// The text around one call's arguments in this markup, for constrained decoding of `tool_choice` `"required"` or
    /// a named function: the model must write `prefix`, then a JSON object valid against the tool's `parameters`,
    /// then `suffix` (end of generation may follow; more calls for `required` with parallel calls allowed repeat the
    /// pair). `ToolCallParser` reads `prefix + arguments + suffix` back as exactly that call.
    /// `name` is the function name as it appears in the markup: for the formats that write it inside a JSON string
    /// (`namesInJSONString`) the body of that string, escaped by the caller (a declared name with `"` or `\\` in it
    /// would otherwise end the string early); as declared for the others.
    public func callSkeleton(name: String) -> (prefix: String, suffix: String) {
        switch self {
        case .hermes: return ("<tool_call>\n{\"name\": \"\(name)\", \"arguments\": ", "}\n</tool_call>")
        case .llama3JSON: return ("{\"name\": \"\(name)\", \"parameters\": ", "}")
        case .mistral: return ("[TOOL_CALLS]\(name)[ARGS]", "")
        case .deepSeekV3:
            return ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>\(name)\n```json\n",
                    "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
        case .deepSeekV31:
            return ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>\(name)<｜tool▁sep｜>", "<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
        }
    }
}
