// The per-request handle the application uses to answer: a full response, or a chunked stream.

/// Answers one request. Thread-safe: every method may be called from any thread, at any later time. Bytes are
/// queued on the connection and written without blocking the caller; `isBackpressured` reports a slow client.
///
/// Exactly one of `send` or `startStream … endStream` must be used (a second answer is a programming error and
/// traps). Responses to `HTTP/1.0` clients are close-delimited instead of chunked; responses to `HEAD` carry no body.
public final class HTTPResponder: @unchecked Sendable {
    /// The request being answered (body included).
    public let request: HTTPRequest
    private let connection: HTTPConnection
    private let lock = Lock()
    private var started = false
    private var completed = false
    private var closed = false
    private var closeCallbacks: [@Sendable () -> Void] = []
    private var writableCallbacks: [@Sendable () -> Void] = []
    private var chunked = true
    private var closeAfterStream = false
    /// Uptime (ns) of the last streamed write (or of the head).
    private var lastWrite: UInt64 = 0
    private var common: [(String, String)] = []

    init(request: HTTPRequest, connection: HTTPConnection) {
        self.request = request
        self.connection = connection
    }

    private var isHead: Bool { request.method == "HEAD" }

    /// Fields added to whichever response this responder sends (e.g. the application's CORS fields), unless the
    /// response sets a field of the same name itself. Set it before answering.
    public var commonHeaders: [(String, String)] {
        get { lock.withLock { common } }
        set { lock.withLock { common = newValue } }
    }

    /// Whether the connection will close after this response.
    private func closesAfter(_ headers: [(String, String)]) -> Bool {
        !request.keepAlive || connection.isStopping
            || headers.contains { $0.0.lowercased() == "connection" && $0.1.lowercased().contains("close") }
    }

    /// Builds the head fields: the app's fields minus framing ones, then framing and connection fields.
    private func headFields(_ headers: [(String, String)], framing: (String, String)?, close: Bool) -> [(String, String)] {
        var h = headers.filter {
            let n = $0.0.lowercased()
            return n != "content-length" && n != "transfer-encoding" && n != "connection"
        }
        for c in commonHeaders {
            if let i = h.firstIndex(where: { $0.0.lowercased() == c.0.lowercased() }) {
                if c.0.lowercased() == "vary" { h[i].1 += ", " + c.1 }   // list-valued: merge
            } else {
                h.append(c)
            }
        }
        if let framing { h.append(framing) }
        if close { h.append(("Connection", "close")) } else if request.version == "HTTP/1.0" { h.append(("Connection", "keep-alive")) }
        return h
    }

    /// Largest whole response, head included, that `send`/`trySend` accept, in bytes
    /// (`HTTPServerConfiguration.maxBufferedWriteBytes`, 32 MiB by default). Larger answers must be streamed.
    public var maxResponseBytes: Int { connection.config.maxBufferedWriteBytes }

    /// Sends a complete response with `Content-Length`. A response larger than `maxResponseBytes` is not sent:
    /// the client gets `500` (code `response_too_large`, rendered by `HTTPServerConfiguration.errorBody`) instead; use `trySend` to answer that
    /// case yourself.
    /// - Parameters: `status` HTTP status code; `headers` `[(name, value)]` (framing fields are managed here);
    ///   `body` bytes (omitted on the wire for `HEAD`).
    public func send(status: Int, headers: [(String, String)], body: [UInt8]) {
        if trySend(status: status, headers: headers, body: body) { return }
        let e = HTTPParseError(status: 500, message: "The response exceeds the server's limit of \(maxResponseBytes) bytes",
                               code: "response_too_large")
        let (contentType, body) = connection.config.errorBody(e.status, e.message, e.code, request)
        _ = trySend(status: 500, headers: [("Content-Type", contentType)], body: body)
    }

    /// Sends a complete response with `Content-Length` if it fits in `maxResponseBytes`.
    /// - Parameters: as `send`.
    /// - Returns: true when the response was taken (it is dropped if the client is gone). false when head plus
    ///   body exceed `maxResponseBytes`: nothing was sent and the request is still unanswered, so the caller
    ///   must answer it (e.g. with a small error).
    ///
    /// A body of at least `GzipCodec.minimumCompressedBytes` (1 KiB) to a request that accepts gzip
    /// (`Accept-Encoding`, RFC 9110 §12.5.3) is sent gzip-compressed with `Content-Encoding: gzip` and
    /// `Vary: Accept-Encoding`, unless `headers` already name a `Content-Encoding`; such a body sent uncompressed
    /// (the request does not accept gzip) carries the `Vary` too.
    public func trySend(status: Int, headers: [(String, String)], body: [UInt8]) -> Bool {
        lock.withLock { precondition(!started, "HTTPResponder: response already started") }
        let close = closesAfter(headers)
        let noBody = status == 204 || status == 304 || (100..<200).contains(status)
        var headers = headers, body = body
        if !noBody, body.count >= GzipCodec.minimumCompressedBytes,
           !headers.contains(where: { $0.0.lowercased() == "content-encoding" }) {
            // The coding depends on Accept-Encoding whichever way it goes: Vary says so on both (RFC 9110 §12.5.5),
            // joined to a Vary the caller set (CORS's Origin).
            if let i = headers.firstIndex(where: { $0.0.lowercased() == "vary" }) {
                headers[i].1 += ", Accept-Encoding"
            } else {
                headers.append(("Vary", "Accept-Encoding"))
            }
            if GzipCodec.accepts(request.headers), let compressed = GzipCodec.compress(body) {
                body = compressed
                headers.append(("Content-Encoding", "gzip"))
            }
        }
        let fields = headFields(headers, framing: noBody ? nil : ("Content-Length", String(body.count)), close: close)
        var bytes = HTTPResponseWriter.head(status: status, headers: fields)
        let sendsBody = !isHead && !noBody
        // Overflow-safe form of `bytes.count + body.count > maxResponseBytes`.
        if bytes.count > maxResponseBytes || (sendsBody && body.count > maxResponseBytes - bytes.count) { return false }
        lock.withLock {
            precondition(!started, "HTTPResponder: response already started")
            started = true
            completed = true
        }
        if sendsBody { bytes += body }
        connection.enqueue(bytes, from: self, final: true, close: close)
        return true
    }

    /// Sends the head of a streamed response (`Transfer-Encoding: chunked`; close-delimited for HTTP/1.0).
    /// Follow with `write` calls and one `endStream()`.
    public func startStream(status: Int, headers: [(String, String)]) {
        let http10 = request.version == "HTTP/1.0"
        let useChunked = !http10 && !isHead
        let close = closesAfter(headers) || http10
        lock.withLock {
            precondition(!started, "HTTPResponder: response already started")
            started = true
            chunked = useChunked
            closeAfterStream = close
            lastWrite = DispatchTime.now().uptimeNanoseconds
        }
        let fields = headFields(headers, framing: useChunked ? ("Transfer-Encoding", "chunked") : nil, close: close)
        connection.enqueue(HTTPResponseWriter.head(status: status, headers: fields), from: self, final: false, close: close)
    }

    /// Queues one piece of a streamed body (an empty array writes nothing).
    /// - Returns: false once the client is gone (or the stream has ended), and for a write before `startStream` (a
    ///   caller's bug: nothing is written, and in debug builds it traps; a release server must not die of it);
    ///   true when the bytes were queued.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        let (state, isChunked): (Bool?, Bool) = lock.withLock {
            assert(started, "HTTPResponder.write before startStream")
            if !started || closed || completed { return (false, chunked) }
            if !bytes.isEmpty { lastWrite = DispatchTime.now().uptimeNanoseconds }
            return (bytes.isEmpty || isHead ? true : nil, chunked)
        }
        if let state { return state }
        let framed: [UInt8] = isChunked ? Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [0x0D, 0x0A] : bytes
        return connection.enqueue(framed, from: self, final: false, close: false)
    }

    /// Seconds since the stream's last write (or its head); nil unless a stream is open (not started, ended, or the
    /// client gone).
    public var secondsSinceLastWrite: Double? {
        lock.withLock {
            guard started, !completed, !closed else { return nil }
            return Double(DispatchTime.now().uptimeNanoseconds &- lastWrite) / 1e9
        }
    }

    /// Ends a streamed response (writes the last chunk); later `write` calls return false.
    public func endStream() {
        let proceed: Bool = lock.withLock {
            precondition(started, "HTTPResponder.endStream before startStream")
            if completed { return false }
            completed = true
            return true
        }
        guard proceed else { return }
        let (close, isChunked) = lock.withLock { (closeAfterStream, chunked) }
        connection.enqueue(isChunked ? Array("0\r\n\r\n".utf8) : [], from: self, final: true, close: close)
    }

    /// True once the client disconnected (or the connection was closed by the server) before this response
    /// completed.
    public var isClosed: Bool { lock.withLock { closed } }

    /// True once the whole response has been handed over (`send` or `endStream` called).
    public var isComplete: Bool { lock.withLock { completed } }

    /// Registers `callback`, called once (on `closeQueue`) if the client disconnects before the response
    /// completed; called immediately if that already happened; never called after a completed response. Keep it
    /// short (cancel a request, log a line): the queue is shared.
    public func onClose(_ callback: @escaping @Sendable () -> Void) {
        let fireNow: Bool = lock.withLock {
            if closed { return true }
            if !completed { closeCallbacks.append(callback) }
            return false
        }
        if fireNow { callback() }
    }

    /// Bytes queued on the connection but not yet written to the socket.
    public var bufferedBytes: Int { connection.bufferedBytes }

    /// True while more than `HTTPServerConfiguration.writeHighWaterBytes` are queued (the client reads slowly):
    /// a producer should pause until `onWritable` fires.
    public var isBackpressured: Bool { connection.bufferedBytes > connection.config.writeHighWaterBytes }

    /// Registers `callback`, called once (on a global queue) when the queue drains below the high-water mark,
    /// or immediately if it already is below.
    public func onWritable(_ callback: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if !isBackpressured || closed { return true }
            writableCallbacks.append(callback)
            return false
        }
        if now { callback() }
    }

    /// Where `onClose` callbacks run: a serial queue of its own, which libdispatch overcommits, so a disconnect
    /// cancels its request at once even while slow handlers (tokenizing multi-megabyte prompts) hold every worker
    /// of the global pool. (On the global pool the cancel waited its turn: 28.7 s behind six 7 MB prompts.)
    static let closeQueue = DispatchQueue(label: "sputnik.http.close")

    /// Called by the connection when the client is gone.
    func clientGone() {
        let (close, writable): ([@Sendable () -> Void], [@Sendable () -> Void]) = lock.withLock {
            if closed { return ([], []) }
            closed = true
            defer {
                closeCallbacks = []
                writableCallbacks = []
            }
            return (completed ? [] : closeCallbacks, writableCallbacks)
        }
        for cb in close { Self.closeQueue.async { cb() } }
        for cb in writable { DispatchQueue.global().async { cb() } }
    }

    /// Called by the connection after a flush.
    func drained() {
        let cbs: [@Sendable () -> Void] = lock.withLock {
            if writableCallbacks.isEmpty || isBackpressured { return [] }
            defer { writableCallbacks = [] }
            return writableCallbacks
        }
        for cb in cbs { DispatchQueue.global().async { cb() } }
    }
}

import Dispatch
