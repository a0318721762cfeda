// The per-connection protocol logic as a value type that returns actions (no sockets, no clocks): phases,
// one-request-at-a-time ordering of pipelined requests, 100-continue, timeouts and the closing handshake.
// `HTTPConnection` feeds it socket events with the current time and performs the returned actions in order.
//
// NOTE: phases
//
//   open ──(final response with close / protocol error / timeout 408)──▶ closingAfterFlush
//     │                                                                      │ (all output written)
//     │                                                                      ▼
//     │                                     lingering: SHUT_WR, drain input ≤ lingerTimeout, then close
//     └──(EOF or error while a request is in flight, idle timeout, stop)──────────────────────────▶ closed
//
// NOTE: timers (one per connection; `timerFired` re-evaluates and re-arms, so an early fire is harmless)
//   - request deadlines, absolute from the request's FIRST byte `t0` (leading CRLFs count; bytes trickling in
//     never extend them): head by `t0 + headerTimeout`, body by
//     `t0 + headerTimeout + max(bodyTimeout, bodyBytes / minBodyBytesPerSecond)`; expiry → 408 + close.
//   - idle: nothing to read and nothing to write for `idleTimeout` (from the last byte received or written)
//     → close. Pending output is not idle.
//   - write stall: output pending and no byte of it taken by the client for `idleTimeout` → close (also while a
//     request is in flight, e.g. a stream to a reader that stopped reading).
//   - no timeout otherwise while the application computes an answer.

/// What the connection's I/O layer must do.
enum ConnectionAction: Equatable, Sendable {
    /// Queue bytes for the socket.
    case write([UInt8])
    /// Hand a complete request to the application (at most one is in flight).
    case deliver(HTTPRequest)
    /// Ask the application's expectation hook about this head, then call `expectationDecided`.
    case checkExpectation(HTTPRequest)
    /// A complete request whose body is content-encoded: ask the application's expectation hook about its head (the
    /// key, the origin) before inflating anything, then call `encodedDecided`.
    case admitEncoded(HTTPRequest)
    case pauseReading
    case resumeReading
    /// `shutdown(SHUT_WR)`: all output is written and the connection is closing.
    case shutdownWrite
    /// Arm the single connection timer for an absolute time in seconds (nil: disarm).
    case setTimer(Double?)
    /// The client left in the middle of a request that was never delivered (`request`: its head once parsed, with
    /// the body so far; `bodyBytes` received): report it (`HTTPServerConfiguration.abandonedRequest`).
    case abandoned(request: HTTPRequest?, bodyBytes: Int)
    /// Close now; an in-flight response's `onClose` callbacks fire.
    case close(reason: String)
}

/// Connection protocol state. Times are seconds on any monotonic clock.
struct ConnectionStateMachine: Sendable {
    enum Phase: Equatable, Sendable { case open, awaitingExpectation, closingAfterFlush, lingering, closed }

    let config: HTTPServerConfiguration
    private(set) var phase = Phase.open
    private(set) var parser: HTTPParser
    /// A request was delivered and its response is not complete.
    private(set) var inFlight = false
    /// Last byte received, or last response completed.
    private var lastActivity: Double
    /// Last time the client took response bytes (or output became pending after none was).
    private var lastWriteProgress: Double
    /// The client half-closed while a request it expects an answer to was in flight (`endOfInput`).
    private var inputEnded = false
    /// Arrival of the first byte of the request being read (nil between requests).
    private(set) var messageStart: Double?
    private var readingPaused = false
    /// A response completed with more than `writeHighWaterBytes` of output still unsent: the next pipelined request
    /// waits until the output is flushed, so a client that sends requests without reading the answers holds one
    /// backlog of output, not every answer (16 such clients had grown the server by ~35 MB each and spent the
    /// buffer budget, so `/health` probes got 503).
    private(set) var drainPending = false
    /// Set on a connection past the connection limit: the 503 message for any request that is not light.
    private var lightOnlyRefusal: String?
    /// Seconds a connection may idle, or take over its request head: on a light-only connection at most 2 (a probe
    /// sends its request at once; an idle flood must not hold those slots for the whole idle timeout).
    private var idleLimit: Double { lightOnlyRefusal != nil ? min(config.idleTimeout, 2) : config.idleTimeout }
    private var headLimit: Double { lightOnlyRefusal != nil ? min(config.headerTimeout, 2) : config.headerTimeout }

    init(config: HTTPServerConfiguration, now: Double) {
        self.config = config
        self.parser = HTTPParser(maxHeaderBytes: config.maxHeaderBytes, maxBodyBytes: config.maxBodyBytes)
        self.lastActivity = now
        self.lastWriteProgress = now
    }

    /// True while received bytes are parsed (not drained): the phases in which input counts against budgets.
    var readsInput: Bool { phase == .open || phase == .awaitingExpectation }

    /// Only light requests (`HTTPServerConfiguration.isLightRequest`) are served; any other gets 503 + `Retry-After`
    /// with `refusal` and the connection closes; it may idle, or take over its head, 2 s at most. Call before `started`.
    mutating func restrictToLightRequests(refusal: String) {
        lightOnlyRefusal = refusal
    }

    /// The 503 for a request a light-only connection may not make, then closing; nil when it may.
    private mutating func lightOnlyRefused(_ head: HTTPRequest, now: Double) -> [ConnectionAction]? {
        guard lightOnlyRefusal != nil, !config.isLightRequest(head) else { return nil }
        messageStart = nil
        return rejected(now: now, message: lightOnlyRefusal!, request: head)
    }

    /// Start of a connection: arms the idle timer.
    mutating func started(now: Double) -> [ConnectionAction] {
        [.setTimer(now + idleLimit)]
    }

    /// Start of a refused connection (connection limit or buffer budget): 503 + `Retry-After`, then close.
    mutating func rejected(now: Double, message: String = "Server is at its connection limit; retry later",
                           request: HTTPRequest? = nil) -> [ConnectionAction] {
        let e = HTTPParseError(status: 503, message: message, code: "server_overloaded")
        return [.write(HTTPResponseWriter.errorResponse(e, close: true, render: config,
                                                        extra: [("Retry-After", String(config.retryAfterSeconds))], request: request))]
            + enterClosingAfterFlush(now: now)
    }

    /// Bytes arrived from the client.
    mutating func received(_ bytes: ArraySlice<UInt8>, now: Double) -> [ConnectionAction] {
        switch phase {
        case .closed, .lingering, .closingAfterFlush:
            return []    // drained and ignored
        case .open, .awaitingExpectation:
            lastActivity = now
            parser.append(bytes)
            if inFlight || drainPending || phase == .awaitingExpectation {
                if !readingPaused && parser.bufferedByteCount > config.maxPipelinedBytes {
                    readingPaused = true
                    return [.pauseReading]
                }
                return []
            }
            if messageStart == nil && !bytes.isEmpty { messageStart = now }
            return processInput(now: now) + pauseIfPipelinedInputPilesUp()
        }
    }

    /// Pauses reading while a request is in flight and more than `maxPipelinedBytes` of input wait behind it.
    private mutating func pauseIfPipelinedInputPilesUp() -> [ConnectionAction] {
        guard inFlight || drainPending, !readingPaused, parser.bufferedByteCount > config.maxPipelinedBytes else { return [] }
        readingPaused = true
        return [.pauseReading]
    }

    /// The actions after the in-flight request is done: the next pipelined request (if one is complete), with reading
    /// resumed unless more than `maxPipelinedBytes` of input still wait behind the next one in flight (resuming after
    /// every quick response let a client that pipelines and never reads pile ~7 MB of requests per connection into
    /// the server's buffer budget).
    private mutating func nextRequest(now: Double) -> [ConnectionAction] {
        var actions = processInput(now: now)
        if readingPaused && (!inFlight || parser.bufferedByteCount <= config.maxPipelinedBytes) {
            readingPaused = false
            actions.insert(.resumeReading, at: 0)
        }
        return actions
    }

    /// The server-wide buffer budget is spent and the connection wants to read: with a request in flight, stop
    /// reading until its response completes; otherwise answer 503 + `Retry-After` and close.
    mutating func inputOverBudget(now: Double) -> [ConnectionAction] {
        guard readsInput else { return [] }
        if inFlight || drainPending || phase == .awaitingExpectation {
            if readingPaused { return [] }
            readingPaused = true
            return [.pauseReading]
        }
        return rejected(now: now, message: "Server is out of buffer memory; retry later")
    }

    /// The client took response bytes (or output became pending after none was) at `now`: resets the write-stall
    /// clock (never backwards).
    mutating func outputProgressed(now: Double) {
        lastWriteProgress = max(lastWriteProgress, now)
    }

    /// The next check while response bytes wait for the client: at the stall deadline, and at least every quarter of
    /// `idleTimeout`, since the client's progress is seen only at checks (so a stall is found within 1¼ timeouts).
    private func stallCheck(now: Double) -> Double {
        min(lastWriteProgress + config.idleTimeout, now + config.idleTimeout / 4)
    }

    /// The client closed its sending side (EOF). `outputPending`: bytes are still queued for the socket.
    /// `answerInFlight`: the request in flight is answered at once (a light request: a probe sent by `printf … | nc -N`
    /// half-closes after it), so its response is written before the connection closes; otherwise EOF with a request in
    /// flight means the client left, and the request is abandoned (its generation stops and frees its KV blocks).
    mutating func endOfInput(outputPending: Bool, now: Double, answerInFlight: Bool = false) -> [ConnectionAction] {
        switch phase {
        case .closed: return []
        case .lingering: return close("EOF while lingering")
        case .closingAfterFlush:
            readingPaused = true
            return [.pauseReading]
        case .open, .awaitingExpectation:
            if inFlight && answerInFlight {
                inputEnded = true
                readingPaused = true
                return [.pauseReading]
            }
            if !inFlight && outputPending {
                // Half-closed client with a completed response still being written: finish it, then close.
                readingPaused = true
                return [.pauseReading] + enterClosingAfterFlush(now: now)
            }
            return abandonment() + close(inFlight ? "client closed with a request in flight" : "EOF")
        }
    }

    /// A read or write on the socket failed (reset, broken pipe).
    mutating func socketFailed(_ reason: String) -> [ConnectionAction] {
        (readsInput ? abandonment() : []) + close(reason)
    }

    /// `.abandoned` when a request is partly received and not delivered (leading empty lines alone are no request).
    private func abandonment() -> [ConnectionAction] {
        guard !inFlight, parser.isReadingBody || (parser.isReadingHead && parser.bufferedByteCount > 0) else { return [] }
        return [.abandoned(request: parser.partialRequest, bodyBytes: parser.bodyByteCount)]
    }

    /// The server is stopping.
    mutating func stop() -> [ConnectionAction] { close("server stopping") }

    /// The server began draining: an idle keep-alive connection (open, no request in flight or partly received, no
    /// output pending) closes now, so a gateway or client sends its next request to another replica instead of
    /// getting a 503 here (uvicorn and Go's `Server.Shutdown` close idle connections at once; helper-70). A busy one
    /// closes after its response, which carries `Connection: close`. (The connection decides which idle ones:
    /// `HTTPConnection.drainStarted`.)
    mutating func drainIfIdle(outputPending: Bool) -> [ConnectionAction] {
        guard phase == .open, !inFlight, !drainPending, !outputPending, !parser.isMidMessage else { return [] }
        return close("server draining")
    }

    /// The application's answer to `.checkExpectation`: nil → `100 Continue` and read the body; otherwise the
    /// final response bytes, after which the connection closes.
    mutating func expectationDecided(rejection: [UInt8]?, now: Double) -> [ConnectionAction] {
        guard phase == .awaitingExpectation else { return [] }
        phase = .open
        if let rejection { return [.write(rejection)] + enterClosingAfterFlush(now: now) }
        return [.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))] + processInput(now: now)
    }

    /// The application's answer to `.admitEncoded(raw)`: nil → inflate the body (413 past the body cap) and deliver
    /// it; otherwise the final response bytes, after which the connection closes (nothing was inflated).
    mutating func encodedDecided(_ raw: HTTPRequest, rejection: [UInt8]?, now: Double) -> [ConnectionAction] {
        guard phase == .open, inFlight else { return [] }
        if let rejection {
            inFlight = false
            return [.write(rejection)] + enterClosingAfterFlush(now: now)
        }
        switch GzipCodec.decodeBody(of: raw, limit: config.maxBodyBytes) {
        case .success(let decoded):
            return [.setTimer(now + config.idleTimeout), .deliver(decoded)]
        case .failure(let e):
            inFlight = false
            return [.write(HTTPResponseWriter.errorResponse(e, close: true, render: config, request: raw))] + enterClosingAfterFlush(now: now)
        }
    }

    /// The in-flight response handed over its last bytes. `close`: the response announced `Connection: close`.
    mutating func responseCompleted(close: Bool, now: Double, outputBacklogged: Bool = false) -> [ConnectionAction] {
        guard inFlight, phase == .open else { return [] }
        inFlight = false
        lastActivity = now
        if close || inputEnded { return enterClosingAfterFlush(now: now) }
        if outputBacklogged {
            drainPending = true    // `outputFlushed` takes the next request
            return []
        }
        return nextRequest(now: now)
    }

    /// Every queued byte has been written.
    mutating func outputFlushed(now: Double) -> [ConnectionAction] {
        if phase == .open && drainPending {
            drainPending = false
            return nextRequest(now: now)
        }
        guard phase == .closingAfterFlush else { return [] }
        phase = .lingering
        var actions: [ConnectionAction] = [.shutdownWrite]
        if readingPaused {
            readingPaused = false
            actions.append(.resumeReading)
        }
        return actions + [.setTimer(now + config.lingerTimeout)]
    }

    /// The connection timer fired. `outputPending`: response bytes are queued but not yet taken by the client.
    mutating func timerFired(now: Double, outputPending: Bool = false) -> [ConnectionAction] {
        let stallAt = lastWriteProgress + config.idleTimeout
        switch phase {
        case .closed, .awaitingExpectation: return []
        case .lingering: return close("linger timeout")
        case .closingAfterFlush:
            if outputPending && now < stallAt { return [.setTimer(stallCheck(now: now))] }
            return close("client did not read the final response")
        case .open:
            if outputPending && now >= stallAt { return close("client stopped reading the response") }
            if drainPending { return [.setTimer(outputPending ? stallCheck(now: now) : now + config.idleTimeout)] }
            if inFlight { return [.setTimer(outputPending ? stallCheck(now: now) : now + config.idleTimeout)] }
            if let start = messageStart, parser.isMidMessage {
                let deadline = requestDeadline(start)
                if now >= deadline {
                    let what = parser.isReadingBody ? "body" : "header"
                    let e = HTTPParseError(status: 408, message: "Request \(what) not received in time", code: "request_timeout")
                    return [.write(HTTPResponseWriter.errorResponse(e, close: true, render: config, request: parser.partialRequest))]
                        + enterClosingAfterFlush(now: now)
                }
                return [.setTimer(outputPending ? min(deadline, stallCheck(now: now)) : deadline)]
            }
            if outputPending { return [.setTimer(stallCheck(now: now))] }
            let idleAt = max(lastActivity, lastWriteProgress) + idleLimit
            guard now >= idleAt else { return [.setTimer(idleAt)] }
            return close("idle timeout")
        }
    }

    // MARK: internals

    /// When the request that started at `start` must be complete: its head by `headerTimeout`, its body by
    /// `headerTimeout + max(bodyTimeout, bodyBytes / minBodyBytesPerSecond)` (see `HTTPServerConfiguration`).
    func requestDeadline(_ start: Double) -> Double {
        let head = start + headLimit
        guard parser.isReadingBody else { return head }
        let rate = Double(max(1, config.minBodyBytesPerSecond))
        return head + max(config.bodyTimeout, Double(parser.bodyByteCount) / rate)
    }

    /// Runs the parser while no request is in flight.
    private mutating func processInput(now: Double) -> [ConnectionAction] {
        var actions: [ConnectionAction] = []
        while phase == .open && !inFlight {
            switch parser.next() {
            case .needMoreData:
                if parser.isMidMessage {
                    // A pipelined message already started before it was our turn counts from now.
                    let start = messageStart ?? now
                    messageStart = start
                    actions.append(.setTimer(requestDeadline(start)))
                } else {
                    messageStart = nil
                    actions.append(.setTimer(max(lastActivity, lastWriteProgress) + idleLimit))
                }
                return actions
            case .expectContinue(let head):
                if let refused = lightOnlyRefused(head, now: now) { return actions + refused }
                phase = .awaitingExpectation
                actions.append(.checkExpectation(head))
                return actions
            case .request(let raw):
                if let refused = lightOnlyRefused(raw, now: now) { return actions + refused }
                if !raw.body.isEmpty, raw.headers.tokens("Content-Encoding").contains(where: { $0 != "identity" }) {
                    // Authenticate before inflating: a refused request's body (a decompression bomb, say) costs nothing.
                    messageStart = nil
                    inFlight = true
                    actions.append(.admitEncoded(raw))
                    return actions
                }
                let req: HTTPRequest
                switch GzipCodec.decodeBody(of: raw, limit: config.maxBodyBytes) {
                case .success(let decoded): req = decoded
                case .failure(let e):
                    messageStart = nil
                    actions.append(.write(HTTPResponseWriter.errorResponse(e, close: true, render: config, request: raw)))
                    return actions + enterClosingAfterFlush(now: now)
                }
                messageStart = nil
                inFlight = true
                // Not a request timeout: a periodic check for a client that stops reading the response.
                actions.append(.setTimer(now + config.idleTimeout))
                actions.append(.deliver(req))
            case .error(let e):
                // The head, when it was read (a body over the limit, a bad chunk): its X-Request-Id and route are logged.
                actions.append(.write(HTTPResponseWriter.errorResponse(e, close: true, render: config, request: parser.failedRequest)))
                return actions + enterClosingAfterFlush(now: now)
            }
        }
        return actions
    }

    private mutating func enterClosingAfterFlush(now: Double) -> [ConnectionAction] {
        phase = .closingAfterFlush
        messageStart = nil
        parser.discardBuffers()    // the input is drained from now on; give the memory (and budget) back
        return [.setTimer(now + config.idleTimeout)]
    }

    private mutating func close(_ reason: String) -> [ConnectionAction] {
        guard phase != .closed else { return [] }
        phase = .closed
        parser.discardBuffers()
        return [.setTimer(nil), .close(reason: reason)]
    }
}
