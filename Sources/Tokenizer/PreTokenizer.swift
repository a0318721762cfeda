/// Pre-tokenizers of byte-level BPE vocabularies: the regex cascades of llama.cpp's `llm_tokenizer_bpe`
/// (src/llama-vocab.cpp), selected by `tokenizer.ggml.pre`, written as hand matchers over codepoints.
///
/// NOTE: each stage splits every chunk of the previous stage into its matches and the unmatched gaps between them
/// (`unicode_regex_split` of llama.cpp's unicode.cpp). A matcher returns the end of the match that starts at
/// `p` inside the chunk `[a, b)`, or −1. Alternations are tried in order with ECMAScript backtracking, which is
/// what `std::regex` does; the two regexes llama.cpp runs through its custom code (GPT-2 and Llama-3) follow
/// that code (`unicode_regex_split_custom_gpt2/llama3`), where an unmatched character is a chunk of its own.
///
/// ```
/// "Hello  world\n" ──gpt2──▶ ["Hello", " ", " world", "\n"]
/// ```
enum PreTokenizerStage: Sendable {
    case gpt2            // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    case llama3          // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case qwen2           // the same with \p{N} (one digit), run by std::regex
    case digit           // \p{N}
    case digits          // \p{N}+
    case digits3         // \p{N}{1,3}
    case newline         // [\r\n]
    case spaceLetters    // \s?\p{L}+
    case spacePunct      // \s?\p{P}+
    case spaceRangeRun(CodepointSet)   // \s?[set]+
    case trailingSpace   // \s+$
    case rangeRun(CodepointSet)        // [set]+
    case deepseekV3      // [ascii punct][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case punctSymbolRun  // [\p{P}\$\+<=>\^~\|]+  (llama.cpp "default" BPE pre-tokenizer)
    case asciiDigits3    // [0-9][0-9][0-9]

    /// Whether unmatched characters become single-character chunks (llama.cpp's custom splitters) instead of
    /// being merged into one gap chunk (std::regex splitting).
    var singleCharGaps: Bool {
        switch self { case .gpt2, .llama3: return true; default: return false }
    }

    /// The character class of a range stage.
    var set: CodepointSet {
        switch self { case .spaceRangeRun(let s), .rangeRun(let s): return s; default: return .empty }
    }
}

/// A set of codepoint ranges written like a regex character class body, e.g. `"A-Za-zµÀ-Ö"`; sorted and merged
/// for binary search.
struct CodepointSet: Sendable {
    /// Range bounds, sorted, non-overlapping: [numRanges] each.
    let lo: [UInt32]
    let hi: [UInt32]

    static let empty = CodepointSet("")

    init(_ spec: String) {
        let s = Array(spec.unicodeScalars).map { $0.value }
        var r: [(UInt32, UInt32)] = []
        var i = 0
        while i < s.count {
            if i + 2 < s.count && s[i + 1] == 0x2D /* - */ {
                precondition(s[i] <= s[i + 2], "reversed range in character class")
                r.append((s[i], s[i + 2])); i += 3
            } else { r.append((s[i], s[i])); i += 1 }
        }
        r.sort { $0.0 < $1.0 }
        var lo: [UInt32] = [], hi: [UInt32] = []
        for (a, b) in r {
            if let last = hi.last, a <= last &+ 1 { hi[hi.count - 1] = max(last, b) } else { lo.append(a); hi.append(b) }
        }
        self.lo = lo; self.hi = hi
    }

    @inline(__always)
    func contains(_ cp: UInt32) -> Bool {
        var l = 0, h = lo.count
        while l < h {
            let m = (l + h) >> 1
            if cp < lo[m] { h = m } else if cp > hi[m] { l = m + 1 } else { return true }
        }
        return false
    }
}

/// The stage list for each pre-tokenizer type of llama.cpp that Sputnik implements.
enum PreTokenizerKind: String, Sendable {
    case gpt2, smollm, llama3, qwen2, deepseekLLM, deepseekCoder, deepseekV3, bpeDefault

    var stages: [PreTokenizerStage] {
        switch self {
        case .gpt2: return [.gpt2]
        case .smollm: return [.digit, .gpt2]
        case .llama3: return [.llama3]
        case .qwen2: return [.qwen2]
        case .deepseekLLM:
            return [.newline,
                    .spaceRangeRun(CodepointSet(
                        "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃")),
                    .spaceRangeRun(CodepointSet("!-/:-~！-／：-～‘-‟　-。")),
                    .trailingSpace,
                    .rangeRun(CodepointSet("一-龥ࠀ-一가-퟿")),
                    .digits]
        case .deepseekCoder:
            return [.newline, .spaceLetters, .spacePunct, .rangeRun(CodepointSet("一-龥ࠀ-一가-퟿")), .digit]
        case .deepseekV3:
            return [.digits3, .rangeRun(CodepointSet("一-龥぀-ゟ゠-ヿ")), .deepseekV3]
        case .bpeDefault:
            return [.punctSymbolRun, .gpt2, .digits, .asciiDigits3]
        }
    }
}

/// Splits codepoint sequences into pre-tokens. Scratch buffers are owned by the caller (one per encode call).
struct PreTokenizer: Sendable {
    let stages: [PreTokenizerStage]

    /// Splits `cps` (one raw-text fragment) into chunk end offsets (exclusive, in codepoints) written to `out`.
    /// `flags` holds `CharClass.flags` of each codepoint. `tmp` is scratch.
    func split(_ cps: UnsafeBufferPointer<UInt32>, _ flags: UnsafeBufferPointer<UInt8>,
               out: inout [Int32], tmp: inout [Int32]) {
        out.removeAll(keepingCapacity: true)
        out.append(Int32(cps.count))
        for stage in stages {
            let set = stage.set
            swap(&out, &tmp)
            out.removeAll(keepingCapacity: true)
            var a = 0
            let m = Matcher(cp: cps, fl: flags)
            for endI in tmp {
                let b = Int(endI)
                var p = a, gap = a
                while p < b {
                    let e = m.match(stage, set, p, a, b)
                    if e > p {
                        if gap < p { out.append(Int32(p)) }
                        out.append(Int32(e)); p = e; gap = e
                    } else if stage.singleCharGaps {
                        p += 1; out.append(Int32(p)); gap = p
                    } else { p += 1 }
                }
                if gap < b { out.append(Int32(b)) }
                a = b
            }
        }
    }
}

/// The matchers of each stage over one fragment.
struct Matcher {
    let cp: UnsafeBufferPointer<UInt32>
    let fl: UnsafeBufferPointer<UInt8>

    @inline(__always) func has(_ i: Int, _ b: Int, _ f: UInt8) -> Bool { i < b && fl[i] & f != 0 }
    @inline(__always) func isOther(_ i: Int, _ b: Int) -> Bool {   // [^\s\p{L}\p{N}]
        i < b && fl[i] & (CharClass.space | CharClass.letter | CharClass.number) == 0
    }
    @inline(__always) func isCR(_ i: Int, _ b: Int) -> Bool { i < b && (cp[i] == 0x0A || cp[i] == 0x0D) }
    @inline(__always) func run(_ i: Int, _ b: Int, _ f: UInt8) -> Int {
        var j = i
        while j < b && fl[j] & f != 0 { j += 1 }
        return j
    }
    @inline(__always) func lower(_ c: UInt32) -> UInt32 { (c >= 0x41 && c <= 0x5A) ? c + 32 : c }

    /// 's 't 're 've 'm 'll 'd, optionally ASCII-case-insensitive.
    func contraction(_ p: Int, _ b: Int, caseless: Bool) -> Int {
        guard cp[p] == 0x27, p + 1 < b else { return -1 }
        let n1 = caseless ? lower(cp[p + 1]) : cp[p + 1]
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return p + 2 }   // s t m d
        guard p + 2 < b else { return -1 }
        let n2 = caseless ? lower(cp[p + 2]) : cp[p + 2]
        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) { return p + 3 }
        return -1
    }

    /// Whitespace alternatives `\s*[\r\n]+|\s+(?!\S)|\s+` (or without the first when `newlines` is false).
    func spaces(_ p: Int, _ b: Int, newlines: Bool) -> Int {
        var n = p, lastNL = -1
        while n < b && fl[n] & CharClass.space != 0 {
            if cp[n] == 0x0A || cp[n] == 0x0D { lastNL = n + 1 }
            n += 1
        }
        if n == p { return -1 }
        if newlines && lastNL > 0 { return lastNL }
        if n - p > 1 && n < b { return n - 1 }
        return n
    }

    func match(_ stage: PreTokenizerStage, _ set: CodepointSet, _ p: Int, _ a: Int, _ b: Int) -> Int {
        let L = CharClass.letter, N = CharClass.number, P = CharClass.punct, S = CharClass.symbol
        let M = CharClass.mark, W = CharClass.space
        switch stage {
        case .gpt2:
            let c = contraction(p, b, caseless: false); if c > 0 { return c }
            let q = cp[p] == 0x20 ? p + 1 : p
            if has(q, b, L) { return run(q, b, L) }
            if has(q, b, N) { return run(q, b, N) }
            if isOther(q, b) { var j = q; while isOther(j, b) { j += 1 }; return j }
            return spaces(p, b, newlines: false)
        case .llama3, .qwen2:
            let c = contraction(p, b, caseless: true); if c > 0 { return c }
            let f = fl[p]
            if !isCR(p, b) && f & N == 0 {
                if f & L != 0 { return run(p, b, L) }
                if has(p + 1, b, L) { return run(p + 1, b, L) }
            }
            if f & N != 0 {
                if case .qwen2 = stage { return p + 1 }
                var j = p + 1; while j < b && j < p + 3 && fl[j] & N != 0 { j += 1 }; return j
            }
            let q = cp[p] == 0x20 ? p + 1 : p
            if isOther(q, b) {
                var j = q; while isOther(j, b) { j += 1 }
                while isCR(j, b) { j += 1 }
                return j
            }
            return spaces(p, b, newlines: true)
        case .digit: return fl[p] & N != 0 ? p + 1 : -1
        case .digits: return fl[p] & N != 0 ? run(p, b, N) : -1
        case .digits3:
            guard fl[p] & N != 0 else { return -1 }
            var j = p + 1; while j < b && j < p + 3 && fl[j] & N != 0 { j += 1 }; return j
        case .newline: return isCR(p, b) ? p + 1 : -1
        case .spaceLetters:
            if fl[p] & W != 0 && has(p + 1, b, L) { return run(p + 1, b, L) }
            return fl[p] & L != 0 ? run(p, b, L) : -1
        case .spacePunct:
            if fl[p] & W != 0 && has(p + 1, b, P) { return run(p + 1, b, P) }
            return fl[p] & P != 0 ? run(p, b, P) : -1
        case .spaceRangeRun:
            // std::wregex sees non-ASCII whitespace as U+000B, which no range here contains.
            func inSet(_ i: Int) -> Bool { i < b && !(cp[i] > 0x7F && fl[i] & W != 0) && set.contains(cp[i]) }
            var j: Int
            if fl[p] & W != 0 && inSet(p + 1) { j = p + 2 } else if inSet(p) { j = p + 1 } else { return -1 }
            while inSet(j) { j += 1 }
            return j
        case .trailingSpace:
            let e = run(p, b, W)
            return (e > p && e == b) ? e : -1
        case .rangeRun:
            var j = p
            while j < b && !(cp[j] > 0x7F && fl[j] & W != 0) && set.contains(cp[j]) { j += 1 }
            return j > p ? j : -1
        case .deepseekV3:
            let c0 = cp[p]
            let asciiPunct = (c0 >= 0x21 && c0 <= 0x2F) || (c0 >= 0x3A && c0 <= 0x40)
                || (c0 >= 0x5B && c0 <= 0x60) || (c0 >= 0x7B && c0 <= 0x7E)
            func asciiLetter(_ i: Int) -> Bool {
                i < b && ((cp[i] >= 0x41 && cp[i] <= 0x5A) || (cp[i] >= 0x61 && cp[i] <= 0x7A))
            }
            if asciiPunct && asciiLetter(p + 1) { var j = p + 2; while asciiLetter(j) { j += 1 }; return j }
            let f = fl[p]
            if !isCR(p, b) && f & (L | P | S) == 0 && has(p + 1, b, L | M) { return run(p + 1, b, L | M) }
            if f & (L | M) != 0 { return run(p, b, L | M) }
            let q = cp[p] == 0x20 ? p + 1 : p
            if has(q, b, P | S) {
                var j = run(q, b, P | S)
                while isCR(j, b) { j += 1 }
                return j
            }
            return spaces(p, b, newlines: true)
        case .punctSymbolRun:
            func ok(_ i: Int) -> Bool {
                guard i < b else { return false }
                let c = cp[i]
                return fl[i] & P != 0 || c == 0x24 || c == 0x2B || c == 0x3C || c == 0x3D || c == 0x3E
                    || c == 0x5E || c == 0x7E || c == 0x7C
            }
            var j = p; while ok(j) { j += 1 }
            return j > p ? j : -1
        case .asciiDigits3:
            func d(_ i: Int) -> Bool { i < b && cp[i] >= 0x30 && cp[i] <= 0x39 }
            return d(p) && d(p + 1) && d(p + 2) ? p + 3 : -1
        }
    }
}
