// gzip bodies (RFC 1952, via zlib): compressed responses for clients that accept them, and request bodies sent
// with `Content-Encoding: gzip`, inflated under the body cap so a decompression bomb costs bounded work.

import CZlib

/// gzip compression of whole responses and bounded inflation of request bodies.
public enum GzipCodec {
    /// Smallest body, in bytes, that `HTTPResponder.send` compresses (smaller ones gain nothing).
    public static let minimumCompressedBytes = 1024

    /// Why a request body could not be decoded.
    enum DecodeError: Error, Equatable {
        /// It inflates past the cap (bytes); inflation stopped there.
        case tooLarge(limit: Int)
        /// Not a valid gzip stream (bad header, bad data, truncated, trailing bytes, bad CRC).
        case corrupt(String)
    }

    /// True when `headers`' `Accept-Encoding` lists `gzip` (or `x-gzip`, or `*`) with a non-zero q-value.
    public static func accepts(_ headers: HTTPHeaders) -> Bool {
        for item in headers.tokens("Accept-Encoding") {
            let parts = item.split(separator: ";").map { $0.trimmingHTTPWhitespace() }
            guard let coding = parts.first, coding == "gzip" || coding == "x-gzip" || coding == "*" else { continue }
            let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if q > 0 { return true }
        }
        return false
    }

    /// The request with its body decoded per `Content-Encoding` (RFC 9110 §8.4): none or `identity` as is,
    /// `gzip` / `x-gzip` inflated under `limit` bytes (the field is then removed). Errors: 413 past the cap,
    /// 400 for a corrupt stream, 415 for any other coding.
    static func decodeBody(of request: HTTPRequest, limit: Int) -> Result<HTTPRequest, HTTPParseError> {
        let codings = request.headers.tokens("Content-Encoding").filter { $0 != "identity" }
        if codings.isEmpty { return .success(request) }
        guard codings == ["gzip"] || codings == ["x-gzip"] else {
            return .failure(HTTPParseError(status: 415, message: "Unsupported Content-Encoding '\(codings.joined(separator: ", "))'; send gzip or identity",
                                           code: "unsupported_content_encoding"))
        }
        do throws(DecodeError) {
            let body = try inflate(request.body, limit: limit)
            var headers = request.headers
            headers.remove("Content-Encoding")
            headers.remove("Content-Length")
            headers.add("Content-Length", String(body.count))
            return .success(HTTPRequest(method: request.method, target: request.target, version: request.version,
                                        headers: headers, body: body, keepAlive: request.keepAlive))
        } catch {
            switch error {
            case .tooLarge(let l):
                return .failure(HTTPParseError(status: 413, message: "Request body inflates past the limit of \(l) bytes",
                                               code: "request_too_large"))
            case .corrupt(let why):
                return .failure(HTTPParseError(status: 400, message: "Request body: \(why)", code: "bad_request"))
            }
        }
    }

    /// `bytes` as one gzip member (compression level 6), or nil if zlib fails (then send the body as is).
    public static func compress(_ bytes: [UInt8]) -> [UInt8]? {
        var stream = z_stream()
        guard sputnik_deflate_init_gzip(&stream, 6) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(bytes.count))) + 32
        var out = [UInt8](repeating: 0, count: bound)
        let rc: Int32 = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress)
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = uInt(dst.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        out.removeSubrange(Int(stream.total_out)...)
        return out
    }

    /// Inflates a gzip request body, stopping as soon as the output would pass `limit` bytes (at most
    /// `limit` + 64 KiB are ever produced), so the work is bounded by the cap, not by the stream.
    /// - Throws: `DecodeError.tooLarge` past the cap, `.corrupt` for anything that is not exactly one or more
    ///   complete gzip members.
    static func inflate(_ bytes: [UInt8], limit: Int) throws(DecodeError) -> [UInt8] {
        var stream = z_stream()
        guard sputnik_inflate_init_gzip(&stream) == Z_OK else { throw .corrupt("zlib could not start") }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var consumed = 0
        while true {
            var rc: Int32 = Z_OK
            var produced = 0
            bytes.withUnsafeBufferPointer { src in
                chunk.withUnsafeMutableBufferPointer { dst in
                    stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress.map { $0 + consumed })
                    stream.avail_in = uInt(src.count - consumed)
                    stream.next_out = dst.baseAddress
                    stream.avail_out = uInt(dst.count)
                    rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = dst.count - Int(stream.avail_out)
                    consumed = src.count - Int(stream.avail_in)
                }
            }
            if produced > limit - out.count { throw .tooLarge(limit: limit) }
            out.append(contentsOf: chunk[0..<produced])
            switch rc {
            case Z_STREAM_END:
                if consumed == bytes.count { return out }
                // Concatenated members (RFC 1952 §2.2) are one body.
                guard inflateReset(&stream) == Z_OK else { throw .corrupt("zlib could not restart") }
            case Z_OK:
                if produced == 0 && consumed == bytes.count { throw .corrupt("the gzip stream is truncated") }
            case Z_BUF_ERROR:
                if consumed == bytes.count { throw .corrupt("the gzip stream is truncated") }
            default:
                let why = stream.msg.map { String(cString: $0) } ?? "code \(rc)"
                throw .corrupt("invalid gzip data (\(why))")
            }
        }
    }
}
