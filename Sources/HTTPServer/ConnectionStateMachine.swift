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

/// What the connection's I/O layer must do.
enum ConnectionAction: Equatable, Sendable {
    /// Queue bytes for the socket.
    case write([UInt8])
    /// Hand a complete request to the application (at most one is in flight).
    case deliver(HTTPRequest)
    /// Ask the application's expectation hook about this head, then call `expectationDecided`.
    case checkExpectation(HTTPRequest)
    case pauseReading
    case resumeReading
    /// `shutdown(SHUT_WR)`: all output is written and the connection is closing.
    case shutdownWrite
    /// Arm the single connection timer for an absolute time in seconds (nil: disarm).
    case setTimer(Double?)
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
    private var lastActivity: Double
    private var headStart: Double?
    private var readingPaused = false

    init(config: HTTPServerConfiguration, now: Double) {
        self.config = config
        self.parser = HTTPParser(maxHeaderBytes: config.maxHeaderBytes, maxBodyBytes: config.maxBodyBytes)
        self.lastActivity = now
    }

    /// Start of a connection: arms the idle timer.
    mutating func started(now: Double) -> [ConnectionAction] {
        [.setTimer(now + config.idleTimeout)]
    }

    /// Start of a refused connection (connection limit): 503 + `Retry-After`, then close.
    mutating func rejected(now: Double) -> [ConnectionAction] {
        let e = HTTPParseError(status: 503, message: "Server is at its connection limit; retry later", code: "server_overloaded")
        return [.write(HTTPResponseWriter.errorResponse(e, close: true, extra: [("Retry-After", String(config.retryAfterSeconds))]))]
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
            if inFlight || phase == .awaitingExpectation {
                if !readingPaused && parser.bufferedByteCount > config.maxHeaderBytes + config.maxBodyBytes + 65536 {
                    readingPaused = true
                    return [.pauseReading]
                }
                return []
            }
            return processInput(now: now)
        }
    }

    /// The client closed its sending side (EOF). `outputPending`: bytes are still queued for the socket.
    mutating func endOfInput(outputPending: Bool, now: Double) -> [ConnectionAction] {
        switch phase {
        case .closed: return []
        case .lingering: return close("EOF while lingering")
        case .closingAfterFlush:
            readingPaused = true
            return [.pauseReading]
        case .open, .awaitingExpectation:
            if !inFlight && outputPending {
                // Half-closed client with a completed response still being written: finish it, then close.
                readingPaused = true
                return [.pauseReading] + enterClosingAfterFlush(now: now)
            }
            return close(inFlight ? "client closed with a request in flight" : "EOF")
        }
    }

    /// A read or write on the socket failed (reset, broken pipe).
    mutating func socketFailed(_ reason: String) -> [ConnectionAction] { close(reason) }

    /// The server is stopping.
    mutating func stop() -> [ConnectionAction] { close("server stopping") }

    /// The application's answer to `.checkExpectation`: nil → `100 Continue` and read the body; otherwise the
    /// final response bytes, after which the connection closes.
    mutating func expectationDecided(rejection: [UInt8]?, now: Double) -> [ConnectionAction] {
        guard phase == .awaitingExpectation else { return [] }
        phase = .open
        if let rejection { return [.write(rejection)] + enterClosingAfterFlush(now: now) }
        return [.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))] + processInput(now: now)
    }

    /// The in-flight response handed over its last bytes. `close`: the response announced `Connection: close`.
    mutating func responseCompleted(close: Bool, now: Double) -> [ConnectionAction] {
        guard inFlight, phase == .open else { return [] }
        inFlight = false
        lastActivity = now
        if close { return enterClosingAfterFlush(now: now) }
        var actions: [ConnectionAction] = []
        if readingPaused {
            readingPaused = false
            actions.append(.resumeReading)
        }
        return actions + processInput(now: now)
    }

    /// Every queued byte has been written.
    mutating func outputFlushed(now: Double) -> [ConnectionAction] {
        guard phase == .closingAfterFlush else { return [] }
        phase = .lingering
        var actions: [ConnectionAction] = [.shutdownWrite]
        if readingPaused {
            readingPaused = false
            actions.append(.resumeReading)
        }
        return actions + [.setTimer(now + config.lingerTimeout)]
    }

    /// The connection timer fired.
    mutating func timerFired(now: Double) -> [ConnectionAction] {
        switch phase {
        case .closed, .awaitingExpectation: return []
        case .lingering: return close("linger timeout")
        case .closingAfterFlush: return close("client did not read the final response")
        case .open:
            if inFlight { return [] }
            if parser.isReadingHead, let hs = headStart {
                guard now >= hs + config.headerTimeout else { return [.setTimer(hs + config.headerTimeout)] }
                let e = HTTPParseError(status: 408, message: "Request header not received within \(config.headerTimeout) s",
                                       code: "request_timeout")
                return [.write(HTTPResponseWriter.errorResponse(e, close: true))] + enterClosingAfterFlush(now: now)
            }
            guard now >= lastActivity + config.idleTimeout else { return [.setTimer(lastActivity + config.idleTimeout)] }
            if parser.isMidMessage {
                let e = HTTPParseError(status: 408, message: "Request body stalled for \(config.idleTimeout) s",
                                       code: "request_timeout")
                return [.write(HTTPResponseWriter.errorResponse(e, close: true))] + enterClosingAfterFlush(now: now)
            }
            return close("idle timeout")
        }
    }

    // MARK: internals

    /// Runs the parser while no request is in flight.
    private mutating func processInput(now: Double) -> [ConnectionAction] {
        var actions: [ConnectionAction] = []
        while phase == .open && !inFlight {
            switch parser.next() {
            case .needMoreData:
                if parser.isReadingHead {
                    if headStart == nil { headStart = now }
                    actions.append(.setTimer(headStart! + config.headerTimeout))
                } else {
                    headStart = nil
                    actions.append(.setTimer(lastActivity + config.idleTimeout))
                }
                return actions
            case .expectContinue(let head):
                phase = .awaitingExpectation
                actions.append(.checkExpectation(head))
                return actions
            case .request(let req):
                headStart = nil
                inFlight = true
                actions.append(.setTimer(nil))
                actions.append(.deliver(req))
            case .error(let e):
                actions.append(.write(HTTPResponseWriter.errorResponse(e, close: true)))
                return actions + enterClosingAfterFlush(now: now)
            }
        }
        return actions
    }

    private mutating func enterClosingAfterFlush(now: Double) -> [ConnectionAction] {
        phase = .closingAfterFlush
        return [.setTimer(now + config.idleTimeout)]
    }

    private mutating func close(_ reason: String) -> [ConnectionAction] {
        guard phase != .closed else { return [] }
        phase = .closed
        return [.setTimer(nil), .close(reason: reason)]
    }
}
