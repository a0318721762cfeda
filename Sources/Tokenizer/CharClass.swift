/// Per-codepoint character classes used by the pre-tokenizers, and the GPT-2 byte ↔ unicode mapping.
///
/// The classes follow llama.cpp's `unicode.cpp` (`unicode_cpt_flags`, built from the Unicode general category
/// and the White_Space property) with one twist that llama.cpp's std::regex path has: for ASCII, `\p{P}` and
/// `\p{S}` are the fixed sets of `k_ucat_map` (so `~` is neither), because there the regex is run over a
/// "collapsed" text in which ASCII characters are matched by those literal ranges.
enum CharClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let punct: UInt8 = 4
    static let symbol: UInt8 = 8
    static let mark: UInt8 = 16
    /// Unicode White_Space (ASCII: `\t \n \v \f \r` and space).
    static let space: UInt8 = 32

    /// Flags of the Basic Multilingual Plane, computed once: [65536].
    static let bmp: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 0x10000)
        for cp in 0..<0x10000 { t[cp] = compute(UInt32(cp)) }
        return t
    }()

    /// The class flags of one codepoint.
    @inline(__always)
    static func flags(_ cp: UInt32) -> UInt8 {
        cp < 0x10000 ? bmp[Int(cp)] : compute(cp)
    }

    static func compute(_ cp: UInt32) -> UInt8 {
        if cp < 0x80 { return ascii(cp) }
        guard let s = Unicode.Scalar(cp) else { return 0 }
        var f: UInt8 = 0
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: f = letter
        case .decimalNumber, .letterNumber, .otherNumber: f = number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: f = punct
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: f = symbol
        case .nonspacingMark, .spacingMark, .enclosingMark: f = mark
        default: f = 0
        }
        if s.properties.isWhitespace { f |= space }
        return f
    }

    static func ascii(_ cp: UInt32) -> UInt8 {
        switch cp {
        case 0x41...0x5A, 0x61...0x7A: return letter
        case 0x30...0x39: return number
        case 0x09...0x0D, 0x20: return space
        // k_ucat_map PUNCTUATION: !-# %-* ,-/ :-; ?-@ [-] _ { }
        case 0x21...0x23, 0x25...0x2A, 0x2C...0x2F, 0x3A...0x3B, 0x3F...0x40, 0x5B...0x5D, 0x5F, 0x7B, 0x7D:
            return punct
        // k_ucat_map SYMBOL: $ + <-> ^ ` |
        case 0x24, 0x2B, 0x3C...0x3E, 0x5E, 0x60, 0x7C: return symbol
        default: return 0
        }
    }
}

/// GPT-2's reversible byte → printable-codepoint mapping (`bytes_to_unicode` of OpenAI's encoder.py; llama.cpp
/// `unicode_byte_to_utf8_map`): printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards.
enum ByteLevel {
    /// Codepoint for each byte: [256].
    static let byteToScalar: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var direct = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E { direct[b] = true }
        for b in 0xA1...0xAC { direct[b] = true }
        for b in 0xAE...0xFF { direct[b] = true }
        var n: UInt32 = 0
        for b in 0..<256 {
            if direct[b] { map[b] = UInt32(b) } else { map[b] = 256 + n; n += 1 }
        }
        return map
    }()

    /// Byte for each mapped codepoint below 0x144 (−1 where a codepoint is not produced by the mapping): [0x144].
    static let scalarToByte: [Int16] = {
        var inv = [Int16](repeating: -1, count: 0x144)
        for b in 0..<256 { inv[Int(byteToScalar[b])] = Int16(b) }
        return inv
    }()

    /// The byte a mapped codepoint stands for, or nil.
    @inline(__always)
    static func byte(for cp: UInt32) -> UInt8? {
        guard cp < 0x144 else { return nil }
        let v = scalarToByte[Int(cp)]
        return v < 0 ? nil : UInt8(v)
    }
}

/// Minimal UTF-8 helpers over byte arrays (inputs from Swift strings are valid UTF-8).
enum UTF8Util {
    /// Decodes valid UTF-8 `bytes[range]` into codepoints and the byte offset where each starts.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                       cps: inout [UInt32], offsets: inout [Int32]) {
        cps.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = UInt32(bytes[i])
            offsets.append(Int32(i))
            if b0 < 0x80 { cps.append(b0); i += 1 }
            else if b0 < 0xE0, i + 1 < end {
                cps.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)); i += 2
            } else if b0 < 0xF0, i + 2 < end {
                cps.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)); i += 3
            } else if i + 3 < end {
                cps.append((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                           | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F)); i += 4
            } else { cps.append(0xFFFD); i += 1 }
        }
        offsets.append(Int32(end))
    }

    /// Length of the valid UTF-8 sequence starting at `i`, 0 when the bytes there can never form a valid
    /// sequence, or −1 when they are a valid but incomplete prefix (more bytes could complete it).
    static func sequenceLength(_ b: [UInt8], at i: Int) -> Int {
        let b0 = b[i]
        let need: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: need = 2
        case 0xE0: need = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 3
        case 0xED: need = 3; hi = 0x9F
        case 0xF0: need = 4; lo = 0x90
        case 0xF1...0xF3: need = 4
        case 0xF4: need = 4; hi = 0x8F
        default: return 0
        }
        for k in 1..<need {
            if i + k >= b.count { return -1 }
            let c = b[i + k]
            let l: UInt8 = k == 1 ? lo : 0x80, h: UInt8 = k == 1 ? hi : 0xBF
            if c < l || c > h { return 0 }
        }
        return need
    }
}

/// Token text compared byte for byte (a hashable key that, unlike `String`, does not fold canonically
/// equivalent texts together).
struct ByteString: Hashable, Sendable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ s: String) { self.bytes = Array(s.utf8) }
    func hash(into h: inout Hasher) { bytes.withUnsafeBytes { h.combine(bytes: $0) } }
}
