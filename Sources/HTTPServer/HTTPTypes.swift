// HTTP/1.1 value types shared by the parser, the connection and the application: headers, requests,
// the server configuration and the module's error enum.

/// An ordered list of HTTP header fields (RFC 9110 §5). Names keep their original spelling; lookups are
/// case-insensitive (RFC 9110 §5.1). Repeated fields are kept as separate entries in arrival order.
public struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral {
    /// The fields, in arrival order: `[(name, value)]`.
    public private(set) var fields: [(name: String, value: String)] = []

    /// An empty header list.
    public init() {}

    /// Headers from `(name, value)` pairs, kept in the given order.
    public init(_ pairs: [(String, String)]) {
        for (n, v) in pairs { add(n, v) }
    }

    /// Headers from a literal `["Name": "value", …]`, in literal order.
    public init(dictionaryLiteral elements: (String, String)...) {
        for (n, v) in elements { add(n, v) }
    }

    /// The first value of the field `name` (case-insensitive), or nil when absent.
    public subscript(name: String) -> String? {
        let key = name.lowercased()
        for f in fields where f.name.lowercased() == key { return f.value }
        return nil
    }

    /// Every value of the field `name` (case-insensitive), in arrival order; `[]` when absent.
    public func values(_ name: String) -> [String] {
        let key = name.lowercased()
        return fields.filter { $0.name.lowercased() == key }.map(\.value)
    }

    /// Comma-separated list elements of every `name` field, trimmed and lowercased
    /// (for list-valued fields such as `Connection` and `Transfer-Encoding`, RFC 9110 §5.6.1).
    public func tokens(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }
            .map { $0.trimmingHTTPWhitespace().lowercased() }
            .filter { !$0.isEmpty }
    }

    /// True when a field `name` is present (case-insensitive).
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Appends a field; an existing field with the same name is kept.
    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// Removes every field called `name` (case-insensitive).
    public mutating func remove(_ name: String) {
        let key = name.lowercased()
        fields.removeAll { $0.name.lowercased() == key }
    }

    /// Number of fields (a repeated name counts once per occurrence).
    public var count: Int { fields.count }

    /// Iterates `(name, value)` fields in arrival order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    /// Structural equality (member order matters).
    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// One complete HTTP request as handed to the application: head plus the whole (de-chunked) body.
public struct HTTPRequest: Sendable, Equatable {
    /// Method token as sent, e.g. `"POST"` (case-sensitive, RFC 9110 §9.1).
    public let method: String
    /// The raw request-target, e.g. `"/v1/models?x=1"`.
    public let target: String
    /// The raw (not percent-decoded) path of the target without the query, e.g. `"/v1/models"`; `"*"` for
    /// asterisk-form. Route on this: `/v1/%74okenize` is not `/v1/tokenize`. Decode captured parts yourself
    /// (`HTTPRequest.percentDecode`) where a route expects encoded data, as `HTTPRouter` does for parameters.
    public let path: String
    /// Percent-decoded query parameters (`+` is a space); the last occurrence of a name wins.
    public let query: [String: String]
    /// `"HTTP/1.1"` or `"HTTP/1.0"`.
    public let version: String
    /// Header fields in arrival order (chunked trailers are not merged in).
    public let headers: HTTPHeaders
    /// The request body, de-chunked; `[]` when there is none. Bytes.
    public let body: [UInt8]
    /// Whether the connection may be reused after this request (HTTP/1.1: unless `Connection: close`;
    /// HTTP/1.0: only with `Connection: keep-alive`; RFC 9112 §9.3).
    public let keepAlive: Bool

    /// A request value; `path` and `query` are derived from `target`.
    public init(method: String, target: String, version: String = "HTTP/1.1", headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], keepAlive: Bool? = nil) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        let (p, q) = HTTPRequest.splitTarget(target)
        self.path = p
        self.query = q
        if let keepAlive {
            self.keepAlive = keepAlive
        } else {
            let conn = headers.tokens("Connection")
            if version == "HTTP/1.0" { self.keepAlive = conn.contains("keep-alive") && !conn.contains("close") }
            else { self.keepAlive = !conn.contains("close") }
        }
    }

    /// The same head with another body (used when the body arrives after the head).
    func withBody(_ body: [UInt8]) -> HTTPRequest {
        HTTPRequest(method: method, target: target, version: version, headers: headers, body: body, keepAlive: keepAlive)
    }

    /// Splits a request-target into its raw path and decoded query dictionary. Absolute-form targets
    /// (`http://host/path`) keep only their path.
    static func splitTarget(_ target: String) -> (String, [String: String]) {
        var t = Substring(target)
        if !t.hasPrefix("/"), let colon = t.firstIndex(of: ":"), t[colon...].hasPrefix("://") {
            let rest = t[t.index(colon, offsetBy: 3)...]
            t = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let hash = t.firstIndex(of: "#") { t = t[..<hash] }
        let pathPart: Substring
        var query: [String: String] = [:]
        if let q = t.firstIndex(of: "?") {
            pathPart = t[..<q]
            for item in t[t.index(after: q)...].split(separator: "&") where !item.isEmpty {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let k = percentDecode(kv[0], plusIsSpace: true)
                query[k] = kv.count > 1 ? percentDecode(kv[1], plusIsSpace: true) : ""
            }
        } else {
            pathPart = t
        }
        return (String(pathPart), query)
    }

    /// Decodes `%XX` escapes (invalid escapes are kept literally; invalid UTF-8 is repaired with U+FFFD).
    /// `plusIsSpace`: `+` means a space (form/query encoding).
    public static func percentDecode(_ s: Substring, plusIsSpace: Bool) -> String {
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%"), i + 2 < bytes.count, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) {
                out.append(h << 4 | l); i += 3
            } else {
                out.append(plusIsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

@inline(__always) func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

extension StringProtocol {
    /// The string without leading/trailing spaces and horizontal tabs (HTTP "OWS", RFC 9110 §5.6.3).
    func trimmingHTTPWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// Listener settings. Sizes are bytes, times are seconds.
public struct HTTPServerConfiguration: Sendable {
    /// Address to bind (IPv4 dotted quad or IPv6 literal, or `"localhost"`).
    public var host = "127.0.0.1"
    /// TCP port; 0 picks an ephemeral port (returned by `HTTPServer.start()`).
    public var port = 8080
    /// Cap on request line + header fields (and on chunked trailers); beyond it → 431.
    public var maxHeaderBytes = 16 * 1024
    /// Cap on a request body (declared or de-chunked); beyond it → 413.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Seconds a connection may stay open with nothing to read and nothing to write (idle keep-alive), counted
    /// from the last byte received or written. Also the write-stall timeout: a client that takes none of the
    /// pending response bytes for this long is disconnected (a slow but progressing reader is never cut).
    public var idleTimeout: Double = 60
    /// Seconds allowed from the first byte of a request (leading empty lines included) to the end of its head
    /// (slowloris guard); → 408 + close. Bytes trickling in do not extend it.
    public var headerTimeout: Double = 10
    /// Seconds allowed for a request body, on top of `headerTimeout`, counted from the request's first byte;
    /// → 408 + close. A body must be complete by
    /// `firstByte + headerTimeout + max(bodyTimeout, bodyBytesReceived / minBodyBytesPerSecond)`, so a large
    /// body that keeps arriving at `minBodyBytesPerSecond` gets the time it needs, and any body is bounded by
    /// `headerTimeout + max(bodyTimeout, maxBodyBytes / minBodyBytesPerSecond)` seconds.
    public var bodyTimeout: Double = 60
    /// Upload rate (bytes per second) that earns a large body time beyond `bodyTimeout` (see there).
    public var minBodyBytesPerSecond = 64 * 1024
    /// Bytes of input a connection may buffer while one of its requests is being answered (pipelining);
    /// beyond it the connection stops reading until the response completes.
    public var maxPipelinedBytes = 1024 * 1024
    /// Server-wide budget, in bytes, for buffered request input (unparsed bytes and partial bodies) plus unsent
    /// response output over all connections. While it is spent, new connections are answered
    /// 503 + `Retry-After` and closed, a connection that wants to read more input is answered 503 and closed
    /// (or, with a request in flight, stops reading until that response completes), so no new work is taken
    /// in. Soft: one read (≤ 16 KiB) per connection, and responses of requests already taken in, may go over
    /// it; a response's unsent bytes are bounded per connection by `maxBufferedWriteBytes`.
    public var maxBufferedBytesTotal = 512 * 1024 * 1024
    /// Open connections served at once; further clients get 503 + `Retry-After` and are closed (but see
    /// `lightOnlyConnections`).
    public var maxConnections = 1024
    /// Connections past `maxConnections` that are still read, up to this many at once, and may make one light
    /// request (`isLightRequest`: a health probe, a metrics scrape), answered with `Connection: close`; any other
    /// request on them gets the connection limit's 503, and one that sends nothing (or not its whole head) for 2 s
    /// is closed. So a liveness probe still answers while idle clients hold every slot. 0: every connection past
    /// the limit is refused unread.
    public var lightOnlyConnections = 16
    /// Bytes a response may have queued but unsent before `HTTPResponder.isBackpressured` turns true.
    public var writeHighWaterBytes = 1024 * 1024
    /// Bytes of unsent response beyond which the client is deemed stuck and the connection is closed. Also the
    /// largest whole response `HTTPResponder.send`/`trySend` accept (`HTTPResponder.maxResponseBytes`).
    public var maxBufferedWriteBytes = 32 * 1024 * 1024
    /// Seconds a closing connection keeps draining input so the client can read the final response.
    public var lingerTimeout: Double = 2
    /// Value of `Retry-After` (seconds) in the 503 sent when `maxConnections` or `maxBufferedBytesTotal` is reached.
    public var retryAfterSeconds = 1
    /// TLS: when set, every connection is HTTPS (a client that does not complete a TLS handshake within
    /// `headerTimeout` seconds, or speaks plain HTTP, is closed). nil: plain HTTP.
    public var tls: TLSContext?
    /// Renders the errors the transport answers by itself (malformed requests, limits, timeouts, overload, an
    /// oversized response): `(status, message, code, request)` → `(Content-Type, body)`; `request` is the head when
    /// it was read (so an API with several error shapes can pick one by path), else nil. The default is plain text;
    /// the application sets its API's error shape here (this module knows nothing of it).
    public var errorBody: @Sendable (_ status: Int, _ message: String, _ code: String, _ request: HTTPRequest?)
        -> (contentType: String, body: [UInt8]) = { _, message, _, _ in ("text/plain; charset=utf-8", Array("\(message)\n".utf8)) }
    /// Extra header fields for each error response the transport sends by itself before any routing (malformed
    /// requests, limits, timeouts, the 503 at the connection limit or buffer budget), given `(status, code)`. Called
    /// once per such response, on the connection's queue, so the application can log it too; `request` is the
    /// request (its head; the body as received) when its head was read (an error in the body, a body over the limit,
    /// a head refused for its framing or Host), else nil.
    /// The default adds none; Sputnik's server adds an `X-Request-Id` and writes the access-log line.
    public var transportErrorHeaders: @Sendable (_ status: Int, _ code: String, _ request: HTTPRequest?) -> [(String, String)] = { _, _, _ in [] }
    /// Called once, on the connection's queue, when the client closes its side or the socket fails in the middle
    /// of a request that was never delivered (its head or body incomplete): no response is possible, so this is
    /// the application's one chance to log it. `request` is the head (and the body received so far) once the head
    /// was parsed, else nil; `bodyBytes` counts the body bytes received. The default does nothing.
    public var abandonedRequest: @Sendable (_ request: HTTPRequest?, _ bodyBytes: Int) -> Void = { _, _ in }
    /// Whether a request is cheap to answer (a health probe, a metrics scrape, a listing). Those are handled on one
    /// serial queue of their own, which gets a thread even when every worker of the global pool is busy; the others
    /// run on the global concurrent queue (as wide as the machine has CPUs), where a few slow handlers (a large
    /// prompt to parse, render and tokenize) would otherwise hold a probe until they finish. The default: none.
    public var isLightRequest: @Sendable (_ request: HTTPRequest) -> Bool = { _ in false }

    /// Defaults as documented on each property.
    public init() {}
}

/// Errors of the HTTPServer module.
public enum HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `host` is not a numeric address this server can bind.
    case invalidAddress(String)
    /// A socket call failed: the call's name and `errno`.
    case socket(call: String, errno: Int32)
    /// `start()` was called twice.
    case alreadyStarted
    /// The TLS context could not be set up (the message names the file and OpenSSL's reason).
    case tls(String)

    /// Human-readable summary for logs and error messages.
    public var description: String {
        switch self {
        case .invalidAddress(let h): return "cannot bind to address '\(h)': not a numeric IPv4/IPv6 address"
        case .socket(let call, let e): return "\(call) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .alreadyStarted: return "the server is already started"
        case .tls(let m): return m
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
