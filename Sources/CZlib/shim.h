// zlib for the HTTP server's gzip (RFC 1952) bodies. zlib's init calls are macros (they pass the library version
// and the stream size), which Swift cannot import: these inline functions stand for them.
#ifndef SPUTNIK_CZLIB_SHIM_H
#define SPUTNIK_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 for a gzip wrapper (window bits 15 + 16), default memory level, default strategy.
static inline int sputnik_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/// inflateInit2 that accepts a gzip wrapper only (window bits 15 + 16).
static inline int sputnik_inflate_init_gzip(z_streamp strm) {
    return inflateInit2(strm, 15 + 16);
}
#endif
