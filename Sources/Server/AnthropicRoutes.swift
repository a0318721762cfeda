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

    /// Sends `e` in Anthropic's error shape (with `Retry-After` on 429 and 503).
    func sendAnthropicError(_ res: HTTPResponder, _ e: APIError) {
        var extra: [(String, String)] = []
        if e.status == 429 || e.status == 503 { extra.append(("Retry-After", "1")) }
        sendJSON(res, e.status, AnthropicError(e).encoded(), extra: extra)
    }

    /// `{"input_tokens": N}`: the tokens of the rendered prompt (system, messages and the generation prompt).
    func handleAnthropicCountTokens(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            let request = try AnthropicMessagesRequest.decode(req.body, countTokens: true).get()
            let tokens = try promptTokens(for: request.chat)
            sendJSON(res, 200, JSONValue.object([("input_tokens", .int(tokens.count))]).encoded())
        } catch {
            sendAnthropicError(res, error)
        }
    }

    func handleAnthropicMessages(_ req: HTTPRequest, _ res: HTTPResponder) {
        let request: AnthropicMessagesRequest
        let gen: GenerationRequest
        do throws(APIError) {
            request = try AnthropicMessagesRequest.decode(req.body).get()
            gen = try generationRequest(request.chat)
        } catch {
            return sendAnthropicError(res, error)
        }
        let base = AnthropicMessage(id: "msg_" + Self.randomId(), model: modelId, text: nil, stopReason: nil, stopSequence: nil,
                                    promptTokens: gen.promptTokens.count, cachedTokens: 0, outputTokens: 0)
        if request.chat.stream { streamMessage(res, gen, base) } else { wholeMessage(res, gen, base) }
    }

    /// Anthropic's `stop_reason` for an engine finish.
    static func anthropicStopReason(_ reason: Scheduling.FinishReason, _ usage: GenerationUsage) -> String {
        reason == .length ? "max_tokens" : usage.stopSequence != nil ? "stop_sequence" : "end_turn"
    }

    private func wholeMessage(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: AnthropicMessage) {
        let text = SinkState("")
        drive(res, gen, GenerationSink(
            text: { text.value += $0 },
            finish: { [weak self] reason, usage in
                var m = base
                m.text = text.value
                m.stopReason = Self.anthropicStopReason(reason, usage)
                m.stopSequence = usage.stopSequence
                m.cachedTokens = usage.cachedTokens
                m.outputTokens = usage.completionTokens
                self?.sendJSON(res, 200, m.encoded())
            },
            abort: { [weak self] in self?.sendAnthropicError(res, APIError.overloaded("The generation was aborted")) }),
            refused: { sendAnthropicError(res, $0) })
    }

    private func streamMessage(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: AnthropicMessage) {
        let sse = SSEWriter(responder: res)
        @Sendable func send(_ e: (name: String, data: String)) { sse.send(event: e.name, data: e.data) }
        let index: (key: String, value: JSONValue) = ("index", .int(0))
        drive(res, gen, GenerationSink(
            start: {
                sse.start(extraHeaders: self.requestIdHeaders(res, status: 200))
                send(AnthropicMessage.event("message_start", [("message", base.json)]))
                send(AnthropicMessage.event("content_block_start", [
                    index, ("content_block", .object([("type", .string("text")), ("text", .string(""))]))]))
                send(AnthropicMessage.event("ping"))
            },
            text: { t in
                send(AnthropicMessage.event("content_block_delta", [
                    index, ("delta", .object([("type", .string("text_delta")), ("text", .string(t))]))]))
            },
            finish: { reason, usage in
                send(AnthropicMessage.event("content_block_stop", [index]))
                send(AnthropicMessage.event("message_delta", [
                    ("delta", .object([("stop_reason", .string(Self.anthropicStopReason(reason, usage))),
                                       ("stop_sequence", .stringOrNull(usage.stopSequence))])),
                    ("usage", .object([("output_tokens", .int(usage.completionTokens))]))]))
                send(AnthropicMessage.event("message_stop"))
                sse.finish()
            },
            abort: { sse.finish() }),
            refused: { sendAnthropicError(res, $0) })
    }
}
