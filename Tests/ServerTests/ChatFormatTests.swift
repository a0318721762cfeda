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
        let r = try request(#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},"# + raw
                            + #",{"role":"tool","tool_call_id":"a","content":"ok"}]}"#)
        XCTAssertEqual(SputnikServer.templateMessage(r.messages[1]), JinjaValue(json: try JSONValue(parsing: raw)))
        guard case .object(let user) = SputnikServer.templateMessage(r.messages[0]) else { return XCTFail() }
        XCTAssertEqual(user["content"], "a\nb")
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
        // required: one or more calls forced by a grammar in the template's markup (Hermes here); one with
        // parallel_tool_calls false.
        let forced = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":"# + Self.tools + "}"))
        XCTAssertEqual(forced.parsing.toolCalls, .hermes)
        XCTAssertNil(forced.parsing.maxToolCalls)
        let g = try XCTUnwrap(forced.forced)
        let (prefix, suffix) = ToolCallFormat.hermes.callSkeleton(name: "get_weather")
        XCTAssertTrue(g.matches(prefix + #"{"city": "Paris"}"# + suffix))
        XCTAssertTrue(g.matches(prefix + #"{"city": "Paris"}"# + suffix + "\n" + prefix + #"{"city": "Rome"}"# + suffix))
        XCTAssertFalse(g.matches(prefix + #"{"town": 3}"# + suffix))
        XCTAssertFalse(g.matches("Sure! " + prefix + #"{"city": "Paris"}"# + suffix))
        let single = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","parallel_tool_calls":false,"tools":"# + Self.tools + "}"))
        XCTAssertEqual(single.parsing.maxToolCalls, 1)
        XCTAssertFalse(try XCTUnwrap(single.forced).matches(prefix + #"{"city": "Paris"}"# + suffix + "\n" + prefix + #"{"city": "Rome"}"# + suffix))
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

    func testThinkTagsTypedByTheClientAreNotMarkup() throws {
        // C46 (helper's report): "<think>" in a system or user message made the whole reply reasoning on templates
        // whose generation prompt opens no think block. The text still reaches the prompt unchanged.
        for file in ["Qwen-Qwen3-0.6B.jinja", "deepseek-r1-distill-qwen-7b.jinja"] {
            let s = try server(templateFile: file)
            let r = try request(#"{"messages":[{"role":"system","content":"Reason inside <think> tags."},{"role":"user","content":"2+2? <think>"}]}"#)
            let rendered = try s.renderPrompt(for: r)
            XCTAssertEqual(rendered.parsing.reasoning, .startsOutside, file)
            let t = s.tokenizer.detokenize(rendered.tokens, renderSpecial: true)
            XCTAssertTrue(t.contains("Reason inside <think> tags.") && t.contains("2+2? <think>"), t)
        }
        // In a tool description, and as an unclosed think block in an earlier assistant turn (a reply cut by
        // max_tokens sent back as history): helper's second report.
        for file in ["Qwen-Qwen3-0.6B.jinja", "deepseek-r1-distill-qwen-7b.jinja"] {
            let s = try server(templateFile: file)
            let tool = #"[{"type":"function","function":{"name":"get_weather","description":"weather <think>","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#
            XCTAssertEqual(try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Hi"}],"tools":"# + tool + "}")).parsing.reasoning,
                           .startsOutside, file)
            let history = #"[{"role":"user","content":"Say hi."},{"role":"assistant","content":"<think>let me"},{"role":"user","content":"Again."}]"#
            XCTAssertEqual(try s.renderPrompt(for: try request(#"{"messages":"# + history + "}")).parsing.reasoning, .startsOutside, file)
        }
        // The template's own opening still counts.
        let s = try server(templateFile: "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja")
        XCTAssertEqual(try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Say </think> <think>"}]}"#)).parsing.reasoning, .startsInside)
    }

    func testAPrefillIsAnswerTextOnATemplateThatOpensThinking() throws {
        // Helper's report: on the R1-Distill-Llama template the prefill landed inside the pre-opened think block.
        // As transformers renders the assistant message, it follows the assistant header; a prefill that opens its
        // own think block is still reasoning.
        let s = try server(templateFile: "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja")
        let answer = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Haiku?"},{"role":"assistant","content":"Rain"}],"continue_final_message":true}"#))
        XCTAssertTrue(s.tokenizer.detokenize(answer.tokens, renderSpecial: true).hasSuffix("<｜Assistant｜>Rain"))
        XCTAssertEqual(answer.parsing.reasoning, .startsOutside)
        XCTAssertEqual(answer.parsing.prefix, "Rain")
        let thought = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Haiku?"},{"role":"assistant","content":"<think>\nRain"}],"continue_final_message":true}"#))
        XCTAssertTrue(s.tokenizer.detokenize(thought.tokens, renderSpecial: true).hasSuffix("<｜Assistant｜><think>\nRain"))
        XCTAssertEqual(thought.parsing.prefix, "<think>\nRain")
    }

    func testAPrefillsReasoningStartsTheThinkBlock() throws {
        // Helper's second report: the reasoning of a continued message (an Anthropic thinking block) never reached
        // the prompt. It opens the think block; an answer after it closes the block first.
        let s = try server(templateFile: "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja")
        let thinking = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Haiku?"},{"role":"assistant","content":"","reasoning_content":"Let me count"}],"continue_final_message":true}"#))
        XCTAssertTrue(s.tokenizer.detokenize(thinking.tokens, renderSpecial: true).hasSuffix("<｜Assistant｜><think>\nLet me count"))
        XCTAssertEqual(thinking.parsing.prefix, "<think>\nLet me count")
        let answered = try s.renderPrompt(for: try request(#"{"messages":[{"role":"user","content":"Haiku?"},{"role":"assistant","content":"Rain","reasoning_content":"r"}],"continue_final_message":true}"#))
        XCTAssertTrue(s.tokenizer.detokenize(answered.tokens, renderSpecial: true).hasSuffix("<think>\nr\n</think>\n\nRain"))
    }

    func testChatTemplateKwargsNullIsNone() throws {
        let s = try server(template: "{{ flag is none }}|{{ flag is defined }}|{{ other }}")
        let t = try text(s, try request(#"{"messages":[{"role":"user","content":"Hi"}],"chat_template_kwargs":{"flag":null,"other":[1,{"a":null}]}}"#))
        XCTAssertTrue(t.hasSuffix("True|True|[1, {'a': None}]"), t)
    }
}

/// C13: a template that refuses the role order (Mistral's "conversation roles must alternate") gets the normalised
/// history; expected prompts are jinja2's renders of the normalised messages
/// (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`, with the tiny model's bos and eos texts).
final class RoleOrderTests: XCTestCase {
    static let bos = "<｜begin▁of▁sentence｜>", eos = "<｜end▁of▁sentence｜>"

    private func render(_ s: SputnikServer, _ messages: String) throws -> String {
        let r = try ChatCompletionRequest.decode(Array(#"{"messages":\#(messages)}"#.utf8)).get()
        return s.tokenizer.detokenize(try s.renderPrompt(for: r).tokens, renderSpecial: true)
    }

    private func server(_ template: String) throws -> SputnikServer {
        var o = ServerOptions()
        o.modelPath = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")
        o.threads = 1
        o.contextSize = 2048
        o.chatTemplatePath = Fixtures.path("templates/" + template)
        return try SputnikServer(options: o, logger: Logger(label: "test"))
    }

    static let s = #"{"role":"system","content":"Be brief."}"#, u = #"{"role":"user","content":"Say hi."}"#
    static let u2 = #"{"role":"user","content":"And bye."}"#, a = #"{"role":"assistant","content":"Hello."}"#

    func testMistralGetsTheNormalisedHistory() throws {
        let nemo = try server("mistralai-Mistral-Nemo-Instruct-2407.jinja")
        let (s, u, u2, a, bos, eos) = (Self.s, Self.u, Self.u2, Self.a, Self.bos, Self.eos)
        XCTAssertEqual(try render(nemo, "[\(s),\(u),\(u2)]"), bos + "[INST]Be brief.\n\nSay hi.\n\nAnd bye.[/INST]")
        XCTAssertEqual(try render(nemo, "[\(u),\(u2)]"), bos + "[INST]Say hi.\n\nAnd bye.[/INST]")
        XCTAssertEqual(try render(nemo, "[\(s),\(s),\(u)]"), bos + "[INST]Be brief.\n\nBe brief.\n\nSay hi.[/INST]")
        XCTAssertEqual(try render(nemo, "[\(u),\(a),\(a),\(u2)]"), bos + "[INST]Say hi.[/INST]Hello.\n\nHello." + eos + "[INST]And bye.[/INST]")
        XCTAssertEqual(try render(nemo, "[\(u),\(s),\(u2)]"), bos + "[INST]Say hi.\n\nBe brief.\n\nAnd bye.[/INST]")
        // A developer message is a system message.
        XCTAssertEqual(try render(nemo, #"[{"role":"developer","content":"Be brief."},\#(u)]"#), bos + "[INST]Be brief.\n\nSay hi.[/INST]")
    }

    func testToolCallIdsOfOtherRoutesFitMistralTemplates() throws {
        // Mistral's templates raise on ids that are not 9 letters and digits; the Anthropic and Responses routes
        // issue toolu_… / call_… ids (helper's second report: their tool loop failed on these templates).
        let nemo = try server("mistralai-Mistral-Nemo-Instruct-2407.jinja")
        let history = #"[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_56OTm5LXNtHeVkG9Q6VGD9sV","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"toolu_56OTm5LXNtHeVkG9Q6VGD9sV","content":"18 C"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"19 C"}]"#
        let t = try render(nemo, history)
        XCTAssertTrue(t.contains(#""id": "9Q6VGD9sV""#) && t.contains(#"[TOOL_RESULTS]{"content": 18 C, "call_id": "9Q6VGD9sV"}"#), t)
        XCTAssertTrue(t.contains(#""id": "0000call1""#), t)
        // Ids that already fit are left alone.
        let fits = #"[{"role":"user","content":"W?"},{"role":"assistant","content":null,"tool_calls":[{"id":"abcDEF123","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"abcDEF123","content":"1"}]"#
        XCTAssertTrue(try render(nemo, fits).contains(#""id": "abcDEF123""#))
    }

    func testAHistoryTheTemplateAcceptsIsRenderedAsSent() throws {
        let smol = try server("smollm2-135m-instruct.jinja")
        XCTAssertEqual(try render(smol, "[\(Self.u),\(Self.u2)]"),
                       "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                       + "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>user\nAnd bye.<|im_end|>\n<|im_start|>assistant\n")
    }

    func testOtherTemplateErrorsAreStillRefused() throws {
        // The Qwen3 template tests `'</think>' in message.content`; jinja2 raises on a null content, so do we.
        let qwen3 = try server("Qwen-Qwen3-0.6B.jinja")
        let history = #"[{"role":"user","content":"W?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"1"}]"#
        XCTAssertThrowsError(try render(qwen3, history)) { XCTAssertEqual(($0 as? APIError)?.param, "messages") }
    }

    func testNormalisation() {
        typealias N = RoleNormalisation
        let sys = ChatMessage(role: .system, content: "S"), user = ChatMessage(role: .user, content: "U")
        let call = ChatMessage(role: .assistant, content: nil, toolCalls: [ToolCall(id: "c", type: "function", name: "f", arguments: "{}")])
        let tool = ChatMessage(role: .tool, content: "1", toolCallId: "c")
        XCTAssertNil(N.normalised([sys, user], foldSystem: false))
        XCTAssertEqual(N.normalised([sys, user], foldSystem: true), [ChatMessage(role: .user, content: "S\n\nU")])
        XCTAssertEqual(N.normalised([sys], foldSystem: true), [ChatMessage(role: .user, content: "S")])
        // Tool results and calls are never merged; the users around them are not joined across them.
        XCTAssertNil(N.normalised([user, call, tool, tool, user], foldSystem: false))
        XCTAssertEqual(N.normalised([user, call, call, user, user], foldSystem: false),
                       [user, call, call, ChatMessage(role: .user, content: "U\n\nU")])
        // An empty text adds no blank line.
        XCTAssertEqual(N.normalised([user, ChatMessage(role: .user, content: "")], foldSystem: false), [user])
    }
}
