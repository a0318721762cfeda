import Engine
import Foundation
import HTTPServer
import OpenAIAPI
import Scheduling

/// `POST /v1/chat/completions`: decode → prompt tokens → engine (`EngineMapping.swift`) → streamed (SSE) or whole
/// response.
extension SputnikServer {
    func handleChatCompletion(_ req: HTTPRequest, _ res: HTTPResponder) {
        let gen: GenerationRequest
        let stream: Bool, includeUsage: Bool
        do throws(APIError) {
            let request = try ChatCompletionRequest.decode(req.body).get()
            gen = try generationRequest(request)
            stream = request.stream
            includeUsage = request.includeUsage
        } catch {
            return sendError(res, error)
        }
        let id = "chatcmpl-" + Self.randomId()
        let created = Int(Date().timeIntervalSince1970)
        if stream {
            streamCompletion(res, gen, id: id, created: created, includeUsage: includeUsage)
        } else {
            wholeCompletion(res, gen, id: id, created: created)
        }
    }

    static func randomId() -> String {
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in chars.randomElement()! })
    }

    private func wholeCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int) {
        let collected = Collected()
        let modelId = self.modelId
        let format = gen.parsing.toolCalls
        do {
            let handle = try engine.submit(gen) { [weak self] event in
                switch event {
                case .text(let t, _): collected.text += t
                case .reasoning(let t, _): collected.reasoning += t
                case .toolCallBegin(_, let name):
                    var rng = SystemRandomNumberGenerator()
                    let callId = format?.makeCallId(using: &rng) ?? "call_" + Self.randomId()
                    collected.calls.append(ToolCall(id: callId, name: name, arguments: ""))
                case .toolCallArguments(let i, let a):
                    if collected.calls.indices.contains(i) { collected.calls[i].arguments += a }
                case .finished(let reason, let usage):
                    guard reason != .abort else { return }
                    let calls = collected.calls
                    let content: String? = calls.isEmpty || !collected.text.isEmpty ? collected.text : nil
                    let body = ChatCompletionResponse(
                        id: id, created: created, model: modelId,
                        choices: [.init(content: content,
                                        reasoningContent: collected.reasoning.isEmpty ? nil : collected.reasoning,
                                        toolCalls: calls, finishReason: Self.apiReason(reason, toolCalls: calls.count))],
                        usage: Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                                     cachedTokens: usage.cachedTokens))
                    self?.sendJSON(res, 200, body.encoded())
                }
            }
            res.onClose { handle.cancel() }
        } catch {
            sendError(res, Self.apiError(error))
        }
    }

    private func streamCompletion(_ res: HTTPResponder, _ gen: GenerationRequest, id: String, created: Int,
                                  includeUsage: Bool) {
        let sse = SSEWriter(responder: res)
        let modelId = self.modelId
        let format = gen.parsing.toolCalls
        let calls = Collected()
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
                case .reasoning(let t, _):
                    if !t.isEmpty { sse.send(data: chunk(.init(reasoningContent: t))) }
                case .toolCallBegin(let i, let name):
                    var rng = SystemRandomNumberGenerator()
                    let callId = format?.makeCallId(using: &rng) ?? "call_" + Self.randomId()
                    calls.calls.append(ToolCall(id: callId, name: name, arguments: ""))
                    sse.send(data: chunk(.init(toolCalls: [ToolCallDelta(index: i, id: callId, type: "function", name: name,
                                                                         arguments: "")])))
                case .toolCallArguments(let i, let a):
                    sse.send(data: chunk(.init(toolCalls: [ToolCallDelta(index: i, arguments: a)])))
                case .finished(let reason, let usage):
                    guard reason != .abort else { return sse.finish() }
                    sse.send(data: chunk(.init(finishReason: Self.apiReason(reason, toolCalls: calls.calls.count))))
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
            sendError(res, Self.apiError(error))
        }
    }
}

/// Output gathered for a response; touched only on the engine thread.
private final class Collected: @unchecked Sendable {
    var text = ""
    var reasoning = ""
    var calls: [ToolCall] = []
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
