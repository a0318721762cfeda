// The shared rules of JSON text: string bodies (with the closing quote inside the loop, so a string's content is
// one cached grammar position), numbers with a bounded digit count, integer ranges, and any JSON value.
import JSON

extension RuleSet {
    static let quote: Symbol = .bytes(ByteSet(0x22))
    /// Printable ASCII a JSON string may hold unescaped: 0x20...0x7E except `"` and `\`.
    static let plainASCII: ByteSet = {
        var s = ByteSet(ranges: [0x20...0x7E])
        s.remove(0x22); s.remove(0x5C)
        return s
    }()
    static let digit = ByteSet(ranges: [0x30...0x39])
    static let hex = ByteSet(ranges: [0x30...0x39, 0x41...0x46, 0x61...0x66])
    static let cont = ByteSet(ranges: [0x80...0xBF])

    /// The longest digit run of a number's integer part, fraction and exponent (bounds a model's loop).
    static let maxIntegerDigits = 16, maxFractionDigits = 16, maxExponentDigits = 3

    /// One JSON string character's alternatives (an unescaped char, an escape, or a whole UTF-8 sequence), each
    /// followed by `next`.
    static func charAlternatives(then next: [Symbol]) -> [[Symbol]] {
        let b: (ClosedRange<UInt8>) -> Symbol = { .bytes(ByteSet(ranges: [$0])) }
        let bs: ([ClosedRange<UInt8>]) -> Symbol = { .bytes(ByteSet(ranges: $0)) }
        let c: Symbol = .bytes(cont), h: Symbol = .bytes(hex)
        let backslash: Symbol = .bytes(ByteSet(0x5C)), u: Symbol = .bytes(ByteSet(0x75))
        return [
            [.bytes(plainASCII)] + next,
            [backslash, .bytes(ByteSet(ranges: [0x22...0x22, 0x5C...0x5C, 0x2F...0x2F, 0x62...0x62, 0x66...0x66,
                                                0x6E...0x6E, 0x72...0x72, 0x74...0x74]))] + next,
            // \uXXXX outside the surrogate range D800-DFFF (a lone surrogate is no character).
            [backslash, u, bs([0x30...0x39, 0x41...0x43, 0x61...0x63]), h, h, h] + next,
            [backslash, u, bs([0x44...0x44, 0x64...0x64]), b(0x30...0x37), h, h] + next,
            [backslash, u, bs([0x45...0x46, 0x65...0x66]), h, h, h] + next,
            // Well-formed UTF-8 (Unicode Table 3-7): no overlongs, no surrogates, nothing past U+10FFFF.
            [b(0xC2...0xDF), c] + next,
            [b(0xE0...0xE0), b(0xA0...0xBF), c] + next,
            [bs([0xE1...0xEC, 0xEE...0xEF]), c, c] + next,
            [b(0xED...0xED), b(0x80...0x9F), c] + next,
            [b(0xF0...0xF0), b(0x90...0xBF), c, c] + next,
            [b(0xF1...0xF3), c, c, c] + next,
            [b(0xF4...0xF4), b(0x80...0x8F), c, c] + next,
        ]
    }

    /// Optional single space.
    mutating func ws() -> Symbol {
        .rule(shared("ws") { _ in [[.bytes(ByteSet(0x20))], []] })
    }

    /// Number of alternatives of one string character (`charAlternatives`); the string body's closing quote is the
    /// alternative after them.
    static let charAlternativeCount = charAlternatives(then: []).count

    /// Any characters then the closing quote (the body of a string after its opening quote).
    mutating func stringBody() -> Int {
        if let r = named["string-body"] { return r }
        let r = shared("string-body") { rs in
            let me = rs.named["string-body"]!
            return Self.charAlternatives(then: [.rule(me)]) + [[Self.quote]]
        }
        stringRules.append(StringRule(rule: r, quoteOnly: false, minChars: 0, maxChars: nil))
        return r
    }

    /// A JSON string of any content.
    mutating func anyString() -> [Symbol] { [Self.quote, .rule(stringBody())] }

    /// A string of `lo` to `hi` characters (`hi` nil: unbounded): a chain of rules, one per character started, each
    /// laid out like the string body (so their token masks are the body's, filtered by the counts left).
    /// Equal bounds share one chain (its rules end in tail calls, so whatever follows the string is on the stack,
    /// not in the chain): a hundred fields of `maxLength: 2000` are one chain of 2,001 rules, not 100 of them.
    mutating func string(minLength lo: Int, maxLength hi: Int?) -> [Symbol] {
        if lo == 0 && hi == nil { return anyString() }
        let name = Self.chainName(lo, hi)
        if let r = named[name] { return [Self.quote, .rule(r)] }
        var next: Int
        var c: Int   // characters started before rule `next`
        if let hi {
            next = add([[Self.quote]])
            stringRules.append(StringRule(rule: next, quoteOnly: true, minChars: 0, maxChars: 0))
            c = hi
        } else {
            next = stringBody()
            c = lo
        }
        while c > 0 {
            c -= 1
            let quote: [[Symbol]] = c >= lo ? [[Self.quote]] : []
            next = add(Self.charAlternatives(then: [.rule(next)]) + quote)
            stringRules.append(StringRule(rule: next, quoteOnly: false, minChars: max(0, lo - c), maxChars: hi.map { $0 - c }))
        }
        named[name] = next
        return [Self.quote, .rule(next)]
    }

    private static func chainName(_ lo: Int, _ hi: Int?) -> String { "string-\(lo)-\(hi.map(String.init) ?? "")" }

    /// Whether `string(minLength:maxLength:)` has built (or needs no) chain for these bounds.
    func hasStringChain(minLength lo: Int, maxLength hi: Int?) -> Bool {
        (lo == 0 && hi == nil) || named[Self.chainName(lo, hi)] != nil
    }

    /// `count` digits (exact) as symbols.
    static func digits(_ count: Int) -> [Symbol] { Array(repeating: .bytes(digit), count: count) }

    /// A JSON integer with at most `maxIntegerDigits` digits: `-?(0|[1-9][0-9]{0,15})`.
    mutating func anyInteger() -> [Symbol] {
        [.rule(shared("integer") { rs in
            let tail = rs.repeated([.bytes(Self.digit)], min: 0, max: Self.maxIntegerDigits - 1)
            let nat: [[Symbol]] = [[.bytes(ByteSet(0x30))], [.bytes(ByteSet(ranges: [0x31...0x39]))] + tail]
            let n = rs.add(nat)
            return [[.rule(n)], [.bytes(ByteSet(0x2D)), .rule(n)]]
        })]
    }

    /// `.` and 1...16 digits.
    mutating func fraction() -> [Symbol] {
        [.bytes(ByteSet(0x2E)), .bytes(Self.digit)] + repeated([.bytes(Self.digit)], min: 0, max: Self.maxFractionDigits - 1)
    }

    /// A JSON number: integer part, optional fraction, optional exponent (digit counts bounded).
    mutating func anyNumber() -> [Symbol] {
        [.rule(shared("number") { rs in
            let int = rs.anyInteger()
            let frac = rs.add([rs.fraction(), []])
            let exp = rs.add([[.bytes(ByteSet(ranges: [0x45...0x45, 0x65...0x65])),
                               .rule(rs.add([[.bytes(ByteSet(ranges: [0x2B...0x2B, 0x2D...0x2D]))], []])),
                               .bytes(Self.digit)] + rs.repeated([.bytes(Self.digit)], min: 0, max: Self.maxExponentDigits - 1),
                              []])
            return [int + [.rule(frac), .rule(exp)]]
        })]
    }

    /// Integers in `lo...hi` as alternatives of digit patterns (no leading zeros; `-` for negatives).
    static func integerRange(_ lo: Int, _ hi: Int) -> [[Symbol]] {
        var out: [[Symbol]] = []
        if lo < 0 {
            let negHi = min(hi, -1)
            if lo <= negHi {
                for alt in naturalRange(-negHi, -lo) { out.append([.bytes(ByteSet(0x2D))] + alt) }
            }
        }
        if hi >= 0 { out += naturalRange(max(lo, 0), hi) }
        return out
    }

    /// Non-negative integers in `a...b`.
    static func naturalRange(_ a: Int, _ b: Int) -> [[Symbol]] {
        guard a <= b else { return [] }
        var out: [[Symbol]] = []
        let la = String(a).count, lb = String(b).count
        var p = 1
        for _ in 1..<la { p *= 10 }
        for len in la...lb {
            let lo = max(a, len == 1 ? 0 : p), hi = min(b, p * 10 - 1)
            if lo <= hi { out += sameLength(Array(String(lo).utf8), Array(String(hi).utf8)) }
            p *= 10
        }
        return out
    }

    /// Digit strings of equal length between `x` and `y` inclusive.
    private static func sameLength(_ x: [UInt8], _ y: [UInt8]) -> [[Symbol]] {
        guard let x0 = x.first, let y0 = y.first else { return [[]] }
        let xr = Array(x.dropFirst()), yr = Array(y.dropFirst())
        if x0 == y0 { return sameLength(xr, yr).map { [.bytes(ByteSet(x0))] + $0 } }
        let xZeros = xr.allSatisfy { $0 == 0x30 }, yNines = yr.allSatisfy { $0 == 0x39 }
        var out: [[Symbol]] = []
        var start = x0, end = y0
        if !xZeros {
            out += sameLength(xr, Array(repeating: 0x39, count: xr.count)).map { [.bytes(ByteSet(x0))] + $0 }
            start = x0 + 1
        }
        var last: [[Symbol]] = []
        if !yNines {
            last = sameLength(Array(repeating: 0x30, count: yr.count), yr).map { [.bytes(ByteSet(y0))] + $0 }
            end = y0 - 1
        }
        if start <= end { out.append([.bytes(ByteSet(ranges: [start...end]))] + digits(xr.count)) }
        return out + last
    }

    /// Any JSON value (objects and arrays of any values, recursively).
    mutating func anyValue() -> [Symbol] {
        if let r = named["any"] { return [.rule(r)] }
        let value = reserve()
        named["any"] = value
        let ws = ws()
        let key = anyString() + [.bytes(ByteSet(0x3A)), ws]
        let objectLoop = reserve()
        define(objectLoop, [[.bytes(ByteSet(0x7D))], [.bytes(ByteSet(0x2C)), ws] + key + [.rule(value), .rule(objectLoop)]])
        let objectFirst = add([[.bytes(ByteSet(0x7D))], key + [.rule(value), .rule(objectLoop)]])
        let arrayLoop = reserve()
        define(arrayLoop, [[.bytes(ByteSet(0x5D))], [.bytes(ByteSet(0x2C)), ws, .rule(value), .rule(arrayLoop)]])
        let arrayFirst = add([[.bytes(ByteSet(0x5D))], [.rule(value), .rule(arrayLoop)]])
        define(value, [
            [.bytes(ByteSet(0x7B)), .rule(objectFirst)],
            [.bytes(ByteSet(0x5B)), .rule(arrayFirst)],
            anyString(), anyNumber(),
            Self.literal("true"), Self.literal("false"), Self.literal("null"),
        ])
        return [.rule(value)]
    }
}
