// One accepted TCP connection: non-blocking socket driven by Dispatch sources on a private serial queue.
//
// NOTE: connection phases
//
//   open ──(response with close / parse error)──▶ closingAfterFlush ──(output flushed)──▶ lingering ──▶ closed
//     │                                                                  (SHUT_WR, drain input ≤ lingerTimeout)
//     └──(EOF / RST / write error / idle or header timeout / stop)──────────────────────────────────▶ closed
//
// The socket is read at all times (also while the application computes an answer), so a client that goes
// away is noticed at once and reported through `HTTPResponder.onClose`. Requests are answered one at a time in
// arrival order; pipelined requests wait in the parser's buffer.

import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class HTTPConnection: @unchecked Sendable {
    enum Phase { case open, closingAfterFlush, lingering, closed }

    let fd: Int32
    let config: HTTPServerConfiguration
    private let queue: DispatchQueue
    private let logger: Logger
    private let handler: @Sendable (HTTPRequest, HTTPResponder) -> Void
    private let expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)?
    private let onClosed: @Sendable (HTTPConnection) -> Void

    // Confined to `queue`.
    private var phase = Phase.open
    private var parser: HTTPParser
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var timer: DispatchSourceTimer?
    private var readSuspended = false
    private var writeActive = false
    private var liveSources = 0
    private var out: [UInt8] = []
    private var outIndex = 0
    private var current: HTTPResponder?
    private var lastActivity = DispatchTime.now()
    private var headStart: DispatchTime?
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)

    // Guarded by `lock`.
    private let lock = Lock()
    private var buffered = 0
    private var stopping = false

    init(fd: Int32, config: HTTPServerConfiguration, logger: Logger,
         handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void,
         expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)?,
         onClosed: @escaping @Sendable (HTTPConnection) -> Void) {
        self.fd = fd
        self.config = config
        self.logger = logger
        self.handler = handler
        self.expectation = expectation
        self.onClosed = onClosed
        self.queue = DispatchQueue(label: "sputnik.http.conn.\(fd)", target: .global())
        self.parser = HTTPParser(maxHeaderBytes: config.maxHeaderBytes, maxBodyBytes: config.maxBodyBytes)
    }

    /// Bytes queued but not yet written.
    var bufferedBytes: Int { lock.withLock { buffered } }

    /// True once the server is stopping (responses then close the connection).
    var isStopping: Bool { lock.withLock { stopping } }

    /// Starts reading. With `reject`, answers 503 + `Retry-After` at once and closes (connection limit).
    func start(reject: Bool) {
        queue.async { [self] in
            let rs = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            rs.setEventHandler { [weak self] in self?.handleReadable() }
            rs.setCancelHandler { [self] in sourceCancelled() }
            liveSources += 1
            readSource = rs
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.setEventHandler { [weak self] in self?.timerFired() }
            timer = t
            t.resume()
            rs.resume()
            if reject {
                let e = HTTPParseError(status: 503, message: "Server is at its connection limit; retry later",
                                       code: "server_overloaded")
                appendOut(HTTPResponseWriter.errorResponse(e, close: true, extra: [("Retry-After", String(config.retryAfterSeconds))]))
                enterClosingAfterFlush()
                flush()
            } else {
                updateTimer()
            }
        }
    }

    /// Closes the connection (server stop). A pending response's `onClose` fires.
    func shutdownFromServer() {
        lock.withLock { stopping = true }
        queue.async { [self] in
            if current == nil || phase != .open { closeNow(reason: "server stopping") }
            else { closeNow(reason: "server stopping with a request in flight") }
        }
    }

    // MARK: reading

    private func handleReadable() {
        guard phase != .closed else { return }
        var reads = 0
        while reads < 16 {
            reads += 1
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                if phase == .lingering { continue }
                lastActivity = .now()
                if phase == .open { parser.append(scratch[0..<n]) }
                if current != nil && parser.bufferedByteCount > config.maxHeaderBytes + config.maxBodyBytes + 65536 {
                    pauseReading()
                    break
                }
            } else if n == 0 {
                if current == nil && outIndex < out.count && phase != .lingering {
                    // Half-closed client with a completed response still being written: finish it, then close.
                    pauseReading()
                    if phase == .open { enterClosingAfterFlush() }
                    return
                }
                peerGone(reason: "EOF")
                return
            } else {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { break }
                peerGone(reason: "recv errno \(e)")
                return
            }
        }
        processInput()
    }

    private func pauseReading() {
        if !readSuspended, let rs = readSource { rs.suspend(); readSuspended = true }
    }

    private func resumeReading() {
        if readSuspended, let rs = readSource { rs.resume(); readSuspended = false }
    }

    /// Runs the parser while no request is in flight.
    private func processInput() {
        while phase == .open && current == nil {
            switch parser.next() {
            case .needMoreData:
                updateTimer()
                return
            case .expectContinue(let head):
                if let early = expectation?(head) {
                    var fields = early.1.filter { $0.0.lowercased() != "content-length" && $0.0.lowercased() != "connection" }
                    fields += [("Content-Length", String(early.2.count)), ("Connection", "close")]
                    appendOut(HTTPResponseWriter.head(status: early.0, headers: fields) + early.2)
                    enterClosingAfterFlush()
                    flush()
                    return
                }
                appendOut(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                flush()
            case .request(let req):
                headStart = nil
                let responder = HTTPResponder(request: req, connection: self)
                current = responder
                updateTimer()
                let handler = self.handler
                DispatchQueue.global().async { handler(req, responder) }
            case .error(let e):
                logger.debug("HTTP parse error: \(e)")
                appendOut(HTTPResponseWriter.errorResponse(e, close: true))
                enterClosingAfterFlush()
                flush()
                return
            }
        }
        updateTimer()
    }

    // MARK: writing

    /// Queues bytes of `responder`'s response. Called from any thread.
    /// - Returns: false when the client is gone or the buffer bound was exceeded.
    @discardableResult
    func enqueue(_ bytes: [UInt8], from responder: HTTPResponder, final: Bool, close: Bool) -> Bool {
        let over: Bool = lock.withLock {
            buffered += bytes.count
            return buffered > config.maxBufferedWriteBytes
        }
        queue.async { [self] in
            guard phase == .open, current === responder else {
                // A closed connection already reset its count to zero.
                if phase != .closed { lock.withLock { buffered -= bytes.count } }
                return
            }
            out.append(contentsOf: bytes)
            if over {
                logger.warning("HTTP client is not reading; \(config.maxBufferedWriteBytes) bytes queued, closing")
                closeNow(reason: "write buffer overflow")
                return
            }
            if final {
                current = nil
                if close { enterClosingAfterFlush() }
            }
            flush()
            if final && phase == .open {
                resumeReading()
                processInput()
            }
        }
        return !over && !responder.isClosed
    }

    /// Queues internal bytes (100 Continue, error responses). On `queue`.
    private func appendOut(_ bytes: [UInt8]) {
        lock.withLock { buffered += bytes.count }
        out.append(contentsOf: bytes)
    }

    /// Writes as much queued output as the socket takes. On `queue`.
    private func flush() {
        while outIndex < out.count {
            let n = out.withUnsafeBytes { raw -> Int in
                #if canImport(Glibc)
                return send(fd, raw.baseAddress! + outIndex, raw.count - outIndex, Int32(MSG_NOSIGNAL))
                #else
                return send(fd, raw.baseAddress! + outIndex, raw.count - outIndex, 0)
                #endif
            }
            if n > 0 {
                outIndex += n
                lock.withLock { buffered -= n }
            } else {
                let e = errno
                if n < 0 && e == EINTR { continue }
                if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                    armWriteSource()
                    return
                }
                peerGone(reason: "send errno \(e)")
                return
            }
        }
        out.removeAll(keepingCapacity: out.count <= 256 * 1024)
        outIndex = 0
        if writeActive, let ws = writeSource { ws.suspend(); writeActive = false }
        current?.drained()
        if phase == .closingAfterFlush { beginLinger() }
    }

    private func armWriteSource() {
        if writeSource == nil {
            let ws = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            ws.setEventHandler { [weak self] in
                guard let self, self.phase != .closed else { return }
                self.flush()
            }
            ws.setCancelHandler { [self] in sourceCancelled() }
            liveSources += 1
            writeSource = ws
            ws.resume()
            writeActive = true
        } else if !writeActive, let ws = writeSource {
            ws.resume()
            writeActive = true
        }
    }

    // MARK: closing

    /// Output is flushed and the connection will close: stop sending, drain input for a while so the client
    /// reads the final response instead of a reset.
    /// The last response is queued; bound the time a non-reading client may keep the connection.
    private func enterClosingAfterFlush() {
        phase = .closingAfterFlush
        timer?.schedule(deadline: .now() + config.idleTimeout)
    }

    private func beginLinger() {
        phase = .lingering
        shutdown(fd, Int32(SHUT_WR))
        resumeReading()
        timer?.schedule(deadline: .now() + config.lingerTimeout)
    }

    private func peerGone(reason: String) {
        closeNow(reason: reason)
    }

    private func closeNow(reason: String) {
        guard phase != .closed else { return }
        logger.trace("HTTP connection \(fd) closed: \(reason)")
        phase = .closed
        if let r = current { r.clientGone() }
        current = nil
        out = []
        outIndex = 0
        lock.withLock { buffered = 0 }
        timer?.cancel()
        timer = nil
        if let ws = writeSource {
            if !writeActive { ws.resume() }
            ws.cancel()
        }
        if let rs = readSource {
            if readSuspended { rs.resume() }
            rs.cancel()
        }
        readSuspended = false
        writeActive = false
        if liveSources == 0 { _ = sysClose(fd) }
        onClosed(self)
    }

    /// Closes the descriptor once every Dispatch source on it is cancelled. On `queue`.
    private func sourceCancelled() {
        liveSources -= 1
        if liveSources == 0 {
            readSource = nil
            writeSource = nil
            _ = sysClose(fd)
        }
    }

    // MARK: timers

    private func updateTimer() {
        guard let timer, phase == .open else { return }
        if current != nil {
            timer.schedule(deadline: .distantFuture)
            return
        }
        if parser.isReadingHead {
            if headStart == nil { headStart = .now() }
            timer.schedule(deadline: headStart! + config.headerTimeout)
        } else {
            headStart = nil
            timer.schedule(deadline: lastActivity + config.idleTimeout)
        }
    }

    private func timerFired() {
        switch phase {
        case .lingering:
            closeNow(reason: "linger timeout")
        case .closingAfterFlush:
            closeNow(reason: "client did not read the final response")
        case .open where current == nil:
            let now = DispatchTime.now()
            if parser.isReadingHead, let hs = headStart {
                guard now >= hs + config.headerTimeout else { updateTimer(); return }
                let e = HTTPParseError(status: 408, message: "Request header not received within \(config.headerTimeout) s",
                                       code: "request_timeout")
                appendOut(HTTPResponseWriter.errorResponse(e, close: true))
                enterClosingAfterFlush()
                flush()
            } else if now >= lastActivity + config.idleTimeout {
                if parser.isMidMessage {
                    let e = HTTPParseError(status: 408, message: "Request body stalled for \(config.idleTimeout) s",
                                           code: "request_timeout")
                    appendOut(HTTPResponseWriter.errorResponse(e, close: true))
                    enterClosingAfterFlush()
                    flush()
                } else {
                    closeNow(reason: "idle timeout")
                }
            } else {
                updateTimer()
            }
        default:
            break
        }
    }
}
