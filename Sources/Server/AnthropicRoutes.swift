import Engine
import Foundation
import HTTPServer
import JSON
import OpenAIAPI
import Scheduling

/// Anthropic `POST /v1/messages` and `POST /v1/messages/count_tokens`: the request becomes a chat request
/// (`AnthropicMessagesRequest.chat`) and goes through the one engine mapping; the answer is a message object or the
/// event stream `message_start`, `content_block_start`, `ping`, `content_block_delta`…, `content_block_stop`,
/// `message_delta`, `message_stop`. Errors use Anthropic's body `{"type":"error","error":{"type","message"}}`.
extension SputnikServer {
    /// True for the paths whose errors (401 included) take Anthropic's shape.
    static func isAnthropicPath(_ path: String) -> Bool {
        path == "/v1/messages" || path == "/messages" || path.hasPrefix("/v1/messages/") || path.hasPrefix("/messages/")
    }

    /// Sends `e` in Anthropic's error shape (with the fields of `errorFields`).
    func sendAnthropicError(_ res: HTTPResponder, _ e: APIError) {
        sendJSON(res, e.status, AnthropicError(e).encoded(), extra: Self.errorFields(e))
    }

    /// `{"input_tokens": N}`: the tokens of the rendered prompt (system, messages and the generation prompt).
    func handleAnthropicCountTokens(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            var request = try AnthropicMessagesRequest.decode(req.body, countTokens: true).get()
            try applyThinking(&request)   // the prompt /v1/messages would render, and its refusal
            let tokens = try promptTokens(for: request.chat)
            sendJSON(res, 200, JSONValue.object([("input_tokens", .int(tokens.count))]).encoded())
        } catch {
            sendAnthropicError(res, error)
        }
    }

    /// `thinking` `enabled`: the template's thinking mode, as the chat route's default effort selects it, and the
    /// think block split off whatever --reasoning-format says.
    /// - Throws: `APIError` 400 naming `thinking` when the template has no think blocks.
    private func applyThinking(_ request: inout AnthropicMessagesRequest) throws(APIError) {
        guard request.thinking else { return }
        guard serving.prompt.hasReasoning else {
            throw APIError.invalidRequest(
                "thinking: not supported: this model's chat template has no <think> blocks, so there is no thinking to return",
                param: "thinking")
        }
        request.chat.reasoningEffort = "medium"
        request.chat.reasoningFormat = "deepseek"
    }

    func handleAnthropicMessages(_ req: HTTPRequest, _ res: HTTPResponder) {
        var request: AnthropicMessagesRequest
        let gen: GenerationRequest
        var decoded: ChatCompletionRequest?
        do throws(APIError) {
            request = try AnthropicMessagesRequest.decode(req.body).get()
            exchange(res)?.user = request.chat.sampling.user
            try applyThinking(&request)
            decoded = request.chat
            gen = try generationRequest(request.chat)
        } catch {
            var e = error
            // Chat's `tools[i].function.parameters` is this route's `tools[i].input_schema`.
            e.renameField("].function.parameters", to: "].input_schema")
            // Anthropic's "prompt is too long: P tokens > L maximum" states P, which clients read to trim the
            // history: a prompt refused before tokenizing (P a lower bound) is counted, as count_tokens counts it
            // (helper-71: 9,377 said for 200,030).
            if var o = e.contextOverflow, o.lowerBound, let chat = decoded, let n = try? promptTokens(for: chat).count {
                o.promptTokens = n
                o.lowerBound = false
                e.contextOverflow = o
            }
            // The chat mapping's `continue_final_message` is this route's final assistant message (a prefill).
            if e.param == "continue_final_message" {
                e = APIError.invalidRequest(
                    e.message.contains("tool_choice")
                        ? "A final assistant message (a prefill) cannot be combined with 'tool_choice' 'any' or 'tool': the reply is the forced call"
                        : "The final assistant message (a prefill): this model's chat template does not render its text as sent, so the reply cannot continue it",
                    param: "messages")
            }
            return sendAnthropicError(res, e)
        }
        let base = AnthropicMessage(id: "msg_" + Self.randomId(), model: modelId, stopReason: nil, stopSequence: nil,
                                    promptTokens: gen.promptTokens.count, cachedTokens: 0, outputTokens: 0)
        let tools = request.chat.tools != nil && request.chat.toolChoice != .string("none")
        if request.chat.stream {
            streamMessage(res, gen, base, thinking: request.thinking, omitThinking: request.thinkingOmitted, tools: tools)
        } else {
            wholeMessage(res, gen, base, thinking: request.thinking, omitThinking: request.thinkingOmitted, tools: tools)
        }
    }

    /// Anthropic's `stop_reason` for an engine finish: `tool_use` when the reply made whole tool calls and was not
    /// cut off by `max_tokens` (also when a stop sequence cut a later call: the whole ones are to be run). The
    /// message's `stop_sequence` names a stop sequence whenever one was generated, as Anthropic documents it.
    static func anthropicStopReason(_ reason: Scheduling.FinishReason, _ usage: GenerationUsage, toolCalls: Int = 0) -> String {
        reason == .length ? "max_tokens" : toolCalls > 0 ? "tool_use" : usage.stopSequence != nil ? "stop_sequence" : "end_turn"
    }

    /// A `tool_use` block id: `toolu_` and 24 letters and digits.
    static func toolUseId() -> String { "toolu_" + randomId() }

    /// The sink of one Anthropic reply: `blocks` receives each block as it opens (with `open`) and each piece of it
    /// (with `piece`); thinking and tool-call callbacks are set only when the request asked for them.
    private func anthropicSink(_ state: SinkState<[AnthropicBlock]>, thinking: Bool, omitThinking: Bool, tools: Bool,
                               opened: @escaping @Sendable (Int) -> Void, piece: @escaping @Sendable (Int, String) -> Void,
                               finish: @escaping @Sendable (Scheduling.FinishReason, GenerationUsage) -> Void,
                               abort: @escaping @Sendable () -> Void, start: @escaping @Sendable (Int) -> Void = { _ in }) -> GenerationSink {
        /// Appends `t` to the last block when it is of the same kind, else opens a new one.
        @Sendable func add(_ t: String, thinking: Bool) {
            switch (state.value.last, thinking) {
            case (.thinking(let old)?, true): state.value[state.value.count - 1] = .thinking(old + t)
            case (.text(let old)?, false): state.value[state.value.count - 1] = .text(old + t)
            default:
                state.value.append(thinking ? .thinking(t) : .text(t))
                opened(state.value.count - 1)
            }
            piece(state.value.count - 1, t)
        }
        var sink = GenerationSink(start: start, text: { add($0, thinking: false) }, finish: finish, abort: abort)
        if thinking && omitThinking {
            // `display: omitted`: the thinking block is there, its text is not (no thinking_delta events).
            sink.reasoning = { _ in
                if case .thinking? = state.value.last { return }
                state.value.append(.thinking(""))
                opened(state.value.count - 1)
            }
        } else if thinking {
            sink.reasoning = { add($0, thinking: true) }
        }
        if tools {
            // Call `i` of the reply is the block after the blocks open when it began.
            let callBlock = SinkState([Int: Int]())
            sink.toolCallBegin = { i, name in
                state.value.append(.toolUse(id: Self.toolUseId(), name: name, input: .string("")))
                callBlock.value[i] = state.value.count - 1
                opened(state.value.count - 1)
            }
            sink.toolCallArguments = { i, a in
                guard let b = callBlock.value[i], case .toolUse(let id, let name, .string(let old)) = state.value[b] else { return }
                state.value[b] = .toolUse(id: id, name: name, input: .string(old + a))
                piece(b, a)
            }
        }
        return sink
    }

    /// The blocks as sent: each `tool_use` input (collected as JSON text) parsed into its object (`{}` when empty; a
    /// call whose arguments are not a JSON object — cut off by `max_tokens` — is dropped). A reply with no output
    /// (a stop sequence or end of turn before any text) has no blocks, `content: []`, as Anthropic answers it.
    static func finalBlocks(_ blocks: [AnthropicBlock]) -> [AnthropicBlock] {
        var out: [AnthropicBlock] = []
        for b in blocks {
            guard case .toolUse(let id, let name, .string(let args)) = b else { out.append(b); continue }
            if args.trimmingCharacters(in: .whitespaces).isEmpty {
                out.append(.toolUse(id: id, name: name, input: .object([])))
            } else if let v = try? JSONValue.parse(Array(args.utf8)), case .object = v {
                out.append(.toolUse(id: id, name: name, input: v))
            }
        }
        return out
    }

    private func wholeMessage(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: AnthropicMessage, thinking: Bool,
                              omitThinking: Bool, tools: Bool) {
        let blocks = SinkState([AnthropicBlock]())
        drive(res, gen, anthropicSink(
            blocks, thinking: thinking, omitThinking: omitThinking, tools: tools, opened: { _ in }, piece: { _, _ in },
            finish: { [weak self] reason, usage in
                var m = base
                m.content = Self.finalBlocks(blocks.value)
                let calls = m.content.filter { if case .toolUse = $0 { return true } else { return false } }.count
                m.stopReason = Self.anthropicStopReason(reason, usage, toolCalls: calls)
                m.stopSequence = usage.stopSequence
                m.cachedTokens = usage.cachedTokens
                m.outputTokens = usage.completionTokens
                self?.sendJSON(res, 200, m.encoded())
            },
            abort: { [weak self] in self?.sendAnthropicError(res, Self.abortedError) }),   // a drain, as on every route
            refused: { [weak self] in self?.sendAnthropicError(res, $0) })
    }

    /// The event stream: `message_start`, then per block `content_block_start` (thinking, text or tool_use, in
    /// output order; `ping` after the first), its deltas (`thinking_delta`, `text_delta`, `input_json_delta`) and `content_block_stop`,
    /// then `message_delta` and `message_stop`. A reply with no output has no blocks (as on Anthropic).
    private func streamMessage(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: AnthropicMessage, thinking: Bool,
                               omitThinking: Bool, tools: Bool) {
        let sse = sseWriter(res)
        @Sendable func send(_ e: (name: String, data: String)) { sse.send(event: e.name, data: e.data) }
        let blocks = SinkState([AnthropicBlock]())
        @Sendable func stop(_ i: Int) { send(AnthropicMessage.event("content_block_stop", [("index", .int(i))])) }
        @Sendable func open(_ i: Int) {
            if i > 0 { stop(i - 1) }
            send(AnthropicMessage.event("content_block_start", [("index", .int(i)), ("content_block", blocks.value[i].json(empty: true))]))
            if i == 0 { send(AnthropicMessage.event("ping")) }   // where Anthropic sends it
        }
        drive(res, gen, anthropicSink(
            blocks, thinking: thinking, omitThinking: omitThinking, tools: tools, opened: open,
            piece: { i, t in
                let delta: JSONValue
                switch blocks.value[i] {
                case .thinking: delta = .object([("type", .string("thinking_delta")), ("thinking", .string(t))])
                case .text: delta = .object([("type", .string("text_delta")), ("text", .string(t))])
                case .toolUse: delta = .object([("type", .string("input_json_delta")), ("partial_json", .string(t))])
                }
                send(AnthropicMessage.event("content_block_delta", [("index", .int(i)), ("delta", delta)]))
            },
            finish: { reason, usage in
                if !blocks.value.isEmpty { stop(blocks.value.count - 1) }
                // Only whole calls make `tool_use`, counted as the whole message counts them: a stop sequence that
                // cut a streamed call ends the reply as the whole message ends it (helper-71, helper-72).
                send(AnthropicMessage.event("message_delta", [
                    ("delta", .object([("stop_reason", .string(Self.anthropicStopReason(reason, usage, toolCalls: usage.toolCalls))),
                                       ("stop_sequence", .stringOrNull(usage.stopSequence))])),
                    // The final usage, with the prompt split into uncached and prefix-cache tokens (as in
                    // `message_start`), as Anthropic's message_delta carries it and the SDK's stream accumulator
                    // takes it.
                    ("usage", .object([("input_tokens", .int(usage.promptTokens - usage.cachedTokens)),
                                       ("cache_creation_input_tokens", .int(0)),
                                       ("cache_read_input_tokens", .int(usage.cachedTokens)),
                                       ("output_tokens", .int(usage.completionTokens))]))]))
                send(AnthropicMessage.event("message_stop"))
                sse.finish()
            },
            abort: {
                // The server cut the stream (shutdown timeout; a client that left reads nothing): Anthropic's error
                // event, which the SDK raises, so a truncated message does not pass for a whole one (helper-60).
                sse.send(event: "error", data: AnthropicError(Self.abortedError).json.serialized())
                sse.finish()
            },
            start: { cached in
                sse.start(extraHeaders: self.requestIdHeaders(res, status: 200))
                // The prompt's split into uncached and prefix-cache tokens is known now (the request is scheduled):
                // the same split as message_delta's.
                var first = base
                first.cachedTokens = cached
                send(AnthropicMessage.event("message_start", [("message", first.json)]))
            }),
            refused: { [weak self] in self?.sendAnthropicError(res, $0) })
    }
}
