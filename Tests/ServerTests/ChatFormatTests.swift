import ChatTemplate
import Engine
import Foundation
import Grammar
import JSON
import Logging
import OpenAIAPI
import TestSupport
import Tokenizer
import XCTest
@testable import Server

/// Request → template variables → prompt → output parsing, without generating: messages reach the template as sent
/// (null as none), tools and thinking modes select what the parsers expect.
final class ChatFormatTests: XCTestCase {
    private let tinyModel = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")

    private func server(templateFile: String? = nil, template: String? = nil) throws -> SputnikServer {
        var o = ServerOptions()
        o.modelPath = tinyModel
        o.threads = 1
        o.contextSize = 2048
        if let templateFile { o.chatTemplatePath = Fixtures.path("templates/" + templateFile) }
        if let template {
            let p = FileManager.default.temporaryDirectory.appendingPathComponent("tpl-\(UUID().uuidString).jinja").path
            try template.write(toFile: p, atomically: true, encoding: .utf8)
            o.chatTemplatePath = p
        }
        return try SputnikServer(options: o, logger: Logger(label: "test"))
    }

    private func request(_ json: String) throws -> ChatCompletionRequest {
        try ChatCompletionRequest.decode(Array(json.utf8)).get()
    }

    private func text(_ s: SputnikServer, _ r: ChatCompletionRequest) throws -> String {
        s.tokenizer.detokenize(try s.renderPrompt(for: r).tokens, renderSpecial: true)
    }

    static let tools = #"[{"type":"function","function":{"name":"get_weather","description":"Weather.","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#

    func testMessagesReachTheTemplateAsSent() throws {
        let raw = #"{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}"#
        let r = try request(#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},"# + raw + "]}")
        XCTAssertEqual(SputnikServer.templateMessage(r.messages[1]), JinjaValue(json: try JSONValue(parsing: raw)))
        guard case .object(let user) = SputnikServer.templateMessage(r.messages[0]) else { return XCTFail() }
        XCTAssertEqual(user["content"], "ab")
        // A message built in code: nil content is none, not absent.
        guard case .object(let built) = SputnikServer.templateMessage(ChatMessage(role: .assistant, content: nil)) else { return XCTFail() }
        XCTAssertEqual(built["content"], JinjaValue.null)
    }

    func testNullContentHistoryRendersOnTheDeepSeekR1Template() throws {
        // Issue 20: `message['content'] is none` must hold for "content": null.
        let s = try server(templateFile: "deepseek-r1-distill-qwen-7b.jinja")
        let r = try request(#"{"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"18 C"}]}"#)
        let t = try text(s, r)
        XCTAssertTrue(t.contains("<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```"), t)
        XCTAssertTrue(t.contains("<｜tool▁output▁begin｜>18 C<｜tool▁output▁end｜>"), t)
    }

    func testToolsAreDescribedForDeepSeekTemplatesThatDoNotRenderThem() throws {
        let s = try server(templateFile: "deepseek-ai-DeepSeek-V3.1.jinja")
        let t = try text(s, try request(#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"tools":"# + Self.tools + "}"))
        XCTAssertTrue(t.contains("Be brief.\n\n## Tools\nYou have access to the following tools:\n\n### get_weather\nDescription: Weather.\n"), t)
        XCTAssertTrue(t.contains("<｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"), t)
        let parsing = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tools":"# + Self.tools + "}")).parsing
        XCTAssertEqual(parsing.toolCalls, .deepSeekV31)
        // Without tools the system message is left alone.
        XCTAssertFalse(try text(s, try request(#"{"messages":[{"role":"user","content":"Hi"}]}"#)).contains("## Tools"))
    }

    func testStringArgumentsBecomeObjectsForTemplatesThatPrintThemWithToJSON() throws {
        let s = try server(templateFile: "qwen2.5-coder-0.5b-instruct.jinja")
        let r = try request(#"{"messages":[{"role":"user","content":"W?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"18 C"}],"tools":"# + Self.tools + "}")
        let t = try text(s, r)
        XCTAssertTrue(t.contains(#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#), t)
    }

    func testParsingFollowsToolChoiceAndParallelToolCalls() throws {
        let s = try server(templateFile: "qwen2.5-coder-0.5b-instruct.jinja")
        let auto = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tools":"# + Self.tools + "}")).parsing
        XCTAssertEqual(auto.toolCalls, .hermes)
        XCTAssertNil(auto.maxToolCalls)
        XCTAssertNil(auto.reasoning)  // the Qwen 2.5 template has no <think> blocks
        let one = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"parallel_tool_calls":false,"tools":"# + Self.tools + "}")).parsing
        XCTAssertEqual(one.maxToolCalls, 1)
        let none = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"none","tools":"# + Self.tools + "}")).parsing
        XCTAssertNil(none.toolCalls)
        // required / named: one call forced by a grammar in the template's markup (Hermes here).
        let forced = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":"# + Self.tools + "}"))
        XCTAssertEqual(forced.parsing.toolCalls, .hermes)
        XCTAssertEqual(forced.parsing.maxToolCalls, 1)
        let g = try XCTUnwrap(forced.forced)
        let (prefix, suffix) = ToolCallFormat.hermes.callSkeleton(name: "get_weather")
        XCTAssertTrue(g.matches(prefix + #"{"city": "Paris"}"# + suffix))
        XCTAssertFalse(g.matches(prefix + #"{"town": 3}"# + suffix))
        XCTAssertFalse(g.matches("Sure! " + prefix + #"{"city": "Paris"}"# + suffix))
        XCTAssertNil(try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tools":"# + Self.tools + "}")).forced)
    }

    func testThinkingModes() throws {
        // R1 distill (llama.cpp's version): enable_thinking selects `<think>\n` (reasoning) or `<think>\n</think>`.
        let s = try server(templateFile: "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja")
        let hi = #"{"role":"user","content":"Hi"}"#
        XCTAssertEqual(try s.renderPrompt(for: try request(#"{"messages":["# + hi + #"],"reasoning_effort":"high"}"#)).parsing.reasoning, .startsInside)
        XCTAssertEqual(try s.renderPrompt(for: try request(#"{"messages":["# + hi + #"]}"#)).parsing.reasoning, .startsOutside)
        XCTAssertNil(try s.renderPrompt(for: try request(#"{"messages":["# + hi + #"],"reasoning_effort":"high","reasoning_format":"none"}"#)).parsing.reasoning)
        // A template with no non-thinking mode: the think block is closed in the prompt.
        let always = try server(template: "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|><think>\n{# </think> #}")
        let open = try always.renderPrompt(for: try request(#"{"messages":["# + hi + "]}"))
        XCTAssertEqual(open.parsing.reasoning, .startsInside)
        for closing in [#","reasoning_effort":"none"}"#, #","chat_template_kwargs":{"thinking":false}}"#,
                        #","chat_template_kwargs":{"enable_thinking":false}}"#] {
            let closed = try always.renderPrompt(for: try request(#"{"messages":["# + hi + "]" + closing))
            XCTAssertEqual(closed.parsing.reasoning, .startsOutside, closing)
            XCTAssertTrue(always.tokenizer.detokenize(closed.tokens, renderSpecial: true).hasSuffix("<think>\n</think>\n\n"))
        }
    }

    func testChatTemplateKwargsNullIsNone() throws {
        let s = try server(template: "{{ flag is none }}|{{ flag is defined }}|{{ other }}")
        let t = try text(s, try request(#"{"messages":[{"role":"user","content":"Hi"}],"chat_template_kwargs":{"flag":null,"other":[1,{"a":null}]}}"#))
        XCTAssertTrue(t.hasSuffix("True|True|[1, {'a': None}]"), t)
    }
}
