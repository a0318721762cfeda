import Foundation
import Logging
import TestSupport
import XCTest
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

/// Issue 16: one API-key rule for every route of the route table (enumerated here, so a new route is covered),
/// CORS origins, and `Expect: 100-continue` decided before the body is invited. Over real sockets on 127.0.0.1.
final class AccessRuleTests: XCTestCase {
    private func server(_ configure: (inout ServerOptions) -> Void = { _ in }) throws -> (SputnikServer, Int) {
        var o = ServerOptions()
        o.modelPath = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")
        o.threads = 1
        o.contextSize = 64
        o.port = 0
        o.apiKey = "sekret"
        configure(&o)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let s = try SputnikServer(options: o, logger: logger)
        return (s, try s.start())
    }

    /// Sends `raw` on a new connection and reads until the server closes; returns the status and the text.
    private func exchange(_ port: Int, _ raw: String, readTimeout: Double = 10) -> (status: Int, text: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { _ = Glibc.close(fd) }
        var tv = timeval(tv_sec: Int(readTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return (0, "connect failed") }
        _ = Array(raw.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            got += buf[0..<n]
        }
        let text = String(decoding: got, as: UTF8.self)
        let status = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, text)
    }

    private func request(_ method: String, _ path: String, _ headers: [String]) -> String {
        let body = method == "POST" ? #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"tokens":[1],"content":"hi"}"# : ""
        return "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + headers.map { $0 + "\r\n" }.joined() + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    func testEveryRouteNeedsTheKeyExceptHealthAndVersion() throws {
        let (s, port) = try server()
        defer { s.stop() }
        XCTAssertGreaterThanOrEqual(SputnikServer.routeTable.count, 5)
        for route in SputnikServer.routeTable {
            for path in [route.path, "/v1" + route.path] {
                let open = route.path == "/health" || route.path == "/version"
                for bad in [[], ["Authorization: Bearer wrong"], ["Authorization: sekret"], ["Authorization: Basic sekret"]] {
                    let r = exchange(port, request(route.method, path, bad))
                    if open {
                        XCTAssertEqual(r.status, 200, "\(route.method) \(path) \(bad)")
                    } else {
                        XCTAssertEqual(r.status, 401, "\(route.method) \(path) \(bad)")
                        // Anthropic's routes answer in Anthropic's error shape, the others in OpenAI's.
                        XCTAssertTrue(r.text.contains(SputnikServer.isAnthropicPath(path) ? #""type":"authentication_error""#
                                                                                          : #""code":"invalid_api_key""#), r.text)
                    }
                }
                // The right key, scheme in any case, is accepted (whatever the handler then answers).
                for good in ["Authorization: Bearer sekret", "authorization: bearer sekret"] {
                    let r = exchange(port, request(route.method, path, [good]))
                    XCTAssertNotEqual(r.status, 401, "\(route.method) \(path)")
                    XCTAssertNotEqual(r.status, 0, "\(route.method) \(path)")
                }
                // A CORS preflight carries no credentials and is answered.
                let pre = exchange(port, request("OPTIONS", path, ["Origin: http://a.test", "Access-Control-Request-Method: \(route.method)"]))
                XCTAssertEqual(pre.status, 204, "preflight \(path)")
            }
        }
        // Unknown paths need the key too (401 before 404).
        XCTAssertEqual(exchange(port, request("GET", "/v1/nope", [])).status, 401)
        XCTAssertEqual(exchange(port, request("GET", "/v1/nope", ["Authorization: Bearer sekret"])).status, 404)
    }

    func testMetricsNoAuthExemptsOnlyMetrics() throws {
        let (s, port) = try server { $0.metricsNoAuth = true }
        defer { s.stop() }
        XCTAssertEqual(exchange(port, request("GET", "/metrics", [])).status, 200)
        XCTAssertEqual(exchange(port, request("GET", "/v1/models", [])).status, 401)
    }

    func testWrongKeyWithExpectContinueGets401WithoutContinue() throws {
        let (s, port) = try server()
        defer { s.stop() }
        // Headers only: the body is never sent. The answer must be a final 401, never "100 Continue".
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
            + "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n"
        let t0 = Date()
        let r = exchange(port, head, readTimeout: 5)
        XCTAssertEqual(r.status, 401, r.text)
        XCTAssertFalse(r.text.contains("100 Continue"), r.text)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 3)
        // Over the body cap: 413 from the head alone, no 100 either.
        let big = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n"
            + "Expect: 100-continue\r\nContent-Length: 999999999\r\n\r\n"
        let b = exchange(port, big, readTimeout: 5)
        XCTAssertEqual(b.status, 413, b.text)
        XCTAssertFalse(b.text.contains("100 Continue"))
        // The right key: 100 Continue first (then the connection waits for the body; the read times out).
        let good = exchange(port, head.replacingOccurrences(of: "Bearer wrong", with: "Bearer sekret"), readTimeout: 1)
        XCTAssertTrue(good.text.hasPrefix("HTTP/1.1 100 Continue"), good.text)
        // A route that does not exist, or a method a path does not serve: the 404 / 405 from the head, no 100 (the
        // client uploaded its body only to get the 404); an Anthropic path in Anthropic's shape.
        for (path, method, status) in [("/nope", "POST", 404), ("/v1/models", "POST", 405), ("/v1/messages/nope", "POST", 404)] {
            let r = exchange(port, "\(method) \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n"
                                + "Expect: 100-continue\r\nContent-Length: 30\r\n\r\n", readTimeout: 5)
            XCTAssertEqual(r.status, status, r.text)
            XCTAssertFalse(r.text.contains("100 Continue"), r.text)
            if status == 405 { XCTAssertTrue(r.text.contains("Allow: GET, HEAD\r\n"), r.text) }
            if path.hasPrefix("/v1/messages") { XCTAssertTrue(r.text.contains(#"{"type":"error","error":{"type":"not_found_error""#), r.text) }
        }
    }

    func testAllowedOriginsList() throws {
        let (s, port) = try server { $0.allowedOrigins = ["http://ok.test"]; $0.apiKey = nil }
        defer { s.stop() }
        let ok = exchange(port, request("GET", "/v1/models", ["Origin: http://ok.test"]))
        XCTAssertEqual(ok.status, 200)
        XCTAssertTrue(ok.text.contains("Access-Control-Allow-Origin: http://ok.test\r\n"), ok.text)
        XCTAssertTrue(ok.text.contains("Vary: Origin"), ok.text)
        let bad = exchange(port, request("GET", "/v1/models", ["Origin: http://evil.test"]))
        XCTAssertEqual(bad.status, 403)
        XCTAssertTrue(bad.text.contains("http://evil.test"), bad.text)
        XCTAssertFalse(bad.text.contains("Access-Control-Allow-Origin"))
        let noOrigin = exchange(port, request("GET", "/v1/models", []))
        XCTAssertEqual(noOrigin.status, 200)
        XCTAssertTrue(noOrigin.text.contains("Vary: Origin"))
        XCTAssertFalse(noOrigin.text.contains("Access-Control-Allow-Origin"))
        let pre = exchange(port, request("OPTIONS", "/v1/chat/completions", ["Origin: http://ok.test", "Access-Control-Request-Method: POST"]))
        XCTAssertEqual(pre.status, 204)
        XCTAssertTrue(pre.text.contains("Access-Control-Allow-Origin: http://ok.test"), pre.text)
    }

    /// Listed origins match as browsers serialise them: case-insensitive scheme and host, default ports left out.
    func testAllowedOriginsMatchTheSerializedOrigin() throws {
        let listed = ["HTTPS://App.Test:443", "http://ok.test:80", "http://[::1]:8080", "https://c.test:", "http://e.test:08080",
                      "tauri://localhost", " https://slash.test/ ", "chrome-extension://abcdef"]
        let (s, port) = try server { $0.allowedOrigins = listed; $0.apiKey = nil }
        defer { s.stop() }
        for origin in ["https://app.test", "http://ok.test", "http://[::1]:8080", "https://c.test", "http://e.test:8080",
                       "tauri://localhost", "https://slash.test", "chrome-extension://abcdef"] {
            let r = exchange(port, request("GET", "/v1/models", ["Origin: \(origin)"]))
            XCTAssertEqual(r.status, 200, origin)
            XCTAssertTrue(r.text.contains("Access-Control-Allow-Origin: \(origin)\r\n"), r.text)
        }
        // A request's Origin in another case or with its default port (a non-browser client) matches too.
        for origin in ["HTTPS://App.Test", "https://app.test:443", "HTTP://OK.TEST"] {
            XCTAssertEqual(exchange(port, request("GET", "/v1/models", ["Origin: \(origin)"])).status, 200, origin)
        }
        for origin in ["https://app.test:8443", "http://app.test", "https://ok.test", "HTTPS://APP.TEST:8443"] {
            XCTAssertEqual(exchange(port, request("GET", "/v1/models", ["Origin: \(origin)"])).status, 403, origin)
        }
        XCTAssertEqual(ServerOptions.serializedOrigin("HTTP://Host:8080"), "http://host:8080")
        XCTAssertEqual(ServerOptions.serializedOrigin("https://host:4430"), "https://host:4430")
    }
}
