import Engine
import Foundation
import HTTPServer
import JSON
import OpenAIAPI
import Scheduling

/// `POST /v1/chat/completions`: decode → prompt tokens → engine (`EngineMapping.swift`) → streamed (SSE) or whole
/// response.
extension SputnikServer {
    func handleChatCompletion(_ req: HTTPRequest, _ res: HTTPResponder) {
        let gen: GenerationRequest
        let stream: Bool, includeUsage: Bool, continuousUsage: Bool, forcedCall: Bool
        do throws(APIError) {
            let request = try ChatCompletionRequest.decode(req.body).get()
            exchange(res)?.user = request.sampling.user
            gen = try generationRequest(request)
            stream = request.stream
            includeUsage = request.includeUsage
            continuousUsage = request.continuousUsage
            // `tool_choice` `required` or a named function: the reply is calls only, so its content is null.
            forcedCall = request.tools != nil && (request.toolChoice == .string("required") || request.toolChoice?.objectValue != nil)
        } catch {
            return sendError(res, error)
        }
        let id = "chatcmpl-" + Self.randomId()
        let created = Int(Date().timeIntervalSince1970)
        if stream {
            streamCompletion(res, gen, id: id, created: created, includeUsage: includeUsage, continuousUsage: continuousUsage,
                             forcedCall: forcedCall)
        } else {
            wholeCompletion(res, gen, id: id, created: created)
        }
    }

    /// The answer to a request the engine aborted while its client was still there (server shutdown).
    static let abortedError = APIError(status: 503, message: "The server is shutting down; the request was aborted.",
                                       type: "server_error", code: "server_shutting_down")

    static func randomId() -> String {
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in chars.randomElement()! })
    }

    /// `gen.n` choices gathered into one `chat.completion`; `usage` counts the prompt once and every choice's tokens.
    /// Reasoning goes to `reasoning_content`, parsed tool calls to `tool_calls` (then `content` is the text before
    /// them, or null) with `finish_reason` `tool_calls`.
    private func wholeCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int) {
        let collected = Collected(n: gen.n)
        let modelId = self.modelId
        let exchange = self.exchange(res)
        let format = gen.parsing.toolCalls
        do {
            let wantsLogprobs = gen.logprobs != nil
            let handle = try engine.submit(gen) { [weak self] k, event in
                switch event {
                case .started: break
                case .text(let t, let ids, let logprobs):
                    exchange?.tokenArrived(ids.count)
                    collected.texts[k] += t
                    if wantsLogprobs, let self { collected.logprobs[k] += self.chatLogprobs(logprobs) }
                case .reasoning(let t, let ids, let logprobs):
                    exchange?.tokenArrived(ids.count)
                    collected.reasoning[k] += t
                    if wantsLogprobs, let self { collected.logprobs[k] += self.chatLogprobs(logprobs) }
                case .toolCallBegin(_, let name):
                    var rng = SystemRandomNumberGenerator()
                    let callId = format?.makeCallId(using: &rng) ?? "call_" + Self.randomId()
                    collected.calls[k].append(ToolCall(id: callId, name: name, arguments: ""))
                case .toolCallArguments(let i, let a):
                    if collected.calls[k].indices.contains(i) { collected.calls[k][i].arguments += a }
                case .finished(let reason, let usage):
                    // Aborted: the client left (the answer is dropped) or the server stopped (it gets a 503), once.
                    guard reason != .abort, !collected.aborted else {
                        if !collected.aborted { self?.sendError(res, Self.abortedError) }
                        collected.aborted = true
                        return
                    }
                    collected.finish(k, Self.apiReason(reason, toolCalls: collected.calls[k].count), usage)
                    guard collected.remaining == 0 else { return }
                    exchange?.usage(prompt: collected.usage.promptTokens, completion: collected.usage.completionTokens)
                    let choices = (0..<collected.texts.count).map { i in
                        let calls = collected.calls[i]
                        return ChatCompletionResponse.Choice(
                            index: i, content: calls.isEmpty || !collected.texts[i].isEmpty ? collected.texts[i] : nil,
                            reasoningContent: collected.reasoning[i].isEmpty ? nil : collected.reasoning[i],
                            toolCalls: calls, logprobs: wantsLogprobs ? collected.logprobs[i] : nil,
                            finishReason: collected.reasons[i]!)
                    }
                    let body = ChatCompletionResponse(id: id, created: created, model: modelId, choices: choices,
                                                      usage: collected.usage)
                    self?.sendJSON(res, 200, body.encoded())
                }
            }
            exchange?.submitted(promptTokens: gen.promptTokens.count)
            res.onClose { handle.cancel() }
        } catch {
            sendError(res, Self.apiError(error))
        }
    }

    /// The same, streamed: role chunks, then content / `reasoning_content` / `tool_calls` deltas per choice (`index`),
    /// a finish chunk per choice, the usage chunk when asked (`includeUsage`), `[DONE]`. With `continuousUsage`
    /// (`stream_options.continuous_usage_stats`) every chunk but that last one carries the running usage: the
    /// prompt's tokens and the tokens generated so far over all choices (a choice's finish chunk counts its final
    /// total, end-of-generation token included, as the usage chunk does).
    /// The role chunks go out before the first output, in index order; with tools they carry no `content` (see
    /// `roles` inside), so a streamed call-only message assembles to `content` None, as the whole response has it.
    private func streamCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int,
                                  includeUsage: Bool, continuousUsage: Bool, forcedCall: Bool) {
        let sse = sseWriter(res)
        let modelId = self.modelId
        let exchange = self.exchange(res)
        let format = gen.parsing.toolCalls
        // Events can arrive before `submit` returns: the gate holds them until it has.
        let gate = OrderedGate()
        let wantsLogprobs = gen.logprobs != nil
        let collected = Collected(n: gen.n)
        let promptTokens = gen.promptTokens.count
        let headFields = requestIdHeaders(res, status: 200)
        /// The role chunks, before the first output of any choice, one per choice in index order (the openai SDK's
        /// stream helper builds its snapshot from the first chunk, by position: helper-43). Without tools each has
        /// `content: ""`, as OpenAI's text replies. With tools none has `content` (OpenAI sends null when the reply is
        /// calls only, so a client's accumulated message has `content` None, as the whole response does): a choice's
        /// text brings its own, and a choice that ends with neither text nor calls gets `content: ""` before its
        /// finish chunk (`emptyContent`).
        let toolsPossible = forcedCall || format != nil
        @Sendable func roles() {
            guard !collected.rolesSent else { return }
            collected.rolesSent = true
            for j in 0..<gen.n {
                sse.send(data: chunk(.init(index: j, role: "assistant", content: toolsPossible ? nil : "")))
            }
        }
        /// Choice k ends: with tools, `content: ""` when it had neither text nor calls (the whole response's "").
        @Sendable func emptyContent(_ k: Int) {
            guard toolsPossible, !collected.contentSent[k], collected.calls[k].isEmpty else { return }
            sse.send(data: chunk(.init(index: k, content: "")))
        }
        @Sendable func chunk(_ choice: ChatCompletionChunk.Choice) -> String {
            let running = continuousUsage
                ? Usage.running(promptTokens: promptTokens, completionTokens: collected.generatedTotal) : nil
            return ChatCompletionChunk(id: id, created: created, model: modelId, choices: [choice], usage: running,
                                       includeUsageField: includeUsage).serialized()
        }
        do {
            let handle = try engine.submit(gen) { [weak self] k, event in
                gate.run {
                switch event {
                case .started:
                    // The head goes out once the engine starts the request: one it never starts (the server drains)
                    // can still get a retryable 503.
                    collected.headSent = true
                    sse.start(extraHeaders: headFields)
                case .text(let t, let ids, let logprobs):
                    roles()
                    exchange?.tokenArrived(ids.count)
                    collected.generated(k, ids.count)
                    let entries = wantsLogprobs ? self?.chatLogprobs(logprobs) : nil
                    if !t.isEmpty { collected.contentSent[k] = true }
                    // Log-probabilities of tokens without text (a tool call's) carry no `content` key: `""` there made
                    // a call-only message's content '' in the SDK (helper-44).
                    if !t.isEmpty || !(entries ?? []).isEmpty {
                        sse.send(data: chunk(.init(index: k, content: t.isEmpty ? nil : t, logprobs: entries)))
                    }
                case .reasoning(let t, let ids, let logprobs):
                    roles()
                    exchange?.tokenArrived(ids.count)
                    collected.generated(k, ids.count)
                    let entries = wantsLogprobs ? self?.chatLogprobs(logprobs) : nil
                    if !t.isEmpty || !(entries ?? []).isEmpty {
                        sse.send(data: chunk(.init(index: k, reasoningContent: t, logprobs: entries)))
                    }
                case .toolCallBegin(let i, let name):
                    roles()
                    var rng = SystemRandomNumberGenerator()
                    let callId = format?.makeCallId(using: &rng) ?? "call_" + Self.randomId()
                    collected.calls[k].append(ToolCall(id: callId, name: name, arguments: ""))
                    sse.send(data: chunk(.init(index: k, toolCalls: [ToolCallDelta(index: i, id: callId, type: "function",
                                                                                   name: name, arguments: "")])))
                case .toolCallArguments(let i, let a):
                    sse.send(data: chunk(.init(index: k, toolCalls: [ToolCallDelta(index: i, arguments: a)])))
                case .finished(let reason, let usage):
                    guard reason != .abort else {
                        // The client left (nothing reaches it) or the server stopped: a 503 when nothing was sent yet
                        // (the request never started), else one error event.
                        if !collected.aborted && !collected.headSent {
                            self?.sendError(res, Self.abortedError)
                        } else if !collected.aborted {
                            sse.send(data: String(decoding: Self.abortedError.encoded(), as: UTF8.self))
                            sse.finish()
                            self?.endExchange(res, status: Self.abortedError.status)   // logged 503, not the head's 200
                        }
                        collected.aborted = true
                        return
                    }
                    guard !collected.aborted else { return }
                    roles()
                    emptyContent(k)
                    // Only whole calls make `tool_calls`, counted as the whole response counts them: a stop that
                    // cut a streamed call ends the reply as the whole response ends it (helper-71, helper-72).
                    let why = Self.apiReason(reason, toolCalls: usage.toolCalls)
                    collected.finish(k, why, usage)
                    sse.send(data: chunk(.init(index: k, finishReason: why)))
                    guard collected.remaining == 0 else { return }
                    exchange?.usage(prompt: collected.usage.promptTokens, completion: collected.usage.completionTokens)
                    defer { self?.endExchange(res) }
                    if includeUsage {
                        sse.send(data: ChatCompletionChunk.usageChunk(id: id, created: created, model: modelId,
                                                                      usage: collected.usage).serialized())
                    }
                    sse.send(data: "[DONE]")
                    sse.finish()
                }
                }
            }
            gate.open {}
            exchange?.submitted(promptTokens: gen.promptTokens.count)
            res.onClose { handle.cancel() }
        } catch {
            sendError(res, Self.apiError(error))
        }
    }
}

/// Output gathered for a response, per choice; touched only on the engine thread.
private final class Collected: @unchecked Sendable {
    var texts: [String]
    var reasoning: [String]
    var calls: [[ToolCall]]
    var logprobs: [[TokenLogprob]]
    var reasons: [OpenAIAPI.FinishReason?]
    var remaining: Int
    var aborted = false
    /// A stream's head has been sent (at the engine's `.started`).
    var headSent = false
    /// The role chunks have been sent (before the first output).
    var rolesSent = false
    /// Per choice: a chunk with text in `content` has been sent.
    var contentSent: [Bool]
    /// The prompt counted once, every choice's generated tokens.
    var usage = Usage(promptTokens: 0, completionTokens: 0)
    /// Tokens generated so far per choice (streamed ids; the engine's count once the choice finished).
    var generatedPerChoice: [Int]
    /// Sum of `generatedPerChoice`: the running `completion_tokens` of `continuous_usage_stats`.
    var generatedTotal = 0

    init(n: Int) {
        texts = Array(repeating: "", count: n)
        reasoning = Array(repeating: "", count: n)
        calls = Array(repeating: [], count: n)
        logprobs = Array(repeating: [], count: n)
        reasons = Array(repeating: nil, count: n)
        generatedPerChoice = Array(repeating: 0, count: n)
        contentSent = Array(repeating: false, count: n)
        remaining = n
    }

    /// Choice `k` completed `count` more tokens.
    func generated(_ k: Int, _ count: Int) {
        generatedPerChoice[k] += count
        generatedTotal += count
    }

    func finish(_ k: Int, _ reason: OpenAIAPI.FinishReason, _ u: GenerationUsage) {
        reasons[k] = reason
        remaining -= 1
        if k == 0 {
            usage.promptTokens = u.promptTokens
            usage.cachedTokens = u.cachedTokens
        }
        usage.completionTokens += u.completionTokens
        // `completion_tokens_details.reasoning_tokens`, when the reply reasoned.
        if u.reasoningTokens > 0 { usage.reasoningTokens = (usage.reasoningTokens ?? 0) + u.reasoningTokens }
        generatedTotal += u.completionTokens - generatedPerChoice[k]
        generatedPerChoice[k] = u.completionTokens
    }
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
