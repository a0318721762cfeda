import Foundation
import JSON

/// A minimal HTTP/1.1 client for `sputnik chat`: one request per connection over a plain TCP socket (http:// only),
/// reading `Content-Length`, chunked or close-delimited bodies, and OpenAI's server-sent events.
/// Reads wait at most 100 ms at a time so `shouldStop` is checked between them; a stop closes the socket, which a
/// Sputnik server answers by aborting the request.
struct ChatClient {
    /// Host, port and path prefix of the server (`http://host:port[/prefix]`).
    let host: String
    let port: Int
    let prefix: String
    let apiKey: String?

    enum ClientError: Error, CustomStringConvertible {
        case badURL(String)
        case connect(String)
        case protocolError(String)
        case status(Int, String)

        var description: String {
            switch self {
            case .badURL(let u): return "unsupported URL '\(u)' (use http://HOST[:PORT]; put a TLS proxy's plain side here)"
            case .connect(let m): return "cannot connect: \(m)"
            case .protocolError(let m): return "bad response: \(m)"
            case .status(let s, let m): return "server answered \(s): \(m)"
            }
        }
    }

    /// - Throws: `ClientError.badURL` for anything but `http://host[:port][/path]`.
    init(url: String, apiKey: String?) throws {
        guard url.hasPrefix("http://") else { throw ClientError.badURL(url) }
        var rest = Substring(url.dropFirst("http://".count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/v1") { path.removeLast(3) }
        var h = String(rest), p = 80
        if h.hasPrefix("["), let close = h.firstIndex(of: "]") {  // [::1]:8080
            let after = h[h.index(after: close)...]
            if after.hasPrefix(":") { guard let n = Int(after.dropFirst()) else { throw ClientError.badURL(url) }; p = n }
            h = String(h[h.index(after: h.startIndex)..<close])
        } else if let colon = h.lastIndex(of: ":") {
            guard let n = Int(h[h.index(after: colon)...]) else { throw ClientError.badURL(url) }
            p = n
            h = String(h[..<colon])
        }
        guard !h.isEmpty, (1...65535).contains(p) else { throw ClientError.badURL(url) }
        host = h
        port = p
        prefix = path
        self.apiKey = apiKey
    }

    /// `GET path` and its JSON body. - Throws: `ClientError`.
    func getJSON(_ path: String) throws -> JSONValue {
        var body: [UInt8] = []
        let status = try exchange("GET", path, body: nil, shouldStop: { false }) { body += $0 }
        let value = try? JSONValue(parsing: body)
        guard status == 200, let value else { throw ClientError.status(status, Self.errorMessage(value, body)) }
        return value
    }

    /// Posts `body` to `path` and passes each server-sent event's `data` (before `[DONE]`) to `onEvent`.
    /// - Returns: false when `shouldStop` ended the read early. - Throws: `ClientError` (an error status carries
    ///   the server's `error.message`).
    func streamEvents(_ path: String, body: JSONValue, shouldStop: () -> Bool, onEvent: (JSONValue) -> Void) throws -> Bool {
        var pending: [UInt8] = []
        var errorBody: [UInt8] = []
        var status = 0
        var done = false
        status = try exchange("POST", path, body: body.encoded(), shouldStop: shouldStop) { bytes in
            guard status == 0 || status == 200 else { errorBody += bytes; return }
            pending += bytes
            // Events are lines "data: …" ended by a blank line; one line per event is all OpenAI servers send.
            while let nl = pending.firstIndex(of: 0x0A) {
                var line = Array(pending[..<nl])
                pending.removeSubrange(...nl)
                if line.last == 0x0D { line.removeLast() }
                guard line.starts(with: Array("data:".utf8)) else { continue }
                let data = String(decoding: line.dropFirst(5), as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if data == "[DONE]" { done = true; continue }
                if let v = try? JSONValue(parsing: data) { onEvent(v) }
            }
        } onStatus: { status = $0 }
        if status == -1 { return false }
        guard status == 200 else {
            throw ClientError.status(status, Self.errorMessage(try? JSONValue(parsing: errorBody), errorBody))
        }
        if !done { throw ClientError.protocolError("the stream ended before [DONE]") }
        return true
    }

    static func errorMessage(_ v: JSONValue?, _ raw: [UInt8]) -> String {
        v?["error"]?["message"]?.stringValue ?? String(decoding: raw.prefix(300), as: UTF8.self)
    }

    /// One request on a new connection. Body bytes go to `onBody` as they arrive (de-chunked).
    /// - Returns: the status, or -1 when `shouldStop` closed the connection first.
    @discardableResult
    private func exchange(_ method: String, _ path: String, body: [UInt8]?, shouldStop: () -> Bool,
                          onBody: ([UInt8]) -> Void, onStatus: (Int) -> Void = { _ in }) throws -> Int {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(prefix)\(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: application/json, text/event-stream\r\n"
        if let k = apiKey { head += "Authorization: Bearer \(k)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        try writeAll(fd, Array(head.utf8) + (body ?? []))

        var buffer: [UInt8] = []
        var eof = false
        /// Reads more into `buffer`; false at end of stream. Returns nil when stopped.
        func fill() throws -> Bool? {
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                if shouldStop() { return nil }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, 100)
                if r < 0 && errno != EINTR { throw ClientError.protocolError("poll: \(String(cString: strerror(errno)))") }
                if r <= 0 { continue }
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw ClientError.protocolError("read: \(String(cString: strerror(errno)))") }
                if n == 0 { eof = true; return false }
                buffer += chunk[0..<n]
                return true
            }
        }
        // Head.
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if let i = Self.find(crlf2, in: buffer) { headEnd = i; break }
            guard let more = try fill() else { return -1 }
            if !more { throw ClientError.protocolError("connection closed before the response head") }
        }
        let headText = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeSubrange(..<(headEnd! + 4))
        let lines = headText.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ClientError.protocolError(lines[0]) }
        onStatus(status)
        var fields: [String: String] = [:]
        for l in lines.dropFirst() {
            if let c = l.firstIndex(of: ":") {
                fields[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        if method == "HEAD" || status == 204 || status == 304 { return status }
        if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                var lineEnd = Self.find([13, 10], in: buffer)
                while lineEnd == nil {
                    guard let more = try fill() else { return -1 }
                    if !more { throw ClientError.protocolError("connection closed inside a chunk size") }
                    lineEnd = Self.find([13, 10], in: buffer)
                }
                let sizeText = String(decoding: buffer[..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw ClientError.protocolError("bad chunk size")
                }
                buffer.removeSubrange(..<(lineEnd! + 2))
                if size == 0 { return status }
                while buffer.count < size + 2 {
                    guard let more = try fill() else { return -1 }
                    if !more { throw ClientError.protocolError("connection closed inside a chunk") }
                }
                onBody(Array(buffer[..<size]))
                buffer.removeSubrange(..<(size + 2))
            }
        } else if let lengthText = fields["content-length"], let length = Int(lengthText) {
            while buffer.count < length {
                guard let more = try fill() else { return -1 }
                if !more { throw ClientError.protocolError("connection closed inside the body") }
            }
            onBody(Array(buffer[..<length]))
        } else {
            while !eof {
                if !buffer.isEmpty { onBody(buffer); buffer.removeAll() }
                guard try fill() != nil else { return -1 }
            }
            if !buffer.isEmpty { onBody(buffer) }
        }
        return status
    }

    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw ClientError.connect("\(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                lastError = String(cString: strerror(errno))
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        throw ClientError.connect("\(host):\(port): \(lastError)")
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw ClientError.connect("write: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if Array(hay[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
