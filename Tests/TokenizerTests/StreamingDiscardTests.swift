import GGUF
import TestSupport
import Tokenizer
import XCTest

/// Generation that stops in the middle of a character (max_tokens) must not surface U+FFFD (failure case C04).
final class StreamingDiscardTests: XCTestCase {
    func testIncompleteTailIsDroppedNotRendered() throws {
        let t = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        // Byte-level BPE has a token for every single byte: find the ones for 0xF0 0x9F (the start of 🌍).
        func byteToken(_ b: UInt8) -> Int32 {
            Int32((0..<t.vocabSize).first { t.tokenBytes(Int32($0)) == [b] }!)
        }
        var d = StreamingDetokenizer(tokenizer: t)
        XCTAssertEqual(d.append(t.encode("ok ", addSpecial: false, parseSpecial: false)[0]), "ok")
        XCTAssertEqual(d.append(byteToken(0xF0)), "")
        XCTAssertEqual(d.append(byteToken(0x9F)), "")
        XCTAssertEqual(d.discardIncomplete(), 2)
        XCTAssertEqual(d.flush(), "", "nothing is left after discarding")
        // The same bytes completed form the character.
        var e = StreamingDetokenizer(tokenizer: t)
        var out = ""
        for b: UInt8 in [0xF0, 0x9F, 0x8C, 0x8D] { out += e.append(byteToken(b)) }
        XCTAssertEqual(out, "🌍")
        XCTAssertEqual(e.discardIncomplete(), 0)
    }

    /// Bytes a model wrote that can never be valid UTF-8 are U+FFFD, as decoding all the bytes at once gives (they
    /// were dropped: the text lost them and no longer matched its tokens' bytes; helper-61).
    func testBytesThatCanNeverBeValidBecomeReplacementCharacters() throws {
        let t = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        func byteToken(_ b: UInt8) -> Int32 {
            Int32((0..<t.vocabSize).first { t.tokenBytes(Int32($0)) == [b] }!)
        }
        var d = StreamingDetokenizer(tokenizer: t)
        var out = d.append(byteToken(0x80))          // a lone continuation byte
        out += d.append(byteToken(0xE6))             // a lead byte interrupted by ASCII
        out += d.append(byteToken(UInt8(ascii: "A")))
        out += d.flush()
        XCTAssertEqual(out, "\u{FFFD}\u{FFFD}A")
        XCTAssertEqual(out, String(decoding: [0x80, 0xE6, 0x41] as [UInt8], as: UTF8.self))
        // A truncated sequence interrupted by an invalid byte: one U+FFFD per maximal subpart, as whole decoding.
        var e = StreamingDetokenizer(tokenizer: t)
        var streamed = ""
        let bytes: [UInt8] = [0x61, 0xF0, 0x9F, 0x41, 0x80, 0x80, 0x62, 0xE2, 0x82]
        for b in bytes { streamed += e.append(byteToken(b)) }
        streamed += e.flush()
        XCTAssertEqual(streamed, String(decoding: bytes, as: UTF8.self))
    }
}
