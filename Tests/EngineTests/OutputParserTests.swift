import TestSupport
import XCTest

@testable import Engine

/// The reasoning and tool-call stream parsers, fed whole and split at every possible point (tags split across
/// tokens), and in random small pieces: the emitted parts, merged, must not depend on the split.
final class OutputParserTests: XCTestCase {
    /// Adjacent parts of one kind merged (a split may emit one text in several pieces).
    static func merged(_ parts: [GenerationDelta]) -> [GenerationDelta] {
        var out: [GenerationDelta] = []
        for p in parts {
            switch (out.last, p) {
            case (.content(let a)?, .content(let b)): out[out.count - 1] = .content(a + b)
            case (.reasoning(let a)?, .reasoning(let b)): out[out.count - 1] = .reasoning(a + b)
            case (.toolCallArguments(let i, let a)?, .toolCallArguments(let j, let b)) where i == j:
                out[out.count - 1] = .toolCallArguments(index: i, a + b)
            case (_, .content("")), (_, .reasoning("")): break
            default: out.append(p)
            }
        }
        return out
    }

    /// Feeds `pieces` to a fresh parser made by `make` and returns the merged output.
    static func run<P>(_ make: () -> P, _ pieces: [String], append: (inout P, String) -> [GenerationDelta],
                       finish: (inout P) -> [GenerationDelta]) -> [GenerationDelta] {
        var p = make()
        var out: [GenerationDelta] = []
        for piece in pieces { out += append(&p, piece) }
        out += finish(&p)
        return merged(out)
    }

    /// Every split into two and three pieces (at scalar boundaries), plus 50 random splits into 1–4-scalar pieces.
    static func splits(_ text: String) -> [[String]] {
        let scalars = Array(text.unicodeScalars)
        func str(_ r: Range<Int>) -> String { ReasoningParser.string(scalars[r]) }
        var out: [[String]] = [[text]]
        for i in 0...scalars.count { out.append([str(0..<i), str(i..<scalars.count)]) }
        var rng = XorShift(state: 7)
        for _ in 0..<50 {
            var pieces: [String] = [], i = 0
            while i < scalars.count {
                let n = min(scalars.count - i, 1 + Int(rng.next() % 4))
                pieces.append(str(i..<(i + n)))
                i += n
            }
            out.append(pieces)
        }
        return out
    }

    func checkReasoning(_ text: String, inside: Bool, _ expected: [GenerationDelta], file: StaticString = #filePath,
                        line: UInt = #line) {
        for pieces in Self.splits(text) {
            let got = Self.run({ ReasoningParser(startsInReasoning: inside) }, pieces,
                               append: { $0.append($1) }, finish: { $0.finish() })
            XCTAssertEqual(got, expected, "pieces \(pieces)", file: file, line: line)
            if got != expected { return }
        }
    }

    func testReasoningOpenedInThePrompt() {
        checkReasoning("Let me add.\n2+2=4\n</think>\n\nThe answer is 4.", inside: true,
                       [.reasoning("Let me add.\n2+2=4\n"), .content("The answer is 4.")])
    }

    func testReasoningOpenedByTheModel() {
        checkReasoning("<think>\nhmm</think>Yes.", inside: false, [.reasoning("hmm"), .content("Yes.")])
        checkReasoning("  <think>a<b</think>\n c", inside: false, [.reasoning("a<b"), .content("c")])
    }

    func testNoClosingTagIsAllReasoning() {
        checkReasoning("still thinking </thi", inside: true, [.reasoning("still thinking </thi")])
    }

    func testNoThinkBlockIsAllContent() {
        checkReasoning("Plain <thinking> answer", inside: false, [.content("Plain <thinking> answer")])
        checkReasoning("<thi", inside: false, [.content("<thi")])
        checkReasoning("", inside: false, [])
    }

    func testEmptyReasoningBlock() {
        checkReasoning("</think>\n\nHi", inside: true, [.content("Hi")])
    }

    /// `text` parsed at every split gives `expected` (argument pieces merged), whole-call and, unless `streamed`
    /// says otherwise, streamed (`streamArguments`): the same calls and the same arguments text either way.
    func checkCalls(_ format: ToolCallFormat, _ text: String, maxCalls: Int? = nil, truncated: Bool = false,
                    bare: Set<String> = [], streamed: [GenerationDelta]? = nil, _ expected: [GenerationDelta],
                    file: StaticString = #filePath, line: UInt = #line) {
        for stream in [false, true] {
            let want = stream ? streamed ?? expected : expected
            for pieces in Self.splits(text) {
                let got = Self.run({ ToolCallParser(format: format, maxCalls: maxCalls, bareCallNames: bare, streamArguments: stream) },
                                   pieces, append: { $0.append($1) }, finish: { $0.finish(truncated: truncated) })
                XCTAssertEqual(got, want, "\(format) streamed \(stream) pieces \(pieces)", file: file, line: line)
                if got != want { return }
            }
        }
    }

    static func call(_ i: Int, _ name: String, _ args: String) -> [GenerationDelta] {
        [.toolCallBegin(index: i, name: name), .toolCallArguments(index: i, args)]
    }

    func testHermes() {
        checkCalls(.hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                   Self.call(0, "get_weather", #"{"city": "Paris"}"#))
        checkCalls(.hermes, "Sure.\n<tool_call>{\"name\":\"a\",\"arguments\":{\"x\":1}}</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>",
                   [.content("Sure.\n")] + Self.call(0, "a", #"{"x": 1}"#) + Self.call(1, "b", "{}"))
        // A block that is not a call is given back as text.
        checkCalls(.hermes, "x <tool_call>oops</tool_call> y", [.content("x <tool_call>oops</tool_call>y")])
        // Plain text with a lone '<'.
        checkCalls(.hermes, "a < b <tool", [.content("a < b <tool")])
        // A closing tag with no block open (a model that closes its call twice) is dropped, not content.
        checkCalls(.hermes, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>tools</tool_call> ok",
                   Self.call(0, "a", "{}") + [.content("tools ok")])
    }

    /// Hermes calls written bare (no `<tool_call>`), as Qwen2.5-Coder writes them under `tool_choice` `auto`:
    /// llama.cpp's Hermes 2 Pro parser reads them at the start of the reply, fenced or not. Only the form the start
    /// trigger's grammar holds to the tool's schema is a call (`EngineMapping.lazyToolCalls`).
    func testHermesBareCalls() {
        let tools: Set<String> = ["get_weather", "get_time", "get"]
        checkCalls(.hermes, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", bare: tools,
                   Self.call(0, "get_weather", #"{"city": "Paris"}"#))
        checkCalls(.hermes, "\n```json\n{\n  \"name\": \"get_time\",\n  \"arguments\": {\"zone\": \"CET\"}\n}\n```\nDone.", bare: tools,
                   Self.call(0, "get_time", #"{"zone": "CET"}"#) + [.content("Done.")])
        checkCalls(.hermes, "```json {\"name\":\"get\",\"arguments\":{}}```", bare: tools, Self.call(0, "get", "{}"))
        // Two calls in one fence (its close is markup), one per line; a tagged call after bare ones.
        checkCalls(.hermes, "```json\n{\"name\":\"get_time\",\"arguments\":{}}\n{ \"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n```\n<tool_call>{\"name\":\"get_time\",\"arguments\":{}}</tool_call>",
                   bare: tools, Self.call(0, "get_time", "{}") + Self.call(1, "get_weather", #"{"city": "Rome"}"#) + Self.call(2, "get_time", "{}"))
        // Two calls separated by a comma, as in a list without its brackets (helper-58: the second was content); a
        // comma and then text is content.
        checkCalls(.hermes, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}},\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}",
                   bare: tools, Self.call(0, "get_weather", #"{"city": "Paris"}"#) + Self.call(1, "get_time", #"{"city": "Tokyo"}"#))
        checkCalls(.hermes, "{\"name\": \"get\", \"arguments\": {}}, done", bare: tools, Self.call(0, "get", "{}") + [.content(", done")])
        // Not calls: an undeclared name, other or extra keys, `parameters`, a name spelled with an escape, a fence
        // the trigger does not take, JSON that is not a call, text first.
        // Streamed, a call to a declared tool is begun at its arguments (the lazy grammar holds the rest to the form),
        // so text after them is content.
        checkCalls(.hermes, "{\"name\": \"get_time\", \"arguments\": {}, \"why\": 1}", bare: tools,
                   streamed: Self.call(0, "get_time", "{}") + [.content(#", "why": 1}"#)],
                   [.content("{\"name\": \"get_time\", \"arguments\": {}, \"why\": 1}")])
        for text in ["{\"name\": \"rm_rf\", \"arguments\": {}}",
                     "{\"name\": \"get_time\", \"parameters\": {}}", "{\"name\": \"get\\u005ftime\", \"arguments\": {}}",
                     "```JSON\n{\"name\": \"get_time\", \"arguments\": {}}", "{\"name\": \"get_time\", \"arguments\": [1]}",
                     "{\"city\": \"Paris\"}", "Here: {\"name\": \"get_time\", \"arguments\": {}}", "```python\nprint(1)\n```"] {
            checkCalls(.hermes, text, bare: tools, [.content(text)])
        }
        checkCalls(.hermes, "{\"name\": \"get_time\", \"arguments\": {}}", [.content("{\"name\": \"get_time\", \"arguments\": {}}")])
        // Cut by the token limit: a call is dropped like a cut tagged call; an answer that is not one is kept.
        checkCalls(.hermes, "{\"name\": \"get_weather\", \"arguments\": {\"ci", truncated: true, bare: tools,
                   streamed: Self.call(0, "get_weather", #"{"ci"#), [])
        // Cut before the arguments, or inside the name, it may still be a call: dropped too (helper-42: it came back
        // as content `{"name": "`).
        for cut in ["{\"name\": \"", "{\"name\": \"get_", "```json\n{\"name\": \"get_weather\", \"", "{\"name\": \"get_weather\""] {
            checkCalls(.hermes, cut, truncated: true, bare: tools, [])
        }
        // Before `{"name":` it is the answer's start, kept (helper-43: a fenced JSON answer cut early was lost).
        for cut in ["```", "```json\n{\n  \"", "{", "```json\n{\"na"] {
            checkCalls(.hermes, cut, truncated: true, bare: tools, [.content(cut)])
        }
        checkCalls(.hermes, "{\"name\": \"Alice\", \"bio\": \"Alice is", truncated: true, bare: tools,
                   [.content("{\"name\": \"Alice\", \"bio\": \"Alice is")])
        checkCalls(.hermes, "{\"name\":\"get_time\",\"arguments\":{}}{\"name\":\"get_weather\",\"arguments\":{}}", maxCalls: 1,
                   bare: tools, Self.call(0, "get_time", "{}"))
        // An answer that is not a call streams as soon as its name says so.
        var p = ToolCallParser(format: .hermes, bareCallNames: tools)
        XCTAssertEqual(Self.merged(p.append("{\"name\": \"ge")), [])
        XCTAssertEqual(Self.merged(p.append("nius\", \"bio")), [.content("{\"name\": \"genius\", \"bio")])
    }

    func testParallelLimit() {
        checkCalls(.hermes, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>",
                   maxCalls: 1, Self.call(0, "a", "{}"))
        var p = ToolCallParser(format: .hermes, maxCalls: 1)
        _ = p.append("<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool")
        XCTAssertFalse(p.isDone)
        XCTAssertTrue(p.isInsideCall)
        _ = p.append("_call>")
        XCTAssertTrue(p.isDone)
    }

    /// Cut by the token limit, a call's block is dropped, or when streamed kept as far as it was sent (its arguments
    /// whole here: the closing tag was cut).
    func testCutCallIsDroppedOnLengthAndParsedAtEnd() {
        let text = "Ok <tool_call>{\"name\":\"a\",\"arguments\":{\"q\":\"x\"}}"
        checkCalls(.hermes, text, truncated: true, streamed: [.content("Ok ")] + Self.call(0, "a", #"{"q": "x"}"#), [.content("Ok ")])
        checkCalls(.hermes, text, truncated: false, [.content("Ok ")] + Self.call(0, "a", #"{"q": "x"}"#))
        checkCalls(.hermes, "<tool_call>{\"name\":\"a\",\"argu", truncated: false, [.content("<tool_call>{\"name\":\"a\",\"argu")])
    }

    /// The token limit cutting the opening tag itself leaves nothing of it in the content (a new-user report: a forced
    /// call cut at 1–3 tokens answered content "<", "<tool", "<tool_call").
    func testCutOpeningTagIsNotContent() {
        for cut in ["<", "<tool", "<tool_call", "Ok <tool_ca"] {
            let kept = cut.hasPrefix("Ok ") ? [GenerationDelta.content("Ok ")] : []
            checkCalls(.hermes, cut, truncated: true, kept)
        }
        checkCalls(.deepSeekV31, "<｜tool▁calls", truncated: true, [])
    }

    func testLlama3JSON() {
        checkCalls(.llama3JSON, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
                   Self.call(0, "get_weather", #"{"city": "Paris"}"#))
        checkCalls(.llama3JSON, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": [1, {\"z\": \"}\"}]}}",
                   Self.call(0, "a", "{}") + Self.call(1, "b", #"{"k": [1, {"z": "}"}]}"#))
        checkCalls(.llama3JSON, "The weather is {nice}.", [.content("The weather is {nice}.")])
        checkCalls(.llama3JSON, "{\"answer\": 4}", [.content("{\"answer\": 4}")])
    }

    func testMistral() {
        checkCalls(.mistral, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": \"[ARGS]\"}, \"id\": \"abc123xyz\"}, {\"name\": \"b\", \"arguments\": {}}]",
                   Self.call(0, "a", #"{"x": "[ARGS]"}"#) + Self.call(1, "b", "{}"))
        checkCalls(.mistral, "Calling.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]b[CALL_ID]123456789[ARGS]{}",
                   [.content("Calling.")] + Self.call(0, "get_weather", #"{"city": "Paris"}"#) + Self.call(1, "b", "{}"))
    }

    func testDeepSeekV3() {
        let one = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>"
        let two = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n```json\n{}\n```<｜tool▁call▁end｜>"
        checkCalls(.deepSeekV3, "I'll check.<｜tool▁calls▁begin｜>" + one + "\n" + two + "<｜tool▁calls▁end｜>",
                   [.content("I'll check.")] + Self.call(0, "get_weather", #"{"city": "Paris"}"#) + Self.call(1, "b", "{}"))
        // Without the outer block tags.
        checkCalls(.deepSeekV3, one, Self.call(0, "get_weather", #"{"city": "Paris"}"#))
    }

    func testDeepSeekV31() {
        checkCalls(.deepSeekV31, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>b<｜tool▁sep｜>{\"n\": 2}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
                   Self.call(0, "get_weather", #"{"city": "Paris"}"#) + Self.call(1, "b", #"{"n": 2}"#))
        checkCalls(.deepSeekV31, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": ",
                   truncated: true, streamed: Self.call(0, "get_weather", #"{"city": "#), [])
    }

    /// Streamed (helper-66): a call is begun once its name and the start of its arguments are generated, and its
    /// arguments follow in pieces, before the block closes; the pieces are the whole-call text's.
    func testStreamedCallsBeginAndGrowBeforeTheirBlockCloses() {
        let heads: [(ToolCallFormat, String)] = [
            (.hermes, "<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"a.txt\", \"content\": \"line one"),
            (.llama3JSON, "{\"name\": \"write_file\", \"parameters\": {\"path\": \"a.txt\", \"content\": \"line one"),
            (.deepSeekV3, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>write_file\n```json\n{\"path\": \"a.txt\", \"content\": \"line one"),
            (.deepSeekV31, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>write_file<｜tool▁sep｜>{\"path\": \"a.txt\", \"content\": \"line one"),
            (.mistral, "[TOOL_CALLS]write_file[ARGS]{\"path\": \"a.txt\", \"content\": \"line one"),
        ]
        // helper-68: Qwen2.5-Coder's bare call (no <tool_call>, maybe in a ```json fence) streams the same way.
        for head in ["{\"name\": \"write_file\", \"arguments\": {\"path\": \"a.txt\", \"content\": \"line one",
                     "```json\n{\n  \"name\": \"write_file\",\n  \"arguments\": {\"path\": \"a.txt\", \"content\": \"line one"] {
            var p = ToolCallParser(format: .hermes, bareCallNames: ["write_file"], streamArguments: true)
            XCTAssertEqual(Self.merged(head.unicodeScalars.flatMap { p.append(String($0)) }),
                           [.toolCallBegin(index: 0, name: "write_file"),
                            .toolCallArguments(index: 0, #"{"path": "a.txt", "content": "line one"#)], head)
        }
        for (format, head) in heads {
            var p = ToolCallParser(format: format, streamArguments: true)
            let got = Self.merged(head.unicodeScalars.flatMap { p.append(String($0)) })
            XCTAssertEqual(got, [.toolCallBegin(index: 0, name: "write_file"),
                                 .toolCallArguments(index: 0, #"{"path": "a.txt", "content": "line one"#)], "\(format)")
            // Cut there by the token limit, the call stays as far as it went (the finish reason says it is cut).
            XCTAssertEqual(p.finish(truncated: true), [], "\(format)")
            // Not streamed, nothing of the call is emitted before it is whole.
            var whole = ToolCallParser(format: format)
            XCTAssertEqual(head.unicodeScalars.flatMap { whole.append(String($0)) }, [], "\(format)")
        }
    }

    /// The streamed pieces of arguments written with any spacing, escapes, numbers and nesting concatenate to the
    /// whole-call text (`argumentsText`), at every split; random objects too.
    func testStreamedArgumentsAreTheWholeCallsText() {
        let objects = [
            #"{}"#, #"{ "a" : [ ] , "b":{ }}"#,
            #"{"n": -1.50e+3, "i": 12, "f": 2.0, "t": true, "z": null, "s": "x\"y\\z\n\u00e9\ud83d\ude00/"}"#,
            #"{"k": [1, [2, [3, {"d": "}]"}]]], "e": "日本"}"#, "{\n  \"path\": \"a b\",\n  \"lines\": [\"x\",\t\"y\"]\n}",
            #"{"big": 123456789012345678901234567890, "tiny": 1e-7, "neg0": -0, "u": "\u0001\u001f"}"#,
            // Combining marks, first in a string and after a letter (helper-69: they were dropped when streamed).
            "{\"city\": \"\u{301}It\u{41056}\u{7541} e\u{308}\u{301}\u{32C}\", \"n\": \" dolla\u{31E}\u{3099}\"}",
        ]
        var rng = XorShift(state: 11)
        func randomValue(_ depth: Int) -> String {
            switch rng.next() % (depth > 2 ? 4 : 6) {
            case 0: return String(Int(rng.next() % 2000) - 1000)
            case 1: return ["true", "false", "null", "0.5", "1e3", "-2.25"][Int(rng.next() % 6)]
            case 2, 3:
                let parts = ["a", "é", #"\""#, #"\n"#, " ", #"\u0041"#, "}", #"\ud83d\ude00"#]
                return "\"" + (0..<3).map { _ in parts[Int(rng.next() % UInt64(parts.count))] }.joined() + "\""
            case 4: return "[" + (0..<Int(rng.next() % 3)).map { _ in randomValue(depth + 1) }.joined(separator: " ,") + "]"
            default: return "{" + (0..<Int(rng.next() % 3)).map { "\"k\($0)\" :\n" + randomValue(depth + 1) }.joined(separator: ", ") + " }"
            }
        }
        let random = (0..<40).map { _ in "{\"r\": " + randomValue(0) + ", \"q\": " + randomValue(1) + "}" }
        for args in objects + random {
            guard let text = ToolCallParser.argumentsText(args) else { return XCTFail("not JSON: \(args)") }
            checkCalls(.hermes, "<tool_call>{\"name\": \"f\", \"arguments\": " + args + "}</tool_call>", Self.call(0, "f", text))
        }
    }

    /// A block that does not start as a streamable call (arguments before the name, arguments as a string) is parsed
    /// whole at its end, as without streaming; one that is malformed after its start stays a call.
    func testStreamedBlocksThatDoNotStartAsCalls() {
        checkCalls(.hermes, #"<tool_call>{"arguments": {"x": 1}, "name": "a"}</tool_call>"#, Self.call(0, "a", #"{"x": 1}"#))
        checkCalls(.hermes, #"<tool_call>{"name": "a", "arguments": "{\"x\": 1}"}</tool_call>"#, Self.call(0, "a", #"{"x": 1}"#))
        // A number no JSON number can write (helper-68: 1e400 came out as `Infinity`) is no call whole, and stops the
        // streamed arguments before it.
        checkCalls(.hermes, #"<tool_call>{"name": "a", "arguments": {"v": 1e400}}</tool_call>"#,
                   streamed: [.toolCallBegin(index: 0, name: "a"), .toolCallArguments(index: 0, #"{"v": "#)],
                   [.content(#"<tool_call>{"name": "a", "arguments": {"v": 1e400}}</tool_call>"#)])
        checkCalls(.hermes, #"<tool_call>{"name": "a", "arguments": {"x": 1 2}}</tool_call>"#,
                   streamed: [.toolCallBegin(index: 0, name: "a"), .toolCallArguments(index: 0, #"{"x": 1"#)],
                   [.content(#"<tool_call>{"name": "a", "arguments": {"x": 1 2}}</tool_call>"#)])
    }

    func testFormatDetectionOnTheFixtureTemplates() throws {
        let expected: [String: ToolCallFormat?] = [
            "Qwen-Qwen2.5-7B-Instruct": .hermes, "Qwen-Qwen3-0.6B": .hermes, "qwen2.5-coder-0.5b-instruct": .hermes,
            "meta-llama-Llama-3.1-8B-Instruct": .llama3JSON, "meta-llama-Llama-3.2-3B-Instruct": .llama3JSON,
            "meta-llama-Llama-3.3-70B-Instruct": .llama3JSON,
            "mistralai-Mistral-Nemo-Instruct-2407": .mistral, "Mistral-Small-3.2-24B-Instruct-2506": .mistral,
            "deepseek-r1-distill-qwen-7b": .deepSeekV3, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": .deepSeekV3,
            "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": .deepSeekV3, "deepseek-ai-DeepSeek-V3.1": .deepSeekV31,
            "deepseek-ai-DeepSeek-V3.2": nil, "smollm2-135m-instruct": nil,
        ]
        for (name, format) in expected {
            let src = try String(contentsOfFile: Fixtures.path("templates/\(name).jinja"), encoding: .utf8)
            XCTAssertEqual(ToolCallFormat.detect(templateSource: src), format, name)
        }
    }

    func testMistralIdsHaveNineAlphanumerics() {
        var rng = XorShift(state: 1)
        let id = ToolCallFormat.mistral.makeCallId(using: &rng)
        XCTAssertEqual(id.count, 9)
        XCTAssertTrue(id.allSatisfy { $0.isLetter || $0.isNumber })
        XCTAssertTrue(ToolCallFormat.hermes.makeCallId(using: &rng).hasPrefix("call_"))
    }

    /// The skeleton the grammar will force (tool_choice required/named) parses back as exactly that call.
    func testCallSkeletonsParseBack() {
        for format in ToolCallFormat.allCases {
            let (prefix, suffix) = format.callSkeleton(name: "get_weather")
            checkCalls(format, prefix + #"{"city": "Paris", "days": [1, 2]}"# + suffix,
                       Self.call(0, "get_weather", #"{"city": "Paris", "days": [1, 2]}"#))
        }
    }
}
