import Engine
import OpenAIAPI
import Tokenizer

/// The legacy completions `text_offset` of each token: the Unicode scalars of text completed before it, counted
/// the way the text itself is made (a `StreamingDetokenizer` without control-token text). A token that starts or
/// ends inside a UTF-8 character therefore points at the character its bytes complete, bytes that never become
/// text (dropped, C04) move no offset, and a BOS token adds nothing; counting each token's U+FFFD-rendered piece
/// instead ran past the text on every character spread over byte tokens.
struct TextOffsets {
    private var detokenizer: StreamingDetokenizer
    /// Scalars of text counted so far.
    private(set) var scalars: Int

    init(tokenizer: Tokenizer, start: Int = 0) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        scalars = start
    }

    /// The offset of token `id` (at most `limit`: the text the caller has), then counts its text (a control token's
    /// too when `renderSpecial`).
    mutating func next(_ id: Int32, limit: Int = .max, renderSpecial: Bool = false) -> Int {
        defer { scalars += detokenizer.append(id, renderSpecial: renderSpecial).unicodeScalars.count }
        return min(scalars, limit)
    }

    /// Sets the count to the text the caller actually has (`n` scalars), e.g. after a stop string cut it.
    mutating func sync(_ n: Int) { scalars = n }
}

/// Engine log-probabilities → OpenAI's shapes (chat `logprobs.content[]`, legacy completions `logprobs`).
extension SputnikServer {
    /// Chat entries: each token's text (bytes of a partial UTF-8 character render as U+FFFD in `token`, whole in
    /// `bytes`), its log-probability and its alternatives. `entries`: one per generated token.
    func chatLogprobs(_ entries: [TokenLogprobs]) -> [TokenLogprob] {
        entries.map { e in
            let (text, bytes) = tokenPiece(e.tokenId)
            return TokenLogprob(token: text, logprob: Self.wireLogprob(e.logprob), bytes: bytes,
                                topLogprobs: e.top.map { a in
                                    let (t, b) = tokenPiece(a.tokenId)
                                    return TopLogprob(token: t, logprob: Self.wireLogprob(a.logprob), bytes: b)
                                })
        }
    }

    /// A token's bytes as detokenization produces them (special tokens rendered as their text) and those bytes
    /// decoded as UTF-8 with U+FFFD for a partial character.
    func tokenPiece(_ id: Int32) -> (String, [UInt8]) {
        let bytes = engine.tokenizer.tokenBytes(id, renderSpecial: true)
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }

    /// An f32 log-probability as the JSON number a client reads: its shortest decimal form, and -9999 (OpenAI's
    /// floor) for a banned token's -∞.
    static func wireLogprob(_ x: Float) -> Double {
        guard x.isFinite else { return -9999 }
        return Double(x.description) ?? Double(x)
    }
}
