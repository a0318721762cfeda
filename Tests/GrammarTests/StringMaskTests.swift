@testable import Grammar
import GGUF
import JSON
import TestSupport
import Tokenizer
import XCTest

/// String content takes its token masks from the vocabulary's shared string sets (`StringTokenSets`): the body's
/// tokens, filtered by the characters each starts against the `minLength` / `maxLength` counts left. These tests
/// hold those masks to brute force and to the per-position vocabulary walk they replace.
final class StringMaskTests: XCTestCase {
    func testBoundedStringMasksMatchBruteForceAtTheLimits() throws {
        // Escapes (2 and 6 bytes), 2- and 3-byte UTF-8 and a quote escape, each one character; exactly at maxLength,
        // exactly at minLength, and a string with only a lower bound.
        try TokenMaskTests.compare(schema: #"{"type":"object","properties":{"a":{"type":"string","minLength":3,"maxLength":6},"b":{"type":"string","minLength":2},"c":{"type":"string","maxLength":4}},"required":["a","b","c"]}"#,
                                    text: #"{"a": "é\"x\u00e9日n", "b": "ab", "c": "four"}"#)
        try TokenMaskTests.compare(schema: #"{"type":"array","items":{"type":"string","minLength":5,"maxLength":5}}"#,
                                    text: #"["hello", "a\\b\tc", "     "]"#)
    }

    /// Token sequences drawn from the masks (long tokens first, so the walks reach the bounds with tokens that
    /// overshoot them): at every state the shared masks equal a grammar's own per-position walk.
    func testSharedStringMasksEqualThePerPositionWalk() throws {
        let t = TokenMaskTests.tokenizer
        let vocab = TokenVocabulary(tokenizer: t, size: t.vocabSize)
        let schemas = [
            #"{"type":"object","properties":{"s":{"type":"string","minLength":20,"maxLength":40},"t":{"type":"string","maxLength":3}},"required":["s","t"]}"#,
            #"{"type":"array","items":{"type":"string","minLength":30},"maxItems":2}"#,
            #"{"type":"string","maxLength":90}"#,
        ]
        var rng = XorShift(state: 7)
        var steps = 0
        for schema in schemas {
            let g = try Grammar.jsonSchema(JSONValue(parsing: schema))
            XCTAssertFalse(g.stringRules.isEmpty)
            let shared = TokenGrammar(grammar: g, vocabulary: vocab)
            let own = TokenGrammar(grammar: g, vocabulary: vocab, sharesStringMasks: false)
            for walk in 0..<6 {
                var a = GrammarMatcher(shared), b = GrammarMatcher(own)
                for _ in 0..<60 {
                    let ma = a.mask(), mb = b.mask()
                    let diff = (0..<Int32(t.vocabSize)).filter { ma.allows($0) != mb.allows($0) }
                    XCTAssertEqual(diff.count, 0, "\(schema) walk \(walk): masks differ at state \(a.state) for \(diff.prefix(5).map { (t.tokenText($0), ma.allows($0)) })")
                    guard ma == mb else { return }
                    steps += 1
                    let allowed = (0..<Int32(t.vocabSize)).filter { ma.allows($0) && !t.endOfGenerationIds.contains($0) }
                    if allowed.isEmpty { break }
                    // Half the time the longest allowed token, else any.
                    let pick = rng.next() % 2 == 0 ? allowed.max { vocab.bytes(of: $0).count < vocab.bytes(of: $1).count }!
                                                   : allowed[Int(rng.next() % UInt64(allowed.count))]
                    XCTAssertNotEqual(a.accept(pick), .rejected)
                    XCTAssertNotEqual(b.accept(pick), .rejected)
                }
            }
        }
        XCTAssertGreaterThan(steps, 300)
    }

    /// Each distinct pair of bounds unrolls one rule per character; their sum is bounded (a schema of 200 strings with
    /// distinct bounds near 2,000 took 20 s before its first token), equal bounds count once.
    func testDistinctBoundsAreLimited() throws {
        func fields(_ n: Int, _ bound: (Int) -> Int) -> JSONValue {
            .object([("type", .string("object")), ("properties", .object((0..<n).map {
                ("f\($0)", .object([("type", .string("string")), ("maxLength", .number(String(bound($0))))]))
            }))])
        }
        XCTAssertThrowsError(try Grammar.jsonSchema(fields(10, { 2000 - $0 }))) { error in
            guard case GrammarError.unsupported(let k, let path, _)? = error as? GrammarError else { return XCTFail("\(error)") }
            XCTAssertEqual(k, "maxLength")
            XCTAssertTrue(path.hasPrefix("/properties/f"), path)
        }
        _ = try Grammar.jsonSchema(fields(200, { _ in 2000 }))
        _ = try Grammar.jsonSchema(fields(150, { 20 + $0 }))
    }

    func testCharactersStartedByAToken() {
        func n(_ s: String, skip: Int = 0) -> Int32 { StringTokenSets.charsStarted(Array(s.utf8)[...], skip: skip).chars }
        XCTAssertEqual(n("abc"), 3)
        XCTAssertEqual(n(#"a\"b"#), 3)             // \" is one character
        XCTAssertEqual(n(#"\u00e9x"#), 2)          // \u00e9 is one
        XCTAssertEqual(n("é日😀"), 3)              // 2-, 3- and 4-byte UTF-8
        XCTAssertEqual(n(#"ab", "#), 2)            // stops at the closing quote
        XCTAssertTrue(StringTokenSets.charsStarted(Array(#"a""#.utf8)[...], skip: 0).closes)
        XCTAssertFalse(StringTokenSets.charsStarted(Array(#"a\""#.utf8)[...], skip: 0).closes)
        XCTAssertEqual(n("00e9z", skip: 4), 1)     // the rest of a \u escape, then one character
        XCTAssertEqual(n(#"\"#), 1)                // a token ending inside an escape started it
    }
}
