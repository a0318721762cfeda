/// A piece of input text after special-token partitioning: raw bytes to tokenize, or one special token.
enum Fragment {
    case raw(Range<Int>)
    case token(Int32)
}

extension Tokenizer {
    /// Text to token ids, as llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    ///
    /// - Parameters:
    ///   - addSpecial: prepend BOS / append EOS when the vocabulary asks for it (`addBOS`, `addEOS`).
    ///   - parseSpecial: recognise the text of control tokens (e.g. `<|im_start|>`) as those tokens. When false,
    ///     such text is tokenized as plain text; user-defined tokens are always recognised, as in llama.cpp.
    /// - Returns: token ids, [numTokens].
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 4)
        bytes.withUnsafeBufferPointer { buf in
            let frags = partition(buf, parseSpecial: parseSpecial)
            var scratch = EncodeScratch(reserving: buf.count)
            switch model {
            case .bpe:
                if addSpecial && addBOS, let bos = bosTokenId { out.append(bos) }
                for f in frags {
                    switch f {
                    case .raw(let r): encodeBPE(buf, r, &scratch, &out)
                    case .token(let t): out.append(t)
                    }
                }
            case .spm:
                var prevSpecial = true
                if addSpecial && addBOS, let bos = bosTokenId { out.append(bos) }
                for f in frags {
                    switch f {
                    case .raw(let r):
                        encodeSPM(buf, r, prefixSpace: addSpacePrefix && prevSpecial, &out)
                        prevSpecial = false
                    case .token(let t):
                        out.append(t); prevSpecial = true
                    }
                }
            }
            if addSpecial && addEOS, let eos = eosTokenId { out.append(eos) }
        }
        return out
    }

    /// Splits the text on special-token strings (llama.cpp `tokenizer_st_partition`): for each special token,
    /// longest text first, every occurrence inside the remaining raw fragments becomes that token. Control and
    /// unknown tokens take part only when `parseSpecial`; user-defined tokens always do.
    func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        var frags: [Fragment] = bytes.isEmpty ? [] : [.raw(0..<bytes.count)]
        if bytes.isEmpty { return frags }
        // NOTE: prefilter. Every 3-byte window of the text sets one bit of `seen` (13-bit hash); a special token
        // of ≥ 3 bytes can only occur when the window at its middle has its bit set. Exactness is kept by the
        // search that follows; this only skips tokens that cannot match.
        // Two-byte tokens use a second bitmap of 2-byte windows (bits 8192..<16384).
        var seen = [UInt64](repeating: 0, count: 256)   // [16384 bits]
        for i in 0..<(bytes.count - 1) {
            let h2 = 8192 + Self.window(bytes[i], bytes[i + 1], 0)
            seen[h2 >> 6] |= 1 << UInt64(h2 & 63)
            if i + 2 < bytes.count {
                let h = Self.window(bytes[i], bytes[i + 1], bytes[i + 2])
                seen[h >> 6] |= 1 << UInt64(h & 63)
            }
        }
        var next: [Fragment] = []
        for sid in specialsByLength {
            let attr = attrs[Int(sid)]
            if !parseSpecial && !attr.isDisjoint(with: [.control, .unknown]) { continue }
            let probe = specialProbe[Int(sid)]
            if probe == -2 { continue }                                    // empty text
            if Int(specialLength[Int(sid)]) > bytes.count { continue }
            if probe >= 0 && seen[Int(probe) >> 6] & (1 << UInt64(probe & 63)) == 0 { continue }
            let needle = textBytes[Int(sid)]
            var changed = false
            next.removeAll(keepingCapacity: true)
            for f in frags {
                guard case .raw(let r) = f else { next.append(f); continue }
                var lo = r.lowerBound
                let hi = r.upperBound
                while let m = Self.find(needle, in: bytes, lo, hi) {
                    changed = true
                    var leftEnd = m
                    if attr.contains(.lstrip) { while leftEnd > lo && Self.isCSpace(bytes[leftEnd - 1]) { leftEnd -= 1 } }
                    if leftEnd > lo { next.append(.raw(lo..<leftEnd)) }
                    next.append(.token(sid))
                    lo = m + needle.count
                    if attr.contains(.rstrip) { while lo < hi && Self.isCSpace(bytes[lo]) { lo += 1 } }
                }
                if lo < hi { next.append(.raw(lo..<hi)) }
            }
            if changed { swap(&frags, &next) }
        }
        return frags
    }

    /// 13-bit hash of a 3-byte window (partition prefilter).
    @inline(__always) static func window(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int {
        let x = UInt32(a) &* 0x9E37_79B1 ^ UInt32(b) &* 0x85EB_CA77 ^ UInt32(c) &* 0xC2B2_AE3D
        return Int(x >> 19)
    }

    /// Prefilter probe of each token text: the 3-byte window hash at its middle, 8192 + the 2-byte window hash
    /// for two-byte texts, −1 for one byte (always searched), −2 when empty: [vocabSize].
    static func probes(_ texts: [[UInt8]]) -> [Int16] {
        texts.map { t in
            if t.isEmpty { return -2 }
            if t.count == 1 { return -1 }
            if t.count == 2 { return Int16(8192 + window(t[0], t[1], 0)) }
            let m = (t.count - 3) / 2
            return Int16(window(t[m], t[m + 1], t[m + 2]))
        }
    }

    @inline(__always) static func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// First occurrence of `needle` in `bytes[lo..<hi]`.
    static func find(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> Int? {
        let n = needle.count
        guard hi - lo >= n, let base = bytes.baseAddress else { return nil }
        let first = needle[0]
        var i = lo
        let last = hi - n
        return needle.withUnsafeBufferPointer { nd -> Int? in
            while i <= last {
                guard let p = memchr(base + i, Int32(first), last - i + 1) else { return nil }
                let at = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
                if memcmp(base + at, nd.baseAddress!, n) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
