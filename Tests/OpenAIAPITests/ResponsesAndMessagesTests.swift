import JSON
import XCTest
@testable import OpenAIAPI

/// `/v1/responses` and Anthropic `/v1/messages` bodies become the chat request the engine mapping reads.
final class ResponsesAndMessagesTests: XCTestCase {
    func responses(_ s: String) -> Result<ResponsesRequest, APIError> { ResponsesRequest.decode(Array(s.utf8)) }
    func messages(_ s: String, count: Bool = false) -> Result<AnthropicMessagesRequest, APIError> {
        AnthropicMessagesRequest.decode(Array(s.utf8), countTokens: count)
    }

    func param<T>(_ r: Result<T, APIError>, file: StaticString = #filePath, line: UInt = #line) -> String? {
        switch r {
        case .success: XCTFail("accepted", file: file, line: line); return nil
        case .failure(let e): XCTAssertEqual(e.status, 400, file: file, line: line); return e.param
        }
    }

    func testResponsesInputBecomesChatMessages() throws {
        let r = try responses(#"""
        {"model":"m","instructions":"be brief","max_output_tokens":7,"temperature":0.5,"top_p":0.9,"stream":true,
         "input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]},
                  {"type":"message","role":"assistant","content":[{"type":"output_text","text":"c"}]},
                  {"type":"function_call","call_id":"k","name":"f","arguments":"{}"},
                  {"type":"function_call","call_id":"j","name":"g","arguments":"{}"},
                  {"type":"function_call_output","call_id":"k","output":"42"},
                  {"type":"function_call_output","call_id":"j","output":"7"}],
         "metadata":{"x":"y"},"store":false}
        """#).get()
        let m = r.chat.messages
        XCTAssertEqual(m.map(\.role), [.system, .user, .assistant, .tool, .tool])
        XCTAssertEqual(m.map(\.content), ["be brief", "a\nb", "c", "42", "7"])
        XCTAssertEqual(m[2].toolCalls, [ToolCall(id: "k", name: "f", arguments: "{}"), ToolCall(id: "j", name: "g", arguments: "{}")])
        XCTAssertEqual(m[3].toolCallId, "k")
        XCTAssertEqual(r.chat.effectiveMaxTokens, 7)
        XCTAssertEqual(r.chat.temperature, 0.5)
        XCTAssertEqual(r.chat.topP, 0.9)
        XCTAssertTrue(r.chat.stream)
        XCTAssertEqual(r.metadata, .object([("x", .string("y"))]))
        let obj = ResponseObject(id: "resp_1", messageId: "msg_1", createdAt: 1, model: "m", status: "completed", output: [.message(id: "msg_1", text: "hi")],
                                 usage: Usage(promptTokens: 3, completionTokens: 2), request: r).json
        XCTAssertEqual(obj["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"], .string("hi"))
        XCTAssertEqual(obj["usage"]?["total_tokens"], .int(5))
        XCTAssertEqual(obj["store"], .bool(false))
    }

    func testResponsesRefusals() {
        XCTAssertEqual(param(responses(#"{"input":"x","previous_response_id":"resp_1"}"#)), "previous_response_id")
        XCTAssertEqual(param(responses(#"{"input":"x","store":true}"#)), "store")
        XCTAssertEqual(param(responses(#"{"input":"x","tools":[{"type":"web_search"}]}"#)), "tools[0].type")
        XCTAssertEqual(param(responses(#"{"input":"x","tools":[{"type":"function"}]}"#)), "tools[0].name")
        XCTAssertEqual(param(responses(#"{"input":"x","tool_choice":"required"}"#)), "tool_choice")
        XCTAssertEqual(param(responses(#"{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}"#)),
                       "tool_choice.name")
        XCTAssertEqual(param(responses(#"{"input":"x","reasoning":{"summary":"auto"}}"#)), "reasoning.summary")
        XCTAssertEqual(param(responses(#"{"input":"x","reasoning":{"effort":"max"}}"#)), "reasoning.effort")
        let t = try? responses(#"{"input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"#
                               + #""tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,"reasoning":{"effort":"low"}}"#).get()
        XCTAssertEqual(t?.chat.tools?.serialized(), #"[{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}]"#)
        let lax = try? responses(#"{"input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":null}]}"#).get()
        XCTAssertEqual(lax?.chat.tools?.serialized(), #"[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#)
        XCTAssertEqual(t?.chat.toolChoice?.serialized(), #"{"type":"function","function":{"name":"f"}}"#)
        XCTAssertEqual(t?.chat.parallelToolCalls, false)
        XCTAssertEqual(t?.chat.reasoningEffort, "low")
        XCTAssertEqual(t?.wantsReasoning, true)
        XCTAssertEqual(param(responses(#"{"input":"x","text":{"format":{"type":"json_schema"}}}"#)), "text.format.name")
        XCTAssertEqual(param(responses(#"{"input":"x","text":{"format":{"type":"yaml"}}}"#)), "text.format.type")
        // text.format → chat's response_format (name, schema and strict move into json_schema); echoed as sent.
        let js = try? responses(#"{"input":"x","text":{"format":{"type":"json_schema","name":"p","strict":true,"#
                                + #""schema":{"type":"object"},"description":"d"}}}"#).get()
        XCTAssertEqual(js?.chat.responseFormat?.serialized(),
                       #"{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object"},"strict":true}}"#)
        XCTAssertEqual(js?.textFormat?["name"]?.stringValue, "p")
        XCTAssertEqual(try? responses(#"{"input":"x","text":{"format":{"type":"json_object"}}}"#).get().chat.responseFormat?.serialized(),
                       #"{"type":"json_object"}"#)
        // function_call_output.output as input_text parts; prompt_cache_key and safety_identifier (as user).
        let parts = try? responses(#"{"input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"k","name":"f","arguments":"{}"},"#
                                   + #"{"type":"function_call_output","call_id":"k","output":[{"type":"input_text","text":"4"},{"type":"input_text","text":"2"}]}],"#
                                   + #""prompt_cache_key":"c","safety_identifier":"s"}"#).get()
        XCTAssertEqual(parts?.chat.messages.last?.content, "4\n2")
        XCTAssertEqual(parts?.chat.user, "s")
        XCTAssertEqual(param(responses(#"{"input":"x","text":{"verbosity":"low"}}"#)), "text.verbosity")
        XCTAssertEqual(param(responses(#"{"input":[]}"#)), "input")
        XCTAssertEqual(param(responses(#"{"input":[{"type":"item_reference","id":"x"}]}"#)), "input[0].type")
        XCTAssertEqual(param(responses(#"{"input":[{"type":"reasoning","summary":[],"encrypted_content":"zz"}]}"#)),
                       "input[0].encrypted_content")
        let withReasoning = try? responses(#"{"input":[{"role":"user","content":"q"},{"type":"reasoning","summary":[],"#
                                           + #""content":[{"type":"reasoning_text","text":"hmm"}]},"#
                                           + #"{"role":"assistant","content":"a"}]}"#).get()
        XCTAssertEqual(withReasoning?.chat.messages.map(\.reasoningContent), [nil, "hmm"])
        XCTAssertEqual(param(responses(#"{"input":"x","metadata":{"a":1}}"#)), "metadata")
    }

    func testEventSequenceNumbers() {
        var seq = ResponseEventSequence()
        let a = seq.event("response.created", []), b = seq.event("response.completed", [("x", .int(1))])
        XCTAssertEqual(a.data, #"{"type":"response.created","sequence_number":0}"#)
        XCTAssertEqual(b.name, "response.completed")
        XCTAssertEqual(b.data, #"{"type":"response.completed","sequence_number":1,"x":1}"#)
    }

    func testAnthropicBlocksBecomeChatMessages() throws {
        let r = try messages(#"""
        {"model":"m","max_tokens":9,"system":[{"type":"text","text":"s1"},{"type":"text","text":"s2"}],
         "stop_sequences":["END"],"temperature":0.2,"top_k":5,
         "messages":[{"role":"user","content":"q"},
                     {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"x"},
                        {"type":"text","text":"let me look"},
                        {"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
                     {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"r"}]},
                        {"type":"text","text":"thanks"}]}]}
        """#).get()
        let m = r.chat.messages
        XCTAssertEqual(m.map(\.role), [.system, .user, .assistant, .tool, .user])
        XCTAssertEqual(m.map(\.content), ["s1\ns2", "q", "let me look", "r", "thanks"])
        XCTAssertEqual(m[2].reasoningContent, "hmm")
        XCTAssertEqual(m[2].toolCalls, [ToolCall(id: "t1", name: "f", arguments: #"{"a":1}"#)])
        XCTAssertEqual(m[3].toolCallId, "t1")
        XCTAssertEqual(r.chat.maxTokens, 9)
        XCTAssertEqual(r.chat.stop, ["END"])
        XCTAssertEqual(r.chat.topK, 5)
    }

    func testAnthropicRefusalsAndRequiredFields() {
        let msgs = #""messages":[{"role":"user","content":"q"}]"#
        XCTAssertEqual(param(messages("{\(msgs)}")), "max_tokens")
        XCTAssertNotNil(try? messages("{\(msgs)}", count: true).get())  // count_tokens needs no max_tokens
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"tools":[{"name":"f"}],"# + msgs + "}")), "tools[0].input_schema")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"tools":[{"type":"bash_20250124","name":"bash"}],"# + msgs + "}")), "tools[0].type")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"tool_choice":{"type":"any"},"# + msgs + "}")), "tool_choice")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"thinking":{"type":"enabled","budget_tokens":1024},"# + msgs + "}")),
                       "thinking.budget_tokens")
        XCTAssertEqual(param(messages(#"{"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":10},"# + msgs + "}")),
                       "thinking.budget_tokens")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"temperature":1.5,"# + msgs + "}")), "temperature")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]}"#)),
                       "messages[0].content[0].type")
        XCTAssertEqual(param(messages(#"{"max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"x"}]}]}"#)),
                       "messages[0].content[0].type")
        XCTAssertNotNil(try? messages(#"{"max_tokens":1,"thinking":{"type":"disabled"},"# + msgs + "}").get())
    }

    func testAnthropicToolsAndThinkingConvert() throws {
        let msgs = #""messages":[{"role":"user","content":"q"}]"#
        let tools = #""tools":[{"name":"f","description":"d","input_schema":{"type":"object"}},{"name":"g","input_schema":{"type":"object"},"strict":true}],"#
        let any = try messages(#"{"max_tokens":9,"# + tools + #""tool_choice":{"type":"any","disable_parallel_tool_use":true},"# + msgs + "}").get()
        XCTAssertEqual(any.chat.tools?.serialized(),
                       #"[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}},"#
                       + #"{"type":"function","function":{"name":"g","parameters":{"type":"object"},"strict":true}}]"#)
        XCTAssertEqual(any.chat.toolChoice, .string("required"))
        XCTAssertEqual(any.chat.parallelToolCalls, false)
        let named = try messages(#"{"max_tokens":9,"# + tools + #""tool_choice":{"type":"tool","name":"g"},"# + msgs + "}").get()
        XCTAssertEqual(named.chat.toolChoice?.serialized(), #"{"type":"function","function":{"name":"g"}}"#)
        XCTAssertNil(named.chat.parallelToolCalls)
        let none = try messages(#"{"max_tokens":9,"# + tools + #""tool_choice":{"type":"none"},"# + msgs + "}").get()
        XCTAssertEqual(none.chat.toolChoice, .string("none"))
        XCTAssertFalse(none.thinking)
        let thinking = try messages(#"{"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"# + msgs + "}").get()
        XCTAssertTrue(thinking.thinking)
        XCTAssertEqual(param(messages(#"{"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"# + tools
                                      + #""tool_choice":{"type":"any"},"# + msgs + "}")), "tool_choice")
    }

    func testAnthropicFinalAssistantMessageIsAPrefill() throws {
        let prefill = #""messages":[{"role":"user","content":"q"},{"role":"assistant","content":"The answer"}]"#
        XCTAssertTrue(try messages(#"{"max_tokens":9,"# + prefill + "}").get().chat.continueFinalMessage)
        XCTAssertFalse(try messages(#"{"max_tokens":9,"messages":[{"role":"user","content":"q"}]}"#).get().chat.continueFinalMessage)
        // A final assistant tool call is not a prefill: unanswered, it is refused as Anthropic's API refuses it (a model
        // shown it would make up the result).
        let call = #""messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]"#
        XCTAssertEqual(param(messages(#"{"max_tokens":9,"# + call + "}")), "messages[1]")
        // With thinking on, Anthropic wants such a message to start with a thinking block.
        XCTAssertEqual(param(messages(#"{"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"# + prefill + "}")), "messages")
    }

    func testAnthropicErrorShape() {
        XCTAssertEqual(AnthropicError(.invalidRequest("bad", param: "x")).json.serialized(),
                       #"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#)
        XCTAssertEqual(AnthropicError(.authentication()).type, "authentication_error")
        XCTAssertEqual(AnthropicError(.rateLimited()).type, "rate_limit_error")
        XCTAssertEqual(AnthropicError(.overloaded()).type, "overloaded_error")
        XCTAssertEqual(AnthropicError(.internal()).type, "api_error")
    }
}
