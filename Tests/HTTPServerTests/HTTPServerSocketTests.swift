import Foundation
import XCTest
@testable import HTTPServer

final class HTTPServerSocketTests: XCTestCase {
    func testKeepAliveReuseAndPipelining() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        for i in 0..<5 {
            c.send("POST /k\(i) HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            let r = try XCTUnwrap(c.readResponse())
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.bodyString, "POST /k\(i) hi")
            XCTAssertNil(r.headers["Connection"])
        }
        // Pipelined: three requests in one write, answered in order.
        c.send("GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.bodyString, "GET /p1 ")
        XCTAssertEqual(c.readResponse()?.bodyString, "GET /p2 ")
        let last = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(last.bodyString, "GET /p3 ")
        XCTAssertEqual(last.headers["Connection"], "close")
        XCTAssertTrue(c.waitForClose())
    }

    func testChunkedRequestBody() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        let body = Array("héllo 世界".utf8)
        c.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n")
        c.send(Array(body[0..<2]) + Array("\r\n3;x=y\r\n".utf8) + Array(body[2..<5]))
        usleep(20_000)
        c.send(Array("\r\n\(String(body.count - 5, radix: 16))\r\n".utf8) + Array(body[5...]) + Array("\r\n0\r\n\r\n".utf8))
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body, Array("POST /c ".utf8) + body)
    }

    /// The transport's own errors are rendered by `HTTPServerConfiguration.errorBody` (the application's shape;
    /// the Server target sets OpenAI's) and close the connection; the default is plain text.
    func testErrorStatusesUseTheConfiguredShapeAndClose() throws {
        let (server, port) = try startServer({
            $0.maxBodyBytes = 1000
            $0.maxHeaderBytes = 512
            $0.errorBody = { status, message, code, _ in ("application/x-test", Array("\(status)|\(code)|\(message)".utf8)) }
        }, handler: echoHandler)
        defer { server.stop() }
        let cases: [(String, Int, String)] = [
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413, "request_too_large"),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "a", count: 1000))\r\n\r\n", 431, "request_header_fields_too_large"),
            ("\u{01}garbage\r\n\r\n", 400, "bad_request"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ]
        for (req, status, code) in cases {
            let c = try TestClient(port: port)
            c.send(req)
            let r = try XCTUnwrap(c.readResponse(), "\(status)")
            XCTAssertEqual(r.status, status)
            XCTAssertEqual(r.headers["Content-Type"], "application/x-test")
            XCTAssertEqual(r.headers["Connection"], "close")
            XCTAssertTrue(r.bodyString.hasPrefix("\(status)|\(code)|"), r.bodyString)
            XCTAssertTrue(c.waitForClose(), "no second response, connection closed")
        }
        let (plain, plainPort) = try startServer({ $0.maxBodyBytes = 1000 }, handler: echoHandler)
        defer { plain.stop() }
        let c = try TestClient(port: plainPort)
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.headers["Content-Type"], "text/plain; charset=utf-8")
    }

    func testLargeBodyRejectedWhileClientKeepsSending() throws {
        let (server, port) = try startServer({ $0.maxBodyBytes = 10_000 }, handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in 0..<4 { c.send("1000\r\n" + String(repeating: "z", count: 4096) + "\r\n") }
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 413)
    }

    func testExpectContinue() throws {
        let (server, port) = try startServer({ $0.maxBodyBytes = 100 }, expectation: { head in
            head.headers["Authorization"] == "Bearer good" ? nil : (401, [("Content-Type", "application/json")], Array("{\"error\":{}}".utf8))
        }, handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST /e HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let start = Date()
        let interim = try XCTUnwrap(c.readResponse(skipInterim: false))
        XCTAssertEqual(interim.status, 100)
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.2)
        c.send("body")
        XCTAssertEqual(c.readResponse()?.bodyString, "POST /e body")

        let bad = try TestClient(port: port)
        bad.send("POST /e HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(bad.readResponse(skipInterim: false)?.status, 401)

        let big = try TestClient(port: port)
        big.send("POST /e HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nContent-Length: 400\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(big.readResponse(skipInterim: false)?.status, 413)
    }

    func testIdleTimeoutClosesConnection() throws {
        let (server, port) = try startServer({ $0.idleTimeout = 0.3 }, handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port, timeout: 3)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(c.readResponse()?.status, 200)
        let start = Date()
        XCTAssertTrue(c.waitForClose())
        let waited = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(waited, 0.2)
        XCTAssertLessThan(waited, 2)
    }

    func testHeaderTimeoutAnswers408() throws {
        let (server, port) = try startServer({ $0.headerTimeout = 0.3 }, handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port, timeout: 3)
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in 0..<3 { usleep(100_000); c.send("a") }
        XCTAssertEqual(c.readResponse()?.status, 408)
        XCTAssertTrue(c.waitForClose())
    }

    func testSSEFramingByteExact() throws {
        let (server, port) = try startServer(handler: { _, res in
            let sse = SSEWriter(responder: res)
            sse.start(extraHeaders: [("Access-Control-Allow-Origin", "*")])
            sse.comment("ping")
            sse.send(data: "{\"a\":1}")
            sse.send(data: "[DONE]")
            sse.finish()
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST /s HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        let expectedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            + "X-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\nTransfer-Encoding: chunked\r\n\r\n"
        let expectedBody = "8\r\n: ping\n\n\r\nf\r\ndata: {\"a\":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
        XCTAssertEqual(String(decoding: r.raw, as: UTF8.self), expectedHead + expectedBody)
        XCTAssertEqual(r.bodyString, ": ping\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n")
        XCTAssertEqual(SSEWriter.frame(data: "a\nb"), Array("data: a\ndata: b\n\n".utf8))
        // The connection survives the stream; a stream answering `Connection: close` ends with a close.
        c.send("POST /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let closing = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(closing.status, 200)
        XCTAssertEqual(closing.headers["Connection"], "close")
        XCTAssertTrue(c.waitForClose())
    }

    func testHTTP10StreamIsCloseDelimited() throws {
        let (server, port) = try startServer(handler: { _, res in
            res.startStream(status: 200, headers: [])
            res.write(Array("abc".utf8))
            res.endStream()
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("GET / HTTP/1.0\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertNil(r.headers["Transfer-Encoding"])
        XCTAssertEqual(r.bodyString, "abc")
    }
}

final class HTTPServerPersistenceTests: XCTestCase {
    /// C29: twenty mixed requests on one connection (full, streamed, app 4xx), never interleaved.
    func testTwentyMixedRequestsOnOneConnection() throws {
        let (server, port) = try startServer(handler: { req, res in
            switch req.path {
            case "/stream":
                let sse = SSEWriter(responder: res)
                sse.start()
                DispatchQueue.global().async {
                    for i in 0..<3 { sse.send(data: "{\"i\":\(i)}"); usleep(1000) }
                    sse.send(data: "[DONE]")
                    sse.finish()
                }
            case "/bad":
                res.send(status: 400, headers: [("Content-Type", "application/json")], body: Array("{\"error\":{}}".utf8))
            default:
                DispatchQueue.global().asyncAfter(deadline: .now() + 0.002) {
                    res.send(status: 200, headers: [], body: Array(req.path.utf8))
                }
            }
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        for i in 0..<20 {
            let path = ["/full", "/stream", "/v1/models", "/bad"][i % 4]
            c.send("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            let r = try XCTUnwrap(c.readResponse(), "request \(i)")
            XCTAssertNil(r.headers["Connection"])
            switch path {
            case "/stream": XCTAssertEqual(r.bodyString, "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: [DONE]\n\n")
            case "/bad": XCTAssertEqual(r.status, 400)
            default: XCTAssertEqual(r.bodyString, path)
            }
        }
    }

    func testBodySentWithoutWaitingForContinue() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody")
        let interim = try XCTUnwrap(c.readResponse(skipInterim: false))
        XCTAssertEqual(interim.status, 100)
        XCTAssertEqual(c.readResponse()?.bodyString, "POST /e body")
    }

    func testHeadAndHTTP10KeepAlive() throws {
        let (server, port) = try startServer(handler: echoHandler)
        defer { server.stop() }
        let c = try TestClient(port: port)
        c.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        let (status, headers, _) = try XCTUnwrap(c.readHead())
        XCTAssertEqual(status, 200)
        XCTAssertEqual(headers["Content-Length"], "8")
        c.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.bodyString, "GET /k ")
        XCTAssertEqual(r.headers["Connection"], "keep-alive")
        c.send("GET /k2 HTTP/1.0\r\n\r\n")
        let r2 = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r2.headers["Connection"], "close")
        XCTAssertTrue(c.waitForClose())
    }

    func testLargeBodyWithinLimit() throws {
        let (server, port) = try startServer(handler: { req, res in
            res.send(status: 200, headers: [], body: Array(String(req.body.count).utf8))
        })
        defer { server.stop() }
        let c = try TestClient(port: port)
        let body = [UInt8](repeating: 0x41, count: 3 * 1024 * 1024)
        c.send(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        XCTAssertEqual(c.readResponse()?.bodyString, String(body.count))
    }
}
