import Engine
import Foundation
import HTTPServer
import JSON
import OpenAIAPI
import Scheduling

/// `POST /v1/responses` (stateless): the request becomes a chat request (`ResponsesRequest.chat`), goes through the
/// one engine mapping (`generationRequest`) and comes back as a response object, or as the typed event stream
/// `response.created`, `response.in_progress`, `response.output_item.added`, `response.content_part.added`,
/// `response.output_text.delta`…, `response.output_text.done`, `response.content_part.done`,
/// `response.output_item.done`, `response.completed` (whose response has status `incomplete` and
/// `incomplete_details.reason` `max_output_tokens` when the token cap ended it, as vLLM does).
extension SputnikServer {
    func handleResponses(_ req: HTTPRequest, _ res: HTTPResponder) {
        let request: ResponsesRequest
        let gen: GenerationRequest
        do throws(APIError) {
            request = try ResponsesRequest.decode(req.body).get()
            exchange(res)?.user = request.chat.sampling.user
            if request.wantsReasoning && !serving.prompt.hasReasoning {
                throw APIError.invalidRequest(
                    "'reasoning' is not supported: this model's chat template has no <think> blocks, so there is no reasoning to return",
                    param: "reasoning")
            }
            var chat = request.chat
            if request.wantsReasoning { chat.reasoningFormat = "deepseek" }   // split off whatever --reasoning-format says
            gen = try generationRequest(chat, promptField: "input")
        } catch {
            // The chat mapping names `messages`; this route's conversation is `input`, and its `response_format`
            // is `text.format` (with `name`, `schema` and `strict` on the format itself).
            var e = error
            if e.param == "messages" { e.param = "input" }
            // Function tools are flat here: `tools[i].parameters`, not chat's `tools[i].function.parameters`.
            e.renameField("].function.", to: "].")
            e.renameField("response_format.json_schema.", to: "text.format.")
            e.renameField("response_format", to: "text.format")
            return sendError(res, e)
        }
        let id = Self.randomId()
        var base = ResponseObject(id: "resp_" + id, messageId: "msg_" + id, createdAt: Int(Date().timeIntervalSince1970),
                                  model: modelId, status: "in_progress", request: request)
        (base.defaultTemperature, base.defaultTopP) = (gen.sampling.temperature, gen.sampling.topP)
        let tools = request.chat.tools != nil && request.chat.toolChoice != .string("none")
        if request.chat.stream {
            streamResponse(res, gen, base, reasoning: request.wantsReasoning, tools: tools)
        } else {
            wholeResponse(res, gen, base, reasoning: request.wantsReasoning, tools: tools)
        }
    }

    /// The finished response object for the output items and the engine's finish.
    /// `announced`: streamed, the items were announced by events, so none is made up (helper-69: an empty message
    /// stood in for a dropped cut call at the call's output_index, never announced).
    private static func finalResponse(_ base: ResponseObject, _ output: [ResponseOutputItem], _ reason: Scheduling.FinishReason,
                                      _ usage: GenerationUsage, announced: Bool = false) -> ResponseObject {
        var r = base
        // A call the cap cut while its arguments streamed is not output: the whole response never has it, and the
        // SDK's stream helper parses a strict tool's arguments from this object (helper-68: it raised on the cut JSON).
        var output = output
        if reason == .length, let last = output.last, Self.isCutCall(last) { output.removeLast() }
        r.output = output.isEmpty && !announced ? [.message(id: base.messageId, text: "")] : output
        r.status = reason == .length ? "incomplete" : "completed"
        r.incompleteReason = reason == .length ? "max_output_tokens" : nil
        r.usage = Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, cachedTokens: usage.cachedTokens,
                        reasoningTokens: usage.reasoningTokens)
        if r.status == "completed" { r.completedAt = Int(Date().timeIntervalSince1970) }
        return r
    }

    /// A function call whose arguments are not a whole JSON object (the token cap cut it while they streamed).
    static func isCutCall(_ item: ResponseOutputItem) -> Bool {
        guard case .functionCall(_, _, _, let arguments) = item else { return false }
        return (try? JSONValue(parsing: Array(arguments.utf8)))?.objectValue == nil
    }

    /// The sink of one response: output items in order (reasoning, message, function calls); `opened(i)` runs when
    /// item `i` starts, `piece(i, t)` for each piece of its text or arguments.
    private func responseSink(_ items: SinkState<[ResponseOutputItem]>, _ base: ResponseObject, reasoning: Bool, tools: Bool,
                              opened: @escaping @Sendable (Int) -> Void, piece: @escaping @Sendable (Int, String) -> Void,
                              finish: @escaping @Sendable (Scheduling.FinishReason, GenerationUsage) -> Void,
                              abort: @escaping @Sendable () -> Void, start: @escaping @Sendable (Int) -> Void = { _ in }) -> GenerationSink {
        @Sendable func add(_ t: String, reasoning: Bool) {
            switch (items.value.last, reasoning) {
            case (.reasoning(let id, let old)?, true): items.value[items.value.count - 1] = .reasoning(id: id, text: old + t)
            case (.message(let id, let old)?, false): items.value[items.value.count - 1] = .message(id: id, text: old + t)
            default:
                let hasMessage = items.value.contains { if case .message = $0 { return true } else { return false } }
                // Text after a call gets a fresh message id (the first message item has the response's).
                let messageId = hasMessage ? "msg_" + Self.randomId() : base.messageId
                items.value.append(reasoning ? .reasoning(id: "rs_" + Self.randomId(), text: t) : .message(id: messageId, text: t))
                opened(items.value.count - 1)
            }
            piece(items.value.count - 1, t)
        }
        var sink = GenerationSink(start: start, text: { add($0, reasoning: false) }, finish: finish, abort: abort)
        if reasoning { sink.reasoning = { add($0, reasoning: true) } }
        if tools {
            let callItem = SinkState([Int: Int]())
            sink.toolCallBegin = { i, name in
                items.value.append(.functionCall(id: "fc_" + Self.randomId(), callId: "call_" + Self.randomId(), name: name, arguments: ""))
                callItem.value[i] = items.value.count - 1
                opened(items.value.count - 1)
            }
            sink.toolCallArguments = { i, a in
                guard let k = callItem.value[i], case .functionCall(let id, let callId, let name, let old) = items.value[k] else { return }
                items.value[k] = .functionCall(id: id, callId: callId, name: name, arguments: old + a)
                piece(k, a)
            }
        }
        return sink
    }

    private func wholeResponse(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: ResponseObject, reasoning: Bool, tools: Bool) {
        let items = SinkState([ResponseOutputItem]())
        drive(res, gen, responseSink(
            items, base, reasoning: reasoning, tools: tools, opened: { _ in }, piece: { _, _ in },
            finish: { [weak self] reason, usage in
                self?.sendJSON(res, 200, Self.finalResponse(base, items.value, reason, usage).encoded())
            },
            abort: { [weak self] in self?.sendError(res, Self.abortedError) }),   // a drain, as on every route
            promptField: "input", refused: { [weak self] in self?.sendError(res, $0) })
    }

    /// The typed event stream: per output item `response.output_item.added`, its events (reasoning:
    /// `response.reasoning_text.delta`… / `.done`; message: `response.content_part.added`,
    /// `response.output_text.delta`… / `.done`, `response.content_part.done`; function call:
    /// `response.function_call_arguments.delta`… / `.done`) and `response.output_item.done`, between
    /// `response.created` / `response.in_progress` and `response.completed`.
    private func streamResponse(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: ResponseObject, reasoning: Bool, tools: Bool) {
        let sse = sseWriter(res)
        let events = SinkState(ResponseEventSequence())
        let items = SinkState([ResponseOutputItem]())
        @Sendable func send(_ type: String, _ fields: [(key: String, value: JSONValue)]) {
            let e = events.value.event(type, fields)
            sse.send(event: e.name, data: e.data)
        }
        @Sendable func place(_ i: Int, part: Bool = true) -> [(key: String, value: JSONValue)] {
            [("item_id", .string(items.value[i].id)), ("output_index", .int(i))] + (part ? [("content_index", .int(0))] : [])
        }
        @Sendable func close(_ i: Int, status: String) {
            let item = items.value[i]
            switch item {
            case .reasoning(_, let text):
                send("response.reasoning_text.done", place(i) + [("text", .string(text))])
            case .message(_, let text):
                send("response.output_text.done", place(i) + [("text", .string(text)), ("logprobs", .array([]))])
                send("response.content_part.done", place(i) + [("part", ResponseObject.textPart(text))])
            case .functionCall(_, _, let name, let arguments):
                send("response.function_call_arguments.done", place(i, part: false) + [("name", .string(name)),
                                                                                        ("arguments", .string(arguments))])
            }
            send("response.output_item.done", [("output_index", .int(i)), ("item", item.json(status: status))])
        }
        @Sendable func open(_ i: Int) {
            if i > 0 { close(i - 1, status: "completed") }
            send("response.output_item.added", [("output_index", .int(i)), ("item", items.value[i].json(status: "in_progress", inProgress: true))])
            if case .message = items.value[i] { send("response.content_part.added", place(i) + [("part", ResponseObject.textPart(""))]) }
        }
        drive(res, gen, responseSink(
            items, base, reasoning: reasoning, tools: tools, opened: open,
            piece: { i, t in
                switch items.value[i] {
                case .reasoning: send("response.reasoning_text.delta", place(i) + [("delta", .string(t))])
                case .message: send("response.output_text.delta", place(i) + [("delta", .string(t)), ("logprobs", .array([]))])
                case .functionCall: send("response.function_call_arguments.delta", place(i, part: false) + [("delta", .string(t))])
                }
            },
            finish: { reason, usage in
                if items.value.isEmpty {
                    items.value.append(.message(id: base.messageId, text: ""))
                    open(0)
                }
                let final = Self.finalResponse(base, items.value, reason, usage, announced: true)
                let last = items.value.count - 1
                // The cut call's events end with it `incomplete`; the final object leaves it out (finalResponse).
                close(last, status: reason == .length && Self.isCutCall(items.value[last]) ? "incomplete" : final.itemStatus(at: last))
                send("response.completed", [("response", final.json)])
                sse.finish()
            },
            abort: {
                // The server cut the stream (shutdown timeout; a client that left reads nothing): an `error` event
                // (OpenAI's ResponseErrorEvent), so a truncated response does not pass for a whole one (helper-60).
                let e = Self.abortedError
                send("error", [("code", .stringOrNull(e.code)), ("message", .string(e.message)), ("param", .null)])
                sse.finish()
            },
            start: { _ in
                sse.start(extraHeaders: self.requestIdHeaders(res, status: 200))
                send("response.created", [("response", base.json)])
                send("response.in_progress", [("response", base.json)])
            }),
            promptField: "input", refused: { [weak self] in self?.sendError(res, $0) })
    }
}
