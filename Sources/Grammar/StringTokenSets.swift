// The token masks of JSON string content, computed once per vocabulary and shared by every grammar over it.
//
// Every position inside a JSON string behaves like a position of the unbounded string body (`RuleSet.stringBody`)
// except for how many characters may still start (maxLength) or must start before the closing quote (minLength).
// A token moves through string content deterministically, so the characters it starts are a function of its bytes
// and the position: the body's certain and uncertain tokens (`TokenGrammar.computePosition`), each with that count,
// filtered by the bounds, are the bounded position's. Before, each counted position of a `maxLength` chain walked the
// whole vocabulary on first use (2,048 walks for `maxLength: 2048`), and every new schema walked the body again.
import Foundation

/// Tokens a position accepts whatever the stack below (`TokenGrammar`): a list while few, a mask once many, so a
/// grammar with thousands of literal positions costs bytes per position, not a vocabulary row.
enum TokenSet {
    case list([Int32])
    case mask(TokenMask)

    /// The set of `ids` for a vocabulary of `size` ids.
    init(_ ids: [Int32], size: Int) {
        if ids.count * 32 <= size / 4 {
            self = .list(ids)
        } else {
            var m = TokenMask(size: size)
            for id in ids { m.insert(id) }
            self = .mask(m)
        }
    }
}

/// The string-content token sets of one vocabulary (held by `TokenVocabulary`). Thread-safe: grammars of several
/// engines may share a vocabulary.
final class StringTokenSets: @unchecked Sendable {
    private let lock = NSLock()
    /// A grammar of the string body alone; its positions are the classes `Grammar.StringPosition` names. (The
    /// grammar, not a `TokenGrammar` over the vocabulary: that would hold the vocabulary that holds this.)
    private static let body: (grammar: Grammar, rule: Int) = {
        var rs = RuleSet()
        let r = rs.stringBody()
        // The body alone cannot recurse without a byte: finishing cannot fail.
        return (try! rs.finish(root: r), r)
    }()
    /// Per class (`alternative << 8 | element`): the body position's tokens and the characters each starts.
    private var classes: [Int32: ClassTokens] = [:]
    /// Filtered sets by class and clamped bounds (`class << 40 | minChars << 20 | maxChars`).
    private var certainByBounds: [Int64: TokenSet] = [:]
    private var uncertainByBounds: [Int64: [(token: Int32, offset: Int32)]] = [:]

    private struct ClassTokens {
        /// Tokens that stay in the string or end with its closing quote, the characters each starts, whether it closes.
        var certain: [Int32] = [], certainStarts: [Int32] = [], certainCloses: [Bool] = []
        /// Tokens that close the string and go on (offset: bytes through the quote), the characters each starts first.
        var uncertain: [(token: Int32, offset: Int32)] = [], uncertainStarts: [Int32] = []
        /// The largest count of either kind.
        var maxStarts: Int32 = 0
        /// `certain` as a set.
        var all: TokenSet
    }

    /// Bytes of the current character still to come after element `element` of body alternative `alternative`
    /// (0 at a character's start and at the closing quote).
    private static let remaining: [[Int]] = RuleSet.charAlternatives(then: []).map { alt in (0..<alt.count).map { $0 == 0 ? 0 : alt.count - $0 } }

    /// Characters started by `bytes` from a position `skip` bytes before the next character boundary, up to the
    /// closing quote (JSON string lexing: an escape is 2 bytes, `\u` 6, a UTF-8 sequence its lead byte's length),
    /// and whether the closing quote came.
    static func charsStarted(_ bytes: ArraySlice<UInt8>, skip: Int) -> (chars: Int32, closes: Bool) {
        var k = bytes.startIndex + skip, n: Int32 = 0
        while k < bytes.endIndex {
            let b = bytes[k]
            if b == 0x22 { return (n, true) }
            n += 1
            switch b {
            case 0x5C: k += k + 1 < bytes.endIndex && bytes[k + 1] == 0x75 ? 6 : 2
            case 0..<0x80: k += 1
            case 0xC0..<0xE0: k += 2
            case 0xE0..<0xF0: k += 3
            default: k += 4
            }
        }
        return (n, false)
    }

    /// Tokens `ids` with their counts (`starts`, `closes`) kept when within the bounds: at most `maxChars` started,
    /// and at least `minChars` when the token closes the string.
    /// `closes` nil: every token closes it.
    private static func filter<T>(_ ids: [T], _ starts: [Int32], _ closes: [Bool]?, min minChars: Int32, max maxChars: Int32) -> [T] {
        ids.indices.filter { starts[$0] <= maxChars && (closes?[$0] == false || starts[$0] >= minChars) }.map { ids[$0] }
    }

    /// The certain and uncertain tokens (as `TokenGrammar.computePosition` defines them) of string position `p`.
    func sets(_ p: Grammar.StringPosition, vocabulary v: TokenVocabulary) -> (certain: TokenSet, uncertain: [(token: Int32, offset: Int32)]) {
        lock.lock()
        defer { lock.unlock() }
        let key = p.bodyAlternative << 8 | p.element
        let c = classTokens(key, p, vocabulary: v)
        // Bounds past every token's count filter nothing: clamp them so equal filters share one cache entry.
        let maxChars = p.maxChars < 0 ? c.maxStarts : min(p.maxChars, c.maxStarts)
        let minChars = min(p.minChars, c.maxStarts + 1)
        let bounds = Int64(key) << 40 | Int64(minChars) << 20 | Int64(maxChars)
        let certain: TokenSet
        if minChars == 0 && maxChars == c.maxStarts {
            certain = c.all
        } else if let s = certainByBounds[bounds] {
            certain = s
        } else {
            certain = TokenSet(Self.filter(c.certain, c.certainStarts, c.certainCloses, min: minChars, max: maxChars), size: v.size)
            if certainByBounds.count >= 4096 { certainByBounds.removeAll() }
            certainByBounds[bounds] = certain
        }
        if minChars == 0 && maxChars == c.maxStarts { return (certain, c.uncertain) }
        if let u = uncertainByBounds[bounds] { return (certain, u) }
        let u = Self.filter(c.uncertain, c.uncertainStarts, nil, min: minChars, max: maxChars)
        if uncertainByBounds.count >= 4096 { uncertainByBounds.removeAll() }
        uncertainByBounds[bounds] = u
        return (certain, u)
    }

    private func classTokens(_ key: Int32, _ p: Grammar.StringPosition, vocabulary v: TokenVocabulary) -> ClassTokens {
        if let c = classes[key] { return c }
        let (g, rule) = Self.body
        let pos = g.alternatives[rule][Int(p.bodyAlternative)] + p.element
        let (accepted, open) = TokenGrammar(grammar: g, vocabulary: v, sharesStringMasks: false).walk(pos)
        let alt = Int(p.bodyAlternative)
        let skip = alt < Self.remaining.count ? Self.remaining[alt][Int(p.element)] : 0
        var c = ClassTokens(all: TokenSet(accepted, size: v.size))
        c.certain = accepted
        for id in accepted {
            let (n, closes) = Self.charsStarted(v.bytes(of: id), skip: skip)
            c.certainStarts.append(n)
            c.certainCloses.append(closes)
        }
        c.uncertain = open
        c.uncertainStarts = open.map { Self.charsStarted(v.bytes(of: $0.token).prefix(Int($0.offset)), skip: skip).chars }
        c.maxStarts = max(c.certainStarts.max() ?? 0, c.uncertainStarts.max() ?? 0)
        classes[key] = c
        return c
    }
}
