// OpenSSL (libssl) for the HTTP server's TLS. A few OpenSSL calls are macros over SSL_CTX_ctrl / SSL_ctrl, which
// Swift cannot import: these inline functions stand for them.
#ifndef SPUTNIK_COPENSSL_SHIM_H
#define SPUTNIK_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>

/// Refuse protocol versions below TLS 1.2. Returns 1 on success.
static inline int sputnik_ssl_ctx_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

/// Partial writes (SSL_write returns what it took) and a write buffer that may move between retries (Swift
/// arrays do); no session renegotiation.
static inline void sputnik_ssl_ctx_modes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
#endif
