import Foundation
import XCTest
@testable import HTTPServer

/// Issue 21 (network-reachable crashes and denials of service), HTTP layer, over real sockets on 127.0.0.1.
final class HTTPServerHardeningTests: XCTestCase {
    /// Polls `condition` every 10 ms for at most `seconds`.
    func eventually(_ seconds: Double = 3, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Handler: `/big?n=BYTES` answers a whole body of that many bytes (a repeating pattern); others echo.
    static let bigHandler: @Sendable (HTTPRequest, HTTPResponder) -> Void = { req, res in
        if req.path == "/big", let n = Int(req.query["n"] ?? "") {
            res.send(status: 200, headers: [], body: pattern(n))
        } else {
            echoHandler(req, res)
        }
    }

    static func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) } }

    func testChunkSizeNearIntMaxAnswers413AndServerLives() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n7fffffffffffffff\r\n")
        XCTAssertEqual(c.readResponse()?.status, 413)
        let d = try TestClient(port: port)
        d.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(d.readResponse()?.status, 200)
    }

    func testSlowSteadyReaderGetsWholeResponsePastIdleTimeout() throws {
        let n = 12 * 1024 * 1024    // more than the kernel buffers on both ends hold
        let (server, port) = try startServer({ $0.idleTimeout = 0.4 }, handler: Self.bigHandler)
        defer { server.stop() }
        let c = try TestClient(port: port, timeout: 5, receiveBuffer: 64 * 1024)
        c.send("GET /big?n=\(n) HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(100_000)
        c.pace = 12_000             // ≤ 64 KiB per 12 ms: about 2.5 s in all, several idle timeouts
        let start = Date()
        let r = try XCTUnwrap(c.readResponse(), "connection cut before the response was read")
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 1.2, "the reader was slower than the idle timeout")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body.count, n)
        XCTAssertTrue(r.body == Self.pattern(n))
        // Keep-alive still works afterwards.
        c.pace = 0
        c.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.bodyString, "GET /after ")
    }

    func testReaderThatStopsReadingIsDisconnected() throws {
        let (server, port) = try startServer({ $0.idleTimeout = 0.3 }, handler: Self.bigHandler)
        defer { server.stop() }
        let c = try TestClient(port: port, timeout: 5, receiveBuffer: 64 * 1024)
        c.send("GET /big?n=\(12 * 1024 * 1024) HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually { server.connectionCount == 1 })
        XCTAssertTrue(eventually(3) { server.connectionCount == 0 }, "write-stall timeout")
        XCTAssertTrue(eventually { server.bufferedBytes == 0 }, "the pending output was released")
    }

    func testResponseOverCapIsRefusedSoTheAppCanAnswer() throws {
        let seen = Box<(cap: Int, first: Bool)>((0, true))
        let (server, port) = try startServer({ $0.maxBufferedWriteBytes = 1024 * 1024 }, handler: { req, res in
            switch req.path {
            case "/fits":
                XCTAssertTrue(res.trySend(status: 200, headers: [], body: [UInt8](repeating: 0x62, count: 1000)))
            case "/plain":
                res.send(status: 200, headers: [], body: [UInt8](repeating: 0x61, count: 2 * 1024 * 1024))
            default:
                let ok = res.trySend(status: 200, headers: [], body: [UInt8](repeating: 0x61, count: 2 * 1024 * 1024))
                seen.with { $0 = (res.maxResponseBytes, ok) }
                if !ok { res.send(status: 507, headers: [("Content-Type", "application/json")], body: Array("{\"error\":\"too big\"}".utf8)) }
            }
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 507, "the application answered")
        XCTAssertEqual(r.bodyString, "{\"error\":\"too big\"}")
        XCTAssertEqual(seen.with { $0.cap }, 1024 * 1024)
        XCTAssertFalse(seen.with { $0.first })
        // A response that fits is sent as before, on the same connection.
        c.send("GET /fits HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.body.count, 1000)
        // `send` over the cap answers 500 itself instead of silently closing; the connection stays usable.
        c.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        let p = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(p.status, 500)
        XCTAssertTrue(p.bodyString.contains("exceeds the server's limit"), p.bodyString)  // default plain-text renderer
        c.send("GET /fits HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.body.count, 1000)
    }

    func testBufferBudgetRefusesNewConnectionsWith503() throws {
        let (server, port) = try startServer({ $0.maxBufferedBytesTotal = 256 * 1024 }, handler: Self.bigHandler)
        defer { server.stop() }
        let n = 12 * 1024 * 1024
        let hog = try TestClient(port: port, timeout: 10, receiveBuffer: 64 * 1024)
        hog.send("GET /big?n=\(n) HTTP/1.1\r\nHost: x\r\n\r\n")    // and does not read yet
        XCTAssertTrue(eventually { server.bufferedBytes > 256 * 1024 }, "\(server.bufferedBytes)")
        let refused = try TestClient(port: port)
        refused.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try XCTUnwrap(refused.readResponse())
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.headers["Retry-After"], "1")
        XCTAssertTrue(r.bodyString.contains("buffer memory"))
        XCTAssertTrue(refused.waitForClose())
        // Once the output is taken, the budget is free again and new clients are served.
        XCTAssertEqual(hog.readResponse()?.body.count, n)
        XCTAssertTrue(eventually { server.bufferedBytes == 0 }, "\(server.bufferedBytes)")
        let later = try TestClient(port: port)
        later.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(later.readResponse()?.bodyString, "GET /ok ")
    }

    func testBufferBudgetAnswers503ToUploadThatWouldExceedIt() throws {
        let (server, port) = try startServer({ $0.maxBufferedBytesTotal = 64 * 1024 }, handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        c.send([UInt8](repeating: 0x62, count: 200 * 1024))
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.headers["Retry-After"], "1")
        XCTAssertTrue(eventually { server.bufferedBytes == 0 }, "\(server.bufferedBytes)")
        // Small requests still pass.
        let d = try TestClient(port: port)
        d.send("POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(d.readResponse()?.bodyString, "POST /s hi")
    }

    func testBufferAccountingReturnsToZero() throws {
        let (server, port) = try startServer({ $0.idleTimeout = 5 }, handler: Self.bigHandler)
        defer { server.stop() }
        // Pipelined requests, a partial body abandoned, a big response abandoned mid-way by a reset.
        let a = try TestClient(port: port)
        a.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /big?n=100000 HTTP/1.1\r\nHost: x\r\n\r\nPOST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertEqual(a.readResponse()?.status, 200)
        XCTAssertEqual(a.readResponse()?.body.count, 100_000)
        XCTAssertEqual(a.readResponse()?.bodyString, "POST /3 abc")
        let b = try TestClient(port: port)
        b.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "q", count: 50_000))
        XCTAssertTrue(eventually { server.bufferedBytes >= 50_000 }, "partial body counted: \(server.bufferedBytes)")
        b.close()
        let c = try TestClient(port: port, receiveBuffer: 64 * 1024)
        c.send("GET /big?n=\(8 * 1024 * 1024) HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(c.fill())
        c.reset()
        XCTAssertTrue(eventually { server.bufferedBytes == 0 }, "\(server.bufferedBytes)")
        a.close()
        XCTAssertTrue(eventually { server.connectionCount == 0 })
        XCTAssertEqual(server.bufferedBytes, 0)
    }

    func testBudgetCounter() {
        let b = BufferBudget(limit: 100)
        XCTAssertFalse(b.isSpent)
        b.add(60); b.add(39)
        XCTAssertEqual(b.usedBytes, 99)
        XCTAssertFalse(b.isSpent)
        b.add(1)
        XCTAssertTrue(b.isSpent)
        b.add(-100)
        XCTAssertEqual(b.usedBytes, 0)
        XCTAssertFalse(b.isSpent)
    }

    func testMissingHostAndEncodedPathOverSocket() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("GET /x HTTP/1.1\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.status, 400)
        let d = try TestClient(port: port)
        d.send("GET /v1/%74okenize HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(d.readResponse()?.bodyString, "GET /v1/%74okenize ")
    }
}
