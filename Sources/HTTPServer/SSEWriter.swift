// Server-sent events (WHATWG HTML §9.2) over a chunked HTTP response.

/// Writes an event stream: `data: <payload>\n\n` events and `: <text>\n\n` comment keep-alives. Never writes
/// `id:`, `event:` or `retry:` fields (OpenAI streams have none) and never an empty event.
public struct SSEWriter: Sendable {
    /// The responder the stream is written to.
    public let responder: HTTPResponder

    /// A writer over `responder` (call `start` before sending events).
    public init(responder: HTTPResponder) { self.responder = responder }

    /// Sends the response head: 200, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
    /// `X-Accel-Buffering: no`, then `extraHeaders` (e.g. CORS fields).
    public func start(extraHeaders: [(String, String)] = []) {
        responder.startStream(status: 200, headers: [("Content-Type", "text/event-stream"),
                                                     ("Cache-Control", "no-cache"),
                                                     ("X-Accel-Buffering", "no")] + extraHeaders)
    }

    /// Sends one event carrying `data` (a payload with line breaks becomes several `data:` lines).
    /// - Returns: false once the client is gone.
    @discardableResult
    public func send(data: String) -> Bool {
        responder.write(SSEWriter.frame(data: data))
    }

    /// Sends a comment line (`: text`), ignored by clients; used as a keep-alive (`: ping`).
    public func comment(_ text: String) {
        let clean = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
        responder.write(Array(": \(clean)\n\n".utf8))
    }

    /// Ends the response (the HTTP stream, not an SSE `[DONE]` event: send that with `send(data: "[DONE]")`).
    public func finish() { responder.endStream() }

    /// Sends `: ping` comments every `interval` seconds (from a Dispatch timer) until the stream ends, the client
    /// goes away, or the returned handle is cancelled — keeps clients and proxies from timing out during a long
    /// prefill. Comment events are whole chunks, so they never split a `data:` event.
    /// - Parameter interval: seconds between pings (> 0, precondition).
    @discardableResult
    public func startKeepAlive(interval: Double, text: String = "ping") -> SSEKeepAlive {
        precondition(interval > 0, "keep-alive interval must be positive")
        return SSEKeepAlive(writer: self, interval: interval, text: text)
    }

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

/// A running keep-alive started by `SSEWriter.startKeepAlive`; stops by itself when the response completes or the
/// client disconnects.
public final class SSEKeepAlive: @unchecked Sendable {
    private let timer: DispatchSourceTimer
    private let lock = Lock()
    private var cancelled = false

    init(writer: SSEWriter, interval: Double, text: String) {
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            let responder = writer.responder
            if responder.isClosed || responder.isComplete { self?.cancel(); return }
            writer.comment(text)
        }
        writer.responder.onClose { [weak self] in self?.cancel() }
        timer.resume()
    }

    /// Stops the pings (idempotent).
    public func cancel() {
        let first: Bool = lock.withLock {
            defer { cancelled = true }
            return !cancelled
        }
        if first { timer.cancel() }
    }

    deinit { cancel() }
}

import Dispatch
