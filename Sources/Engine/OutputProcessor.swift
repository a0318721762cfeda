import Tokenizer

/// Turns one request's generated token ids into what its client sees: incremental detokenization (whole UTF-8
/// characters only), then stop strings (held back while they may still match, never emitted), then — when the
/// request's `OutputParsing` asks — the reasoning split (`ReasoningParser`) and tool calls (`ToolCallParser`, on the
/// answer part only). A value type driven by the engine thread, one per request; unit-testable without a model.
public struct OutputProcessor: Sendable {
    private var detokenizer: StreamingDetokenizer
    private var stopMatcher: StopStringMatcher
    private var reasoning: ReasoningParser?
    private var toolCalls: ToolCallParser?
    /// With streamed arguments: the same text through a parser that emits whole calls only (what the non-streamed
    /// reply holds), whose count decides the finish (`wholeToolCallCount`; helper-72: a stop string that cut a call
    /// after its arguments, or a second call, made the stream say `tool_calls` where the whole reply said `stop`).
    private var wholeCalls: ToolCallParser?
    private let markupTokens: Set<Int32>
    /// Tool calls completed inside the prefill itself, emitted with the first output.
    private var prefixCalls: [GenerationDelta] = []
    /// Prefill text the tool-call parser still holds (the start of markup the prefill opened): if the parser gives
    /// it back as content, it is the client's own text, not the reply's, and is left out.
    private var prefixHeld = ""
    /// Ids whose text has not been emitted yet (held back by the detokenizer, the stop matcher or a parser).
    private var pendingIds: [Int32] = []
    /// For each of `pendingIds`, the stop matcher's scalar count before the id's text (its start in the generated
    /// text; an id whose bytes the detokenizer still holds starts where the next text starts).
    private var pendingStarts: [Int] = []
    /// Stop strings match only once this many tokens are generated (`min_tokens`).
    private let minTokens: Int
    /// Tokens appended so far.
    private var numTokens = 0

    /// What one token produced.
    public enum Output: Equatable, Sendable {
        /// Parts to emit now (possibly none) and the ids they complete.
        case emit([GenerationDelta], tokenIds: [Int32])
        /// Generation ends here (a stop string matched, or the allowed number of tool calls is complete): emit these
        /// parts, then the request is finished (`.stop`). After a stop string the ids leave out its own tokens
        /// (those whose text starts at or after it), as the text does.
        case stopped([GenerationDelta], tokenIds: [Int32])
    }

    /// - Parameters: the vocabulary, the request's stop strings (empty strings are ignored), its `min_tokens`
    ///   (as vLLM: a stop string completed by one of the first `minTokens` tokens does not stop generation; it stays
    ///   in the text) and its output parsing.
    public init(tokenizer: Tokenizer, stop: [String], minTokens: Int = 0, parsing: OutputParsing = OutputParsing()) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stopMatcher = StopStringMatcher(stops: stop)
        self.minTokens = minTokens
        reasoning = parsing.reasoning.map { ReasoningParser(startsInReasoning: $0 == .startsInside) }
        toolCalls = parsing.toolCalls.map { ToolCallParser(format: $0, maxCalls: parsing.maxToolCalls, bareCallNames: parsing.bareCallNames,
                                                                 streamArguments: parsing.streamToolArguments) }
        if parsing.streamToolArguments {
            wholeCalls = parsing.toolCalls.map { ToolCallParser(format: $0, maxCalls: parsing.maxToolCalls, bareCallNames: parsing.bareCallNames) }
        }
        markupTokens = parsing.reasoning == nil && parsing.toolCalls == nil ? [] : parsing.markupTokens
        if !parsing.prefix.isEmpty {
            // The prefill's text is the client's own: only the parser state it leaves matters.
            let parts = parse(parsing.prefix, final: false, truncated: false)
            prefixCalls = parts.filter { if case .content = $0 { return false }; if case .reasoning = $0 { return false }; return true }
            prefixHeld = toolCalls?.heldText ?? ""
        }
    }

    /// Tool calls emitted so far.
    public var toolCallCount: Int { toolCalls?.callCount ?? 0 }

    /// The calls the non-streamed reply holds (whole ones), once generation has ended: with streamed arguments, those
    /// of the whole-call parser (a streamed call may have been begun and then cut); else `toolCallCount`.
    public var wholeToolCallCount: Int { wholeCalls?.callCount ?? toolCallCount }

    /// Whether the output so far ends inside a think block (reasoning is split off and not yet closed).
    public var isInReasoning: Bool { reasoning?.isInReasoning ?? false }

    /// The stop string that ended generation, nil unless `append` returned `.stopped`.
    public var matchedStop: String? { stopMatcher.matched }

    /// Feeds one generated token (not an end-of-generation token that ends the request).
    public mutating func append(_ token: Int32) -> Output {
        pendingIds.append(token)
        pendingStarts.append(stopMatcher.fed)
        numTokens += 1
        let piece = detokenizer.append(token, renderSpecial: markupTokens.contains(token) ? true : nil)
        guard !piece.isEmpty else { return .emit([], tokenIds: []) }
        switch stopMatcher.append(piece, matching: numTokens > minTokens) {
        case .text(let t):
            let parts = parse(t, final: false, truncated: false)
            if toolCalls?.isDone == true { return .stopped(parts, tokenIds: takeIds()) }
            // Only the ids whose text starts in what was released: a later id whose text the stop matcher holds
            // back (it may start a stop string) waits for its text.
            return .emit(parts, tokenIds: parts.isEmpty ? [] : takeIds(before: stopMatcher.released))
        case .stopped(let before):
            // The ids whose text starts at or after the stop string are its tokens: like their text, they are not
            // reported (a token that starts before it and runs into it stays).
            let stopAt = stopMatcher.stopOffset ?? Int.max
            let keep = pendingStarts.firstIndex { $0 >= stopAt } ?? pendingIds.count
            pendingIds.removeLast(pendingIds.count - keep)
            return .stopped(parse(before, final: true, truncated: false, stopped: true), tokenIds: takeIds())
        }
    }

    /// The end of generation (not by a stop string or the tool-call limit): the held-back text, minus a character cut
    /// off by the end (no chunk ever carries U+FFFD for it), through the parsers, and the ids not yet reported.
    /// `truncated`: the token limit ended it (an unfinished tool call is dropped). `stopped`: one of the request's
    /// `stop_token_ids` ended it (a call it cut is dropped, as after a stop string; helper-72: its markup came back as
    /// content). nil when there is nothing left.
    public mutating func finish(truncated: Bool = false, stopped: Bool = false) -> (parts: [GenerationDelta], tokenIds: [Int32])? {
        detokenizer.discardIncomplete()
        let parts = parse(stopMatcher.flush(), final: true, truncated: truncated, stopped: stopped)
        let ids = takeIds()
        return parts.isEmpty && ids.isEmpty ? nil : (parts, ids)
    }

    /// The pending ids whose text starts before scalar `limit` (all by default), removed from the pending list.
    private mutating func takeIds(before limit: Int = .max) -> [Int32] {
        let n = pendingStarts.firstIndex { $0 >= limit } ?? pendingIds.count
        defer {
            pendingIds.removeFirst(n)
            pendingStarts.removeFirst(n)
        }
        return Array(pendingIds[..<n])
    }

    /// Text → parts through the reasoning split, then the tool-call parser on the answer parts.
    private mutating func parse(_ text: String, final: Bool, truncated: Bool, stopped: Bool = false) -> [GenerationDelta] {
        let early = prefixCalls
        prefixCalls = []
        var parts = parseText(text, final: final, truncated: truncated, stopped: stopped)
        if !prefixHeld.isEmpty, let first = parts.firstIndex(where: {
            if case .reasoning = $0 { return false } else { return true } }) {
            // The first answer part decides: content that gives the held prefill text back starts with it; a call
            // means the markup was completed.
            if case .content(let c) = parts[first], c.hasPrefix(prefixHeld) {
                let rest = String(c.dropFirst(prefixHeld.count))
                if rest.isEmpty { parts.remove(at: first) } else { parts[first] = .content(rest) }
            }
            prefixHeld = ""
        }
        return early + parts
    }

    /// `stopped`: a stop string ended generation here (a call it cut is dropped, see `ToolCallParser.finish`).
    private mutating func parseText(_ text: String, final: Bool, truncated: Bool, stopped: Bool) -> [GenerationDelta] {
        var parts: [GenerationDelta]
        if reasoning != nil {
            parts = text.isEmpty ? [] : reasoning!.append(text)
            if final { parts += reasoning!.finish() }
        } else {
            parts = text.isEmpty ? [] : [.content(text)]
        }
        guard toolCalls != nil else { return parts }
        var out: [GenerationDelta] = []
        for p in parts {
            if case .content(let c) = p {
                out += toolCalls!.append(c)
                if wholeCalls != nil { _ = wholeCalls!.append(c) }
            } else {
                out.append(p)
            }
        }
        if final {
            out += toolCalls!.finish(truncated: truncated, stopped: stopped)
            if wholeCalls != nil { _ = wholeCalls!.finish(truncated: truncated, stopped: stopped) }
        }
        return out
    }
}
