// A context-free grammar over bytes, in the flat form the token matcher walks (llama.cpp GBNF's layout: every
// rule is a list of alternatives, every alternative a run of elements ended by `.end`). Build one with
// `GrammarExpr` (literal text, byte sets, sequences, alternatives, repetition, JSON-schema-constrained values) or
// from a JSON schema with `Grammar.jsonSchema(_:)`.

import JSON

/// A set of bytes (one bit per value 0...255).
public struct ByteSet: Hashable, Sendable {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    public init() {}

    /// The set of one byte.
    public init(_ b: UInt8) { insert(b) }

    /// Every byte in `ranges` (inclusive bounds).
    public init(ranges: [ClosedRange<UInt8>]) {
        for r in ranges { for b in r { insert(b) } }
    }

    public mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        default: w3 |= bit
        }
    }

    public mutating func remove(_ b: UInt8) {
        let bit = ~(UInt64(1) << UInt64(b & 63))
        switch b >> 6 {
        case 0: w0 &= bit
        case 1: w1 &= bit
        case 2: w2 &= bit
        default: w3 &= bit
        }
    }

    @inline(__always) public func contains(_ b: UInt8) -> Bool {
        let w: UInt64
        switch b >> 6 {
        case 0: w = w0
        case 1: w = w1
        case 2: w = w2
        default: w = w3
        }
        return w & (UInt64(1) << UInt64(b & 63)) != 0
    }

    public var isEmpty: Bool { w0 | w1 | w2 | w3 == 0 }

    public func union(_ o: ByteSet) -> ByteSet {
        var r = self
        r.w0 |= o.w0; r.w1 |= o.w1; r.w2 |= o.w2; r.w3 |= o.w3
        return r
    }
}

extension GrammarExpr {
    /// Any bytes up to and including the first occurrence of `marker`: text that does not contain it, then the
    /// marker (a model's reasoning through `</think>`). The marker's first byte must not occur again in it (true of
    /// closing tags), so the text splits at each of those bytes into pieces none of which may start with the marker:
    /// a piece is that byte, a proper prefix of the marker's rest, then optionally a byte that departs from it and any
    /// bytes but the first.
    public static func text(through marker: String) -> GrammarExpr {
        let m = Array(marker.utf8)
        precondition(m.count >= 2 && !m.dropFirst().contains(m[0]), "the marker's first byte must not recur in it")
        var notFirst = ByteSet(ranges: [0...255])
        notFirst.remove(m[0])
        let free = GrammarExpr.repeated(.bytes(notFirst), min: 0, max: nil)
        func departing(_ expected: UInt8) -> GrammarExpr {
            var d = notFirst
            d.remove(expected)
            return .sequence([.bytes(d), free])
        }
        // After m[0] and m[1..<k]: stop (the next byte is m[0] again), depart from m[k], or go on with m[k] (never
        // past the marker's last byte: that would be the marker itself).
        var piece = GrammarExpr.alternatives([.empty, departing(m[m.count - 1])])
        for k in stride(from: m.count - 2, through: 1, by: -1) {
            piece = .alternatives([.empty, departing(m[k]), .sequence([.bytes(ByteSet(m[k])), piece])])
        }
        return .sequence([free, .repeated(.sequence([.bytes(ByteSet(m[0])), piece]), min: 0, max: nil), .literal(marker)])
    }
}

/// A grammar expression: what `Grammar.build` turns into rules. Tool-call grammars are built from these, e.g.
/// Hermes: `.sequence([.literal("<tool_call>\n{\"name\": \"f\", \"arguments\": "), .json(schema), .literal("}\n</tool_call>")])`.
public indirect enum GrammarExpr: Sendable {
    /// The UTF-8 bytes of the text, in order.
    case literal(String)
    /// One byte from the set.
    case bytes(ByteSet)
    /// Each in turn.
    case sequence([GrammarExpr])
    /// Any one of them (at least one).
    case alternatives([GrammarExpr])
    /// `min` to `max` repetitions (`max` nil: unbounded).
    case repeated(GrammarExpr, min: Int, max: Int?)
    /// A JSON value valid against the JSON schema (`Grammar.jsonSchema` lists the supported keywords).
    case json(schema: JSONValue)
    /// Any JSON object (`response_format` `json_object`).
    case jsonObject
    /// Nothing (the empty string).
    case empty
}

/// A compiled byte-level grammar. Value type; equal grammars hash equal, so token-level caches can be shared.
public struct Grammar: Hashable, Sendable {
    /// One grammar element.
    enum Element: Hashable, Sendable {
        /// One byte from the set.
        case bytes(ByteSet)
        /// The rule with this index.
        case ref(Int32)
        /// End of an alternative.
        case end
    }

    /// All alternatives of all rules, each ended by `.end`. `[numElements]`
    let elements: [Element]
    /// For each rule, the element index where each alternative starts. `[numRules][numAlternatives]`
    let alternatives: [[Int32]]
    /// The rule a whole answer must match.
    let root: Int32
    /// The rules of JSON string content (`RuleSet.stringRules`) by element range, sorted: `stringPosition(_:)`
    /// says which string-body position a position behaves like. `TokenGrammar` takes their token masks from the
    /// vocabulary's shared string masks instead of walking the vocabulary once per position.
    let stringRules: [StringRule]

    /// A rule laid out like the string body, with the character counts that bound it at the start of each alternative.
    struct StringRule: Hashable, Sendable {
        /// Its elements: `start..<end`.
        let start: Int32, end: Int32
        let rule: Int32
        /// The rule is the closing quote alone (the end of a `maxLength` chain).
        let quoteOnly: Bool
        /// Characters that must still start before the closing quote; that may still start (-1: any number).
        let minChars: Int32, maxChars: Int32
    }

    /// A position of JSON string content.
    struct StringPosition: Hashable, Sendable {
        /// The string body's alternative (a character form, or the closing quote after them) and element index.
        let bodyAlternative: Int32, element: Int32
        /// Characters that must still start before the closing quote.
        let minChars: Int32
        /// Characters that may still start (-1: any number).
        let maxChars: Int32
    }

    /// The string-body position element `pos` behaves like, with its bounds; nil outside string content.
    func stringPosition(_ pos: Int32) -> StringPosition? {
        var lo = 0, hi = stringRules.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if stringRules[mid].end <= pos { lo = mid + 1 } else { hi = mid }
        }
        guard lo < stringRules.count, stringRules[lo].start <= pos, case .bytes = elements[Int(pos)] else { return nil }
        let s = stringRules[lo]
        let starts = alternatives[Int(s.rule)]
        guard let i = starts.lastIndex(where: { $0 <= pos }) else { return nil }
        let j = pos - starts[i]
        let bodyAlt = s.quoteOnly ? Int32(RuleSet.charAlternativeCount) : Int32(i)
        // Past a character's first byte, that character has started.
        let mid = j > 0 && bodyAlt != Int32(RuleSet.charAlternativeCount) ? Int32(1) : 0
        return StringPosition(bodyAlternative: bodyAlt, element: j, minChars: max(0, s.minChars - mid),
                              maxChars: s.maxChars < 0 ? -1 : s.maxChars - mid)
    }

    init(elements: [Element], alternatives: [[Int32]], root: Int32, stringRules: [StringRule] = []) {
        self.elements = elements
        self.alternatives = alternatives
        self.root = root
        self.stringRules = stringRules
    }

    /// Number of rules (for tests and diagnostics).
    public var ruleCount: Int { alternatives.count }

    /// Builds a grammar whose language is `expr`.
    /// - Throws: `GrammarError` for a JSON schema it cannot enforce (naming the keyword and its path), or a grammar
    ///   that can recurse without consuming input (left recursion, e.g. a schema that is only `{"$ref": "#"}`).
    public static func build(_ expr: GrammarExpr) throws(GrammarError) -> Grammar {
        var rules = RuleSet()
        let root = rules.reserve()
        let body = try rules.lower(expr)
        rules.define(root, [body])
        return try rules.finish(root: root)
    }

    /// The grammar of one JSON value valid against `schema` (compact JSON; a single space is allowed after `:` and
    /// `,`, nothing else, so a model cannot spin on whitespace).
    /// - Throws: `GrammarError.unsupported(keyword:path:reason:)` for a keyword it cannot enforce,
    ///   `.invalidSchema` for a malformed schema.
    public static func jsonSchema(_ schema: JSONValue) throws(GrammarError) -> Grammar {
        try build(.json(schema: schema))
    }

    /// Whether `text` can start a sentence of the grammar (every byte allowed in turn; a byte-level check).
    public func acceptsPrefix(_ text: String) -> Bool {
        var stacks = StackSet(grammar: self)
        for b in text.utf8 where !stacks.advance(b) { return false }
        return true
    }

    /// Whether the grammar matches `text` exactly (a byte-level check, no vocabulary involved).
    public func matches(_ text: String) -> Bool {
        var stacks = StackSet(grammar: self)
        for b in text.utf8 where !stacks.advance(b) { return false }
        return stacks.isAccepting
    }
}

/// Errors of the Grammar module.
public enum GrammarError: Error, Equatable, CustomStringConvertible {
    /// A schema keyword (or value of one) that cannot be enforced; `path` is a JSON pointer into the schema.
    case unsupported(keyword: String, path: String, reason: String)
    /// The schema is malformed at `path`.
    case invalidSchema(path: String, reason: String)
    /// The grammar can recurse forever without consuming input.
    case leftRecursive

    /// The schema path the error is about ("" for the root), or nil.
    public var path: String? {
        switch self {
        case .unsupported(_, let p, _), .invalidSchema(let p, _): return p
        case .leftRecursive: return nil
        }
    }

    public var description: String {
        switch self {
        case .unsupported(let k, let p, let r):
            return "unsupported JSON schema keyword '\(k)' at '\(p.isEmpty ? "#" : "#" + p)': \(r)"
        case .invalidSchema(let p, let r): return "invalid JSON schema at '\(p.isEmpty ? "#" : "#" + p)': \(r)"
        case .leftRecursive: return "the schema refers to itself without consuming any input (infinite recursion)"
        }
    }
}
