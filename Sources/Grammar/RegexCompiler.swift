// A regular-expression subset (ECMA-262 / JSON Schema `pattern`) → the grammar of a JSON string whose content
// matches it. Supported: literals, `.`, classes `[...]` / `[^...]` with ASCII ranges, `\d \w \s \D \W \S`,
// escaped punctuation, `\n \t \r \f \v \uXXXX`, groups `(...)` `(?:...)` `(?<name>...)`, `|`, quantifiers
// `* + ? {n} {n,} {n,m}` (lazy forms too: they match the same strings), and `^` / `$` at the ends. An unanchored
// side matches any characters, as JSON Schema's search semantics say. Anything else (backreferences, lookaround,
// `\b`, non-ASCII ranges) is refused.

/// Characters a regex atom matches: a set of ASCII bytes, all non-ASCII characters or some of them.
struct CharClass {
    var ascii = ByteSet()
    var allNonASCII = false
    var scalars: [Unicode.Scalar] = []

    static func of(_ ranges: [ClosedRange<UInt8>]) -> CharClass { CharClass(ascii: ByteSet(ranges: ranges)) }

    /// Everything except these (ASCII complement; non-ASCII all in).
    func negated() throws(RegexCompiler.Failure) -> CharClass {
        guard scalars.isEmpty else { throw RegexCompiler.Failure(message: "negated classes with non-ASCII characters are not supported") }
        var out = CharClass(allNonASCII: !allNonASCII)
        for b in UInt8(0)...127 where !ascii.contains(b) { out.ascii.insert(b) }
        return out
    }

    mutating func formUnion(_ o: CharClass) {
        ascii = ascii.union(o.ascii)
        allNonASCII = allNonASCII || o.allNonASCII
        scalars += o.scalars
    }
}

struct RegexCompiler {
    struct Failure: Error { let message: String }

    indirect enum Node {
        case chars(CharClass)
        case sequence([Node])
        case alternatives([Node])
        case repeated(Node, min: Int, max: Int?)
    }

    private let s: [Unicode.Scalar]
    private var i = 0
    /// Open groups (bounded: the parser recurses once per group).
    private var depth = 0
    /// Largest `{n,m}` bound accepted.
    static let maxCount = 1000

    init(pattern: String) { s = Array(pattern.unicodeScalars) }

    /// The symbols of a JSON string (quotes included) whose content matches the pattern.
    mutating func compileJSONString(into rs: inout RuleSet) throws(Failure) -> [Symbol] {
        var anchoredStart = false, anchoredEnd = false
        var body = s
        if body.first == "^" { anchoredStart = true; body.removeFirst() }
        // `$` ends the pattern unless it is escaped: an odd run of backslashes before it (`\\$` is a backslash, then the end).
        if body.last == "$" && body.dropLast().reversed().prefix(while: { $0 == "\\" }).count % 2 == 0 {
            anchoredEnd = true
            body.removeLast()
        }
        var inner = RegexCompiler(pattern: String(String.UnicodeScalarView(body)))
        let node = try inner.parseAlternatives()
        guard inner.i == inner.s.count else { throw Failure(message: "unbalanced ')' at offset \(inner.i)") }
        if case .alternatives = node, anchoredStart != anchoredEnd {
            throw Failure(message: "an alternation anchored at one end only is not supported")
        }
        var out: [Symbol] = [RuleSet.quote]
        if !anchoredStart { out += rs.repeated(try Self.lower(.chars(Self.any), &rs), min: 0, max: nil) }
        out += try Self.lower(node, &rs)
        // The free string body ends with the closing quote (one cached grammar position for the open tail).
        out += anchoredEnd ? [RuleSet.quote] : [.rule(rs.stringBody())]
        return out
    }

    /// `.` (any character but a newline).
    static let any: CharClass = {
        var c = CharClass(allNonASCII: true)
        for b in UInt8(0)...127 where b != 0x0A { c.ascii.insert(b) }
        return c
    }()

    // MARK: parsing

    private var atEnd: Bool { i >= s.count }

    private mutating func parseAlternatives() throws(Failure) -> Node {
        var alts = [try parseSequence()]
        while !atEnd && s[i] == "|" {
            i += 1
            alts.append(try parseSequence())
        }
        return alts.count == 1 ? alts[0] : .alternatives(alts)
    }

    private mutating func parseSequence() throws(Failure) -> Node {
        var items: [Node] = []
        while !atEnd && s[i] != "|" && s[i] != ")" {
            let atom = try parseAtom()
            items.append(try parseQuantifier(atom))
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func parseQuantifier(_ atom: Node) throws(Failure) -> Node {
        guard !atEnd else { return atom }
        var lo = 0, hi: Int? = nil
        switch s[i] {
        case "*": i += 1
        case "+": i += 1; lo = 1
        case "?": i += 1; hi = 1
        case "{":
            guard let (a, b, end) = braces(from: i) else { return atom }   // a literal '{'
            lo = a; hi = b; i = end
        default: return atom
        }
        if !atEnd && s[i] == "?" { i += 1 }   // lazy: same language
        if !atEnd && s[i] == "+" { throw Failure(message: "possessive quantifiers are not supported") }
        if let h = hi, h < lo { throw Failure(message: "a {min,max} quantifier with max below min") }
        if lo > Self.maxCount || (hi ?? 0) > Self.maxCount { throw Failure(message: "repetition counts above \(Self.maxCount) are not supported") }
        return .repeated(atom, min: lo, max: hi)
    }

    /// `{n}`, `{n,}`, `{n,m}` at `start`: (min, max, index after), or nil when it is not a quantifier.
    private func braces(from start: Int) -> (Int, Int?, Int)? {
        var j = start + 1
        func number() -> Int? {
            var v = 0, any = false
            while j < s.count, s[j].value >= 0x30, s[j].value <= 0x39 {
                v = v * 10 + Int(s[j].value - 0x30); j += 1; any = true
                if v > 1_000_000 { return nil }
            }
            return any ? v : nil
        }
        guard let a = number() else { return nil }
        guard j < s.count else { return nil }
        if s[j] == "}" { return (a, a, j + 1) }
        guard s[j] == "," else { return nil }
        j += 1
        if j < s.count && s[j] == "}" { return (a, nil, j + 1) }
        guard let b = number(), j < s.count, s[j] == "}" else { return nil }
        return (a, b, j + 1)
    }

    private mutating func parseAtom() throws(Failure) -> Node {
        let c = s[i]
        i += 1
        switch c {
        case "(":
            depth += 1
            defer { depth -= 1 }
            if depth > 32 { throw Failure(message: "groups nested deeper than 32 levels are not supported") }
            if !atEnd && s[i] == "?" {
                if i + 1 < s.count && s[i + 1] == ":" {
                    i += 2
                } else if i + 1 < s.count && s[i + 1] == "<" && i + 2 < s.count && s[i + 2] != "=" && s[i + 2] != "!" {
                    while !atEnd && s[i] != ">" { i += 1 }
                    guard !atEnd else { throw Failure(message: "unterminated group name") }
                    i += 1
                } else {
                    throw Failure(message: "lookaround and other (? groups are not supported")
                }
            }
            let inner = try parseAlternatives()
            guard !atEnd && s[i] == ")" else { throw Failure(message: "missing ')'") }
            i += 1
            return inner
        case "[": return .chars(try parseClass())
        case ".": return .chars(Self.any)
        case "\\": return .chars(try parseEscape(inClass: false))
        case "^", "$": throw Failure(message: "anchors are supported only at the start and end of the pattern")
        case "*", "+", "?": throw Failure(message: "a quantifier with nothing to repeat")
        default: return .chars(Self.single(c))
        }
    }

    static func single(_ c: Unicode.Scalar) -> CharClass {
        if c.isASCII { return CharClass(ascii: ByteSet(UInt8(c.value))) }
        return CharClass(scalars: [c])
    }

    private mutating func parseEscape(inClass: Bool) throws(Failure) -> CharClass {
        guard !atEnd else { throw Failure(message: "a trailing backslash") }
        let c = s[i]
        i += 1
        let word = CharClass.of([0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F...0x5F])
        let space = CharClass.of([0x20...0x20, 0x09...0x0D])
        switch c {
        case "d": return .of([0x30...0x39])
        case "D": return try CharClass.of([0x30...0x39]).negated()
        case "w": return word
        case "W": return try word.negated()
        case "s": return space
        case "S": return try space.negated()
        case "n": return .of([0x0A...0x0A])
        case "t": return .of([0x09...0x09])
        case "r": return .of([0x0D...0x0D])
        case "f": return .of([0x0C...0x0C])
        case "v": return .of([0x0B...0x0B])
        case "u":
            func hex4(at k: Int) -> UInt32? {
                guard k + 4 <= s.count else { return nil }
                return UInt32(String(String.UnicodeScalarView(s[k..<(k + 4)])), radix: 16)
            }
            guard let v = hex4(at: i) else { throw Failure(message: "\\u needs four hex digits") }
            i += 4
            if let scalar = Unicode.Scalar(v) { return Self.single(scalar) }
            // A UTF-16 surrogate pair written as two escapes (`\uD83D\uDE00`, as JSON writes astral characters).
            guard (0xD800...0xDBFF).contains(v), i + 6 <= s.count, s[i] == "\\", s[i + 1] == "u", let low = hex4(at: i + 2),
                  (0xDC00...0xDFFF).contains(low), let pair = Unicode.Scalar(0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)) else {
                throw Failure(message: "\\u\(String(v, radix: 16, uppercase: true)) is a lone UTF-16 surrogate (a pair is \\uD800–\\uDBFF then \\uDC00–\\uDFFF)")
            }
            i += 6
            return Self.single(pair)
        default:
            if c.isASCII && !c.properties.isAlphabetic && !("0"..."9").contains(c) { return Self.single(c) }
            if inClass && c == "b" { return .of([0x08...0x08]) }
            throw Failure(message: "the escape \\\(c) is not supported")
        }
    }

    private mutating func parseClass() throws(Failure) -> CharClass {
        var negate = false
        if !atEnd && s[i] == "^" { negate = true; i += 1 }
        var out = CharClass()
        var firstItem = true
        while true {
            guard !atEnd else { throw Failure(message: "missing ']'") }
            let c = s[i]
            if c == "]" && !firstItem { i += 1; break }
            firstItem = false
            i += 1
            var lowScalar: Unicode.Scalar? = c
            var item: CharClass
            if c == "\\" {
                item = try parseEscape(inClass: true)
                lowScalar = nil
                if item.scalars.count == 1 && item.ascii.isEmpty { lowScalar = item.scalars[0] }
                if item.scalars.isEmpty && !item.allNonASCII, let only = Self.singleByte(item.ascii) { lowScalar = Unicode.Scalar(only) }
            } else {
                item = Self.single(c)
            }
            // A range a-b.
            if let lo = lowScalar, i + 1 < s.count, s[i] == "-", s[i + 1] != "]" {
                i += 1
                var hiScalar = s[i]
                i += 1
                if hiScalar == "\\" {
                    let e = try parseEscape(inClass: true)
                    if e.scalars.count == 1 && e.ascii.isEmpty && !e.allNonASCII {
                        hiScalar = e.scalars[0]   // `\u00ff`: a single non-ASCII character (refused just below)
                    } else {
                        guard e.scalars.isEmpty, !e.allNonASCII, let b = Self.singleByte(e.ascii) else {
                            throw Failure(message: "a class range must end at a single character")
                        }
                        hiScalar = Unicode.Scalar(b)
                    }
                }
                guard lo.value <= hiScalar.value else { throw Failure(message: "a class range out of order") }
                if lo == hiScalar {
                    item = Self.single(lo)   // `[\u00e0-\u00e0]`: one character, non-ASCII or not
                } else {
                    guard hiScalar.isASCII else { throw Failure(message: "non-ASCII class ranges are not supported") }
                    item = .of([UInt8(lo.value)...UInt8(hiScalar.value)])
                }
            }
            out.formUnion(item)
        }
        return negate ? try out.negated() : out
    }

    static func singleByte(_ set: ByteSet) -> UInt8? {
        var found: UInt8? = nil
        for b in UInt8(0)...127 where set.contains(b) {
            if found != nil { return nil }
            found = b
        }
        return found
    }

    // MARK: lowering

    /// The symbols matching `node` as JSON string content (escaping `"`, `\` and control characters).
    static func lower(_ node: Node, _ rs: inout RuleSet) throws(Failure) -> [Symbol] {
        switch node {
        case .sequence(let items):
            var out: [Symbol] = []
            for n in items { out += try lower(n, &rs) }
            return out
        case .alternatives(let alts):
            var lowered: [[Symbol]] = []
            for a in alts { lowered.append(try lower(a, &rs)) }
            return [.rule(rs.add(lowered))]
        case .repeated(let n, _, let hi) where nullable(n):
            // A repeated part that can match nothing (`(a|b?)+`, `(a*)*`): its empty iterations add nothing, so repeat
            // its non-empty strings from zero (as a grammar, `x*` of a nullable x would be left-recursive).
            guard let some = nonEmpty(n) else { return [] }
            return try lower(.repeated(some, min: 0, max: hi), &rs)
        case .repeated(let n, let lo, let hi):
            let body = try lower(n, &rs)
            return rs.repeated(body.count == 1 ? body : [.rule(rs.add([body]))], min: lo, max: hi)
        case .chars(let c):
            let alts = jsonAlternatives(c)
            guard !alts.isEmpty else { throw Failure(message: "a character class that matches nothing printable") }
            return alts.count == 1 ? alts[0] : [.rule(rs.add(alts))]
        }
    }

    /// Whether `node` matches the empty string.
    static func nullable(_ node: Node) -> Bool {
        switch node {
        case .chars: return false
        case .sequence(let items): return items.allSatisfy(nullable)
        case .alternatives(let alts): return alts.contains(where: nullable)
        case .repeated(let n, let lo, let hi): return lo == 0 || hi == 0 || nullable(n)
        }
    }

    /// A node matching exactly the non-empty strings `node` matches; nil when it matches only the empty string.
    static func nonEmpty(_ node: Node) -> Node? {
        guard nullable(node) else { return node }
        switch node {
        case .chars: return node
        case .alternatives(let alts):
            let kept = alts.compactMap(nonEmpty)
            return kept.isEmpty ? nil : kept.count == 1 ? kept[0] : .alternatives(kept)
        case .repeated(let n, _, let hi):
            // Non-empty strings of n{lo,hi}: one to hi non-empty strings of n (the empty ones fill any minimum).
            guard hi != 0, let some = nonEmpty(n) else { return nil }
            return .repeated(some, min: 1, max: hi)
        case .sequence(let items):
            // Every item can be empty: the first non-empty one is item i, then anything of the rest.
            var alts: [Node] = []
            for (i, item) in items.enumerated() {
                if let some = nonEmpty(item) { alts.append(.sequence([some] + items[(i + 1)...])) }
            }
            return alts.isEmpty ? nil : alts.count == 1 ? alts[0] : .alternatives(alts)
        }
    }

    /// One character of `c` as JSON string text: unescaped printable ASCII, `\"` `\\` and the short escapes for
    /// controls, UTF-8 sequences for non-ASCII.
    static func jsonAlternatives(_ c: CharClass) -> [[Symbol]] {
        var plain = ByteSet()
        var alts: [[Symbol]] = []
        let backslash: Symbol = .bytes(ByteSet(0x5C))
        for b in UInt8(0)...127 where c.ascii.contains(b) {
            switch b {
            case 0x22: alts.append([backslash, .bytes(ByteSet(0x22))])
            case 0x5C: alts.append([backslash, .bytes(ByteSet(0x5C))])
            case 0x0A: alts.append([backslash, .bytes(ByteSet(0x6E))])
            case 0x09: alts.append([backslash, .bytes(ByteSet(0x74))])
            case 0x0D: alts.append([backslash, .bytes(ByteSet(0x72))])
            case 0x0C: alts.append([backslash, .bytes(ByteSet(0x66))])
            case 0x08: alts.append([backslash, .bytes(ByteSet(0x62))])
            case 0x20...0x7E: plain.insert(b)
            default: break   // other controls: left out
            }
        }
        if !plain.isEmpty { alts.insert([.bytes(plain)], at: 0) }
        if c.allNonASCII {
            // The multi-byte alternatives of a JSON character (the first five are ASCII and escapes).
            alts += RuleSet.charAlternatives(then: []).suffix(7)
        } else {
            for sc in c.scalars { alts.append(RuleSet.literal(String(Character(sc)))) }
        }
        return alts
    }
}
