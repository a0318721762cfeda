// Validation of chunk extensions (RFC 9112 §7.1.1) for the chunked request-body parser.

extension HTTPParser {
    /// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )` (RFC 9112 §7.1.1), with
    /// `chunk-ext-val = token / quoted-string`. Extensions are validated and ignored.
    func isValidChunkExtensions(_ s: ArraySlice<UInt8>) -> Bool {
        var i = s.startIndex
        func skipBWS() { while i < s.endIndex, s[i] == 0x20 || s[i] == 0x09 { i += 1 } }
        func token() -> Bool {
            let start = i
            while i < s.endIndex, isTokenChar(s[i]) { i += 1 }
            return i > start
        }
        while i < s.endIndex {
            skipBWS()
            guard i < s.endIndex, s[i] == UInt8(ascii: ";") else { return false }
            i += 1
            skipBWS()
            guard token() else { return false }
            let afterName = i
            skipBWS()
            guard i < s.endIndex, s[i] == UInt8(ascii: "=") else {
                i = afterName
                continue
            }
            i += 1
            skipBWS()
            guard i < s.endIndex else { return false }
            if s[i] == 0x22 {
                // quoted-string: qdtext / quoted-pair, closed by DQUOTE.
                i += 1
                var closed = false
                while i < s.endIndex {
                    let c = s[i]
                    if c == 0x22 { closed = true; i += 1; break }
                    if c == 0x5C {
                        i += 1
                        guard i < s.endIndex, s[i] == 0x09 || s[i] >= 0x20 && s[i] != 0x7F else { return false }
                    } else if !(c == 0x09 || c >= 0x20 && c != 0x7F) {
                        return false
                    }
                    i += 1
                }
                guard closed else { return false }
            } else {
                guard token() else { return false }
            }
        }
        return true
    }
}
