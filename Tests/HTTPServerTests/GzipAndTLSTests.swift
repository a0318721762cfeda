import Foundation
import XCTest
@testable import HTTPServer
#if canImport(Glibc)
import Glibc
#endif

/// Issue 16: gzip bodies both ways, and the TLS listener's handshake bounds (the HTTPS end-to-end paths are in
/// Tests/e2e/test_tls.py with Python's ssl, the openai client and curl).
final class GzipAndTLSTests: XCTestCase {
    /// gzip of `data` by the system's `gzip` tool (an independent encoder), or nil when it is absent.
    private func systemGzip(_ data: [UInt8]) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("x")
        try Data(data).write(to: file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "gzip -9 -n '\(file.path)'"]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("gzip tool failed") }
        return Array(try Data(contentsOf: dir.appendingPathComponent("x.gz")))
    }

    func testCompressRoundTripsThroughInflate() throws {
        let text = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 500).utf8)
        let z = try XCTUnwrap(GzipCodec.compress(text))
        XCTAssertLessThan(z.count, text.count / 10)
        XCTAssertEqual(Array(z.prefix(2)), [0x1F, 0x8B], "a gzip member (RFC 1952 magic)")
        XCTAssertEqual(try GzipCodec.inflate(z, limit: text.count), text)
        // An independent encoder's output inflates to the same bytes.
        XCTAssertEqual(try GzipCodec.inflate(try systemGzip(text), limit: text.count), text)
    }

    func testInflateStopsAtTheCapWithBoundedWork() throws {
        // 64 MiB of zeros compress to ~64 KiB; the cap is 1 MiB.
        let bomb = try XCTUnwrap(GzipCodec.compress([UInt8](repeating: 0, count: 64 << 20)))
        let t0 = Date()
        XCTAssertThrowsError(try GzipCodec.inflate(bomb, limit: 1 << 20)) {
            XCTAssertEqual($0 as? GzipCodec.DecodeError, .tooLarge(limit: 1 << 20))
        }
        // Inflating all 64 MiB takes far longer than stopping after ~1 MiB.
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5)
    }

    func testCorruptAndTruncatedStreamsAreRefused() throws {
        let z = try XCTUnwrap(GzipCodec.compress(Array(String(repeating: "abc", count: 1000).utf8)))
        for bad in [Array(z.prefix(z.count / 2)), [UInt8](repeating: 7, count: 40), Array(z.dropLast(4)), z + [1, 2, 3]] {
            XCTAssertThrowsError(try GzipCodec.inflate(bad, limit: 1 << 20)) { e in
                guard case .corrupt = e as? GzipCodec.DecodeError else { return XCTFail("\(e)") }
            }
        }
    }

    func testAcceptEncodingParsing() {
        func accepts(_ v: String) -> Bool { GzipCodec.accepts(HTTPHeaders([("Accept-Encoding", v)])) }
        XCTAssertTrue(accepts("gzip"))
        XCTAssertTrue(accepts("br, GZIP;q=0.5"))
        XCTAssertTrue(accepts("*"))
        XCTAssertFalse(accepts("gzip;q=0"))
        XCTAssertFalse(accepts("br, deflate"))
        XCTAssertFalse(GzipCodec.accepts(HTTPHeaders()))
    }

    func testGzipResponsesAndRequestBodiesOverSockets() throws {
        let (server, port) = try startServer({ $0.maxBodyBytes = 100_000 }, handler: HTTPServerHardeningTests.bigHandler)
        defer { server.stop() }
        // ≥ 1 KiB and accepted → compressed; below 1 KiB or not accepted → identity.
        let c = try TestClient(port: port)
        c.send("GET /big?n=5000 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.headers["Content-Encoding"], "gzip")
        XCTAssertEqual(r.headers["Vary"], "Accept-Encoding")
        XCTAssertEqual(try GzipCodec.inflate(r.body, limit: 1 << 20), HTTPServerHardeningTests.pattern(5000))
        c.send("GET /big?n=1000 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        XCTAssertNil(try XCTUnwrap(c.readResponse()).headers["Content-Encoding"])
        c.send("GET /big?n=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        let identity = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(identity.body.count, 5000)
        // Not compressed for this client, but the coding depends on Accept-Encoding: a cache must know (RFC 9110 §12.5.5).
        XCTAssertEqual(identity.headers["Vary"], "Accept-Encoding")
        // A gzip request body reaches the handler inflated.
        let plain = Array(String(repeating: "hello ", count: 3000).utf8)
        let z = try XCTUnwrap(GzipCodec.compress(plain))
        c.send(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(z.count)\r\n\r\n".utf8) + z)
        let echoed = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(echoed.status, 200)
        XCTAssertTrue(echoed.bodyString.hasSuffix(String(decoding: plain, as: UTF8.self)))
        // One that inflates past the 100 kB cap: 413; an unknown coding: 415; a corrupt one: 400.
        let bomb = try XCTUnwrap(GzipCodec.compress([UInt8](repeating: 0x20, count: 50 << 20)))
        for (body, coding, status) in [(bomb, "gzip", 413), (plain, "br", 415), (Array(z.prefix(z.count / 2)), "gzip", 400)] {
            let d = try TestClient(port: port)
            d.send(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: \(coding)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            XCTAssertEqual(d.readResponse()?.status, status, coding)
        }
    }

    // MARK: TLS

    /// A self-signed certificate and key made by the `openssl` tool in a temporary directory.
    private func selfSigned() throws -> (cert: String, key: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout '\(key)' -out '\(cert)' 2>/dev/null"]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("the openssl tool is not available") }
        return (cert, key)
    }

    func testBadKeyFilesAreNamedErrors() throws {
        let (cert, key) = try selfSigned()
        XCTAssertThrowsError(try TLSContext(certificateFile: "/nonexistent.pem", keyFile: key)) {
            XCTAssertTrue("\($0)".contains("/nonexistent.pem"), "\($0)")
        }
        XCTAssertThrowsError(try TLSContext(certificateFile: cert, keyFile: cert)) {
            XCTAssertTrue("\($0)".contains(cert), "\($0)")
        }
        XCTAssertNoThrow(try TLSContext(certificateFile: cert, keyFile: key))
    }

    func testStalledHandshakeAndPlainHTTPAreClosed() throws {
        let (cert, key) = try selfSigned()
        let tls = try TLSContext(certificateFile: cert, keyFile: key)
        let (server, port) = try startServer({ $0.tls = tls; $0.headerTimeout = 0.5 }, handler: echoHandler)
        defer { server.stop() }
        // Plain HTTP on the TLS port: closed at once (no HTTP answer, no hang).
        let plain = try TestClient(port: port, timeout: 5)
        let t0 = Date()
        plain.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(plain.waitForClose())
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2)
        // A client that connects and never starts the handshake is closed by the header timeout.
        let idle = try TestClient(port: port, timeout: 5)
        let t1 = Date()
        XCTAssertTrue(idle.waitForClose())
        let waited = Date().timeIntervalSince(t1)
        XCTAssertGreaterThan(waited, 0.4)
        XCTAssertLessThan(waited, 2.5)
        // Half a ClientHello, then silence: the same bound.
        let half = try TestClient(port: port, timeout: 5)
        half.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        let t2 = Date()
        XCTAssertTrue(half.waitForClose())
        XCTAssertLessThan(Date().timeIntervalSince(t2), 2.5)
        let end = Date().addingTimeInterval(3)
        while server.connectionCount > 0 && Date() < end { usleep(10_000) }
        XCTAssertEqual(server.connectionCount, 0)
    }
}
