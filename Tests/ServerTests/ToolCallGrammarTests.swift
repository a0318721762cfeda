import Engine
import Grammar
import JSON
import OpenAIAPI
import XCTest
@testable import Server

/// The grammars of tool calls: `tool_choice` `auto`'s lazy grammar after each format's trigger (text checked with
/// `Grammar.matches`, byte level) and the free tail that ends its stretch.
final class ToolCallGrammarTests: XCTestCase {
    let tools: [JSONValue] = [
        .object([("type", .string("function")), ("function", .object([
            ("name", .string("get_weather")), ("strict", .bool(true)),
            ("parameters", .object([("type", .string("object")),
                                    ("properties", .object([("city", .object([("enum", .array([.string("Paris"), .string("Rome")]))]))])),
                                    ("required", .array([.string("city")])), ("additionalProperties", .bool(false))])),
        ]))]),
        // A schema the grammar cannot enforce, not strict: enforced without `uniqueItems`.
        .object([("type", .string("function")), ("function", .object([
            ("name", .string("note")),
            ("parameters", .object([("type", .string("object")),
                                    ("properties", .object([("tags", .object([("type", .string("array")), ("uniqueItems", .bool(true))]))]))])),
        ]))]),
    ]

    func lazy(_ format: ToolCallFormat, parallel: Bool = true) throws -> Grammar {
        let calls = try SputnikServer.lazyToolCalls(format: format, tools: tools, parallel: parallel)
        XCTAssertEqual(calls.trigger, format.callTrigger)
        return try Grammar.build(calls.expr)
    }

    func testHermesStretchIsOneCallToADeclaredToolWithValidArguments() throws {
        let g = try lazy(.hermes)
        XCTAssertTrue(g.matches("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>"))
        XCTAssertTrue(g.matches("\n{\"name\": \"note\", \"arguments\": {\"tags\": [1, 1]}}\n</tool_call>"))
        XCTAssertFalse(g.acceptsPrefix("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"T"))
        XCTAssertFalse(g.acceptsPrefix("\n{\"name\": \"launch"))
        XCTAssertTrue(g.acceptsPrefix("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa"))
    }

    func testDeepSeekGroupsCallsAndClosesTheGroup() throws {
        let call = { (city: String) in
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"\(city)\"}\n```<｜tool▁call▁end｜>"
        }
        let g = try lazy(.deepSeekV3)
        XCTAssertTrue(g.matches(call("Paris") + "<｜tool▁calls▁end｜>"))
        XCTAssertTrue(g.matches(call("Paris") + call("Rome") + "<｜tool▁calls▁end｜>"))
        XCTAssertFalse(g.matches(call("Paris")))
        let one = try lazy(.deepSeekV3, parallel: false)
        XCTAssertFalse(one.matches(call("Paris") + call("Rome") + "<｜tool▁calls▁end｜>"))
    }

    /// A non-strict tool's schema is enforced without the keywords the grammar cannot enforce (they were all dropped:
    /// any object), under `auto` and forced calls alike (forced calls were 400s; helper-58).
    func testANonStrictToolKeepsTheEnforceablePartOfItsSchema() throws {
        let g = try lazy(.hermes)
        XCTAssertFalse(g.acceptsPrefix("\n{\"name\": \"note\", \"arguments\": {\"tags\": 5"))
        let forced = try SputnikServer.toolCallSkeletons(format: .hermes, tools: tools, names: ["note"])
        XCTAssertEqual(forced.map(\.name), ["note"])
        let relaxed = try XCTUnwrap(SputnikServer.relaxedSchema(.object([
            ("type", .string("object")), ("required", .array([.string("a/b")])),
            ("properties", .object([("a/b", .object([("type", .string("string")), ("maxLength", .int(5000))])),
                                    ("t~x", .object([("type", .string("array")), ("uniqueItems", .bool(true))]))]))])))
        XCTAssertEqual(relaxed.serialized(),
                       #"{"type":"object","required":["a/b"],"properties":{"a/b":{"type":"string"},"t~x":{"type":"array"}}}"#)
        XCTAssertNil(SputnikServer.relaxedSchema(.object([("type", .string("strin"))])))   // malformed: not relaxed
        // Length limits with a pattern: an unreadable pattern goes and the limits stay; a readable one stays and the
        // limits go (helper-60: the limits were dropped first, then the unreadable pattern too).
        func relax(_ text: String) throws -> String? { SputnikServer.relaxedSchema(try JSONValue(parsing: text))?.serialized() }
        XCTAssertEqual(try relax(#"{"type":"string","pattern":"^(?!x)[a-z]+$","minLength":2,"maxLength":4}"#),
                       #"{"type":"string","minLength":2,"maxLength":4}"#)
        XCTAssertEqual(try relax(#"{"type":"string","pattern":"^[a-z]+$","minLength":2,"maxLength":4}"#),
                       #"{"type":"string","pattern":"^[a-z]+$"}"#)
        // Many unenforceable keywords (a large generated schema): all removed (the bound was 64 removals).
        let props = (0..<100).map { #""p\#($0)":{"type":"array","uniqueItems":true}"# }.joined(separator: ",")
        XCTAssertNotNil(try relax(#"{"type":"object","properties":{"# + props + "}}"))
    }

    func testAStrictToolWhoseSchemaCannotBeEnforcedIs400() {
        var strict = tools
        strict[1] = .object([("type", .string("function")), ("function", .object([
            ("name", .string("note")), ("strict", .bool(true)),
            ("parameters", .object([("type", .string("object")),
                                    ("properties", .object([("tags", .object([("type", .string("array")), ("uniqueItems", .bool(true))]))]))])),
        ]))])
        XCTAssertThrowsError(try SputnikServer.lazyToolCalls(format: .hermes, tools: strict, parallel: true)) { e in
            XCTAssertEqual((e as? APIError)?.param, "tools[1].function.parameters.properties.tags.uniqueItems")
        }
    }

    /// The lazy grammar ends in a free tail: after the stretch every byte is allowed and the state stays put, so one
    /// token may close the call and begin free text.
    func testLazyGrammarEndsInAFreeTail() throws {
        let lazy = try LazyGrammar(trigger: "<tool_call>", stretch: .literal("ab"))
        let vocabulary = TokenVocabulary(tokens: (0...255).map { [UInt8($0)] } + [[]], size: 257, endOfGeneration: [256])
        var m = GrammarMatcher(TokenGrammar(grammar: lazy.grammar, vocabulary: vocabulary))
        XCTAssertFalse(m.isFree)
        XCTAssertTrue(m.accept(byte: UInt8(ascii: "a")))
        XCTAssertFalse(m.isFree)
        XCTAssertFalse(m.accept(byte: UInt8(ascii: "x")))
        XCTAssertTrue(m.accept(byte: UInt8(ascii: "b")))
        XCTAssertTrue(m.isFree)
        XCTAssertTrue(m.accept(bytes: Array("<anything>\u{0}".utf8)))
        XCTAssertTrue(m.isFree)
    }
}
