import XCTest
@testable import HTTPServer

final class ConnectionStateMachineTests: XCTestCase {
    func config() -> HTTPServerConfiguration {
        var c = HTTPServerConfiguration()
        c.idleTimeout = 10
        c.headerTimeout = 2
        c.lingerTimeout = 1
        c.maxBodyBytes = 100
        c.bodyTimeout = 5
        c.minBodyBytesPerSecond = 10
        return c
    }

    func bytes(_ s: String) -> ArraySlice<UInt8> { ArraySlice(Array(s.utf8)) }

    func delivered(_ a: [ConnectionAction]) -> [String] {
        a.compactMap { if case .deliver(let r) = $0 { return r.path } else { return nil } }
    }

    func writes(_ a: [ConnectionAction]) -> [String] {
        a.compactMap { if case .write(let b) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }

    func testPipelinedRequestsDeliveredOneAtATime() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        XCTAssertEqual(m.started(now: 0), [.setTimer(10)])
        let a = m.received(bytes("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), now: 1)
        XCTAssertEqual(delivered(a), ["/1"])
        XCTAssertTrue(a.contains(.setTimer(11)), "only a write-stall check while the app works")
        XCTAssertEqual(m.timerFired(now: 11, outputPending: false), [.setTimer(21)], "no timeout while the app works")
        XCTAssertEqual(delivered(m.received(bytes("GET /4 HTTP/1.1\r\nHost: x\r\n\r\n"), now: 2)), [], "nothing new while in flight")
        XCTAssertEqual(delivered(m.responseCompleted(close: false, now: 3)), ["/2"])
        XCTAssertEqual(delivered(m.responseCompleted(close: false, now: 4)), ["/3"])
        // /3 asked for close: the response completes with close, /4 is never delivered.
        XCTAssertEqual(m.responseCompleted(close: true, now: 5), [.setTimer(15)])
        XCTAssertEqual(m.phase, .closingAfterFlush)
        XCTAssertEqual(m.outputFlushed(now: 6), [.shutdownWrite, .setTimer(7)])
        XCTAssertEqual(m.phase, .lingering)
        XCTAssertEqual(m.received(bytes("junk"), now: 6.5), [])
        XCTAssertEqual(m.timerFired(now: 7), [.setTimer(nil), .close(reason: "linger timeout")])
        XCTAssertEqual(m.phase, .closed)
    }

    func testIdleTimeoutClosesAndActivityPostponesIt() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.started(now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        XCTAssertEqual(m.responseCompleted(close: false, now: 2), [.setTimer(12)])
        XCTAssertEqual(m.timerFired(now: 5), [.setTimer(12)], "early fire re-arms")
        XCTAssertEqual(m.timerFired(now: 12), [.setTimer(nil), .close(reason: "idle timeout")])
    }

    func testHeaderTimeoutAnswers408() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        XCTAssertEqual(m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a"), now: 1), [.setTimer(3)])
        XCTAssertEqual(m.received(bytes("b"), now: 2.5), [.setTimer(3)], "trickling bytes do not extend the deadline")
        let a = m.timerFired(now: 3)
        XCTAssertTrue(writes(a).first?.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") ?? false)
        XCTAssertEqual(m.phase, .closingAfterFlush)
    }

    func testStalledBodyAnswers408AtBodyDeadline() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        // First byte at 1: the body is due by 1 + headerTimeout 2 + bodyTimeout 5 = 8.
        XCTAssertEqual(m.received(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"), now: 1), [.setTimer(8)])
        XCTAssertEqual(m.timerFired(now: 7.9), [.setTimer(8)])
        XCTAssertTrue(writes(m.timerFired(now: 8)).first?.hasPrefix("HTTP/1.1 408") ?? false)
    }

    /// Drives `m` with `events` (time, bytes) and fires the armed timer whenever its time is reached; returns the
    /// time a 408 was written, or nil.
    func simulate(_ m: inout ConnectionStateMachine, _ events: [(Double, String)], until end: Double) -> Double? {
        var armed: Double? = nil
        func apply(_ a: [ConnectionAction], at t: Double) -> Bool {
            for x in a { if case .setTimer(let d) = x { armed = d } }
            return writes(a).contains { $0.hasPrefix("HTTP/1.1 408") }
        }
        var pending = events[...]
        var t = 0.0
        while t <= end {
            if let d = armed, d <= t {
                armed = nil
                if apply(m.timerFired(now: d), at: d) { return d }
            }
            while let e = pending.first, e.0 <= t {
                pending = pending.dropFirst()
                if apply(m.received(bytes(e.1), now: e.0), at: e.0) { return e.0 }
            }
            t += 0.5
        }
        return nil
    }

    func testLeadingCRLFTrickleHitsHeaderDeadline() {
        var c = config()
        c.headerTimeout = 10
        c.idleTimeout = 60
        var m = ConnectionStateMachine(config: c, now: 0)
        _ = m.started(now: 0)
        // An empty line every 5 s for 60 s: the header deadline runs from the first CR.
        let crlfs = stride(from: 0.0, to: 60, by: 5).map { ($0, "\r\n") }
        XCTAssertEqual(simulate(&m, crlfs, until: 60), 10)
        XCTAssertEqual(m.phase, .closingAfterFlush)
    }

    func testHeadTrickleAfterCRLFKeepsDeadlineOfFirstByte() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        XCTAssertEqual(m.received(bytes("\r\n"), now: 1), [.setTimer(3)])
        XCTAssertEqual(m.received(bytes("GET / HTTP/1.1\r\n"), now: 2.5), [.setTimer(3)])
        XCTAssertTrue(writes(m.timerFired(now: 3)).first?.hasPrefix("HTTP/1.1 408") ?? false)
    }

    func testBodyTrickleHitsBodyDeadline() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        // One body byte every 5 s (idle is 10 s, so the old idle timer never fired): due by 0 + 2 + 5.
        let events = [(0.0, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")]
            + stride(from: 5.0, to: 250, by: 5).map { ($0, "a") }
        XCTAssertEqual(simulate(&m, events, until: 250), 7)
    }

    func testBodyAtMinimumRateGetsTimeBeyondBodyTimeout() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        // 10 bytes/s (the minimum rate) for 10 s: past the base deadline of 7 s, yet within 2 + bytes / rate.
        var events = [(0.0, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")]
        events += (1...10).map { (Double($0), String(repeating: "b", count: 10)) }
        var delivered: [String] = []
        var armed: Double? = nil
        for (t, data) in events {
            if let d = armed, d <= t { XCTFail("timer \(d) expired before \(t)"); return }
            let a = m.received(bytes(data), now: t)
            delivered += self.delivered(a)
            for x in a { if case .setTimer(let d) = x { armed = d } }
        }
        XCTAssertEqual(delivered, ["/big"])
    }

    func testWriteStallTimeoutButSlowReaderIsNotIdle() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        m.outputProgressed(now: 2)                       // a large response starts queueing
        XCTAssertEqual(m.responseCompleted(close: false, now: 2), [.setTimer(12)])
        // The client keeps taking bytes: past the idle timeout, the connection stays.
        for t in stride(from: 4.0, through: 30, by: 2) { m.outputProgressed(now: t) }
        // Output pending: checks at least every quarter timeout (progress is seen only at checks), else at the stall.
        XCTAssertEqual(m.timerFired(now: 12, outputPending: true), [.setTimer(14.5)])
        XCTAssertEqual(m.timerFired(now: 39, outputPending: true), [.setTimer(40)])
        // No progress for idleTimeout: a write stall.
        XCTAssertEqual(m.timerFired(now: 40, outputPending: true),
                       [.setTimer(nil), .close(reason: "client stopped reading the response")])
    }

    /// A client that half-closes after a request answered at once (`printf … | nc -N`) still gets the answer; with
    /// any other request in flight EOF means it left (the request is abandoned).
    func testHalfCloseAfterALightRequestIsAnswered() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        XCTAssertEqual(m.endOfInput(outputPending: false, now: 1, answerInFlight: true), [.pauseReading])
        XCTAssertEqual(m.responseCompleted(close: false, now: 2), [.setTimer(12)], "closes once the answer is written")
        XCTAssertEqual(m.outputFlushed(now: 2), [.shutdownWrite, .resumeReading, .setTimer(3)])
        var n = ConnectionStateMachine(config: config(), now: 0)
        _ = n.received(bytes("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"), now: 1)
        XCTAssertEqual(n.endOfInput(outputPending: false, now: 1),
                       [.setTimer(nil), .close(reason: "client closed with a request in flight")])
    }

    func testIdleCountsFromLastWrittenByte() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        m.outputProgressed(now: 2)
        _ = m.responseCompleted(close: false, now: 2)
        m.outputProgressed(now: 20)                      // the last byte went out at 20
        m.outputProgressed(now: 15)                      // a late report of earlier progress moves nothing back
        XCTAssertEqual(m.timerFired(now: 20, outputPending: false), [.setTimer(30)])
        XCTAssertEqual(m.timerFired(now: 30, outputPending: false), [.setTimer(nil), .close(reason: "idle timeout")])
    }

    func testWriteStallWhileStreaming() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET /s HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        m.outputProgressed(now: 3)
        XCTAssertEqual(m.timerFired(now: 11, outputPending: true), [.setTimer(13)])
        XCTAssertEqual(m.timerFired(now: 13, outputPending: true),
                       [.setTimer(nil), .close(reason: "client stopped reading the response")])
    }

    func testClosingConnectionWaitsForProgressingReader() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), now: 1)
        m.outputProgressed(now: 2)
        XCTAssertEqual(m.responseCompleted(close: true, now: 2), [.setTimer(12)])
        m.outputProgressed(now: 11)
        XCTAssertEqual(m.timerFired(now: 12, outputPending: true), [.setTimer(14.5)])
        XCTAssertEqual(m.timerFired(now: 20, outputPending: true), [.setTimer(21)])
        XCTAssertEqual(m.timerFired(now: 21, outputPending: true),
                       [.setTimer(nil), .close(reason: "client did not read the final response")])
    }

    func testDefaultPipelinedInputCapIs1MiB() {
        var m = ConnectionStateMachine(config: HTTPServerConfiguration(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        XCTAssertEqual(m.received(ArraySlice([UInt8](repeating: 0x41, count: 1024 * 1024)), now: 2), [])
        XCTAssertEqual(m.received(bytes("x"), now: 2), [.pauseReading])
    }

    func testInputOverBudget() {
        var idle = ConnectionStateMachine(config: config(), now: 0)
        let a = idle.inputOverBudget(now: 1)
        XCTAssertTrue(writes(a).first?.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") ?? false)
        XCTAssertTrue(writes(a).first?.contains("Retry-After: 1\r\n") ?? false)
        XCTAssertEqual(idle.phase, .closingAfterFlush)
        XCTAssertFalse(idle.readsInput)

        var busy = ConnectionStateMachine(config: config(), now: 0)
        _ = busy.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HT"), now: 1)
        XCTAssertEqual(busy.inputOverBudget(now: 2), [.pauseReading], "a request in flight is not answered twice")
        XCTAssertEqual(busy.inputOverBudget(now: 2), [])
        XCTAssertEqual(busy.responseCompleted(close: false, now: 3).first, .resumeReading)
    }

    func testClosingGivesParserMemoryBack() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n" + String(repeating: "z", count: 60)), now: 1)
        XCTAssertEqual(m.parser.heldByteCount, 60)
        XCTAssertTrue(writes(m.timerFired(now: 9)).first?.hasPrefix("HTTP/1.1 408") ?? false)   // 1 + 2 + 60 / 10
        XCTAssertEqual(m.parser.heldByteCount, 0)
    }

    func testEndOfInputWhileInFlightCloses() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        XCTAssertEqual(m.endOfInput(outputPending: false, now: 2),
                       [.setTimer(nil), .close(reason: "client closed with a request in flight")])
        XCTAssertEqual(m.responseCompleted(close: false, now: 3), [])
    }

    func testClientLeavingMidRequestIsReported() {
        // Mid-body: the head and the body so far.
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n" + String(repeating: "z", count: 60)), now: 1)
        let a = m.endOfInput(outputPending: false, now: 2)
        guard case .abandoned(let req?, 60)? = a.first else { return XCTFail("\(a)") }
        XCTAssertEqual(req.path, "/v1/x")
        XCTAssertEqual(req.body.count, 60)
        XCTAssertEqual(Array(a.dropFirst()), [.setTimer(nil), .close(reason: "EOF")])
        // Mid-head (a reset): no head to name.
        var h = ConnectionStateMachine(config: config(), now: 0)
        _ = h.received(bytes("POST /v1/x HTTP/1.1\r\nHost"), now: 1)
        XCTAssertEqual(h.socketFailed("reset"), [.abandoned(request: nil, bodyBytes: 0), .setTimer(nil), .close(reason: "reset")])
        // Between requests, or with the request delivered (its exchange logs it): nothing.
        var idle = ConnectionStateMachine(config: config(), now: 0)
        _ = idle.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        _ = idle.responseCompleted(close: false, now: 2)
        XCTAssertEqual(idle.endOfInput(outputPending: false, now: 3), [.setTimer(nil), .close(reason: "EOF")])
        var crlf = ConnectionStateMachine(config: config(), now: 0)
        _ = crlf.received(bytes("\r\n"), now: 1)
        XCTAssertEqual(crlf.endOfInput(outputPending: false, now: 2), [.setTimer(nil), .close(reason: "EOF")])
    }

    func testTransportErrorsAfterTheHeadNameItsRequest() {
        // A 408 for a body not received in time and a 413 from the head's Content-Length pass the head to the
        // error hook (the access log then has the client's X-Request-Id and the route); helper's second report.
        var c = config()
        c.transportErrorHeaders = { _, _, request in [("X-Path", request?.path ?? "-")] }
        var m = ConnectionStateMachine(config: c, now: 0)
        _ = m.received(bytes("POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\nzz"), now: 1)
        XCTAssertTrue(writes(m.timerFired(now: 20)).first?.contains("X-Path: /v1/slow") ?? false)
        var big = ConnectionStateMachine(config: c, now: 0)
        let w = writes(big.received(bytes("POST /v1/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"), now: 1))
        XCTAssertTrue(w.first?.hasPrefix("HTTP/1.1 413") ?? false, "\(w)")
        XCTAssertTrue(w.first?.contains("X-Path: /v1/big") ?? false, "\(w)")
        var bad = ConnectionStateMachine(config: c, now: 0)
        XCTAssertTrue(writes(bad.received(bytes("NOT A REQUEST\r\n\r\n"), now: 1)).first?.contains("X-Path: -") ?? false)
    }

    func testEndOfInputWithPendingOutputFinishesWriting() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        _ = m.responseCompleted(close: false, now: 2)
        XCTAssertEqual(m.endOfInput(outputPending: true, now: 3), [.pauseReading, .setTimer(13)])
        XCTAssertEqual(m.outputFlushed(now: 4), [.shutdownWrite, .resumeReading, .setTimer(5)])
        XCTAssertEqual(m.endOfInput(outputPending: false, now: 4.5), [.setTimer(nil), .close(reason: "EOF while lingering")])
    }

    func testExpectContinueAcceptedAndRejected() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        let a = m.received(bytes("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"), now: 1)
        guard case .checkExpectation(let head)? = a.last else { return XCTFail("\(a)") }
        XCTAssertEqual(head.path, "/x")
        let b = m.expectationDecided(rejection: nil, now: 1)
        XCTAssertEqual(writes(b), ["HTTP/1.1 100 Continue\r\n\r\n"])
        XCTAssertEqual(delivered(m.received(bytes("hi"), now: 2)), ["/x"])

        var r = ConnectionStateMachine(config: config(), now: 0)
        _ = r.received(bytes("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"), now: 1)
        let c = r.expectationDecided(rejection: Array("HTTP/1.1 401 Unauthorized\r\n\r\n".utf8), now: 1)
        XCTAssertEqual(writes(c), ["HTTP/1.1 401 Unauthorized\r\n\r\n"])
        XCTAssertEqual(r.phase, .closingAfterFlush)
        XCTAssertEqual(r.received(bytes("hi"), now: 2), [], "the body after a rejection is drained, not parsed")
    }

    /// A content-encoded body is not inflated until the application admitted its head (`.admitEncoded`): a refusal
    /// closes with nothing inflated, an admission inflates and delivers.
    func testEncodedBodyIsAdmittedBeforeItIsInflated() {
        // "hi" gzipped (10-byte header, deflate stream, CRC32, size).
        let gz: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0xc8, 0x04, 0x00,
                           0xac, 0x2a, 0x93, 0xd8, 0x02, 0x00, 0x00, 0x00]
        let head = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(gz.count)\r\n\r\n"
        var m = ConnectionStateMachine(config: config(), now: 0)
        let a = m.received(ArraySlice(Array(head.utf8) + gz), now: 1)
        guard case .admitEncoded(let raw)? = a.last else { return XCTFail("\(a)") }
        XCTAssertEqual(delivered(a), [], "nothing is delivered (or inflated) before the admission")
        let b = m.encodedDecided(raw, rejection: nil, now: 1)
        guard case .deliver(let req)? = b.last else { return XCTFail("\(b)") }
        XCTAssertEqual(req.body, Array("hi".utf8))

        var r = ConnectionStateMachine(config: config(), now: 0)
        guard case .admitEncoded(let raw2)? = r.received(ArraySlice(Array(head.utf8) + gz), now: 1).last else { return XCTFail() }
        let c = r.encodedDecided(raw2, rejection: Array("HTTP/1.1 401 Unauthorized\r\n\r\n".utf8), now: 1)
        XCTAssertEqual(writes(c), ["HTTP/1.1 401 Unauthorized\r\n\r\n"])
        XCTAssertEqual(delivered(c), [])
        XCTAssertEqual(r.phase, .closingAfterFlush)
    }

    func testProtocolErrorAnswersAndCloses() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        let a = m.received(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"), now: 1)
        XCTAssertTrue(writes(a).first?.hasPrefix("HTTP/1.1 413 Content Too Large\r\n") ?? false)
        XCTAssertTrue(writes(a).first?.contains("Connection: close\r\n") ?? false)
        XCTAssertEqual(m.phase, .closingAfterFlush)
        XCTAssertEqual(m.timerFired(now: 11), [.setTimer(nil), .close(reason: "client did not read the final response")])
    }

    func testRejectedConnectionSends503() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        let a = m.rejected(now: 0)
        XCTAssertTrue(writes(a).first?.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") ?? false)
        XCTAssertTrue(writes(a).first?.contains("Retry-After: 1\r\n") ?? false)
        XCTAssertEqual(m.phase, .closingAfterFlush)
    }

    func testReadingPausedWhenPipelinedInputPilesUp() {
        var c = config()
        c.maxPipelinedBytes = 65_536
        var m = ConnectionStateMachine(config: c, now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        let big = ArraySlice([UInt8](repeating: 0x41, count: 70_000))
        XCTAssertEqual(m.received(big, now: 2), [.pauseReading])
        XCTAssertEqual(m.received(bytes("x"), now: 2), [])
        let resumed = m.responseCompleted(close: false, now: 3)
        XCTAssertEqual(resumed.first, .resumeReading)
    }

    /// A response completed with a backlog of unsent output: the next pipelined request waits until the output is
    /// flushed; the input piling up meanwhile pauses reading; the flush resumes reading and delivers the request.
    func testNextPipelinedRequestWaitsForABackloggedResponseToFlush() {
        var c = config()
        c.maxPipelinedBytes = 65_536
        var m = ConnectionStateMachine(config: c, now: 0)
        _ = m.started(now: 0)
        XCTAssertEqual(delivered(m.received(bytes("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)), ["/1"])
        XCTAssertEqual(delivered(m.responseCompleted(close: false, now: 2, outputBacklogged: true)), [])
        XCTAssertTrue(m.drainPending)
        let pile = ArraySlice(Array(String(repeating: "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n", count: 3_000).utf8))
        XCTAssertEqual(m.received(pile, now: 3), [.pauseReading], "no request is taken while the output backs up")
        XCTAssertEqual(m.timerFired(now: 5, outputPending: true).filter { if case .close = $0 { return true } else { return false } }, [],
                       "no request timeout for the waiting pipelined request")
        let next = m.outputFlushed(now: 6)
        XCTAssertFalse(next.contains(.resumeReading), "over the cap behind /2: reading stays paused")
        XCTAssertEqual(delivered(next), ["/2"])
        XCTAssertFalse(m.drainPending)
        // Responses without a backlog take the waiting requests one at a time; reading resumes only once the input
        // left behind the one in flight is under the cap (it resumed after every response: ~7 MB piled up per
        // connection of a client that pipelines and never reads).
        var resumedAfter: Int?
        for k in 0..<3_000 {
            let a = m.responseCompleted(close: false, now: 7 + Double(k) / 1_000)
            XCTAssertEqual(delivered(a), ["/3"], "no backlog: the next one at once")
            if a.contains(.resumeReading) { resumedAfter = k; break }
        }
        XCTAssertNotNil(resumedAfter)
        XCTAssertGreaterThan(resumedAfter ?? 0, 100)
    }
}
