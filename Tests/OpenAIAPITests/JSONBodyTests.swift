import JSON
import XCTest
@testable import OpenAIAPI

final class JSONBodyTests: XCTestCase {
    func testInvalidBodiesAre400() {
        let cases: [([UInt8], String)] = [
            ([], "Request body is empty; expected a JSON object"),
            (Array(" \r\n".utf8), "Request body is empty; expected a JSON object"),
            (Array("{\"a\":1,}".utf8), "Request body is not valid JSON: expected a string key at byte 7"),
            ([0x22, 0xFF, 0x22], "Request body is not valid JSON: string is not valid UTF-8 at byte 3"),
            (Array(String(repeating: "[", count: 600).utf8), "Request body is not valid JSON: nesting too deep at byte 512"),
        ]
        for (body, message) in cases {
            do {
                _ = try JSONValue.parse(body)
                XCTFail("accepted \(String(decoding: body, as: UTF8.self).debugDescription)")
            } catch {
                XCTAssertEqual(error.status, 400)
                XCTAssertEqual(error.type, "invalid_request_error")
                XCTAssertEqual(error.message, message)
                XCTAssertNil(error.param)
            }
        }
        XCTAssertEqual(try JSONValue.parse(#" {"a": [1]} "#), .object([("a", .array([.int(1)]))]))
    }

    func testDecodeReportsMalformedBodies() {
        guard case .failure(let e) = ChatCompletionRequest.decode(Array("{\"model\": ".utf8)) else {
            return XCTFail("accepted a truncated body")
        }
        XCTAssertEqual(e.status, 400)
        XCTAssertEqual(e.message, "Request body is not valid JSON: unexpected end of input at byte 10")
    }
}
