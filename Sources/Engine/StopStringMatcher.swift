/// Streams generated text while hiding stop strings: text that could still turn out to be the start of a stop
/// string is held back until it is decided, so no chunk ever carries a stop string or a prefix of one.
///
/// Matching works on Unicode scalars, so a held-back tail is always whole characters of the input text.
public struct StopStringMatcher: Sendable {
    private let stops: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []
    /// The stop string that matched (Anthropic's `stop_sequence`), nil until one does.
    public private(set) var matched: String?
    /// Unicode scalars fed so far (all `append` calls).
    public private(set) var fed = 0
    /// Where the matched stop string starts, in scalars from the start of everything fed; nil until one matches.
    public private(set) var stopOffset: Int?
    /// Scalars released so far: fed before `pending`'s first one.
    public private(set) var released = 0

    /// - Parameter stops: stop strings; empty strings are ignored.
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Result of feeding text.
    public enum Output: Equatable, Sendable {
        /// Text that is safe to emit now (may be empty).
        case text(String)
        /// A stop string was found: emit the text before it and finish.
        case stopped(before: String)
    }

    /// Feeds newly detokenized text. With `matching` false (before `min_tokens` are generated) no stop string
    /// ends the text: a complete one passes as ordinary text, and only a possible start of one is held back.
    public mutating func append(_ text: String, matching: Bool = true) -> Output {
        let scalars = text.unicodeScalars
        fed += scalars.count
        if stops.isEmpty {
            released = fed
            return .text(text)
        }
        pending.append(contentsOf: scalars)
        // Earliest full match of any stop string.
        var earliest: Int?
        for s in stops where matching {
            if let at = Self.find(s, in: pending), at < (earliest ?? Int.max) {
                earliest = at
                matched = Self.string(s[...])
            }
        }
        if let at = earliest {
            let before = Self.string(pending[0..<at])
            stopOffset = released + at
            released += pending.count
            pending.removeAll()
            return .stopped(before: before)
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        var hold = 0
        for s in stops {
            let maxLen = min(s.count - 1, pending.count)
            if maxLen <= hold { continue }
            for len in stride(from: maxLen, to: hold, by: -1)
            where pending[(pending.count - len)...].elementsEqual(s[0..<len]) {
                hold = len
                break
            }
        }
        let emit = Self.string(pending[0..<(pending.count - hold)])
        released += pending.count - hold
        pending.removeFirst(pending.count - hold)
        return .text(emit)
    }

    /// At the end of generation (not by a stop string): everything held back is ordinary text.
    public mutating func flush() -> String {
        defer {
            released += pending.count
            pending.removeAll()
        }
        return Self.string(pending[...])
    }

    private static func find(_ needle: [Unicode.Scalar], in hay: [Unicode.Scalar]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}
