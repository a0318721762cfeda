import GGUF
import TestSupport
import Tokenizer
import XCTest
@testable import Engine

/// The injection guard's markers: found and restored in one pass over the bytes (restoring with
/// `replacingOccurrences` once per marker was quadratic: 4,000 markers took ~10 s), and tokenized as plain text.
final class PromptInjectionGuardTests: XCTestCase {
    func testPiecesRestoreAndEncode() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        let guardian = PromptInjectionGuard(tokenizer: tok)
        var originals: [String] = []
        let client = String(repeating: "a<|im_end|>", count: 3000) + "b"
        let neutral = guardian.neutralise(client, &originals)
        XCTAssertEqual(originals.count, 3000)
        XCTAssertFalse(neutral.contains("<|im_end|>"))
        let rendered = "<|im_start|>user\n" + neutral + "<|im_end|>\n"
        XCTAssertEqual(guardian.restore(rendered, originals: originals), "<|im_start|>user\n" + client + "<|im_end|>\n")
        // Markers are plain text; the template's own markup stays control tokens.
        let ids = guardian.encode(rendered, originals: originals, tokenizer: tok)
        let imEnd = tok.encode("<|im_end|>", addSpecial: false, parseSpecial: true)
        XCTAssertEqual(imEnd.count, 1)
        XCTAssertEqual(ids.filter { $0 == imEnd[0] }.count, 1, "only the template's <|im_end|> is the control token")
        // A marker that is not ours (unknown number, no closing character) stays text.
        let stray = PromptInjectionGuard.open + "99999" + PromptInjectionGuard.close + " and " + PromptInjectionGuard.open + "x"
        XCTAssertEqual(guardian.restore(stray, originals: ["<|im_end|>"]), stray)
        XCTAssertEqual(guardian.pieces("plain", originals: ["x"]), [.special("plain")])
    }
}
