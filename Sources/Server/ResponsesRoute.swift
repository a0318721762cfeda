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
            gen = try generationRequest(request.chat)
        } catch {
            return sendError(res, error)
        }
        let id = Self.randomId()
        let base = ResponseObject(id: "resp_" + id, messageId: "msg_" + id, createdAt: Int(Date().timeIntervalSince1970),
                                  model: modelId, status: "in_progress", request: request)
        if request.chat.stream { streamResponse(res, gen, base) } else { wholeResponse(res, gen, base) }
    }

    /// The finished response object for `text` and the engine's finish.
    private static func finalResponse(_ base: ResponseObject, text: String, _ reason: Scheduling.FinishReason,
                                      _ usage: GenerationUsage) -> ResponseObject {
        var r = base
        r.text = text
        r.status = reason == .length ? "incomplete" : "completed"
        r.incompleteReason = reason == .length ? "max_output_tokens" : nil
        r.usage = Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, cachedTokens: usage.cachedTokens)
        return r
    }

    private func wholeResponse(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: ResponseObject) {
        let text = SinkState("")
        drive(res, gen, GenerationSink(
            text: { text.value += $0 },
            finish: { [weak self] reason, usage in
                self?.sendJSON(res, 200, Self.finalResponse(base, text: text.value, reason, usage).encoded())
            },
            abort: { [weak self] in self?.sendError(res, APIError.overloaded("The generation was aborted")) }),
            refused: { sendError(res, $0) })
    }

    private func streamResponse(_ res: HTTPResponder, _ gen: GenerationRequest, _ base: ResponseObject) {
        let sse = SSEWriter(responder: res)
        let state = SinkState((events: ResponseEventSequence(), text: ""))
        @Sendable func send(_ type: String, _ fields: [(key: String, value: JSONValue)]) {
            let e = state.value.events.event(type, fields)
            sse.send(event: e.name, data: e.data)
        }
        let place: [(key: String, value: JSONValue)] = [("item_id", .string(base.messageId)), ("output_index", .int(0)),
                                                        ("content_index", .int(0))]
        drive(res, gen, GenerationSink(
            start: {
                sse.start(extraHeaders: self.requestIdHeaders(res, status: 200))
                send("response.created", [("response", base.json)])
                send("response.in_progress", [("response", base.json)])
                send("response.output_item.added", [("output_index", .int(0)), ("item", base.messageItem(text: nil))])
                send("response.content_part.added", place + [("part", ResponseObject.textPart(""))])
            },
            text: { t in
                state.value.text += t
                send("response.output_text.delta", place + [("delta", .string(t)), ("logprobs", .array([]))])
            },
            finish: { reason, usage in
                let final = Self.finalResponse(base, text: state.value.text, reason, usage)
                send("response.output_text.done", place + [("text", .string(state.value.text)), ("logprobs", .array([]))])
                send("response.content_part.done", place + [("part", ResponseObject.textPart(state.value.text))])
                send("response.output_item.done", [("output_index", .int(0)), ("item", final.messageItem(text: state.value.text))])
                send("response.completed", [("response", final.json)])
                sse.finish()
            },
            abort: { sse.finish() }),
            refused: { sendError(res, $0) })
    }
}
