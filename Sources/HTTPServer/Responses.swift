// Serialisation of response heads and of the transport's own error responses.

/// Helpers that render HTTP/1.1 response heads and the transport's error responses.
public enum HTTPResponseWriter {
    /// Standard reason phrase for `status` (RFC 9110 §15), `"Unknown"` otherwise.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Unknown"
        }
    }

    /// Bytes of a response head: status line, the given fields in order, then CRLF CRLF.
    /// - Parameter headers: `[(name, value)]`; names and values must not contain CR or LF (precondition).
    public static func head(status: Int, headers: [(String, String)]) -> [UInt8] {
        var s = "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n"
        for (n, v) in headers {
            precondition(!n.contains(where: { $0 == "\r" || $0 == "\n" }) && !v.contains(where: { $0 == "\r" || $0 == "\n" }),
                         "header field contains CR/LF")
            s += "\(n): \(v)\r\n"
        }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// A complete error response (body from `render`, `Content-Length`, optional `Connection: close`).
    static func errorResponse(_ e: HTTPParseError, close: Bool, render: HTTPServerConfiguration, extra: [(String, String)] = [],
                              request: HTTPRequest? = nil) -> [UInt8] {
        let (contentType, body) = render.errorBody(e.status, e.message, e.code, request)
        var h: [(String, String)] = [("Content-Type", contentType), ("Content-Length", String(body.count))]
        h += extra
        h += render.transportErrorHeaders(e.status, e.code, request)
        if close { h.append(("Connection", "close")) }
        return head(status: e.status, headers: h) + body
    }
}
