import ChatTemplate
import Engine
import Foundation
import HTTPServer
import OpenAIAPI
import Scheduling

/// `POST /v1/chat/completions`: template → tokenize → engine → streamed (SSE) or whole response.
extension SputnikServer {
    func handleChatCompletion(_ req: HTTPRequest, _ res: HTTPResponder) {
        let request: ChatCompletionRequest
        switch ChatCompletionRequest.decode(req.body) {
        case .success(let r): request = r
        case .failure(let e): return sendError(res, e)
        }
        if let p = request.priority, p != 0, options.schedulingPolicy != "priority" {
            return sendError(res, APIError.invalidRequest(
                "'priority' \(p) needs a server started with --scheduling-policy priority; this one serves first come, first served",
                param: "priority"))
        }
        let prompt: [Int32]
        do { prompt = try promptTokens(for: request) } catch let e as APIError { return sendError(res, e) } catch {
            return sendError(res, APIError.internal("\(error)"))
        }
        let ctx = engine.config.contextSize
        if prompt.count >= ctx {
            return sendError(res, APIError.contextLengthExceeded(requested: prompt.count, limit: ctx, promptTokens: prompt.count))
        }
        // `max_tokens` is bounded to 32 bits by the request decoder, so `prompt.count + maxNew` cannot overflow.
        let maxNew = request.effectiveMaxTokens ?? (ctx - prompt.count)
        if maxNew > ctx - prompt.count {
            return sendError(res, APIError.contextLengthExceeded(requested: prompt.count + maxNew, limit: ctx,
                                                                 promptTokens: prompt.count))
        }
        var sampling = SamplingParams()
        sampling.temperature = request.temperature ?? 1.0
        sampling.topP = request.topP ?? 1.0
        sampling.topK = max(0, request.topK ?? 0)   // -1 and 0 disable; k ≥ the vocabulary keeps every token
        sampling.minP = request.minP ?? 0
        sampling.seed = request.seed.map { UInt64(bitPattern: Int64($0)) }
        let gen = GenerationRequest(promptTokens: prompt, maxNewTokens: maxNew, sampling: sampling,
                                    stop: request.stop, priority: request.priority ?? 0, ignoreEOS: request.ignoreEOS)
        let id = "chatcmpl-" + Self.randomId()
        let created = Int(Date().timeIntervalSince1970)
        if request.stream {
            streamCompletion(res, gen, id: id, created: created, includeUsage: request.includeUsage)
        } else {
            wholeCompletion(res, gen, id: id, created: created)
        }
    }

    /// Renders the chat template over the messages and tokenizes the result (special tokens parsed, BOS added
    /// as the vocab says). - Throws: `APIError` (400) for template errors.
    func promptTokens(for request: ChatCompletionRequest) throws -> [Int32] {
        let messages = JinjaValue.array(request.messages.map(Self.templateMessage))
        let tools = request.tools.map(JinjaValue.init(json:))
        let text: String
        do {
            text = try template.render(messages: messages, tools: tools, addGenerationPrompt: true,
                                       bosToken: bosText, eosToken: eosText)
        } catch {
            throw APIError.invalidRequest("The chat template failed on these messages: \(error)", param: "messages")
        }
        return tokenizer.encode(text, addSpecial: true, parseSpecial: true)
    }

    /// One message as chat templates expect it: text parts joined into a string, absent fields left out.
    static func templateMessage(_ m: ChatMessage) -> JinjaValue {
        var fields: [(String, JinjaValue)] = [("role", .string(m.role.rawValue))]
        if let c = m.content { fields.append(("content", .string(c))) }
        if let n = m.name { fields.append(("name", .string(n))) }
        if let r = m.reasoningContent {
            fields.append(("reasoning_content", .string(r)))
            fields.append(("thinking", .string(r)))
        }
        if !m.toolCalls.isEmpty { fields.append(("tool_calls", JinjaValue(json: .array(m.toolCalls.map(\.json))))) }
        if let id = m.toolCallId { fields.append(("tool_call_id", .string(id))) }
        return .object(JinjaObject(fields))
    }

    static func apiReason(_ r: Scheduling.FinishReason) -> OpenAIAPI.FinishReason {
        r == .length ? .length : .stop
    }

    static func randomId() -> String {
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in chars.randomElement()! })
    }

    private func submitError(_ error: Error) -> APIError {
        switch error as? EngineError {
        case .queueFull?: return APIError.rateLimited("\(error)")
        case .contextLengthExceeded(let p, let m, let l)?:
            return APIError.contextLengthExceeded(requested: m > Int.max - p ? Int.max : p + m, limit: l, promptTokens: p)
        case .shuttingDown?: return APIError.overloaded("\(error)")
        default: return APIError.invalidRequest("\(error)", param: nil)
        }
    }

    private func wholeCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int) {
        let collected = Collected()
        let modelId = self.modelId
        do {
            let handle = try engine.submit(gen) { [weak self] event in
                switch event {
                case .text(let t, _): collected.text += t
                case .finished(let reason, let usage):
                    guard reason != .abort else { return }
                    let body = ChatCompletionResponse(
                        id: id, created: created, model: modelId,
                        choices: [.init(content: collected.text, finishReason: Self.apiReason(reason))],
                        usage: Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                                     cachedTokens: usage.cachedTokens))
                    self?.sendJSON(res, 200, body.encoded())
                }
            }
            res.onClose { handle.cancel() }
        } catch {
            sendError(res, submitError(error))
        }
    }

    private func streamCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int,
                                  includeUsage: Bool) {
        let sse = SSEWriter(responder: res)
        let modelId = self.modelId
        @Sendable func chunk(_ choice: ChatCompletionChunk.Choice) -> String {
            ChatCompletionChunk(id: id, created: created, model: modelId, choices: [choice],
                                includeUsageField: includeUsage).serialized()
        }
        // Events can arrive before the response head is written: the gate holds them until it is.
        let gate = OrderedGate()
        do {
            let handle = try engine.submit(gen) { event in
                gate.run {
                switch event {
                case .text(let t, _):
                    if !t.isEmpty { sse.send(data: chunk(.init(content: t))) }
                case .finished(let reason, let usage):
                    guard reason != .abort else { return sse.finish() }
                    sse.send(data: chunk(.init(finishReason: Self.apiReason(reason))))
                    if includeUsage {
                        let u = Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                                      cachedTokens: usage.cachedTokens)
                        sse.send(data: ChatCompletionChunk.usageChunk(id: id, created: created, model: modelId, usage: u).serialized())
                    }
                    sse.send(data: "[DONE]")
                    sse.finish()
                }
                }
            }
            // Headers and the role chunk go out once the request is accepted.
            gate.open {
                sse.start(extraHeaders: Self.corsHeaders)
                sse.send(data: chunk(.init(role: "assistant", content: "")))
            }
            res.onClose { handle.cancel() }
        } catch {
            sendError(res, submitError(error))
        }
    }
}

/// Text gathered for a non-streamed response; touched only on the engine thread.
private final class Collected: @unchecked Sendable {
    var text = ""
}

/// Runs closures in order, holding those that arrive before `open` until it has run.
final class OrderedGate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var held: [() -> Void] = []

    /// Runs `first`, then everything held, then lets later `run` calls through directly.
    func open(_ first: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        first()
        for f in held { f() }
        held.removeAll()
        isOpen = true
    }

    func run(_ f: @escaping () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        if isOpen { f() } else { held.append(f) }
    }
}
