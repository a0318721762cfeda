import Tokenizer

/// Turns one request's generated token ids into the text its client sees: incremental detokenization (whole
/// UTF-8 characters only), then stop strings (held back while they may still match, never emitted). A value
/// type driven by the engine thread, one per request; unit-testable without a model.
public struct OutputProcessor: Sendable {
    private var detokenizer: StreamingDetokenizer
    private var stopMatcher: StopStringMatcher
    /// Ids whose text has not been emitted yet (held back by the detokenizer or the stop matcher).
    private var pendingIds: [Int32] = []

    /// What one token produced.
    public enum Output: Equatable, Sendable {
        /// Text to emit now (empty: nothing yet) and the ids it completes.
        case text(String, tokenIds: [Int32])
        /// A stop string matched: emit this text before it, then the request is finished (`.stop`).
        case stopped(before: String, tokenIds: [Int32])
    }

    /// - Parameters: the vocabulary and the request's stop strings (empty strings are ignored).
    public init(tokenizer: Tokenizer, stop: [String]) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stopMatcher = StopStringMatcher(stops: stop)
    }

    /// The stop string that ended generation, nil unless `append` returned `.stopped`.
    public var matchedStop: String? { stopMatcher.matched }

    /// Feeds one generated token (not an end-of-generation token that ends the request).
    public mutating func append(_ token: Int32) -> Output {
        pendingIds.append(token)
        let piece = detokenizer.append(token)
        guard !piece.isEmpty else { return .text("", tokenIds: []) }
        switch stopMatcher.append(piece) {
        case .text(let t):
            guard !t.isEmpty else { return .text("", tokenIds: []) }
            defer { pendingIds.removeAll() }
            return .text(t, tokenIds: pendingIds)
        case .stopped(let before):
            defer { pendingIds.removeAll() }
            return .stopped(before: before, tokenIds: pendingIds)
        }
    }

    /// The end of generation (not by a stop string): the held-back text, minus a character cut off by the end (no
    /// chunk ever carries U+FFFD for it), and the ids not yet reported. nil when there is nothing left.
    public mutating func finish() -> (text: String, tokenIds: [Int32])? {
        detokenizer.discardIncomplete()
        let tail = stopMatcher.flush()
        defer { pendingIds.removeAll() }
        return tail.isEmpty && pendingIds.isEmpty ? nil : (tail, pendingIds)
    }
}
