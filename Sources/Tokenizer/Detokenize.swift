extension Tokenizer {
    /// The bytes one token contributes to detokenized text (llama.cpp `llama_token_to_piece(id, lstrip: 0,
    /// special: renderSpecial)`): byte-level BPE text mapped back to bytes, `▁` → space for SentencePiece, byte
    /// tokens `<0xNN>` as their byte. Control and unknown tokens give `[]` unless `renderSpecial`.
    public func tokenBytes(_ id: Int32, renderSpecial: Bool = false) -> [UInt8] {
        precondition(id >= 0 && Int(id) < vocabSize, "token id \(id) out of range 0..<\(vocabSize)")
        return renderSpecial ? specialPieces[Int(id)] : pieces[Int(id)]
    }

    /// Token ids to text, as llama.cpp's `llama_detokenize(ids, remove_special: false, unparse_special:
    /// renderSpecial)`: pieces concatenated, the SentencePiece prefix space of the first token removed, and for BPE
    /// vocabularies that ask for it the `clean_up_tokenization_spaces` rules (" ." → ".", " 's" → "'s", ...).
    /// Bytes that are not valid UTF-8 become U+FFFD.
    /// - Parameter ids: token ids, [numTokens]; each must be in 0..<vocabSize.
    public func detokenize(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        String(decoding: detokenizeBytes(ids, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// `detokenize` before UTF-8 decoding: [numBytes].
    public func detokenizeBytes(_ ids: [Int32], renderSpecial: Bool = false) -> [UInt8] {
        var text: [UInt8] = []
        var removeSpace = addSpacePrefix
        for id in ids {
            let p = tokenBytes(id, renderSpecial: renderSpecial)
            if removeSpace, let f = p.first, f == 0x20 { text.append(contentsOf: p[1...]) } else { text.append(contentsOf: p) }
            removeSpace = false
        }
        if cleanSpaces { Self.cleanUpSpaces(&text) }
        return text
    }

    /// llama.cpp's three clean-up passes over detokenized bytes (HF `clean_up_tokenization`).
    static func cleanUpSpaces(_ t: inout [UInt8]) {
        let sp: UInt8 = 0x20, ap: UInt8 = 0x27
        // 1: " ?", " !", " .", " ," lose the space.
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        for (i, x) in t.enumerated() {
            if i > 0, t[i - 1] == sp, x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C { out.removeLast() }
            out.append(x)
        }
        t = out
        // 2: " ' " → "'" (a single apostrophe between spaces).
        out.removeAll(keepingCapacity: true)
        var i = 0
        let buf = t
        while i < buf.count {
            let x = buf[i]
            if i > 0, x == ap, i + 1 < buf.count, buf[i - 1] == sp, buf[i + 1] == sp {
                out.removeLast()     // drop the space before ...
                out.append(x); i += 2  // ... and the one after
                continue
            }
            out.append(x); i += 1
        }
        t = out
        // 3: " 's", " 'm", " 're", " 've" lose the space.
        out.removeAll(keepingCapacity: true)
        for (i, x) in t.enumerated() {
            if i > 0, t[i - 1] == sp, x == ap, i + 1 < t.count {
                let x1 = t[i + 1]
                if x1 == 0x73 || x1 == 0x6D { out.removeLast() }
                else if i + 2 < t.count, (x1 == 0x72 || x1 == 0x76), t[i + 2] == 0x65 { out.removeLast() }
            }
            out.append(x)
        }
        t = out
    }
}

/// Turns a stream of token ids into text chunks that never split a UTF-8 character.
///
/// Each `append` returns the text completed by that token; bytes of an incomplete character are held back until
/// a later token completes them (e.g. an emoji spread over byte tokens), so valid text never shows U+FFFD. Bytes
/// that can never become valid UTF-8 (a model can emit them) become U+FFFD, one per maximal invalid subpart, as
/// decoding all the bytes at once gives them (`/detokenize`, `echo`, vLLM and llama-server do the same; they were
/// dropped, so the text lost what the model wrote and no longer matched its tokens' bytes: helper-61); an
/// incomplete tail is rendered by `flush` (or dropped by `discardIncomplete`) at the end.
public struct StreamingDetokenizer: Sendable {
    /// The vocabulary the ids belong to.
    public let tokenizer: Tokenizer
    /// Whether control tokens contribute their text (as `Tokenizer.tokenBytes(_:renderSpecial:)`).
    public let renderSpecial: Bool
    /// Bytes not yet returned: [numPendingBytes] (at most 3 after each `append`, unless invalid bytes intervene).
    private var pending: [UInt8] = []

    /// A detokenizer with an empty buffer.
    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Appends one token; returns the newly completed text (may be "" while a UTF-8 character is incomplete).
    /// Pieces are `tokenBytes(id)` (llama.cpp `token_to_piece`, no clean-up), what a streaming server emits.
    /// `renderSpecial` overrides the detokenizer's setting for this token (e.g. a control token that is markup an
    /// output parser reads, like Qwen's `<tool_call>`).
    public mutating func append(_ id: Int32, renderSpecial: Bool? = nil) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id, renderSpecial: renderSpecial ?? self.renderSpecial))
        var i = 0
        while i < pending.count {
            let n = UTF8Util.sequenceLength(pending, at: i)
            if n < 0 { break }   // incomplete: wait for more bytes (C04)
            i += max(n, 1)       // a character, or a byte that can never be valid (decoded as U+FFFD below)
        }
        if i == 0 { return "" }
        defer { pending.removeFirst(i) }
        return String(decoding: pending[..<i], as: UTF8.self)
    }

    /// Returns any held-back bytes (an incomplete character is rendered as U+FFFD here) and empties the buffer.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Ends the stream the way a server should when generation stops mid-character (e.g. at `max_tokens`): the
    /// incomplete tail can never become text, so it is dropped instead of being rendered as U+FFFD.
    /// - Returns: the number of bytes dropped.
    @discardableResult
    public mutating func discardIncomplete() -> Int {
        defer { pending.removeAll() }
        return pending.count
    }
}
