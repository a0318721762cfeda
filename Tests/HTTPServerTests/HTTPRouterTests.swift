import Foundation
import XCTest
@testable import HTTPServer

final class HTTPRouterTests: XCTestCase {
    func makeRouter() -> HTTPRouter {
        var r = HTTPRouter()
        r.add("GET", "/v1/models") { _, _, res in res.send(status: 200, headers: [], body: Array("list".utf8)) }
        r.add("GET", "/v1/models/{id...}") { _, p, res in res.send(status: 200, headers: [], body: Array("model \(p["id"]!)".utf8)) }
        r.add("POST", "/v1/chat/completions") { req, _, res in res.send(status: 200, headers: [], body: req.body) }
        r.add("GET", "/users/{u}/items/{i}") { _, p, res in res.send(status: 200, headers: [], body: Array("\(p["u"]!)-\(p["i"]!)".utf8)) }
        return r
    }

    func params(_ m: HTTPRouter.Match) -> [String: String]? {
        if case .found(_, let p) = m { return p } else { return nil }
    }

    func testMatching() {
        let r = makeRouter()
        XCTAssertEqual(params(r.match(method: "GET", path: "/v1/models")), [:])
        XCTAssertEqual(params(r.match(method: "GET", path: "/v1/models/Qwen/Qwen2.5-0.5B")), ["id": "Qwen/Qwen2.5-0.5B"])
        XCTAssertEqual(params(r.match(method: "HEAD", path: "/v1/models/x")), ["id": "x"])
        XCTAssertEqual(params(r.match(method: "GET", path: "/users/a/items/7")), ["u": "a", "i": "7"])
        XCTAssertNil(params(r.match(method: "GET", path: "/users/a/items")))
        XCTAssertNil(params(r.match(method: "GET", path: "/v1/models/")))
        guard case .methodNotAllowed(let allowed) = r.match(method: "GET", path: "/v1/chat/completions") else { return XCTFail() }
        XCTAssertEqual(allowed, ["POST"])
        guard case .notFound = r.match(method: "GET", path: "/nope") else { return XCTFail() }
        guard case .notFound = r.match(method: "GET", path: "/v1/%6Dodels") else { return XCTFail("literal segments match the raw path") }
        XCTAssertEqual(params(r.match(method: "GET", path: "/users/a%20b/items/%37")), ["u": "a b", "i": "7"], "captures are decoded")
        XCTAssertEqual(r.routes.map(\.pattern), ["/v1/models", "/v1/models/{id...}", "/v1/chat/completions", "/users/{u}/items/{i}"])
    }
}
