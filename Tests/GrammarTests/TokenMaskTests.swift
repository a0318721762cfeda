import GGUF
import Grammar
import JSON
import TestSupport
import Tokenizer
import XCTest

/// Token masks on the real SmolLM2 vocabulary (49,152 tokens) against a brute-force check of every token: the
/// cached, trie-walked mask must equal "feed this token's bytes to the state and see if it survives".
final class TokenMaskTests: XCTestCase {
    static let tokenizer = try! Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))

    /// Walks `text` token by token (its own tokenization), comparing the mask at each state with brute force.
    static func compare(schema: String, text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let t = Self.tokenizer
        let vocab = TokenVocabulary(tokenizer: t, size: t.vocabSize)
        let g = try Grammar.jsonSchema(JSONValue(parsing: schema))
        let tg = TokenGrammar(grammar: g, vocabulary: vocab)
        var m = GrammarMatcher(tg)
        let ids = t.encode(text, addSpecial: false, parseSpecial: false)
        XCTAssertEqual(t.detokenize(ids), text, file: file, line: line)
        for (step, id) in (ids + [-1]).enumerated() {
            let mask = m.mask()
            var mismatches: [Int32] = []
            for cand in 0..<Int32(t.vocabSize) {
                var probe = m
                let ok: Bool
                if t.endOfGenerationIds.contains(cand) {
                    ok = m.isAccepting
                } else {
                    let bytes = t.tokenBytes(cand)
                    ok = !bytes.isEmpty && probe.accept(bytes: bytes)
                }
                if ok != mask.allows(cand) { mismatches.append(cand) }
            }
            XCTAssertEqual(mismatches.count, 0, "step \(step): mask differs for \(mismatches.prefix(5).map { t.tokenText($0) })", file: file, line: line)
            if id < 0 { break }
            XCTAssertTrue(mask.allows(id), "step \(step): the text's own token \(t.tokenText(id)) is masked", file: file, line: line)
            XCTAssertNotEqual(m.accept(id), .rejected, file: file, line: line)
        }
        XCTAssertTrue(m.isAccepting, file: file, line: line)
        XCTAssertTrue(m.mask().allows(t.eosTokenId!), file: file, line: line)
    }

    func testObjectMasksMatchBruteForce() throws {
        try Self.compare(schema: #"{"type":"object","properties":{"name":{"type":"string","maxLength":12},"n":{"type":"integer","minimum":-5,"maximum":300},"ok":{"type":"boolean"},"tags":{"type":"array","items":{"enum":["a b","c"]}}},"required":["name","n"]}"#,
                    text: #"{"name": "Ada Lovelace", "n": 42, "tags": ["a b", "c"]}"#)
    }

    func testAnyObjectAndFormatMasksMatchBruteForce() throws {
        try Self.compare(schema: #"{"type":"object"}"#, text: #"{"x": [1, 2.5, "y\n"], "z": {"w": null}}"#)
        try Self.compare(schema: #"{"type":"object","properties":{"d":{"type":"string","format":"date"},"p":{"type":"string","pattern":"^[a-z]+-[0-9]{2}$"}},"required":["d","p"]}"#,
                    text: #"{"d": "2024-05-17", "p": "abc-12"}"#)
    }

    /// A state with nothing but the end: only end-of-generation ids are allowed, and the matcher says complete.
    func testCompleteStateAllowsOnlyTheEnd() throws {
        let t = Self.tokenizer
        let vocab = TokenVocabulary(tokenizer: t, size: t.vocabSize)
        let tg = TokenGrammar(grammar: try Grammar.jsonSchema(JSONValue(parsing: #"{"const":{"a":1}}"#)), vocabulary: vocab)
        var m = GrammarMatcher(tg)
        XCTAssertFalse(m.mask().allows(t.eosTokenId!))
        var last = GrammarMatcher.Action.rejected
        for id in t.encode(#"{"a":1}"#, addSpecial: false, parseSpecial: false) { last = m.accept(id) }
        XCTAssertEqual(last, .completed)
        XCTAssertTrue(m.isComplete)
        let mask = m.mask()
        XCTAssertEqual(mask.count, t.endOfGenerationIds.count)
        for id in t.endOfGenerationIds { XCTAssertTrue(mask.allows(id)) }
        // Masking a logits row leaves only those finite.
        var row = [Float](repeating: 1, count: vocab.size)
        row.withUnsafeMutableBufferPointer { mask.apply(to: $0) }
        XCTAssertEqual(Set(row.indices.filter { row[$0].isFinite }.map { Int32($0) }), t.endOfGenerationIds)
    }
}
