import XCTest
import JSON

final class JSONValueTests: XCTestCase {
    func testRoundTripKeepsOrderAndNumberText() throws {
        let text = #"{"z":1,"a":[true,false,null,-0.5e+3,12345678901234567890],"m":{"y":"x","b":{}},"e":[]}"#
        let v = try JSONValue(parsing: text)
        XCTAssertEqual(v.serialized(), text)
        XCTAssertEqual(v.objectValue?.map(\.key), ["z", "a", "m", "e"])
        XCTAssertEqual(v["a"]?.arrayValue?[3].doubleValue, -500)
        XCTAssertEqual(v["z"]?.intValue, 1)
    }

    func testWhitespaceEscapesAndUnicode() throws {
        let v = try JSONValue(parsing: " \n{ \"s\" : \"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00 世界\" } \t")
        XCTAssertEqual(v["s"]?.stringValue, "a\"b\\c/d\né😀 世界")
        XCTAssertEqual(v.serialized(), "{\"s\":\"a\\\"b\\\\c/d\\né😀 世界\"}")
        XCTAssertEqual(try JSONValue(parsing: "\"\\ud800x\"").stringValue, "\u{FFFD}x")
        XCTAssertEqual(JSONValue.string("\u{01}\t\u{2028}").serialized(), "\"\\u0001\\t\\u2028\"")
    }

    func testDuplicateKeysLastWins() throws {
        let v = try JSONValue(parsing: #"{"a":1,"a":2}"#)
        XCTAssertEqual(v["a"]?.intValue, 2)
        XCTAssertEqual(v.serialized(), #"{"a":1,"a":2}"#)
    }

    func testIntValue() {
        XCTAssertEqual(JSONValue.number("3.0").intValue, 3)
        XCTAssertEqual(JSONValue.number("3e2").intValue, 300)
        XCTAssertNil(JSONValue.number("3.5").intValue)
        XCTAssertNil(JSONValue.string("3").intValue)
    }

    func testDoubleFormatting() {
        XCTAssertEqual(JSONValue.double(0.7).serialized(), "0.7")
        XCTAssertEqual(JSONValue.double(2).serialized(), "2.0")
        XCTAssertEqual(JSONValue.double(-1.5e-7).serialized(), "-1.5e-07")
        XCTAssertEqual(JSONValue.double(.nan).serialized(), "null")
        XCTAssertEqual(JSONValue.int(-42).serialized(), "-42")
    }

    func testInvalidDocumentsAreRejected() {
        let bad: [[UInt8]] = [
            Array("{".utf8), Array("{\"a\"}".utf8), Array("{\"a\":1,}".utf8), Array("[1,]".utf8),
            Array("01".utf8), Array("1.".utf8), Array("-".utf8), Array("1e".utf8), Array("tru".utf8), Array("nul".utf8),
            Array("\"abc".utf8), Array("\"a\tb\"".utf8), Array("\"\\x\"".utf8), Array("\"\\u12G4\"".utf8),
            Array("{} {}".utf8), Array("{'a':1}".utf8), [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22],
            Array(String(repeating: "[", count: 600).utf8) + Array(String(repeating: "]", count: 600).utf8),
        ]
        for b in bad {
            do {
                _ = try JSONValue(parsing: b)
                XCTFail("accepted \(String(decoding: b, as: UTF8.self).debugDescription)")
            } catch {
                XCTAssertFalse(error.isEmptyInput)
                XCTAssertLessThanOrEqual(error.offset, b.count)
            }
        }
        let atDepthLimit = String(repeating: "[", count: JSONValue.maxParseDepth) + String(repeating: "]", count: JSONValue.maxParseDepth)
        XCTAssertNoThrow(try JSONValue(parsing: atDepthLimit))
        XCTAssertThrowsError(try JSONValue(parsing: "[" + atDepthLimit + "]"))
    }

    func testErrorsNameTheProblemAndItsOffset() {
        func failure(_ text: String) -> JSONParseError? {
            do { _ = try JSONValue(parsing: text); return nil } catch { return error }
        }
        XCTAssertEqual(failure(#"{"a":1,}"#)?.description, "expected a string key at byte 7")
        XCTAssertEqual(failure("[1 2]")?.description, "expected ',' or ']' at byte 3")
        XCTAssertEqual(failure("{} {}")?.description, "unexpected data after the JSON value at byte 3")
        XCTAssertEqual(failure("\"a\u{01}\"")?.reason, "control character in string")
        XCTAssertEqual(failure(String(repeating: "[", count: 600))?.reason, "nesting too deep")
        XCTAssertEqual(failure(String(repeating: "[", count: 600))?.offset, JSONValue.maxParseDepth)
        for empty in ["", "   ", "\u{FEFF} \n"] {
            XCTAssertEqual(failure(empty)?.isEmptyInput, true, empty.debugDescription)
        }
        XCTAssertEqual(failure("[")?.isEmptyInput, false)
    }

    func testByteOrderMarkAndSurrogates() throws {
        XCTAssertEqual(try JSONValue(parsing: [0xEF, 0xBB, 0xBF] + Array("[1]".utf8)), .array([.int(1)]))
        // A pair combines; a lone high, a lone low, and a high followed by a non-low escape each give U+FFFD.
        XCTAssertEqual(try JSONValue(parsing: #""\uD83D\uDE00""#).stringValue, "😀")
        XCTAssertEqual(try JSONValue(parsing: #""\udc00""#).stringValue, "\u{FFFD}")
        XCTAssertEqual(try JSONValue(parsing: #""\ud800\u0041""#).stringValue, "\u{FFFD}A")
        XCTAssertEqual(try JSONValue(parsing: #""\ud800""#).stringValue, "\u{FFFD}")
        XCTAssertThrowsError(try JSONValue(parsing: #""\ud800\u00G1""#))
    }

    func testPythonFormatMatchesJSONDumps() throws {
        // Expected strings are Python 3's json.dumps(json.loads(text), ensure_ascii=False[, indent=2]).
        let v = try JSONValue(parsing: #"{"a": [1, 2.5, {"b": null}], "e": [], "o": {}, "s": "x\u2028y"}"#)
        XCTAssertEqual(v.serialized(.python()), "{\"a\": [1, 2.5, {\"b\": null}], \"e\": [], \"o\": {}, \"s\": \"x\u{2028}y\"}")
        XCTAssertEqual(v.serialized(.python(indent: "  ")), """
            {
              "a": [
                1,
                2.5,
                {
                  "b": null
                }
              ],
              "e": [],
              "o": {},
              "s": "x\u{2028}y"
            }
            """)
        XCTAssertEqual(v.serialized(), #"{"a":[1,2.5,{"b":null}],"e":[],"o":{},"s":"x\u2028y"}"#)
    }

    func testEscaperMatchesPythonJSONDumps() {
        // Each expected string is Python 3's json.dumps(s, ensure_ascii=False) for the same code points.
        let cases: [(String, String)] = [
            ("\u{00}\u{01}\u{07}\u{08}\u{09}\u{0A}\u{0B}\u{0C}\u{0D}\u{1B}\u{1F}",
             #""\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f""#),
            ("quote \" backslash \\ slash / del \u{7F}", "\"quote \\\" backslash \\\\ slash / del \u{7F}\""),
            ("é世界 \u{A0}\u{85}\u{2028}\u{2029}\u{FEFF}", "\"é世界 \u{A0}\u{85}\u{2028}\u{2029}\u{FEFF}\""),
            ("😀 \u{1F1EB}\u{1F1F7} \u{10FFFF}", "\"😀 \u{1F1EB}\u{1F1F7} \u{10FFFF}\""),
        ]
        for (input, python) in cases {
            var out = ""
            JSONValue.writeString(input, to: &out, format: .python())
            XCTAssertEqual(out, python, input.debugDescription)
            // The compact wire format differs only in escaping the two JavaScript line terminators.
            var compact = ""
            JSONValue.writeString(input, to: &compact)
            XCTAssertEqual(compact, python.replacingOccurrences(of: "\u{2028}", with: "\\u2028")
                                          .replacingOccurrences(of: "\u{2029}", with: "\\u2029"))
        }
    }

    func testEquality() {
        XCTAssertEqual(JSONValue.object([("a", .int(1))]), JSONValue.object([("a", .int(1))]))
        XCTAssertNotEqual(JSONValue.object([("a", .int(1)), ("b", .null)]), JSONValue.object([("b", .null), ("a", .int(1))]))
    }
}
