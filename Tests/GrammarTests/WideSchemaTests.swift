import Foundation
import Grammar
import JSON
import XCTest

/// Schemas with thousands of optional properties or enum values, where a matcher state holds one stack per
/// property or value. The stacks are expanded without recursion (a chain of optional properties once recursed once
/// per property: 100,000 of them overflowed the engine thread's stack and killed the server), and a schema's size
/// is bounded (`JSONSchemaCompiler.maxProperties`, `maxAlternatives`).
final class WideSchemaTests: XCTestCase {
    /// Runs `body` on a thread with a 256 KiB stack (half a dispatch worker's), so recursion per property fails here.
    func onSmallStack(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let t = Thread { body(); done.signal() }
        t.stackSize = 256 << 10
        t.start()
        done.wait()
    }

    static func optionalProperties(_ n: Int) -> JSONValue {
        .object([("type", .string("object")),
                 ("properties", .object((0..<n).map { ("p\($0)", .object([("type", .string("integer"))])) }))])
    }

    func testFiveThousandOptionalPropertiesOnASmallStack() throws {
        let g = try Grammar.jsonSchema(Self.optionalProperties(5000))
        let results = Results()
        onSmallStack {
            results.prefix = g.acceptsPrefix(#"{"p4998": 1, "p4999""#)
            results.inOrder = g.matches(#"{"p17": 3, "p4999": 4}"#)
            results.outOfOrder = g.matches(#"{"p4999": 4, "p17": 3}"#)
            let tg = TokenGrammar(grammar: g, vocabulary: SchemaGrammarTests.byteVocabulary)
            var m = GrammarMatcher(tg)
            results.tokenAccepts = m.accept(bytes: Array(#"{"p17": 3, "p4999": 4"#.utf8))
            let mask = m.mask()
            results.closeAllowed = mask.allows(Int32(UInt8(ascii: "}")))
            results.commaAllowed = mask.allows(Int32(UInt8(ascii: ",")))
            var first = GrammarMatcher(tg)
            _ = first.accept(bytes: Array(#"{"#.utf8))
            results.quoteAllowed = first.mask().allows(Int32(UInt8(ascii: "\"")))
        }
        XCTAssertTrue(results.prefix)
        XCTAssertTrue(results.inOrder)
        XCTAssertFalse(results.outOfOrder, "properties come in the schema's order")
        XCTAssertTrue(results.tokenAccepts)
        XCTAssertTrue(results.closeAllowed, "the object may close after the last property")
        XCTAssertFalse(results.commaAllowed, "no property may follow the last one")
        XCTAssertTrue(results.quoteAllowed)
    }

    /// Enum values share their prefixes (a trie of rules): the matcher's state stays a few stacks wide where it
    /// held one stack per value, and exactly the values match.
    func testEnumValuesShareTheirPrefixes() throws {
        let values = (0..<10_000).map { JSONValue.string(String(format: "value-%05d", $0)) }
        let g = try Grammar.jsonSchema(.object([("enum", .array(values))]))
        var m = GrammarMatcher(TokenGrammar(grammar: g, vocabulary: SchemaGrammarTests.byteVocabulary))
        XCTAssertLessThanOrEqual(m.state.count, 1)
        XCTAssertTrue(m.accept(bytes: Array(#""value-0"#.utf8)))
        XCTAssertLessThanOrEqual(m.state.count, 10, "one stack per next digit, not one per value")
        XCTAssertTrue(m.accept(bytes: Array(#"4217""#.utf8)))
        XCTAssertTrue(m.isComplete)
        XCTAssertTrue(g.matches(#""value-09999""#))
        XCTAssertFalse(g.matches(#""value-10000""#))
        XCTAssertFalse(g.matches(#""value-0999""#))
        // Values that are prefixes of others, duplicates, the empty string, and values of other types.
        let mixed = try Grammar.jsonSchema(JSONValue(parsing: #"{"enum":["a","ab","abc","b","","ba","ab",1,10,null,{"k":[1]}]}"#))
        let tg = TokenGrammar(grammar: mixed, vocabulary: SchemaGrammarTests.byteVocabulary)
        for text in [#""a""#, #""ab""#, #""abc""#, #""b""#, #""""#, #""ba""#, "1", "10", "null", #"{"k":[1]}"#] {
            XCTAssertTrue(mixed.matches(text), text)
            var tm = GrammarMatcher(tg)
            XCTAssertTrue(tm.accept(bytes: Array(text.utf8)) && tm.isAccepting, text)
        }
        for text in [#""abcd""#, #""c""#, "100", "0", #""""""#, #"{"k":[2]}"#] {
            XCTAssertFalse(mixed.matches(text), text)
        }
    }

    func testSizeLimits() throws {
        XCTAssertNoThrow(try Grammar.jsonSchema(Self.optionalProperties(5000)))
        XCTAssertThrowsError(try Grammar.jsonSchema(Self.optionalProperties(5001))) { e in
            guard case GrammarError.unsupported(let keyword, _, let reason)? = e as? GrammarError else { return XCTFail("\(e)") }
            XCTAssertEqual(keyword, "properties")
            XCTAssertTrue(reason.contains("5000"), reason)
        }
        // Properties count over the whole schema, nested objects included.
        let nested = JSONValue.object([("type", .string("object")), ("properties", .object([
            ("a", Self.optionalProperties(3000)), ("b", Self.optionalProperties(3000))]))])
        XCTAssertThrowsError(try Grammar.jsonSchema(nested))
        func enumOf(_ n: Int) -> JSONValue { .object([("enum", .array((0..<n).map { .string("v\($0)") }))]) }
        XCTAssertNoThrow(try Grammar.jsonSchema(enumOf(10_000)))
        XCTAssertThrowsError(try Grammar.jsonSchema(enumOf(10_001))) { e in
            guard case GrammarError.unsupported(let keyword, _, _)? = e as? GrammarError else { return XCTFail("\(e)") }
            XCTAssertEqual(keyword, "enum")
        }
        let branches = JSONValue.object([("anyOf", .array((0..<10_001).map { .object([("const", .int($0))]) }))])
        XCTAssertThrowsError(try Grammar.jsonSchema(branches))
        // Literal text (enum and const values, property names): at most 1 MiB in all.
        let long = String(repeating: "x", count: 200_000)
        XCTAssertNoThrow(try Grammar.jsonSchema(.object([("enum", .array((0..<5).map { .string(long + "\($0)") }))])))
        XCTAssertThrowsError(try Grammar.jsonSchema(.object([("enum", .array((0..<6).map { .string(long + "\($0)") }))]))) { e in
            guard case GrammarError.unsupported(let keyword, _, let reason)? = e as? GrammarError else { return XCTFail("\(e)") }
            XCTAssertEqual(keyword, "enum")
            XCTAssertTrue(reason.contains("bytes"), reason)
        }
    }
}

private final class Results: @unchecked Sendable {
    var prefix = false, inOrder = false, outOfOrder = true, tokenAccepts = false
    var closeAllowed = false, commaAllowed = true, quoteAllowed = false
}
