import JSON
import XCTest

/// JSON Pointer (RFC 6901) tokens, lookup and member removal: the schema compiler's `$ref` targets and the paths of
/// its errors, which the server's schema relaxation edits.
final class JSONPointerTests: XCTestCase {
    func testTokensUnescapeInOrder() {
        XCTAssertEqual(JSONValue.pointerTokens(""), [])
        XCTAssertEqual(JSONValue.pointerTokens("#"), [])
        XCTAssertEqual(JSONValue.pointerTokens("/"), [""])
        XCTAssertEqual(JSONValue.pointerTokens("/a~1b/0"), ["a/b", "0"])
        XCTAssertEqual(JSONValue.pointerTokens("#/x/~01"), ["x", "~1"])   // ~01 is "~1", not "/"
        XCTAssertEqual(JSONValue.pointerTokens("//x"), ["", "x"])
    }

    func testLookupAndRemoval() throws {
        let v = try JSONValue(parsing: #"{"a/b":[{"k":1,"m":2}],"":{"k":3}}"#)
        XCTAssertEqual(v.value(at: JSONValue.pointerTokens("/a~1b/0/m")), .int(2))
        XCTAssertEqual(v.value(at: JSONValue.pointerTokens("//k")), .int(3))
        XCTAssertNil(v.value(at: JSONValue.pointerTokens("/a~1b/1")))
        XCTAssertEqual(v.removingMember("k", at: JSONValue.pointerTokens("/a~1b/0")[...])?.serialized(),
                       #"{"a/b":[{"m":2}],"":{"k":3}}"#)
        XCTAssertNil(v.removingMember("zz", at: JSONValue.pointerTokens("/a~1b/0")[...]))
        XCTAssertNil(v.removingMember("k", at: JSONValue.pointerTokens("/nope")[...]))
    }
}
