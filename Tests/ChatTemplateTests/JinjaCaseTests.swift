import Foundation
import TestSupport
import XCTest

@testable import ChatTemplate

/// Small templates exercising the evaluator (Python repr, tojson, operators, filters, tests, loops, macros,
/// whitespace control), with expected outputs produced by jinja2 3.1.6 configured like transformers
/// (Tests/Fixtures/templates/make_jinja_cases.py → jinja_cases.jsonl).
final class JinjaCaseTests: XCTestCase {
    func testJinja2Cases() throws {
        let text = try String(contentsOfFile: Fixtures.path("templates/jinja_cases.jsonl"), encoding: .utf8)
        var n = 0, ok = 0
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard case .object(let rec) = try JinjaValue.fromJSON(Data(line.utf8)),
                  case .string(let src)? = rec["template"], case .object(let vars)? = rec["vars"] else {
                XCTFail("bad case line")
                continue
            }
            n += 1
            var extra: [String: JinjaValue] = [:]
            for (k, v) in vars.pairs { extra[k] = v }
            let result = Result {
                try ChatTemplate(source: src).render(messages: .array([]), tools: nil, addGenerationPrompt: false,
                                                     bosToken: nil, eosToken: nil, extra: extra,
                                                     now: FixtureRenderTests.fixtureNow())
            }
            switch (result, rec["rendered"], rec["error"]) {
            case (.success(let out), .string(let exp)?, _):
                if Array(out.utf8) == Array(exp.utf8) { ok += 1 } else {
                    XCTFail("case \(n - 1):\n\(src)\n--- expected\n\(exp.debugDescription)\n--- got\n\(out.debugDescription)")
                }
            case (.failure, _, .string?): ok += 1
            case (.success(let out), _, .string(let err)?):
                XCTFail("case \(n - 1): expected \(err), got \(out.debugDescription)\n\(src)")
            case (.failure(let e), _, _):
                XCTFail("case \(n - 1): threw \(e)\n\(src)")
            default: XCTFail("case \(n - 1): malformed record")
            }
        }
        print("ChatTemplate jinja2 cases: \(ok)/\(n) passed")
        XCTAssertGreaterThanOrEqual(n, 50)
        XCTAssertEqual(ok, n)
    }
}
