import XCTest
@testable import HTTPServer

final class ConnectionStateMachineTests: XCTestCase {
    func config() -> HTTPServerConfiguration {
        var c = HTTPServerConfiguration()
        c.idleTimeout = 10
        c.headerTimeout = 2
        c.lingerTimeout = 1
        c.maxBodyBytes = 100
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
        XCTAssertTrue(a.contains(.setTimer(nil)), "no timeout while the app works")
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

    func testStalledBodyAnswers408AfterIdleTimeout() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"), now: 1)
        XCTAssertTrue(writes(m.timerFired(now: 11)).first?.hasPrefix("HTTP/1.1 408") ?? false)
    }

    func testEndOfInputWhileInFlightCloses() {
        var m = ConnectionStateMachine(config: config(), now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        XCTAssertEqual(m.endOfInput(outputPending: false, now: 2),
                       [.setTimer(nil), .close(reason: "client closed with a request in flight")])
        XCTAssertEqual(m.responseCompleted(close: false, now: 3), [])
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
        c.maxHeaderBytes = 100
        var m = ConnectionStateMachine(config: c, now: 0)
        _ = m.received(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), now: 1)
        let big = ArraySlice([UInt8](repeating: 0x41, count: 70_000))
        XCTAssertEqual(m.received(big, now: 2), [.pauseReading])
        XCTAssertEqual(m.received(bytes("x"), now: 2), [])
        let resumed = m.responseCompleted(close: false, now: 3)
        XCTAssertEqual(resumed.first, .resumeReading)
    }
}
