import Foundation

/// Errors of the ChatTemplate module.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The template source is malformed; `line` is 1-based in the template text.
    case syntax(line: Int, message: String)
    /// Evaluation failed (Python TypeError/UndefinedError equivalents, resource limits); `line` is the template line
    /// of the statement being evaluated (0 for errors outside the template, e.g. malformed JSON input).
    case runtime(line: Int, message: String)
    /// The template called `raise_exception(message)` (transformers' `TemplateError`).
    case raised(message: String)

    public var description: String {
        switch self {
        case .syntax(let l, let m): return "chat template syntax error (line \(l)): \(m)"
        case .runtime(let l, let m): return "chat template error (line \(l)): \(m)"
        case .raised(let m): return "chat template raised: \(m)"
        }
    }
}

/// A parsed HF chat template (`tokenizer.chat_template`), rendered the way transformers'
/// `render_jinja_template` renders it with jinja2 (`trim_blocks=True, lstrip_blocks=True`, loopcontrols,
/// globals `raise_exception`, `strftime_now`, `dict`, `namespace`, `range`; `tojson` = `json.dumps` with
/// `ensure_ascii=False`). Reference: transformers `utils/chat_template_utils.py`, jinja2 3.1 `lexer.py`/`parser.py`.
public struct ChatTemplate: Sendable {
    private let body: [Stmt]

    /// Parses `source`.
    /// - Throws: `ChatTemplateError.syntax(line:message:)` naming the 1-based template line.
    public init(source: String) throws {
        body = try ChatTemplate.onLargeStack {
            var lexer = Lexer(source)
            try lexer.run()
            var parser = Parser(tokens: lexer.tokens)
            return try parser.parseTemplate()
        }
    }

    /// Stack size of the thread that parses and renders (nesting and macro recursion are bounded, and this bound
    /// holds whatever thread, e.g. a 512 KiB secondary thread, the caller is on).
    static let stackBytes = 64 << 20

    /// Runs `body` on a dedicated thread with `stackBytes` of stack and waits for it (blocks the caller briefly).
    static func onLargeStack<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.result = Result { try body() }
            done.signal()
        }
        thread.stackSize = stackBytes
        thread.start()
        done.wait()
        return try box.result!.get()
    }

    /// Renders the template with the variables transformers passes.
    ///
    /// JSON `null` anywhere (a message's `content`, a tool schema, extra variables) reaches the template as `none`,
    /// as Python's `json.loads` hands it to jinja2, so `message['content'] is none` holds for `"content": null`.
    /// Messages are normalised first: a message carrying `reasoning_content` also gets `thinking` (and vice versa).
    /// - Parameters:
    ///   - messages: array of message objects (`role`, `content`, optional `tool_calls`, ...).
    ///   - tools: tool schemas; `nil` is passed to the template as `none` (transformers passes `tools=None`).
    ///   - addGenerationPrompt: value of `add_generation_prompt`.
    ///   - bosToken: `bos_token`; omitted (undefined in the template) when nil.
    ///   - eosToken: `eos_token`; omitted when nil.
    ///   - extra: further template variables (e.g. `enable_thinking`); they override the standard ones.
    ///   - now: the clock read by `strftime_now` (formatted in the process time zone); the current time when nil.
    /// Parsing and rendering run on a dedicated thread with a 64 MiB stack; the caller blocks until it finishes.
    /// - Returns: the rendered prompt text.
    /// - Throws: `ChatTemplateError.raised` when the template calls `raise_exception`, `.runtime` for evaluation
    ///   errors (undefined arithmetic, `str + list`, unknown filters, recursion/output/step limits).
    public func render(messages: JinjaValue, tools: JinjaValue?, addGenerationPrompt: Bool,
                       bosToken: String?, eosToken: String?, extra: [String: JinjaValue] = [:],
                       now: Date? = nil) throws -> String {
        try render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken,
                   eosToken: eosToken, extra: extra, now: now, maxSteps: Interpreter.defaultMaxSteps)
    }

    /// `render` with an explicit step bound (tests use a small one).
    func render(messages: JinjaValue, tools: JinjaValue?, addGenerationPrompt: Bool, bosToken: String?,
                eosToken: String?, extra: [String: JinjaValue], now: Date?, maxSteps: Int) throws -> String {
        let body = self.body
        return try ChatTemplate.onLargeStack {
            try ChatTemplate.run(body, messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                 bosToken: bosToken, eosToken: eosToken, extra: extra, now: now ?? Date(),
                                 maxSteps: maxSteps)
        }
    }

    private static func run(_ body: [Stmt], messages: JinjaValue, tools: JinjaValue?, addGenerationPrompt: Bool,
                            bosToken: String?, eosToken: String?, extra: [String: JinjaValue], now: Date,
                            maxSteps: Int) throws -> String {
        var vars: [String: Value] = [:]
        vars["messages"] = Value(ChatTemplate.normalize(messages))
        vars["tools"] = tools.map(Value.init) ?? Value.none
        vars["documents"] = Value.none
        vars["add_generation_prompt"] = .bool(addGenerationPrompt)
        if let bosToken { vars["bos_token"] = .string(bosToken) }
        if let eosToken { vars["eos_token"] = .string(eosToken) }
        for (k, v) in extra { vars[k] = Value(v) }
        let interp = Interpreter(variables: vars, now: now, maxSteps: maxSteps)
        do {
            _ = try interp.exec(body)
        } catch let e as InterpreterError {
            switch e {
            case .raised(let m): throw ChatTemplateError.raised(message: m)
            case .type(let m): throw ChatTemplateError.runtime(line: interp.line, message: "TypeError: \(m)")
            case .undefined(let m): throw ChatTemplateError.runtime(line: interp.line, message: "UndefinedError: \(m)")
            case .value(let m): throw ChatTemplateError.runtime(line: interp.line, message: m)
            case .limit(let m): throw ChatTemplateError.runtime(line: interp.line, message: "limit: \(m)")
            }
        }
        return interp.output
    }

    /// Message normalisation: mirror `reasoning_content` ↔ `thinking` (templates read one or the other). `null`
    /// values are kept (they are `none` in the template, never an undefined key).
    static func normalize(_ messages: JinjaValue) -> JinjaValue {
        guard case .array(let list) = messages else { return messages }
        return .array(list.map { m in
            guard case .object(var o) = m else { return m }
            if let r = o["reasoning_content"], o["thinking"] == nil {
                o["thinking"] = r
            } else if let t = o["thinking"], o["reasoning_content"] == nil {
                o["reasoning_content"] = t
            }
            return .object(o)
        })
    }
}

/// Hands a result from the worker thread back to the waiting caller (guarded by the semaphore handshake).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
