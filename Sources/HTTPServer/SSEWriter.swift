import Dispatch

// Server-sent events (WHATWG HTML §9.2) over a chunked HTTP response.

/// Writes an event stream: `data: <payload>\n\n` events (with an `event: <name>` line for typed streams: OpenAI
/// Responses, Anthropic Messages) and `: <text>\n\n` comment keep-alives. Never writes `id:` or `retry:` fields
/// and never an empty event.
public struct SSEWriter: Sendable {
    /// The responder the stream is written to.
    public let responder: HTTPResponder
    /// Seconds of silence after which a `: keep-alive` comment is written; nil: never.
    public let keepAliveSeconds: Double?

    /// A writer over `responder` (call `start` before sending events); `keepAliveSeconds` as the property.
    public init(responder: HTTPResponder, keepAliveSeconds: Double? = nil) {
        self.responder = responder
        self.keepAliveSeconds = keepAliveSeconds
    }

    /// Sends the response head: 200, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
    /// `X-Accel-Buffering: no`, then `extraHeaders` (e.g. CORS fields). Then, until the stream ends or the client goes,
    /// a `: keep-alive` comment goes out whenever nothing was written for `keepAliveSeconds` (a long prefill, a tool
    /// call the parser holds until it is whole): proxies with an idle timeout (nginx's 60 s) would cut a silent
    /// stream. Clients ignore comment lines.
    public func start(extraHeaders: [(String, String)] = []) {
        responder.startStream(status: 200, headers: [("Content-Type", "text/event-stream"),
                                                     ("Cache-Control", "no-cache"),
                                                     ("X-Accel-Buffering", "no")] + extraHeaders)
        guard let interval = keepAliveSeconds, interval > 0 else { return }
        let responder = self.responder
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        // Checked four times per interval: a comment follows at most 1¼ intervals of silence.
        timer.schedule(deadline: .now() + interval / 4, repeating: interval / 4)
        timer.setEventHandler {
            guard let idle = responder.secondsSinceLastWrite else { return timer.cancel() }
            if idle >= interval && !responder.write(Self.keepAlive) { timer.cancel() }
        }
        timer.resume()
    }

    static let keepAlive = Array(": keep-alive\n\n".utf8)

    /// Sends one event carrying `data` (a payload with line breaks becomes several `data:` lines).
    /// - Returns: false once the client is gone.
    @discardableResult
    public func send(data: String) -> Bool {
        responder.write(SSEWriter.frame(data: data))
    }

    /// Sends one typed event: an `event: <name>` line (line breaks in `name` become spaces), then `data` as in
    /// `send(data:)`. - Returns: false once the client is gone.
    @discardableResult
    public func send(event name: String, data: String) -> Bool {
        let clean = name.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
        return responder.write(Array("event: \(clean)\n".utf8) + SSEWriter.frame(data: data))
    }

    /// Sends a comment line (`: text`), ignored by clients; used as a keep-alive (`: ping`).
    public func comment(_ text: String) {
        let clean = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
        responder.write(Array(": \(clean)\n\n".utf8))
    }

    /// Ends the response (the HTTP stream, not an SSE `[DONE]` event: send that with `send(data: "[DONE]")`).
    public func finish() { responder.endStream() }

    /// Bytes of one event: each line of `data` as a `data:` line, then a blank line.
    public static func frame(data: String) -> [UInt8] {
        var s = ""
        for line in data.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            s += "data: \(line)\n"
        }
        s += "\n"
        return Array(s.utf8)
    }
}
