import Foundation
import XCTest
import Logging
@testable import HTTPServer
#if canImport(Glibc)
import Glibc
#endif

/// A blocking test client on 127.0.0.1 with a receive timeout, reading HTTP/1.1 responses byte-exactly.
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var raw: [UInt8]
        var bodyString: String { String(decoding: body, as: UTF8.self) }
    }

    /// Microseconds to sleep before each receive (a slow but steady reader); 0: read at once.
    var pace: useconds_t = 0

    /// - Parameter receiveBuffer: SO_RCVBUF in bytes set before connecting (nil: the kernel default).
    init(port: Int, timeout: Double = 5, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var rb = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 { throw HTTPServerError.socket(call: "connect", errno: errno) }
    }

    deinit { close() }

    private var closed = false
    func close() {
        if !closed { _ = Glibc.close(fd); closed = true }
    }

    /// Closes with RST instead of FIN.
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    func send(_ s: String) { send(Array(s.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads more bytes into the buffer; false on EOF, error or timeout.
    @discardableResult
    func fill() -> Bool {
        if pace > 0 { usleep(pace) }
        var tmp = [UInt8](repeating: 0, count: 65536)
        let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buffer += tmp[0..<n]
        return true
    }

    /// True when the server closed the connection (EOF or reset) within the receive timeout.
    func waitForClose() -> Bool {
        while true {
            var tmp = [UInt8](repeating: 0, count: 4096)
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            buffer += tmp[0..<n]
        }
    }

    private func takeLine() -> [UInt8]? {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[0..<i])
                buffer.removeFirst(i + 1)
                return line.last == 0x0D ? Array(line.dropLast()) : line
            }
            if !fill() { return nil }
        }
    }

    private func take(_ n: Int) -> [UInt8]? {
        while buffer.count < n { if !fill() { return nil } }
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads only a response head (status, headers).
    func readHead() -> (Int, HTTPHeaders, [UInt8])? {
        var raw: [UInt8] = []
        guard let statusLine = takeLine() else { return nil }
        raw += statusLine + [13, 10]
        let parts = String(decoding: statusLine, as: UTF8.self).split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var headers = HTTPHeaders()
        while let line = takeLine() {
            raw += line + [13, 10]
            if line.isEmpty { return (status, headers, raw) }
            let s = String(decoding: line, as: UTF8.self)
            if let c = s.firstIndex(of: ":") {
                headers.add(String(s[..<c]), s[s.index(after: c)...].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// Reads one complete response (Content-Length, chunked, or until close).
    func readResponse(skipInterim: Bool = true) -> Response? {
        while true {
            guard let (status, headers, rawHead) = readHead() else { return nil }
            if status == 100 && skipInterim { continue }
            var raw = rawHead
            var body: [UInt8] = []
            if status == 100 { return Response(status: status, headers: headers, body: [], raw: raw) }
            if let cl = headers["Content-Length"], let n = Int(cl) {
                guard let b = take(n) else { return nil }
                body = b; raw += b
            } else if headers["Transfer-Encoding"]?.lowercased() == "chunked" {
                while true {
                    guard let sizeLine = takeLine(), let size = Int(String(decoding: sizeLine, as: UTF8.self), radix: 16) else { return nil }
                    raw += sizeLine + [13, 10]
                    guard let data = take(size + 2) else { return nil }
                    raw += data
                    if size == 0 { break }
                    body += data.dropLast(2)
                }
            } else {
                while fill() {}
                body = buffer; raw += buffer; buffer = []
            }
            return Response(status: status, headers: headers, body: body, raw: raw)
        }
    }
}

/// Starts a server on an ephemeral port for a test.
func startServer(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
                 expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)? = nil,
                 handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void) throws -> (HTTPServer, Int) {
    var config = HTTPServerConfiguration()
    config.port = 0
    configure(&config)
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let server = HTTPServer(configuration: config, logger: logger, expectation: expectation, handler: handler)
    let port = try server.start()
    return (server, port)
}

/// Echo handler: answers with method, path and body.
let echoHandler: @Sendable (HTTPRequest, HTTPResponder) -> Void = { req, res in
    res.send(status: 200, headers: [("Content-Type", "text/plain")],
             body: Array("\(req.method) \(req.path) ".utf8) + req.body)
}

/// A thread-safe box for test bookkeeping.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func with<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&value) }
}
