import ChatTemplate
import Foundation
import Tokenizer

/// Chat messages → prompt token ids: the model's chat template (`tokenizer.chat_template`, or the ChatML
/// fallback) rendered with `add_generation_prompt`, then tokenized with special tokens parsed and BOS added as
/// the vocabulary says (llama-server's and vLLM's behaviour).
public struct Prompt: Sendable {
    /// The template every prompt is rendered with.
    public let template: ChatTemplate
    /// The vocabulary prompts are tokenized with.
    public let tokenizer: Tokenizer
    /// Text of the BOS / EOS tokens, passed to the template as `bos_token` / `eos_token`.
    let bosText: String?
    let eosText: String?
    /// The markup the template renders tool calls in (and the model therefore writes); nil: none this server parses.
    public let toolCallFormat: ToolCallFormat?
    /// The template renders the request's `tools` list itself (it reads the `tools` variable).
    public let rendersTools: Bool
    /// The template writes `<think>` blocks (DeepSeek R1 / V3.1, Qwen 3): reasoning can be split off.
    public let hasReasoning: Bool
    /// The template prints tool-call arguments with `tojson` (Qwen 2.5, Llama 3.x, Mistral, DeepSeek V3.1): it
    /// expects them as objects, so `arguments` strings holding a JSON object are passed as that object (what vLLM
    /// and llama.cpp do; transformers documents object arguments). Templates that concatenate the string (DeepSeek
    /// R1) get it unchanged.
    public let argumentsAsObjects: Bool
    /// Control tokens of the vocabulary that spell output markup (`<tool_call>`, `</think>`, DeepSeek's tool tags …):
    /// the output parsers need their text, which plain detokenization drops.
    public let markupTokenIds: Set<Int32>
    /// Keeps control-token text in client strings from becoming control tokens.
    let injectionGuard: PromptInjectionGuard

    /// Markup the output parsers read; any of these that is a single control token is in `markupTokenIds`.
    static let markup = ["<think>", "</think>", "<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]",
                         "<|python_tag|>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
                         "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"]

    /// The markup in `name` that would keep a call to a tool of that name from being read back (the parsers split
    /// calls on it): a control token's text, one of `markup`, or a line break / control character; nil when none.
    public func markupInToolName(_ name: String) -> String? {
        if let c = name.unicodeScalars.first(where: { $0.properties.generalCategory == .control
                                                        || $0.properties.generalCategory == .lineSeparator
                                                        || $0.properties.generalCategory == .paragraphSeparator }) {
            return "U+" + String(c.value, radix: 16, uppercase: true)
        }
        return Self.markup.first { name.contains($0) } ?? injectionGuard.controlTexts.first { name.contains($0) }
    }

    /// Used when the GGUF has no `tokenizer.chat_template` and no `--chat-template` is given.
    public static let chatMLTemplate = """
    {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
    """

    /// A prompt builder over `template` (parsed from `source`) and `tokenizer`; `source` decides the tool-call format
    /// and reasoning support (empty: neither).
    public init(template: ChatTemplate, tokenizer: Tokenizer, source: String = "") {
        self.template = template
        self.tokenizer = tokenizer
        bosText = tokenizer.bosTokenId.map { tokenizer.tokenText($0) }
        eosText = tokenizer.eosTokenId.map { tokenizer.tokenText($0) }
        toolCallFormat = ToolCallFormat.detect(templateSource: source)
        rendersTools = source.range(of: #"\btools\b"#, options: .regularExpression) != nil
        hasReasoning = source.contains("</think>")
        var ids = Set<Int32>()
        for m in Self.markup {
            let t = tokenizer.encode(m, addSpecial: false, parseSpecial: true)
            if t.count == 1, tokenizer.tokenBytes(t[0]).isEmpty, tokenizer.tokenBytes(t[0], renderSpecial: true) == Array(m.utf8) {
                ids.insert(t[0])
            }
        }
        markupTokenIds = ids
        injectionGuard = PromptInjectionGuard(tokenizer: tokenizer)
        argumentsAsObjects = source.range(of: #"arguments['"]?\]?\s*\|\s*tojson"#, options: .regularExpression) != nil
        sourceKnown = !source.isEmpty
        code = source.replacingOccurrences(of: #"\{#[\s\S]*?#\}"#, with: "", options: .regularExpression)
    }

    /// Whether the template's source was given (`templateNames` answers true without it).
    private let sourceKnown: Bool
    /// The template source without its `{# … #}` comments (stripped once, here).
    private let code: String

    /// Whether the template reads a field `key` of some object (`x.key`, `x['key']`, `x.get('key')`, `'key' in x`),
    /// outside `{# comments #}`: a message field the template never reads cannot reach the prompt. A textual test,
    /// not data flow: `tool_call.name` counts as reading `name`. True when the source is unknown (built without it).
    public func templateNames(_ key: String) -> Bool {
        if !sourceKnown { return true }
        guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else { return false }
        let reads = #"\.\s*"# + key + #"\b|\[\s*['"]"# + key + #"['"]\s*\]|\.get\(\s*['"]"# + key + #"['"]|['"]"# + key + #"['"]\s+(not\s+)?in\b"#
        return code.range(of: reads, options: .regularExpression) != nil
    }

    /// Whether the template names `role` as a string literal (`'developer'`, `"developer"`) outside comments: a
    /// template that never does cannot render that role as itself. True when the source is unknown.
    public func templateNamesRole(_ role: String) -> Bool {
        if !sourceKnown { return true }
        return code.contains("'\(role)'") || code.contains("\"\(role)\"")
    }

    /// True when a request with `tools` can be served: the template renders the tools (or, for DeepSeek templates
    /// that only render calls, the server describes them in the system message) and its call markup is parsed.
    public var supportsTools: Bool {
        switch toolCallFormat {
        case nil: return false
        case .deepSeekV3?, .deepSeekV31?: return true
        case .some: return rendersTools
        }
    }

    /// A rendered prompt.
    public struct Rendered: Sendable {
        /// The prompt's token ids. `[numPromptTokens]`
        public var tokens: [Int32]
        /// The prompt text (what was tokenized).
        public var text: String
        /// The text before the prefill ends inside an open `<think>` block (the output, prefill first, starts as
        /// reasoning).
        public var endsInsideReasoning: Bool
        /// The text before the prefill ends with a closed think block (`…<think></think>` and whitespace: the
        /// template's non-thinking mode, or `thinking` false): the reply is the answer, with no reasoning first.
        public var endsAfterClosedReasoning = false
        /// Set, and `tokens` left empty, when the text cannot fit `render`'s `tokenLimit`: a lower bound of its
        /// token count (bytes over `Tokenizer.maxTokenBytes`), found without tokenizing it.
        public var tokensAtLeast: Int?
        /// `continuingFinal`: the final message's text the prompt ends with, as the template rendered it (leading or
        /// trailing whitespace it trimmed left out); nil when the rendered chat does not contain that text (then
        /// `tokens` is empty and `text` is the uncut render).
        public var continued: String?
    }

    /// The prompt's token ids. `messages`: a list of message objects (`role`, `content`, …) as the template
    /// expects them; `tools`: the request's tool list or nil. `[numPromptTokens]`
    /// - Throws: `ChatTemplateError` when the template fails on these messages.
    public func tokens(messages: JinjaValue, tools: JinjaValue?) throws(ChatTemplateError) -> [Int32] {
        try render(messages: messages, tools: tools).tokens
    }

    /// Renders and tokenizes a chat.
    /// - Parameters:
    ///   - tokenLimit: when set, a text too long to be this many tokens is not tokenized (`Rendered.tokensAtLeast`):
    ///     tokenizing megabytes of prompt only to refuse it held a server worker for seconds.
    ///   - messages: list of message objects as the template expects them.
    ///   - tools: the request's tool list (`[{"type":"function","function":{…}}]`) or nil. A DeepSeek template that
    ///     does not render tools gets them described in the first system message (added when there is none), in
    ///     the call format the model writes (the DeepSeek V3.1 model card's tool prompt).
    ///   - extra: further template variables (`chat_template_kwargs`).
    ///   - prefill: text appended after the generation prompt, which the model continues (`continue_final_message`).
    ///     With `continuingFinal`, the final message's content instead (nothing is appended).
    ///   - continuingFinal: the last of `messages` is an assistant message the reply continues (transformers' and
    ///     vLLM's `continue_final_message`): the chat is rendered without the generation prompt and cut right after
    ///     the last occurrence of that message's content (`prefill`), whitespace the template trimmed around it left
    ///     out, as transformers' `apply_chat_template` does (`tokenization_utils_base.py`); `Rendered.continued` is
    ///     the content as the prompt ends with it, nil when the template does not render it.
    ///   - thinking: false selects the template's non-thinking mode (`thinking` / `enable_thinking` = false, unless
    ///     `extra` sets them) and, when the prompt still ends inside an open `<think>` block, closes it
    ///     (`</think>\n\n` appended); true sets those variables to true; nil leaves the template's default.
    /// - Throws: `ChatTemplateError` when the template fails on these messages.
    public func render(messages: JinjaValue, tools: JinjaValue?, extra: [String: JinjaValue] = [:],
                       prefill: String? = nil, continuingFinal: Bool = false, thinking: Bool? = nil,
                       tokenLimit: Int? = nil) throws(ChatTemplateError) -> Rendered {
        var vars = extra
        if let thinking {
            if vars["thinking"] == nil { vars["thinking"] = .bool(thinking) }
            if vars["enable_thinking"] == nil { vars["enable_thinking"] = .bool(thinking) }
        }
        // Client strings first lose any control-token text (markers; tokenized as plain text below).
        var originals: [String] = []
        var messages = injectionGuard.neutralise(messages, &originals)
        let tools = tools.map { injectionGuard.neutralise($0, &originals) }
        if toolCallFormat == .mistral { messages = Self.withMistralToolCallIds(messages) }
        if argumentsAsObjects { messages = Self.withObjectArguments(messages) }
        if let tools, !rendersTools, let format = toolCallFormat {
            messages = Self.withToolSystemPrompt(messages, tools: tools, format: format)
        }
        var text: String
        do {
            text = try template.render(messages: messages, tools: tools, addGenerationPrompt: !continuingFinal,
                                       bosToken: bosText, eosToken: eosText, extra: vars)
        } catch let e as ChatTemplateError {
            throw e
        } catch {
            throw ChatTemplateError.runtime(line: 0, message: "\(error)")
        }
        // The continued message's content, as the prompt ends with it: the text before it is what the generation
        // prompt is otherwise (the think-block checks below look at that part).
        var continued: String?
        if continuingFinal {
            guard let final = Self.finalContent(messages) else { return Rendered(tokens: [], text: text, endsInsideReasoning: false) }
            // Where the content starts, from a render with a marker in its place: the last occurrence of a short
            // content can be inside the template's own closing markup (helper-68: "d" cut `<|im_end|>` to `<|im_en`).
            var near: String.Index?
            if let marked = try? template.render(messages: Self.withFinalContent(messages, Self.continuationMark), tools: tools,
                                                 addGenerationPrompt: false, bosToken: bosText, eosToken: eosText, extra: vars),
               let m = marked.range(of: Self.continuationMark) {
                let before = marked.unicodeScalars[..<m.lowerBound]
                if text.unicodeScalars.starts(with: before) {
                    near = text.unicodeScalars.index(text.startIndex, offsetBy: before.count)
                }
            }
            guard let cut = Self.continuationCut(text, final: final, near: near) else {
                return Rendered(tokens: [], text: text, endsInsideReasoning: false)
            }
            continued = String(text[cut])
            text = String(text[..<cut.lowerBound])
        }
        var inside = hasReasoning && Self.endsInsideThink(text)
        if inside {
            // `<think>` / `</think>` typed by a client (any message, a tool description, an unclosed think block in an
            // earlier assistant turn) is text, not markup (C46): whether the generation prompt opened a think block
            // is decided on a second render with every client think tag masked. The prompt itself is the first
            // render, exactly as jinja2 gives it.
            var tags: [String] = []
            let maskedMessages = Self.maskingThinkTags(messages, &tags)
            let maskedTools = tools.map { Self.maskingThinkTags($0, &tags) }
            if !tags.isEmpty, var masked = try? template.render(messages: maskedMessages, tools: maskedTools,
                                                                 addGenerationPrompt: !continuingFinal, bosToken: bosText,
                                                                 eosToken: eosText, extra: vars) {
                if continuingFinal, let final = Self.finalContent(maskedMessages),
                   let cut = Self.continuationCut(masked, final: final) {
                    masked = String(masked[..<cut.lowerBound])
                }
                inside = Self.endsInsideThink(masked)
            }
        }
        // Below, an appended prefill is fitted to the generation prompt; a continued final message is left exactly as
        // the template renders it (inside a think block there, the reply continues the reasoning).
        // A prefill is the answer's start, as the template renders an assistant message (transformers'
        // `continue_final_message`): a think block the generation prompt opened is dropped, not continued.
        if !continuingFinal && inside && prefill != nil, let open = text.range(of: "<think>", options: .backwards),
           text[open.upperBound...].allSatisfy(\.isWhitespace) {
            text.removeSubrange(open.lowerBound...)
            inside = false
        }
        // A prefill that brings its own think block (the final message's reasoning) replaces the empty one a
        // non-thinking generation prompt closed (DeepSeek V3.1's `<think></think>`): one block, not two (helper-61).
        if !continuingFinal, !inside, let p = prefill, p.hasPrefix("<think>"), hasReasoning,
           let open = text.range(of: "<think>", options: .backwards),
           let close = text.range(of: "</think>", range: open.upperBound..<text.endIndex),
           text[open.upperBound..<close.lowerBound].allSatisfy(\.isWhitespace),
           text[close.upperBound...].allSatisfy(\.isWhitespace) {
            text.removeSubrange(open.lowerBound...)
        }
        if !continuingFinal && inside && thinking == false {
            text += "</think>\n\n"
            inside = false
        }
        var trimmed = Substring(text)
        while trimmed.last?.isWhitespace == true { trimmed = trimmed.dropLast() }
        let closed = hasReasoning && !inside && trimmed.hasSuffix("</think>")
        if let continued {
            text += continued
        } else if let prefill {
            text += injectionGuard.neutralise(prefill, &originals)
        }
        if let tokenLimit, let atLeast = tokenizer.tokensAtLeast(bytes: text.utf8.count, over: tokenLimit) {
            return Rendered(tokens: [], text: text, endsInsideReasoning: inside, endsAfterClosedReasoning: closed,
                            tokensAtLeast: atLeast, continued: continued.map { injectionGuard.restore($0, originals: originals) })
        }
        let tokens = injectionGuard.encode(text, originals: originals, tokenizer: tokenizer)
        return Rendered(tokens: tokens, text: injectionGuard.restore(text, originals: originals), endsInsideReasoning: inside,
                        endsAfterClosedReasoning: closed,
                        continued: continued.map { injectionGuard.restore($0, originals: originals) })
    }

    /// Stands for the continued message's content in the render that finds where the content starts: private-use
    /// characters no template writes.
    static let continuationMark = "\u{F8FF}\u{E003}continued\u{E003}"

    /// `messages` with the last message's `content` replaced by `content`.
    static func withFinalContent(_ messages: JinjaValue, _ content: String) -> JinjaValue {
        guard case .array(var items) = messages, case .object(var last)? = items.last else { return messages }
        last["content"] = .string(content)
        items[items.count - 1] = .object(last)
        return .array(items)
    }

    /// The `content` string of the last message of a message list, or nil.
    static func finalContent(_ messages: JinjaValue) -> String? {
        guard case .array(let items) = messages, case .object(let last)? = items.last,
              case .string(let content)? = last["content"] else { return nil }
        return content
    }

    /// Where transformers' `continue_final_message` cuts a rendered chat: the range of the final message's content
    /// `final` at its last occurrence (found without surrounding whitespace) — or, when the stripped content starts
    /// at `near` (after whitespace), there: the content's own place, which a short content's last occurrence (in the
    /// template's closing markup) is not; it ends after `final` without its leading whitespace when the template
    /// kept the content's trailing whitespace, else after the stripped content. nil when the text does not contain
    /// the stripped content (transformers raises there; an empty content is refused before rendering).
    static func continuationCut(_ text: String, final: String, near: String.Index? = nil) -> Range<String.Index>? {
        let stripped = final.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !stripped.isEmpty else { return nil }
        var found: Range<String.Index>?
        if let near {
            let start = text.unicodeScalars[near...].drop { $0.properties.isWhitespace }.startIndex
            if text.unicodeScalars[start...].starts(with: stripped.unicodeScalars) {
                found = start..<text.unicodeScalars.index(start, offsetBy: stripped.unicodeScalars.count)
            }
        }
        guard let at = found ?? text.range(of: stripped, options: [.backwards, .literal]) else { return nil }
        // transformers compares the `len(final.lstrip())` characters there with `final`: equal only when `final` has
        // no leading whitespace and the template kept its trailing whitespace.
        let tail = text.unicodeScalars[at.lowerBound...]
        if tail.starts(with: final.unicodeScalars) {
            return at.lowerBound..<tail.index(at.lowerBound, offsetBy: final.unicodeScalars.count)
        }
        return at
    }

    /// Start of a masked think tag (`maskingThinkTags`): private-use characters no template writes, then the tag's
    /// number and `PromptInjectionGuard.close`.
    static let thinkTagOpen = "\u{F8FF}\u{E002}"

    /// `value` with `<think>` and `</think>` in all its strings replaced by markers; `tags[n]` is marker n's text.
    static func maskingThinkTags(_ value: JinjaValue, _ tags: inout [String]) -> JinjaValue {
        func mask(_ v: JinjaValue) -> JinjaValue {
            switch v {
            case .string(let s) where s.contains("think>"):
                var out = "", rest = Substring(s)
                while let r = rest.range(of: #"</?think>"#, options: .regularExpression) {
                    out += rest[..<r.lowerBound] + thinkTagOpen + String(tags.count) + PromptInjectionGuard.close
                    tags.append(String(rest[r]))
                    rest = rest[r.upperBound...]
                }
                return .string(out + rest)
            case .array(let items): return .array(items.map(mask))
            case .object(let o): return .object(JinjaObject(o.pairs.map { ($0.0, mask($0.1)) }))
            default: return v
            }
        }
        return mask(value)
    }

    /// Mistral's templates accept only tool-call ids of 9 letters and digits (they raise otherwise); ids the
    /// Anthropic and Responses routes issue (`toolu_…`, `call_…`) or a client made up become their last 9 letters
    /// and digits (left-padded with "0" when shorter), the same for a call and the result that names it (vLLM
    /// truncates them the same way for Mistral).
    static func withMistralToolCallIds(_ messages: JinjaValue) -> JinjaValue {
        func fixed(_ v: JinjaValue?) -> JinjaValue? {
            guard case .string(let id)? = v else { return v }
            let alnum = id.unicodeScalars.filter { $0.isASCII && $0.properties.isAlphabetic || ("0"..."9").contains($0) }
            if alnum.count == id.unicodeScalars.count && alnum.count == 9 { return v }
            let tail = String(String.UnicodeScalarView(alnum.suffix(9)))
            return .string(String(repeating: "0", count: 9 - tail.unicodeScalars.count) + tail)
        }
        guard case .array(let list) = messages else { return messages }
        return .array(list.map { m in
            guard case .object(var o) = m else { return m }
            if o["tool_call_id"] != nil { o["tool_call_id"] = fixed(o["tool_call_id"]) }
            if case .array(var calls)? = o["tool_calls"] {
                for (i, c) in calls.enumerated() {
                    guard case .object(var call) = c, call["id"] != nil else { continue }
                    call["id"] = fixed(call["id"])
                    calls[i] = .object(call)
                }
                o["tool_calls"] = .array(calls)
            }
            return .object(o)
        })
    }

    /// `messages` with every `tool_calls[].function.arguments` string that holds a JSON object replaced by the object.
    static func withObjectArguments(_ messages: JinjaValue) -> JinjaValue {
        guard case .array(let list) = messages else { return messages }
        return .array(list.map { m in
            guard case .object(var o) = m, case .array(var calls)? = o["tool_calls"] else { return m }
            for (i, c) in calls.enumerated() {
                guard case .object(var call) = c, case .object(var fn)? = call["function"],
                      case .string(let args)? = fn["arguments"],
                      let parsed = try? JinjaValue.fromJSON(Data(args.utf8)), case .object = parsed else { continue }
                fn["arguments"] = parsed
                call["function"] = .object(fn)
                calls[i] = .object(call)
            }
            o["tool_calls"] = .array(calls)
            return .object(o)
        })
    }

    /// The last `<think>` of `text` is not closed.
    static func endsInsideThink(_ text: String) -> Bool {
        guard let open = text.range(of: "<think>", options: .backwards) else { return false }
        guard let close = text.range(of: "</think>", options: .backwards) else { return true }
        return open.lowerBound > close.lowerBound
    }

    /// `messages` with the tool descriptions appended to the first system message (or a new one in front).
    static func withToolSystemPrompt(_ messages: JinjaValue, tools: JinjaValue, format: ToolCallFormat) -> JinjaValue {
        guard case .array(var list) = messages else { return messages }
        let prompt = toolSystemPrompt(tools, format: format)
        if case .object(var first)? = list.first, first["role"] == .string("system"),
           case .string(let content)? = first["content"] {
            first["content"] = .string(content + "\n\n" + prompt)
            list[0] = .object(first)
        } else {
            list.insert(.object(["role": "system", "content": .string(prompt)]), at: 0)
        }
        return .array(list)
    }

    /// DeepSeek's tool prompt (model card of DeepSeek-V3.1, "ToolCall"), with the call syntax of `format`.
    static func toolSystemPrompt(_ tools: JinjaValue, format: ToolCallFormat) -> String {
        var s = "## Tools\nYou have access to the following tools:\n"
        if case .array(let list) = tools {
            for t in list {
                guard case .object(let o) = t, case .object(let fn)? = o["function"],
                      case .string(let name)? = fn["name"] else { continue }
                s += "\n### \(name)\n"
                if case .string(let d)? = fn["description"] { s += "Description: \(d)\n" }
                s += "\nParameters: \((fn["parameters"] ?? .object(JinjaObject())).jsonString())\n"
            }
        }
        let call = format == .deepSeekV3
            ? "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_call_name\n```json\ntool_call_arguments\n```<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>"
            : "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>"
        s += """

        IMPORTANT: ALWAYS adhere to this exact format for tool use:
        \(call)

        Where:
        - `tool_call_name` must be an exact match to one of the available tools
        - `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema
        - For multiple tool calls, chain them directly without separators or spaces
        """
        return s
    }
}
