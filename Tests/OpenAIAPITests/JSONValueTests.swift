import XCTest
@testable import OpenAIAPI

final class JSONValueTests: XCTestCase {
    func testRoundTripKeepsOrderAndNumberText() throws {
        let text = #"{"z":1,"a":[true,false,null,-0.5e+3,12345678901234567890],"m":{"y":"x","b":{}},"e":[]}"#
        let v = try JSONValue.parse(text)
        XCTAssertEqual(v.serialized(), text)
        XCTAssertEqual(v.objectValue?.map(\.key), ["z", "a", "m", "e"])
        XCTAssertEqual(v["a"]?.arrayValue?[3].doubleValue, -500)
        XCTAssertEqual(v["z"]?.intValue, 1)
    }

    func testWhitespaceEscapesAndUnicode() throws {
        let v = try JSONValue.parse(" \n{ \"s\" : \"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00 世界\" } \t")
        XCTAssertEqual(v["s"]?.stringValue, "a\"b\\c/d\né😀 世界")
        XCTAssertEqual(v.serialized(), "{\"s\":\"a\\\"b\\\\c/d\\né😀 世界\"}")
        XCTAssertEqual(try JSONValue.parse("\"\\ud800x\"").stringValue, "\u{FFFD}x")
        XCTAssertEqual(JSONValue.string("\u{01}\t\u{2028}").serialized(), "\"\\u0001\\t\\u2028\"")
    }

    func testDuplicateKeysLastWins() throws {
        let v = try JSONValue.parse(#"{"a":1,"a":2}"#)
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

    func testInvalidDocumentsAre400() {
        let bad: [[UInt8]] = [
            [], Array("   ".utf8), Array("{".utf8), Array("{\"a\"}".utf8), Array("{\"a\":1,}".utf8), Array("[1,]".utf8),
            Array("01".utf8), Array("1.".utf8), Array("-".utf8), Array("1e".utf8), Array("tru".utf8), Array("nul".utf8),
            Array("\"abc".utf8), Array("\"a\tb\"".utf8), Array("\"\\x\"".utf8), Array("\"\\u12G4\"".utf8),
            Array("{} {}".utf8), Array("{'a':1}".utf8), [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22],
            Array(String(repeating: "[", count: 600).utf8) + Array(String(repeating: "]", count: 600).utf8),
        ]
        for b in bad {
            do {
                _ = try JSONValue.parse(b)
                XCTFail("accepted \(String(decoding: b, as: UTF8.self).debugDescription)")
            } catch {
                XCTAssertEqual(error.status, 400)
                XCTAssertEqual(error.type, "invalid_request_error")
            }
        }
        XCTAssertNoThrow(try JSONValue.parse(Array(String(repeating: "[", count: 500).utf8) + Array(String(repeating: "]", count: 500).utf8)))
    }

    func testEquality() {
        XCTAssertEqual(JSONValue.object([("a", .int(1))]), JSONValue.object([("a", .int(1))]))
        XCTAssertNotEqual(JSONValue.object([("a", .int(1)), ("b", .null)]), JSONValue.object([("b", .null), ("a", .int(1))]))
    }
}
