// HTTP/1.1 request parser (RFC 9112) as a value-type state machine: bytes go in with `append`, and `next()`
// returns what the connection must do. No sockets, no clocks — unit-testable with any split of the input.
//
// NOTE: states of one message
//
//   head ──(CL=0 / no body)──────────────────────────────▶ request
//     │──(Content-Length n)──▶ fixedBody(n) ──────────────▶ request
//     └──(chunked)──▶ chunkSize ─▶ chunkData(k) ─▶ chunkDataEnd ─┐
//                        ▲  └─(size 0)─▶ trailers ─▶ request      │
//                        └─────────────────────────────────────────┘
//   After `request`, parsing of the next (pipelined) message starts from the left-over bytes.
//   Any error is terminal: the connection answers it and closes.
//
// NOTE: strictness (RFC 9112). Every line (request line, fields, chunk-size lines, trailers, the CRLF after chunk
// data) must end in CRLF; a bare LF is a 400 (lenient LF parsing is a request-smuggling vector behind proxies
// that disagree). Empty lines before a request line must be CRLF too. Chunk extensions must match the chunk-ext
// grammar. Any Transfer-Encoding field next to Content-Length, an empty Transfer-Encoding, a missing (HTTP/1.1)
// or repeated Host are 400. Arithmetic on client-sent numbers (Content-Length, chunk sizes, byte counts) is done
// in forms that cannot overflow: `size > limit - used`, never `used + size > limit`.

/// A malformed or over-limit request, with the status to answer and a human-readable reason. A value carried by
/// `HTTPParserAction.error` and answered on the wire, never thrown (the module's thrown errors are `HTTPServerError`).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP status: 400, 408, 413, 414, 417, 431, 501 or 505.
    public let status: Int
    /// Reason shown to the client in the JSON error body.
    public let message: String
    /// Machine-readable code for the JSON error body, e.g. `"request_too_large"`.
    public let code: String

    /// Human-readable summary for logs and error messages.
    public var description: String { "\(status) \(code): \(message)" }

    static func bad(_ m: String) -> HTTPParseError { .init(status: 400, message: m, code: "bad_request") }
}

/// What the connection should do next.
public enum HTTPParserAction: Sendable, Equatable {
    /// Feed more bytes.
    case needMoreData
    /// The head (body empty) of a request that sent `Expect: 100-continue`; the connection either sends
    /// `HTTP/1.1 100 Continue` or a final response decided from the head alone. Returned once per request.
    case expectContinue(HTTPRequest)
    /// A complete request (body de-chunked).
    case request(HTTPRequest)
    /// Unrecoverable protocol error: answer it and close. Every later `next()` returns the same error.
    case error(HTTPParseError)
}

/// Incremental HTTP/1.x request parser.
public struct HTTPParser: Sendable {
    enum State: Sendable, Equatable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    /// Limits in bytes (see `HTTPServerConfiguration`).
    public let maxHeaderBytes: Int
    /// Body cap in bytes (413 beyond it).
    public let maxBodyBytes: Int

    private(set) var state: State = .head
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Offset (from `readIndex`) up to which the head/trailer scan has already looked for its end.
    private var scanned = 0
    private var pendingHead: HTTPRequest?
    private var body: [UInt8] = []
    private var trailerBytes = 0
    private var continueAnnounced = false
    /// Empty lines (CRLF) before the request line were consumed for the current message.
    private var consumedLeadingLines = false

    /// A parser for one connection's input.
    public init(maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 8 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Appends received bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Bytes received but not yet consumed by a returned action (pipelined input, partial messages).
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// True when a message has started (some of its bytes consumed or buffered, leading empty lines included)
    /// but is not complete.
    public var isMidMessage: Bool {
        if case .head = state { return bufferedByteCount > 0 || consumedLeadingLines }
        if case .failed = state { return false }
        return true
    }

    /// True while the head of a message is being read (for the header timeout); leading CRLFs count.
    public var isReadingHead: Bool { state == .head && (bufferedByteCount > 0 || consumedLeadingLines) }

    /// True while a body (or its chunk framing or trailers) is being read.
    public var isReadingBody: Bool {
        switch state {
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailers: return true
        case .head, .failed: return false
        }
    }

    /// After `.error`: the refused message's head (with any body received) when its head had been read, else nil.
    public private(set) var failedRequest: HTTPRequest?

    /// The head of the message whose body is being read (nil otherwise), with the body received so far.
    public var partialRequest: HTTPRequest? {
        guard isReadingBody, let head = pendingHead else { return nil }
        return head.withBody(body)
    }

    /// Bytes of the current message's body received so far (de-chunked).
    public var bodyByteCount: Int { body.count }

    /// Bytes this parser holds for the connection: unconsumed input plus the partial body.
    public var heldByteCount: Int { bufferedByteCount + body.count }

    /// Drops every buffered byte and partial body (the connection is closing; the memory is given back).
    public mutating func discardBuffers() {
        buffer = []
        readIndex = 0
        scanned = 0
        body = []
    }

    /// Advances the state machine as far as the buffered bytes allow.
    public mutating func next() -> HTTPParserAction {
        while true {
            switch state {
            case .failed(let e):
                return .error(e)
            case .head:
                // Tolerate empty lines (CRLF only) before a request line (RFC 9112 §2.2).
                while readIndex < buffer.count, buffer[readIndex] == 0x0D || buffer[readIndex] == 0x0A {
                    guard buffer[readIndex] == 0x0D else { return fail(bareLF()) }
                    guard readIndex + 1 < buffer.count else { return .needMoreData }
                    guard buffer[readIndex + 1] == 0x0A else { return fail(.bad("CR not followed by LF")) }
                    readIndex += 2
                    scanned = 0
                    consumedLeadingLines = true
                }
                // A TLS handshake record (content type 22) cannot start a request line (a method is a token): an
                // https:// client on a plain-HTTP port gets its 400 at once instead of waiting out the header timeout.
                if readIndex < buffer.count && buffer[readIndex] == 0x16 {
                    return fail(.bad("This port speaks plain HTTP and the client sent a TLS handshake: use http://, or serve HTTPS with --ssl-certfile and --ssl-keyfile"))
                }
                guard let end = findBlankLine(limit: maxHeaderBytes) else {
                    if bufferedByteCount > maxHeaderBytes {
                        // No line end within the limit: the request line itself, its target, is too long (RFC 9112 §3).
                        if !buffer[readIndex..<min(buffer.count, readIndex + maxHeaderBytes)].contains(0x0A) {
                            return fail(.init(status: 414, message: "Request target exceeds \(maxHeaderBytes) bytes",
                                              code: "uri_too_long"))
                        }
                        return fail(.init(status: 431, message: "Request header section exceeds \(maxHeaderBytes) bytes",
                                          code: "request_header_fields_too_large"))
                    }
                    return .needMoreData
                }
                if end.after - end.lineStart != 2 { return fail(bareLF()) }   // the blank line itself
                let headBytes = buffer[readIndex..<end.lineStart]
                readIndex = end.after
                scanned = 0
                switch parseHead(headBytes) {
                case .failure(let e): return fail(e)
                case .refused(let head, let e): return fail(e, head: head)
                case .success(let (req, framing)):
                    consumedLeadingLines = false
                    switch framing {
                    case .none:
                        return .request(req)
                    case .length(let n):
                        pendingHead = req
                        body = []
                        // Grow with the bytes that actually arrive: a declared length reserves no memory.
                        body.reserveCapacity(min(n, 64 * 1024))
                        state = .fixedBody(remaining: n)
                    case .chunked:
                        pendingHead = req
                        body = []
                        state = .chunkSize
                    }
                    continueAnnounced = false
                    // RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored (and no 1xx goes to it).
                    if req.headers["Expect"] != nil && req.version != "HTTP/1.0" {
                        continueAnnounced = true
                        return .expectContinue(req)
                    }
                }
            case .fixedBody(let remaining):
                let take = min(remaining, buffer.count - readIndex)
                if take > 0 {
                    body.append(contentsOf: buffer[readIndex..<readIndex + take])
                    readIndex += take
                }
                if remaining - take > 0 {
                    state = .fixedBody(remaining: remaining - take)
                    return .needMoreData
                }
                return finishMessage()
            case .chunkSize:
                guard let lineEnd = findLineEnd(limit: 4096) else {
                    if bufferedByteCount > 4096 { return fail(.bad("Chunk size line too long")) }
                    return .needMoreData
                }
                guard lineEnd.crlf else { return fail(bareLF()) }
                let line = buffer[readIndex..<lineEnd.lineStart]
                readIndex = lineEnd.after
                scanned = 0
                guard let size = parseChunkSize(line) else { return fail(.bad("Invalid chunk size line")) }
                if size == 0 {
                    state = .trailers
                    trailerBytes = 0
                } else {
                    // Overflow-safe: body.count <= maxBodyBytes always holds here.
                    if size > maxBodyBytes - body.count { return fail(tooLarge()) }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let take = min(remaining, buffer.count - readIndex)
                if take > 0 {
                    body.append(contentsOf: buffer[readIndex..<readIndex + take])
                    readIndex += take
                }
                if remaining - take > 0 {
                    state = .chunkData(remaining: remaining - take)
                    return .needMoreData
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard bufferedByteCount >= 1 else { return .needMoreData }
                if buffer[readIndex] == 0x0A { return fail(bareLF()) }
                guard bufferedByteCount >= 2 else { return .needMoreData }
                guard buffer[readIndex] == 0x0D, buffer[readIndex + 1] == 0x0A else {
                    return fail(.bad("Chunk data not followed by CRLF"))
                }
                readIndex += 2
                state = .chunkSize
            case .trailers:
                // Trailer fields are checked for syntax and discarded (RFC 9112 §7.1.2 allows ignoring them).
                // trailerBytes <= maxHeaderBytes holds on entry, so the subtractions below cannot overflow.
                guard let lineEnd = findLineEnd(limit: maxHeaderBytes - trailerBytes) else {
                    if bufferedByteCount > maxHeaderBytes - trailerBytes { return fail(trailersTooLarge()) }
                    return .needMoreData
                }
                guard lineEnd.crlf else { return fail(bareLF()) }
                let line = buffer[readIndex..<lineEnd.lineStart]
                let lineBytes = lineEnd.after - readIndex
                if lineBytes > maxHeaderBytes - trailerBytes { return fail(trailersTooLarge()) }
                trailerBytes += lineBytes
                readIndex = lineEnd.after
                scanned = 0
                if line.isEmpty { return finishMessage() }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                      line[line.startIndex..<colon].allSatisfy(isTokenChar),
                      line[(colon + 1)...].allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
                    return fail(.bad("Malformed chunked trailer field"))
                }
            }
        }
    }

    private mutating func finishMessage() -> HTTPParserAction {
        guard let head = pendingHead else { preconditionFailure("body completed without a head") }
        let req = head.withBody(body)
        pendingHead = nil
        body = []
        state = .head
        consumedLeadingLines = false
        return .request(req)
    }

    private mutating func fail(_ e: HTTPParseError, head: HTTPRequest? = nil) -> HTTPParserAction {
        failedRequest = head ?? pendingHead?.withBody(body)
        state = .failed(e)
        return .error(e)
    }

    private func bareLF() -> HTTPParseError { .bad("Line ending is a bare LF; HTTP/1.1 requires CRLF") }

    private func trailersTooLarge() -> HTTPParseError {
        .init(status: 431, message: "Chunked trailer section exceeds \(maxHeaderBytes) bytes", code: "request_header_fields_too_large")
    }

    private func tooLarge() -> HTTPParseError {
        .init(status: 413, message: "Request body exceeds the limit of \(maxBodyBytes) bytes", code: "request_too_large")
    }

    /// `readIndex + extra`, clamped to the buffer's end (no overflow for any configured limit).
    private func scanStop(_ extra: Int) -> Int {
        extra >= buffer.count - readIndex ? buffer.count : readIndex + extra
    }

    /// Finds the next LF at or after `readIndex + scanned`; returns where the line's content ends (before an
    /// optional CR), the index after the LF, and whether the LF was preceded by CR.
    private mutating func findLineEnd(limit: Int) -> (lineStart: Int, after: Int, crlf: Bool)? {
        var i = readIndex + scanned
        let stop = scanStop(max(limit, 0) > Int.max - 2 ? Int.max : max(limit, 0) + 2)
        while i < stop {
            if buffer[i] == 0x0A {
                let crlf = i > readIndex && buffer[i - 1] == 0x0D
                return (crlf ? i - 1 : i, i + 1, crlf)
            }
            i += 1
        }
        scanned = i - readIndex
        return nil
    }

    /// Finds the empty line ending a head: returns the end of the head's content (just after its last LF) and the
    /// index after the blank line.
    private mutating func findBlankLine(limit: Int) -> (lineStart: Int, after: Int)? {
        var i = readIndex + scanned
        let stop = scanStop(limit > Int.max - 4 ? Int.max : limit + 4)
        while i < stop {
            if buffer[i] == 0x0A {
                // Blank line: LF LF, or LF CR LF.
                if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return (i + 1, i + 2) }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return (i + 1, i + 3) }
                if i + 2 >= buffer.count { break }  // may become a blank line with more input
            }
            i += 1
        }
        scanned = max(0, i - readIndex)
        return nil
    }

    private func parseChunkSize(_ line: ArraySlice<UInt8>) -> Int? {
        var size = 0
        var digits = 0
        var i = line.startIndex
        while i < line.endIndex, let v = hexValue(line[i]) {
            if size > (Int.max >> 4) { return nil }
            size = size << 4 | Int(v)
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        return isValidChunkExtensions(line[i...]) ? size : nil
    }

    enum Framing { case none, length(Int), chunked }

    /// Outcome of parsing a head (`HTTPParseError` is a value, not an `Error`, so no `Result`).
    enum HeadResult {
        case success((HTTPRequest, Framing))
        case failure(HTTPParseError)
        /// The head was read but is refused (e.g. a Content-Length over the limit): the error and that head.
        case refused(HTTPRequest, HTTPParseError)
    }

    private func parseHead(_ bytes: ArraySlice<UInt8>) -> HeadResult {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0x0A {
                guard i > start, bytes[i - 1] == 0x0D else { return .failure(bareLF()) }
                lines.append(bytes[start..<(i - 1)])
                start = i + 1
            }
            i += 1
        }
        if start < bytes.endIndex { lines.append(bytes[start..<bytes.endIndex]) }
        guard let requestLine = lines.first else { return .failure(.bad("Empty request")) }

        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[0].allSatisfy(isTokenChar),
              parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.bad("Malformed request line"))
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version.hasPrefix("HTTP/"), version.count == 8 else { return .failure(.bad("Malformed HTTP version")) }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .failure(.init(status: 505, message: "HTTP version \(version) is not supported",
                                  code: "http_version_not_supported"))
        }

        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let first = line.first else { continue }
            if first == 0x20 || first == 0x09 { return .failure(.bad("Obsolete header line folding is not allowed")) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.bad("Header line without a colon")) }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenChar) else { return .failure(.bad("Invalid header field name")) }
            let rawValue = line[(colon + 1)...]
            guard rawValue.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
                return .failure(.bad("Invalid character in header field value"))
            }
            headers.add(String(decoding: name, as: UTF8.self),
                        String(decoding: rawValue, as: UTF8.self).trimmingHTTPWhitespace())
        }

        let request = HTTPRequest(method: method, target: target, version: version, headers: headers)

        if let expect = headers["Expect"], expect.lowercased() != "100-continue", version != "HTTP/1.0" {
            return .refused(request, .init(status: 417, message: "Unsupported Expect value '\(expect)'", code: "expectation_failed"))
        }
        let hosts = headers.values("Host")
        if hosts.count > 1 { return .refused(request, .bad("Repeated Host header field")) }
        if hosts.isEmpty && version == "HTTP/1.1" { return .refused(request, .bad("Missing Host header field")) }
        let te = headers.tokens("Transfer-Encoding")
        let lengths = headers.values("Content-Length")
        if headers.contains("Transfer-Encoding") {
            if !lengths.isEmpty {
                return .refused(request, .bad("Both Transfer-Encoding and Content-Length are present"))
            }
            if te.isEmpty { return .refused(request, .bad("Empty Transfer-Encoding")) }
            if version == "HTTP/1.0" { return .refused(request, .bad("Transfer-Encoding is not allowed in HTTP/1.0")) }
            guard te.last == "chunked" else {
                return .refused(request, .bad("Transfer-Encoding must end with chunked"))
            }
            guard te == ["chunked"] else {
                return .refused(request, .init(status: 501, message: "Transfer-Encoding \(te.joined(separator: ", ")) is not supported",
                                      code: "not_implemented"))
            }
            return .success((request, .chunked))
        }
        if !lengths.isEmpty {
            let all = lengths.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingHTTPWhitespace() }
            guard let firstValue = all.first, all.allSatisfy({ $0 == firstValue }), !firstValue.isEmpty,
                  firstValue.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return .refused(request, .bad("Invalid Content-Length"))
            }
            guard firstValue.count <= 18, let n = Int(firstValue) else { return .refused(request, tooLarge()) }
            if n > maxBodyBytes { return .refused(request, tooLarge()) }
            return .success((request, n == 0 ? .none : .length(n)))
        }
        return .success((request, .none))
    }
}

/// `tchar` of RFC 9110 §5.6.2.
@inline(__always) func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(c)
    }
}
