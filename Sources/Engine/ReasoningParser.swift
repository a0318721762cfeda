/// Splits streamed model text into reasoning and answer at DeepSeek-R1-style `<think>…</think>` tags (llama-server's
/// `--reasoning-format deepseek`, vLLM's `deepseek_r1` reasoning parser).
///
/// The opening tag may already sit in the prompt (R1 templates end the generation prompt with `<think>\n`): then the
/// parser starts inside the block. Otherwise an opening tag at the very start of the output (after whitespace) opens
/// it. Tags split across tokens are held back until decided, so no fragment of a tag is ever emitted; a reply with no
/// closing tag is all reasoning. Whitespace right after `<think>` and right after `</think>` is dropped. A value type
/// that returns what to emit; unit-tested without a model.
public struct ReasoningParser: Sendable {
    private enum State: Sendable { case start, reasoning, content }

    private static let open = Array("<think>".unicodeScalars)
    private static let close = Array("</think>".unicodeScalars)

    private var state: State
    /// Text not emitted yet: a possible tag prefix, or leading whitespace still being skipped.
    private var pending: [Unicode.Scalar] = []
    /// Drop whitespace before the first emitted character of the current part.
    private var skipLeadingSpace = true

    /// Whether the text so far ends inside the think block (what follows is reasoning).
    public var isInReasoning: Bool { state == .reasoning }

    /// - Parameter startsInReasoning: the prompt ends inside an open `<think>` block.
    public init(startsInReasoning: Bool) {
        state = startsInReasoning ? .reasoning : .start
    }

    /// Feeds newly generated text; returns what can be emitted now, in order.
    public mutating func append(_ text: String) -> [GenerationDelta] {
        pending.append(contentsOf: text.unicodeScalars)
        var out: [GenerationDelta] = []
        while true {
            switch state {
            case .start:
                let lead = pending.prefix { $0.properties.isWhitespace }.count
                let rest = pending[lead...]
                if rest.starts(with: Self.open) {
                    pending.removeFirst(lead + Self.open.count)
                    state = .reasoning
                    skipLeadingSpace = true
                    continue
                }
                if rest.count < Self.open.count && Self.open.starts(with: rest) { return out }  // undecided
                state = .content
                continue
            case .reasoning:
                dropLeadingSpaceIfNeeded()
                if let at = Self.find(Self.close, in: pending) {
                    if at > 0 { out.append(.reasoning(Self.string(pending[..<at]))) }
                    pending.removeFirst(at + Self.close.count)
                    state = .content
                    skipLeadingSpace = true
                    continue
                }
                let hold = Self.heldSuffix(pending, Self.close)
                if pending.count > hold {
                    out.append(.reasoning(Self.string(pending[..<(pending.count - hold)])))
                    pending.removeFirst(pending.count - hold)
                }
                return out
            case .content:
                dropLeadingSpaceIfNeeded()
                if !pending.isEmpty {
                    out.append(.content(Self.string(pending[...])))
                    pending.removeAll()
                }
                return out
            }
        }
    }

    /// The end of generation: whatever was held back (a partial tag is ordinary text of the part it sits in).
    public mutating func finish() -> [GenerationDelta] {
        defer { pending.removeAll() }
        guard !pending.isEmpty else { return [] }
        switch state {
        case .reasoning: return [.reasoning(Self.string(pending[...]))]
        case .start, .content:
            let lead = skipLeadingSpace ? pending.prefix { $0.properties.isWhitespace }.count : 0
            return lead == pending.count ? [] : [.content(Self.string(pending[lead...]))]
        }
    }

    private mutating func dropLeadingSpaceIfNeeded() {
        guard skipLeadingSpace else { return }
        let lead = pending.prefix { $0.properties.isWhitespace }.count
        pending.removeFirst(lead)
        if !pending.isEmpty { skipLeadingSpace = false }
    }

    /// Length of the longest suffix of `hay` that is a proper prefix of `tag`.
    static func heldSuffix(_ hay: [Unicode.Scalar], _ tag: [Unicode.Scalar]) -> Int {
        var len = min(tag.count - 1, hay.count)
        while len > 0 {
            if hay[(hay.count - len)...].elementsEqual(tag[..<len]) { return len }
            len -= 1
        }
        return 0
    }

    /// First index of `needle` in `hay`.
    static func find(_ needle: [Unicode.Scalar], in hay: [Unicode.Scalar], from start: Int = 0) -> Int? {
        guard !needle.isEmpty, hay.count - start >= needle.count else { return nil }
        var i = start
        while i <= hay.count - needle.count {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}
