// TLS (OpenSSL's libssl) under the HTTP/1.1 connection: one server context loaded from PEM files, and one session
// per accepted socket. The session reads and writes the non-blocking socket itself (`SSL_set_fd`); OpenSSL's
// "want read / want write" answers tell the connection which Dispatch source to wait on.

import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server TLS context: certificate chain and private key from PEM files, TLS 1.2 or later only, no
/// renegotiation, no compression. Shared by every connection of one `HTTPServer` (OpenSSL contexts are
/// thread-safe once configured).
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    /// Loads `certificateFile` (PEM, leaf first, then intermediates) and `keyFile` (PEM private key).
    /// - Throws: `HTTPServerError.tls` naming the file and OpenSSL's reason (unreadable, not PEM, key does not
    ///   match the certificate).
    public init(certificateFile: String, keyFile: String) throws {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw HTTPServerError.tls("cannot create a TLS context: \(TLSContext.lastError())") }
        self.ctx = ctx
        guard sputnik_ssl_ctx_min_tls12(ctx) == 1 else { throw HTTPServerError.tls("cannot require TLS 1.2: \(TLSContext.lastError())") }
        sputnik_ssl_ctx_modes(ctx)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
            throw HTTPServerError.tls("certificate file \(certificateFile): \(TLSContext.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw HTTPServerError.tls("key file \(keyFile): \(TLSContext.lastError())")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw HTTPServerError.tls("key file \(keyFile) does not match certificate \(certificateFile): \(TLSContext.lastError())")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// OpenSSL's queued error reasons for this thread, joined (and the queue cleared).
    static func lastError() -> String {
        var reasons: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            reasons.append(buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return reasons.isEmpty ? "unknown error" : reasons.joined(separator: "; ")
    }
}

/// One TLS session on an accepted non-blocking socket. Confined to its connection's queue.
final class TLSSession {
    /// What a TLS call needs before it can make progress.
    enum Outcome: Equatable {
        /// Done: the handshake completed, or `n` plaintext bytes were read / taken for writing.
        case done(Int)
        /// Call again when the socket is readable.
        case wantRead
        /// Call again when the socket is writable.
        case wantWrite
        /// The peer sent close_notify or closed the socket (a read returns this at end of input).
        case closed
        /// A protocol or socket error (e.g. plain HTTP sent to the TLS port); close the connection.
        case failed(String)
    }

    private let ssl: OpaquePointer
    /// True once the handshake has completed.
    private(set) var established = false

    init?(context: TLSContext, fd: Int32) {
        guard let ssl = SSL_new(context.ctx) else { return nil }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    /// Advances the server handshake.
    func handshake() -> Outcome {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            established = true
            return .done(0)
        }
        return outcome(rc)
    }

    /// Reads decrypted bytes into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        ERR_clear_error()
        let rc = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        return rc > 0 ? .done(Int(rc)) : outcome(rc)
    }

    /// Encrypts and sends bytes; `.done(n)` says how many plaintext bytes were taken (partial writes are on).
    func write(_ buffer: UnsafeRawBufferPointer) -> Outcome {
        guard buffer.count > 0 else { return .done(0) }
        ERR_clear_error()
        let rc = SSL_write(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        return rc > 0 ? .done(Int(rc)) : outcome(rc)
    }

    /// Ciphertext bytes written to the socket so far.
    var bytesWrittenToSocket: UInt64 { SSL_get_wbio(ssl).map { UInt64(BIO_number_written($0)) } ?? 0 }

    /// Decrypted bytes already buffered inside OpenSSL (no socket event will announce them).
    var pendingBytes: Int { Int(SSL_pending(ssl)) }

    /// Sends close_notify (best effort: a non-blocking socket that cannot take it now is closed anyway).
    func shutdown() {
        if established { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
    }

    private func outcome(_ rc: Int32) -> Outcome {
        let err = SSL_get_error(ssl, rc)
        switch err {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let e = errno
            let queued = TLSContext.lastError()
            // An EOF without close_notify (clients often just close) ends the input like a plain socket's EOF.
            if e == 0 && queued == "unknown error" { return .closed }
            if e == EAGAIN || e == EWOULDBLOCK { return .wantRead }
            return .failed("TLS socket error: errno \(e) \(queued)")
        default:
            return .failed("TLS error \(err): \(TLSContext.lastError())")
        }
    }
}
