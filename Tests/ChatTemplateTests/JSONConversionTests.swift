import Foundation
import JSON
import XCTest

@testable import ChatTemplate

/// JSON ⇄ template values; expected strings are what Python's `json.loads` + jinja2 3.1.6 with the Hugging Face
/// `tojson` (`json.dumps(x, ensure_ascii=False, indent=indent)`) print for the same input.
final class JSONConversionTests: XCTestCase {
    func render(_ src: String, _ vars: [String: JinjaValue] = [:]) throws -> String {
        try ChatTemplate(source: src).render(messages: .array([]), tools: nil, addGenerationPrompt: false,
                                             bosToken: nil, eosToken: nil, extra: vars)
    }

    func testInitFromJSONBuildsWhatJSONLoadsBuilds() throws {
        let json = try JSONValue(parsing: #"""
            {"b": 1, "a": [2.0, 3e2, -4, -0, 9223372036854775807, 9223372036854775808, "é😀", true, null], "b": {"x": {}}}
            """#)
        guard case .object(let o) = JinjaValue(json: json) else { return XCTFail("not an object") }
        XCTAssertEqual(o.keys, ["b", "a"])  // a repeated key keeps its first position and its last value
        XCTAssertEqual(o["b"], ["x": [:]])
        XCTAssertEqual(o["a"], .array([.double(2), .double(300), .int(-4), .int(0), .int(Int.max),
                                       .double(9223372036854775808.0), .string("é😀"), .bool(true), .null]))
        XCTAssertEqual(JinjaValue(json: .array([])), .array([]))
        XCTAssertEqual(JinjaValue(json: .string("")), .string(""))
    }

    func testToolSchemaRoundTripsAsPythonPrintsIt() throws {
        let text = #"""
            {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "Ville \u00e0 \"Paris\"\n\u0007\ud83d\ude00\u2028"}}, "required": ["city"]}, "n": 1.5e-7, "big": 1e16, "f": 2.0, "i": -0, "e": 3E2}
            """#
        let python = "{\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
            + "{\"type\": \"string\", \"description\": \"Ville à \\\"Paris\\\"\\n\\u0007😀\u{2028}\"}}, \"required\": [\"city\"]}, "
            + "\"n\": 1.5e-07, \"big\": 1e+16, \"f\": 2.0, \"i\": 0, \"e\": 300.0}"
        let tool = JinjaValue(json: try JSONValue(parsing: text))
        XCTAssertEqual(try render("{{ t | tojson }}", ["t": tool]), python)
        XCTAssertEqual(tool.jsonString(), python)
        XCTAssertEqual(try JinjaValue.fromJSON(Data(text.utf8)), tool)
    }

    func testToJSONOfPythonOnlyValues() throws {
        XCTAssertEqual(try render("{{ [(1, 'a'), 1e400, -1e400] | tojson }}|{{ (1e400 - 1e400) | tojson }}"),
                       #"[[1, "a"], Infinity, -Infinity]|NaN"#)
        XCTAssertEqual(try render("{{ {'k': (1,)} | tojson(indent=1) }}"), "{\n \"k\": [\n  1\n ]\n}")
        XCTAssertThrowsError(try render("{{ x | tojson }}")) { error in
            XCTAssertTrue("\(error)".contains("Object of type Undefined is not JSON serializable"), "\(error)")
        }
        XCTAssertEqual(JinjaValue.array([.int(1), .undefined]).jsonString(), "null")
    }

    func testFromJSONErrorsNameTheOffset() {
        XCTAssertThrowsError(try JinjaValue.fromJSON(Data(#"{"a": 1,}"#.utf8))) { error in
            XCTAssertEqual("\(error)".contains("expected a string key at byte 8"), true, "\(error)")
        }
        XCTAssertThrowsError(try JinjaValue.fromJSON(Data("\"a\u{01}\"".utf8)))  // strict: raw control character
    }
}
