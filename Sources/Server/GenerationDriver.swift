import Engine
import Foundation
import HTTPServer
import OpenAIAPI
import Scheduling

/// What a route does with one generation's events (the Responses and Anthropic Messages routes; each renders its own
/// wire format from the same events). All calls are serialized: `start` first, then `reasoning` / `text` /
/// `toolCallBegin` / `toolCallArguments` in output order, then `finish` or `abort`, never concurrently.
struct GenerationSink: Sendable {
    /// Runs once the engine starts the request (its first scheduling), before any other call (streams send their
    /// head here). A request aborted before it started gets `refused` (a 503) instead of any sink call.
    var start: @Sendable (_ cachedTokens: Int) -> Void = { _ in }
    /// New text (never empty).
    var text: @Sendable (String) -> Void
    /// New reasoning text (never empty). Nil: the route shows no reasoning, and a think block stays inline in the
    /// text (the reasoning parser is off).
    var reasoning: (@Sendable (String) -> Void)? = nil
    /// A tool call starts: its 0-based index in the reply and the function name. Nil: no tool-call parsing (the
    /// route offers no tools).
    var toolCallBegin: (@Sendable (Int, String) -> Void)? = nil
    /// Arguments JSON text of call `index` (pieces concatenate; set together with `toolCallBegin`).
    var toolCallArguments: (@Sendable (Int, String) -> Void)? = nil
    /// The request ended (`.stop` or `.length`) with these counts.
    var finish: @Sendable (Scheduling.FinishReason, GenerationUsage) -> Void
    /// The request was aborted (client gone, or the server shutting down).
    var abort: @Sendable () -> Void
}

extension SputnikServer {
    /// An event-stream writer over `res` with the server's `--sse-keepalive`.
    func sseWriter(_ res: HTTPResponder) -> SSEWriter {
        SSEWriter(responder: res, keepAliveSeconds: options.sseKeepAlive > 0 ? options.sseKeepAlive : nil)
    }

    /// Submits `gen` to the engine and feeds its events to `sink` in order, starting with `sink.start` when the
    /// engine starts the request; cancels the request when the client goes away. A refused submission (queue full,
    /// context too long, shutting down), or a request aborted before the engine started it (the server draining),
    /// is passed to `refused` and `sink` is never called.
    func drive(_ res: HTTPResponder, _ gen: GenerationRequest, _ sink: GenerationSink, promptField: String = "messages",
               refused: @escaping @Sendable (APIError) -> Void) {
        let gate = OrderedGate()
        let exchange = self.exchange(res)
        // The parsers run only for what the sink renders.
        var gen = gen
        if sink.reasoning == nil { gen.parsing.reasoning = nil }
        if sink.toolCallBegin == nil { gen.parsing.toolCalls = nil }
        if gen.parsing.reasoning == nil && gen.parsing.toolCalls == nil { gen.parsing = OutputParsing() }
        let started = SinkState(false)
        do {
            let handle = try engine.submit(gen) { [weak self] event in
                gate.run {
                    switch event {
                    case .started(let cached):
                        started.value = true
                        sink.start(cached)
                    case .text(let t, let ids, _):
                        exchange?.tokenArrived(ids.count)
                        if !t.isEmpty { sink.text(t) }
                    case .reasoning(let t, let ids, _):
                        exchange?.tokenArrived(ids.count)
                        if !t.isEmpty { sink.reasoning?(t) }
                    case .toolCallBegin(let i, let name):
                        sink.toolCallBegin?(i, name)
                    case .toolCallArguments(let i, let a):
                        sink.toolCallArguments?(i, a)
                    case .finished(let reason, let usage):
                        exchange?.usage(prompt: usage.promptTokens, completion: usage.completionTokens)
                        if reason == .abort && !started.value {
                            refused(SputnikServer.abortedError)
                            self?.endExchange(res)
                        } else if reason == .abort {
                            // The server cut it (shutdown timeout; a client that left was logged 499 already): the
                            // access log says 503, the status its final error event carries, not the 200 of the
                            // stream's head (helper-59: a truncated stream was logged as a success).
                            sink.abort()
                            self?.endExchange(res, status: SputnikServer.abortedError.status)
                        } else {
                            sink.finish(reason, usage)
                            self?.endExchange(res)
                        }
                    }
                }
            }
            exchange?.submitted(promptTokens: gen.promptTokens.count)
            gate.open {}
            res.onClose { handle.cancel() }
        } catch {
            refused(Self.apiError(error, promptField: promptField))
        }
    }
}

/// Mutable per-request state of a route's sink (text so far, event numbering); touched only under the sink's
/// serialization (see `GenerationSink`).
final class SinkState<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

extension APIError {
    /// Another route's name for a field: when `param` contains `old`, every `old` in `param` and `message` becomes
    /// `new` (the chat mapping's `tools[0].function.parameters` is Responses' `tools[0].parameters`).
    mutating func renameField(_ old: String, to new: String) {
        guard let p = param, p.contains(old) else { return }
        param = p.replacingOccurrences(of: old, with: new)
        message = message.replacingOccurrences(of: old, with: new)
    }
}
