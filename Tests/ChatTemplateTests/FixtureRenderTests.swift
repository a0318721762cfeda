import Foundation
import TestSupport
import XCTest

@testable import ChatTemplate

/// Renders every record of Tests/Fixtures/templates/renders.jsonl (jinja2 3.1.6 under transformers 5.24
/// `render_jinja_template`) and compares byte-exactly; records with `error` must throw.
final class FixtureRenderTests: XCTestCase {
    /// The fixtures' pinned clock, 2025-01-15T10:30:00 in the local time zone (Python's naive `datetime.now()`).
    static func fixtureNow() -> Date {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone.current
        return cal.date(from: DateComponents(year: 2025, month: 1, day: 15, hour: 10, minute: 30, second: 0))!
    }

    static func load(_ rel: String) throws -> JinjaValue {
        try JinjaValue.fromJSON(Data(contentsOf: URL(fileURLWithPath: Fixtures.path(rel))))
    }

    func field(_ o: JinjaObject, _ k: String) -> String? {
        if case .string(let s)? = o[k] { return s }
        return nil
    }

    /// The reference set: renders.jsonl × conversations.json (made with transformers 5.24 + jinja2 3.1.6).
    func testAllFixtureRenders() throws {
        try runRenders("templates/renders.jsonl", conversations: "templates/conversations.json", expectedTotal: 276)
    }

    /// More conversations (null content with parallel tool calls, enable_thinking, empty/system-only lists, content
    /// blocks, dict tool content, unicode escapes) rendered by make_extra_renders.py with jinja2 3.1.6.
    func testExtraRenders() throws {
        try runRenders("templates/extra_renders.jsonl", conversations: "templates/extra_conversations.json",
                       expectedTotal: 532)
    }

    func runRenders(_ rendersFile: String, conversations: String, expectedTotal: Int) throws {
        guard case .object(let manifest) = try Self.load("templates/manifest.json"),
              case .object(let templates)? = manifest["templates"],
              case .array(let convs) = try Self.load(conversations) else {
            return XCTFail("bad fixture files")
        }
        var byId: [String: JinjaObject] = [:]
        for c in convs { if case .object(let o) = c, let id = field(o, "id") { byId[id] = o } }
        var parsed: [String: ChatTemplate] = [:]
        let text = try String(contentsOfFile: Fixtures.path(rendersFile), encoding: .utf8)
        var checked: [String: Int] = [:], passed: [String: Int] = [:]
        var order: [String] = []
        var total = 0
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard case .object(let rec) = try JinjaValue.fromJSON(Data(line.utf8)),
                  let name = field(rec, "template"), let convId = field(rec, "conversation"),
                  case .bool(let agp)? = rec["add_generation_prompt"],
                  case .object(let meta)? = templates[name], let file = field(meta, "file"),
                  let conv = byId[convId], let messages = conv["messages"] else {
                XCTFail("bad record: \(line.prefix(120))")
                continue
            }
            if checked[name] == nil { order.append(name) }
            checked[name, default: 0] += 1
            total += 1
            if parsed[name] == nil {
                let src = try String(contentsOfFile: Fixtures.path("templates/" + file), encoding: .utf8)
                do { parsed[name] = try ChatTemplate(source: src) } catch {
                    XCTFail("\(name): parse failed: \(error)")
                    continue
                }
            }
            let tmpl = parsed[name]!
            var extra: [String: JinjaValue] = [:]
            if case .object(let e)? = conv["extra"] { for (k, v) in e.pairs { extra[k] = v } }
            let result = Result {
                try tmpl.render(messages: messages, tools: conv["tools"], addGenerationPrompt: agp,
                                bosToken: field(meta, "bos_token"), eosToken: field(meta, "eos_token"),
                                extra: extra, now: Self.fixtureNow())
            }
            let label = "\(name) × \(convId) × agp=\(agp)"
            if let expectedError = field(rec, "error") {
                switch result {
                case .success(let out): XCTFail("\(label): expected error \(expectedError), rendered \(out.debugDescription)")
                case .failure: passed[name, default: 0] += 1
                }
            } else if let expected = field(rec, "rendered") {
                switch result {
                case .success(let out):
                    if Array(out.utf8) == Array(expected.utf8) {
                        passed[name, default: 0] += 1
                    } else {
                        XCTFail("\(label): mismatch\n--- expected\n\(expected.debugDescription)\n--- got\n\(out.debugDescription)")
                    }
                case .failure(let e): XCTFail("\(label): threw \(e)")
                }
            }
        }
        for name in order {
            print("ChatTemplate \(rendersFile): \(name): \(passed[name] ?? 0)/\(checked[name]!) passed")
            XCTAssertEqual(passed[name] ?? 0, checked[name]!, name)
        }
        print("ChatTemplate \(rendersFile): total \(passed.values.reduce(0, +))/\(total) passed")
        XCTAssertEqual(total, expectedTotal)
        XCTAssertEqual(order.count, 14)
    }
}
