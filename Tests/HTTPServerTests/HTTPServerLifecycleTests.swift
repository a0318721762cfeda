import Foundation
import XCTest
@testable import HTTPServer

final class HTTPServerLifecycleTests: XCTestCase {
    func testDisconnectWhileNonStreamedResponsePending() throws {
        let closed = expectation(description: "onClose fired")
        let pending = Box<[HTTPResponder]>([])
        let (server, port) = try startServer(handler: { _, res in
            pending.with { $0.append(res) }          // the app "computes" and never answers
            res.onClose { closed.fulfill() }
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        for _ in 0..<100 where pending.with({ $0.isEmpty }) { usleep(10_000) }
        XCTAssertEqual(pending.with { $0.count }, 1)
        c.close()
        wait(for: [closed], timeout: 1)
        let res = pending.with { $0[0] }
        XCTAssertTrue(res.isClosed)
        // Answering a gone client is harmless.
        res.send(status: 200, headers: [], body: Array("late".utf8))
    }

    /// A disconnect is delivered while slow handlers hold every worker of the global pool (helper's report: the
    /// cancel of a gone stream waited 28.7 s behind six requests tokenizing 7 MB prompts, decoding all the while).
    func testDisconnectIsDeliveredWhileHandlersHoldThePool() throws {
        let closed = expectation(description: "onClose fired")
        let release = DispatchSemaphore(value: 0)
        let busy = Box(0)
        let (server, port) = try startServer(handler: { req, res in
            if req.path == "/busy" {
                busy.with { $0 += 1 }
                release.wait()   // a handler that computes for a long time
                res.send(status: 200, headers: [], body: [])
                return
            }
            res.onClose { closed.fulfill() }
            res.startStream(status: 200, headers: [("Content-Type", "text/plain")])
        })
        defer { server.stop() }
        let stream = try TestClient(port: port)
        stream.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(stream.readHead()?.0, 200)
        let workers = 2 * ProcessInfo.processInfo.activeProcessorCount + 2
        var hogs: [TestClient] = []
        for _ in 0..<workers {
            let c = try TestClient(port: port)
            c.send("POST /busy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            hogs.append(c)
        }
        for _ in 0..<200 where busy.with({ $0 }) < ProcessInfo.processInfo.activeProcessorCount { usleep(10_000) }
        XCTAssertGreaterThanOrEqual(busy.with { $0 }, ProcessInfo.processInfo.activeProcessorCount, "the handlers hold the pool")
        stream.reset()
        wait(for: [closed], timeout: 2)
        for _ in 0..<workers { release.signal() }
        for c in hogs { c.close() }
    }

    func testDisconnectMidStream() throws {
        let closed = expectation(description: "onClose fired")
        let writesFailed = expectation(description: "write returned false")
        let (server, port) = try startServer(handler: { _, res in
            res.onClose { closed.fulfill() }
            res.startStream(status: 200, headers: [("Content-Type", "text/plain")])
            DispatchQueue.global().async {
                for _ in 0..<500 {
                    if !res.write(Array("tick\n".utf8)) { writesFailed.fulfill(); return }
                    usleep(10_000)
                }
            }
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readHead()?.0, 200)
        c.reset()
        wait(for: [closed, writesFailed], timeout: 1)
    }

    func testOnCloseNotCalledAfterCompletedResponse() throws {
        let fired = Box(false)
        let (server, port) = try startServer(handler: { _, res in
            res.onClose { fired.with { $0 = true } }
            res.send(status: 200, headers: [], body: [])
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.status, 200)
        c.close()
        usleep(200_000)
        XCTAssertFalse(fired.with { $0 })
    }

    func test200ConcurrentConnectionsAllAnswered() throws {
        let n = 200
        let held = Box<[HTTPResponder]>([])
        let (server, port) = try startServer(handler: { req, res in
            // Answer only once all n requests are in flight at the same time.
            let all: [HTTPResponder]? = held.with {
                $0.append(res)
                return $0.count == n ? $0 : nil
            }
            for r in all ?? [] { r.send(status: 200, headers: [], body: Array(r.request.path.utf8)) }
        })
        defer { server.stop() }
        var clients: [TestClient] = []
        for i in 0..<n {
            let c = try TestClient(port: port, timeout: 10)
            c.send("GET /c\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(c)
        }
        for (i, c) in clients.enumerated() {
            let r = c.readResponse()
            XCTAssertEqual(r?.status, 200)
            XCTAssertEqual(r?.bodyString, "/c\(i)")
        }
        XCTAssertEqual(server.connectionCount, n)
    }

    func testConnectionLimitAnswers503WithRetryAfter() throws {
        let (server, port) = try startServer({ $0.maxConnections = 2 }, handler: echoHandler)
        defer { server.stop() }
        let a = try TestClient(port: port), b = try TestClient(port: port)
        a.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); b.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(a.readResponse()?.status, 200)
        XCTAssertEqual(b.readResponse()?.status, 200)
        let c = try TestClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.headers["Retry-After"], "1")
        XCTAssertTrue(r.bodyString.contains("connection limit"), r.bodyString)  // default plain-text renderer
        XCTAssertTrue(c.waitForClose())
        // After one client leaves, a new one is served.
        a.close()
        usleep(100_000)
        let d = try TestClient(port: port)
        d.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(d.readResponse()?.status, 200)
    }

    /// Past the limit, `lightOnlyConnections` connections are still read: a light request (a health probe) is
    /// answered and the connection closed, any other request gets the limit's 503; past those, connections are
    /// refused unread.
    func testConnectionsPastTheLimitMayMakeOneLightRequest() throws {
        let (server, port) = try startServer({
            $0.maxConnections = 1
            $0.lightOnlyConnections = 1
            $0.isLightRequest = { $0.path == "/health" }
        }, handler: echoHandler)
        defer { server.stop() }
        let a = try TestClient(port: port)
        a.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(a.readResponse()?.status, 200)
        let probe = try TestClient(port: port)
        probe.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try XCTUnwrap(probe.readResponse())
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.bodyString.contains("/health"), r.bodyString)
        XCTAssertEqual(r.headers["Connection"], "close")
        XCTAssertTrue(probe.waitForClose())
        let heavy = try TestClient(port: port)
        heavy.send("GET /work HTTP/1.1\r\nHost: x\r\n\r\n")
        let h = try XCTUnwrap(heavy.readResponse())
        XCTAssertEqual(h.status, 503)
        XCTAssertEqual(h.headers["Retry-After"], "1")
        XCTAssertTrue(heavy.waitForClose())
        // The one light-only slot held by an idle client: the next connection is refused before it sends anything.
        usleep(100_000)
        let idle = try TestClient(port: port)
        usleep(100_000)
        let refused = try TestClient(port: port)
        let x = try XCTUnwrap(refused.readResponse())
        XCTAssertEqual(x.status, 503)
        idle.close()
    }

    func testBackpressureReportedForSlowReader() throws {
        let state = Box<(pressured: Bool, writable: Bool)>((false, false))
        let done = expectation(description: "writer finished")
        let (server, port) = try startServer({ $0.writeHighWaterBytes = 64 * 1024 }, handler: { _, res in
            res.startStream(status: 200, headers: [])
            DispatchQueue.global().async {
                let piece = [UInt8](repeating: 0x61, count: 64 * 1024)
                for _ in 0..<200 where !res.isBackpressured { res.write(piece) }
                state.with { $0.pressured = res.isBackpressured }
                res.onWritable {
                    state.with { $0.writable = true }
                    res.endStream()
                    done.fulfill()
                }
            }
        })
        defer { server.stop() }
        let c = try TestClient(port: port, timeout: 5)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(300_000)              // do not read: the socket buffers fill up
        _ = c.readResponse()         // now drain everything
        wait(for: [done], timeout: 5)
        XCTAssertTrue(state.with { $0.pressured })
        XCTAssertTrue(state.with { $0.writable })
    }

    func testStopClosesConnectionsAndFiresOnClose() throws {
        let closed = expectation(description: "onClose on stop")
        let (server, port) = try startServer(handler: { _, res in res.onClose { closed.fulfill() } })
        let c = try TestClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(100_000)
        server.stop()
        wait(for: [closed], timeout: 1)
        XCTAssertTrue(c.waitForClose())
        XCTAssertThrowsError(try server.start())
    }
}
