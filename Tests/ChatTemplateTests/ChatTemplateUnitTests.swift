import Foundation
import XCTest

@testable import ChatTemplate

/// Unit tests of the lexer, parser and evaluator pieces; expected strings are what jinja2 3.1.6 prints.
final class ChatTemplateUnitTests: XCTestCase {
    func render(_ src: String, _ vars: [String: JinjaValue] = [:], messages: JinjaValue = .array([])) throws -> String {
        try ChatTemplate(source: src).render(messages: messages, tools: nil, addGenerationPrompt: false,
                                             bosToken: nil, eosToken: nil, extra: vars)
    }

    // MARK: lexer

    func testWhitespaceControl() throws {
        XCTAssertEqual(try render("a  {{- 'b' -}}  c"), "abc")
        XCTAssertEqual(try render("{% if true %}\nx\n{% endif %}\ny"), "x\ny")  // trim_blocks
        XCTAssertEqual(try render("  {% if true %}x{% endif %}"), "x")  // lstrip_blocks
        XCTAssertEqual(try render("  {{ 'x' }}"), "  x")  // no lstrip for variables
        XCTAssertEqual(try render("  {%+ if true %}x{% endif %}"), "  x")
        XCTAssertEqual(try render("a\n  {#- c #}\nb"), "ab")
        XCTAssertEqual(try render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}")
        XCTAssertEqual(try render("x\r\ny\n"), "x\ny")  // newline normalisation, trailing newline dropped
    }

    func testStringEscapes() throws {
        XCTAssertEqual(try render(#"{{ 'a\nb' }}|{{ "q\"" }}|{{ '\u00e9' }}|{{ 'x\qy' }}"#), "a\nb|q\"|é|x\\qy")
    }

    // MARK: values

    func testPythonRepr() throws {
        XCTAssertEqual(pythonStringRepr("it's"), "\"it's\"")
        XCTAssertEqual(pythonStringRepr("a'b\"c"), "'a\\'b\"c'")
        XCTAssertEqual(pythonStringRepr("\u{1}\u{200d}é\n"), "'\\x01\\u200dé\\n'")
        XCTAssertEqual(pythonFloatRepr(1.0), "1.0")
        XCTAssertEqual(pythonFloatRepr(1e16), "1e+16")
        XCTAssertEqual(pythonFloatRepr(1.5e-7), "1.5e-07")
        XCTAssertEqual(pythonFloatRepr(0.0001), "0.0001")
        XCTAssertEqual(pythonFloatRepr(123456789.125), "123456789.125")
        XCTAssertEqual(try render("{{ x }}", ["x": ["a": [1, 2.5, nil, true, "s"]]]), "{'a': [1, 2.5, None, True, 's']}")
    }

    func testToJSON() throws {
        let v: JinjaValue = ["z": 1, "a": ["é", 2.0, nil, false], "m": [:]]
        XCTAssertEqual(try render("{{ v | tojson }}", ["v": v]), #"{"z": 1, "a": ["é", 2.0, null, false], "m": {}}"#)
        XCTAssertEqual(try render("{{ v | tojson(indent=2) }}", ["v": ["k": [1]]]), "{\n  \"k\": [\n    1\n  ]\n}")
        XCTAssertEqual(v.jsonString(), #"{"z": 1, "a": ["é", 2.0, null, false], "m": {}}"#)
    }

    func testFromJSONKeepsOrderAndIntegers() throws {
        let v = try JinjaValue.fromJSON(Data(#"{"b": 1, "a": [2.0, 3e2, -4, "\u00e9\ud83d\ude00"], "c": null}"#.utf8))
        guard case .object(let o) = v else { return XCTFail("not an object") }
        XCTAssertEqual(o.keys, ["b", "a", "c"])
        XCTAssertEqual(o["a"], .array([.double(2), .double(300), .int(-4), .string("é😀")]))
        XCTAssertEqual(o["c"], .null)
        XCTAssertThrowsError(try JinjaValue.fromJSON(Data("{\"a\": }".utf8)))
        XCTAssertThrowsError(try JinjaValue.fromJSON(Data(String(repeating: "[", count: 10_000).utf8)))
    }

    // MARK: evaluator

    func testLoopVariables() throws {
        XCTAssertEqual(try render("{% for x in 'abc' %}{{ loop.index }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }} {% endfor %}"),
                       "12TrueFalse 21FalseFalse 30FalseTrue ")
        XCTAssertEqual(try render("{% for k, v in d.items() if v > 1 %}{{ k }}{{ loop.length }}{% else %}none{% endfor %}",
                                  ["d": ["a": 1, "b": 2, "c": 3]]), "b2c2")
        XCTAssertEqual(try render("{% for i in range(9) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"), "024")
    }

    func testScopingAndNamespace() throws {
        XCTAssertEqual(try render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1")
        XCTAssertEqual(try render("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}"), "2")
        XCTAssertEqual(try render("{% set b %}a{{ 1 }}{% endset %}{{ b ~ b }}"), "a1a1")
    }

    func testMacros() throws {
        XCTAssertEqual(try render("{% macro m(a, b='d') %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, b=2) }} {{ m(b=3, a=4) }}"),
                       "1-d 1-2 4-3")
    }

    func testSlicingAndIndexing() throws {
        let l: JinjaValue = [1, 2, 3, 4, 5]
        XCTAssertEqual(try render("{{ l[1:3] }}{{ l[::-2] }}{{ l[-1] }}{{ l[-9] is defined }}{{ 'héllo'[1:-1] }}", ["l": l]),
                       "[2, 3][5, 3, 1]5Falseéll")
    }

    func testUndefinedSemantics() throws {
        XCTAssertEqual(try render("[{{ nope }}][{{ nope | length }}][{{ nope is defined }}][{{ nope ~ 'x' }}]"), "[][0][False][x]")
        XCTAssertThrowsError(try render("{{ nope + 'x' }}"))
        XCTAssertThrowsError(try render("{{ nope.attr }}"))
        XCTAssertEqual(try render("{{ m.missing }}|{{ m.role }}", ["m": ["role": "user"]]), "|user")
    }

    func testTypeErrors() throws {
        XCTAssertThrowsError(try render("{{ 'a' + ['b'] }}"))
        XCTAssertThrowsError(try render("{{ 1 + 'a' }}"))
        XCTAssertThrowsError(try render("{{ 1 / 0 }}"))
    }

    func testStrftimeNowIsInjectable() throws {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone.current
        let now = cal.date(from: DateComponents(year: 2025, month: 1, day: 15, hour: 10, minute: 30))!
        let out = try ChatTemplate(source: "{{ strftime_now('%d %b %Y %H:%M') }}").render(
            messages: [], tools: nil, addGenerationPrompt: false, bosToken: nil, eosToken: nil, now: now)
        XCTAssertEqual(out, "15 Jan 2025 10:30")
    }

    func testMessageNormalisation() throws {
        let msgs: JinjaValue = [["role": "assistant", "content": nil, "reasoning_content": "r"], ["role": "user", "thinking": "t"]]
        let src = "{% for m in messages %}{{ m.content is defined }}{{ m.content is none }}{{ m.thinking }}{{ m.reasoning_content }};{% endfor %}"
        // JSON null is `none` (defined), as json.loads hands it to jinja2; an absent key stays undefined.
        XCTAssertEqual(try render(src, messages: msgs), "TrueTruerr;FalseFalsett;")
    }

    func testStandardVariables() throws {
        let t = try ChatTemplate(source: "{{ bos_token is defined }}{{ eos_token }}{{ tools is none }}{{ add_generation_prompt }}{{ x }}")
        XCTAssertEqual(try t.render(messages: [], tools: nil, addGenerationPrompt: true, bosToken: nil, eosToken: "</s>",
                                    extra: ["x": 5]), "False</s>TrueTrue5")
    }

    // MARK: errors

    func testSyntaxErrorsCarryLineNumbers() {
        let cases: [(String, Int)] = [
            ("a\nb\n{% if x %}\nno end", 4),
            ("line1\n{{ 1 + }}", 2),
            ("\n\n{% foo %}", 3),
            ("{% for x in y %}\n{% endif %}", 2),
            ("{{ 'unterminated }}", 1),
            ("x\n{# never closed", 2),
        ]
        for (src, line) in cases {
            XCTAssertThrowsError(try ChatTemplate(source: src), src) { e in
                guard case ChatTemplateError.syntax(let l, _) = e else { return XCTFail("\(src): \(e)") }
                XCTAssertEqual(l, line, src)
            }
        }
    }

    func testRuntimeErrorsCarryLineNumbers() throws {
        let t = try ChatTemplate(source: "ok\n{% set a = 1 %}\n{{ a + 'x' }}")
        XCTAssertThrowsError(try t.render(messages: [], tools: nil, addGenerationPrompt: false, bosToken: nil, eosToken: nil)) { e in
            guard case ChatTemplateError.runtime(let l, let m) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(l, 3)
            XCTAssertTrue(m.contains("TypeError"), m)
        }
        XCTAssertThrowsError(try render("{{ raise_exception('no') }}")) { e in
            XCTAssertEqual(e as? ChatTemplateError, .raised(message: "no"))
        }
    }

    func testMalformedTemplatesThrowWithoutCrashing() {
        let bad = ["{{", "{%", "{% if %}", "{{ ) }}", "{% for %}", "{% set %}", "{{ [1, 2 }}", "{{ a.  }}", "{% endfor %}",
                   "{% macro m( %}", "{{ x | }}", "{{ 'a' is }}", "{% else %}", "{{ {1: } }}", "{% raw %}abc",
                   "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}",
                   String(repeating: "{% if x %}", count: 3000),
                   "{{ " + String(repeating: "not ", count: 5000) + "x }}"]
        for src in bad {
            XCTAssertThrowsError(try ChatTemplate(source: src), String(src.prefix(40)))
        }
    }

    func testMacroRecursionLimitThrows() throws {
        XCTAssertThrowsError(try render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")) { e in
            guard case ChatTemplateError.runtime = e else { return XCTFail("\(e)") }
        }
    }

    func testStepLimitThrows() throws {
        let t = try ChatTemplate(source: "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
        XCTAssertThrowsError(try t.render(messages: [], tools: nil, addGenerationPrompt: false, bosToken: nil, eosToken: nil,
                                          extra: [:], now: nil, maxSteps: 100_000)) { e in
            guard case ChatTemplateError.runtime(_, let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("steps"), m)
        }
        // The same template within the default bound renders.
        XCTAssertEqual(try render("{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}ok"), "ok")
    }

    func testStringGrowthLimitThrows() throws {
        XCTAssertThrowsError(try render("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"))
    }

    func testSequenceLimitsThrow() throws {
        XCTAssertThrowsError(try render("{{ range(10000000) | length }}"))
        XCTAssertThrowsError(try render("{{ 'x' * 100000000 }}"))
    }
}

/// Limits must hold on a thread with a small (512 KiB) stack, as secondary threads have on some platforms.
final class ChatTemplateStackTests: XCTestCase {
    func testDeepTemplatesOnSmallStackThrowInsteadOfCrashing() {
        let sources = [
            "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}",
            "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}",
            "{{ " + String(repeating: "[", count: 110) + String(repeating: "]", count: 110) + " }}",
            "{{ " + String(repeating: "-", count: 5000) + "1 }}",
        ]
        final class Box: @unchecked Sendable { var outcomes: [String] = [] }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for src in sources {
                do {
                    _ = try ChatTemplate(source: src).render(messages: [], tools: nil, addGenerationPrompt: false,
                                                             bosToken: nil, eosToken: nil)
                    box.outcomes.append("ok")
                } catch {
                    box.outcomes.append("threw")
                }
            }
            done.signal()
        }
        thread.stackSize = 512 * 1024
        thread.start()
        done.wait()
        let outcomes = box.outcomes
        XCTAssertEqual(outcomes.count, sources.count)
        XCTAssertEqual(outcomes[0], "threw")
        XCTAssertEqual(outcomes[1], "threw")
        XCTAssertEqual(outcomes[3], "threw")
    }
}

/// Integer edge cases and huge repetition counts must throw (or compute), never trap.
final class ChatTemplateArithmeticEdgeTests: XCTestCase {
    func testNoTrapsOnExtremeIntegers() throws {
        let big = "9223372036854775807"
        let sources = [
            "{{ -(-\(big) - 1) }}", "{{ (-\(big) - 1) // -1 }}", "{{ (-\(big) - 1) % -1 }}", "{{ (-\(big) - 1) | abs }}",
            "{{ \(big) + 1 }}", "{{ \(big) * 2 }}", "{{ 3 ** 100 }}", "{{ range(-\(big), \(big)) | length }}",
            "{{ range(-\(big), \(big), \(big)) | list }}", "{{ 'ab' * \(big) }}", "{{ [1, 2] * \(big) }}",
            "{{ 'x' | indent(\(big)) }}", "{{ 'x' | center(\(big)) }}", "{{ 'x'.zfill(\(big)) }}", "{{ '%99999999999d' % 1 }}",
            "{{ 'x' | indent(-5) }}", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "{{ [1] | batch(9223372036854775807, 0) | list }}", "{{ 1e300 | int }}", "{{ '%d' % 1e300 }}", "{{ 2.5 | round(100000000) }}", "{{ 'x' | center(-5) }}", "{{ [1] | tojson(indent=-3) }}", "{{ (-\(big) - 1) is odd }}",
        ]
        for src in sources {
            _ = try? ChatTemplate(source: src).render(messages: [], tools: nil, addGenerationPrompt: false,
                                                      bosToken: nil, eosToken: nil)
        }
        let t = try ChatTemplate(source: "{{ range(-\(big), \(big), \(big)) | list }}|{{ 7 // -1 }}|{{ 7 % -1 }}")
        XCTAssertEqual(try t.render(messages: [], tools: nil, addGenerationPrompt: false, bosToken: nil, eosToken: nil),
                       "[-\(big), 0]|-7|0")
    }
}
