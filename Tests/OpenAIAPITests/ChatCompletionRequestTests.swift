import JSON
import XCTest
@testable import OpenAIAPI

final class ChatCompletionRequestTests: XCTestCase {
    func decode(_ s: String) -> Result<ChatCompletionRequest, APIError> { ChatCompletionRequest.decode(Array(s.utf8)) }

    func error(_ s: String, file: StaticString = #filePath, line: UInt = #line) -> APIError? {
        switch decode(s) {
        case .success: XCTFail("accepted: \(s)", file: file, line: line); return nil
        case .failure(let e): return e
        }
    }

    func assert400(_ body: String, param: String?, contains: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        guard let e = error(body, file: file, line: line) else { return }
        XCTAssertEqual(e.status, 400, file: file, line: line)
        XCTAssertEqual(e.type, "invalid_request_error", file: file, line: line)
        XCTAssertEqual(e.param, param, body, file: file, line: line)
        if let contains { XCTAssertTrue(e.message.contains(contains), "\(e.message)", file: file, line: line) }
    }

    let user = #"[{"role":"user","content":"hi"}]"#

    /// A field no parser read is refused by name (OpenAI's "Unrecognized request argument supplied"), on every
    /// route, even when everything else in the body is valid; null counts as absent.
    func testUnreadFieldsAreRefused() throws {
        let chat = #"{"messages":[{"role":"user","content":"q"}],"temprature":0.5}"#
        guard case .failure(let e) = decode(chat) else { return XCTFail("accepted an unknown field") }
        XCTAssertEqual(e.param, "temprature")
        XCTAssertEqual(e.message, "Unrecognized request argument supplied: temprature")
        guard case .failure(let c) = CompletionRequest.decode(Array(#"{"prompt":"x","id_slot":0}"#.utf8)) else {
            return XCTFail("completions accepted an unknown field")
        }
        XCTAssertEqual(c.param, "id_slot")
        guard case .failure(let a) = AnthropicMessagesRequest.decode(
            Array(#"{"max_tokens":4,"messages":[{"role":"user","content":"q"}],"foo":1}"#.utf8)) else {
            return XCTFail("messages accepted an unknown field")
        }
        XCTAssertEqual(a.param, "foo")
        XCTAssertEqual(a.message, "foo: Extra inputs are not permitted")
        // Known fields that need no action, and null for an unknown one, are accepted.
        let known = #"{"messages":[{"role":"user","content":"q"}],"metadata":{"k":"v"},"prompt_cache_key":"p","#
            + #""safety_identifier":"s","service_tier":"auto","nonsense":null}"#
        let r = try decode(known).get()
        XCTAssertEqual(r.sampling.user, "s")
    }

    func testFullRequestDecodes() throws {
        let body = #"""
        {"model":"m","messages":[
          {"role":"system","content":"sys"},
          {"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
          {"role":"user","content":"q","name":"bob"},
          {"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"Sunny"},
          {"role":"assistant","content":"It is sunny."}],
         "temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,"presence_penalty":0.5,"frequency_penalty":-0.5,
         "repetition_penalty":1.1,"max_tokens":10,"max_completion_tokens":20,"stop":["a","b"],"seed":7,"stream":true,
         "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,"n":1,
         "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
         "tool_choice":{"type":"function","function":{"name":"get_weather"}},
         "response_format":{"type":"json_object"},"user":"u1","priority":-2,"reasoning_effort":"low"}
        """#
        let r = try decode(body).get()
        XCTAssertEqual(r.model, "m")
        XCTAssertEqual(r.messages.map(\.role), [.system, .developer, .user, .assistant, .tool, .assistant])
        XCTAssertEqual(r.messages[1].content, "a\nb")
        XCTAssertEqual(r.messages[1].contentParts, ["a", "b"])
        XCTAssertEqual(r.messages[2].name, "bob")
        XCTAssertNil(r.messages[3].content)
        XCTAssertEqual(r.messages[3].reasoningContent, "think")
        XCTAssertEqual(r.messages[3].toolCalls, [ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)])
        XCTAssertEqual(r.messages[4].toolCallId, "call_1")
        XCTAssertEqual(r.messages[5].content, "It is sunny.")
        XCTAssertEqual(r.temperature, 0.7)
        XCTAssertEqual(r.topP, 0.9)
        XCTAssertEqual(r.topK, 40)
        XCTAssertEqual(r.minP, 0.05)
        XCTAssertEqual(r.presencePenalty, 0.5)
        XCTAssertEqual(r.frequencyPenalty, -0.5)
        XCTAssertEqual(r.repetitionPenalty, 1.1)
        XCTAssertEqual(r.maxTokens, 10)
        XCTAssertEqual(r.effectiveMaxTokens, 20)
        XCTAssertEqual(r.stop, ["a", "b"])
        XCTAssertEqual(r.seed, 7)
        XCTAssertTrue(r.stream)
        XCTAssertTrue(r.includeUsage)
        XCTAssertTrue(r.logprobs)
        XCTAssertEqual(r.topLogprobs, 3)
        XCTAssertEqual(r.user, "u1")
        XCTAssertEqual(r.priority, -2)
        XCTAssertEqual(r.reasoningEffort, "low")
        XCTAssertEqual(r.tools?.serialized(),
                       #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#)
        XCTAssertEqual(r.toolChoice?["function"]?["name"]?.stringValue, "get_weather")
        XCTAssertEqual(r.responseFormat?["type"]?.stringValue, "json_object")
        XCTAssertNil(r.parallelToolCalls)
        let none = try decode(#"{"messages":\#(user),"tool_choice":"none","parallel_tool_calls":false}"#).get()
        XCTAssertEqual(none.toolChoice, .string("none"))
        XCTAssertEqual(none.parallelToolCalls, false)
    }

    func testDefaultsAndNulls() throws {
        let r = try decode(#"{"messages":[{"role":"user","content":"x"}],"temperature":null,"stop":"END","seed":null,"tools":null}"#).get()
        XCTAssertNil(r.model)
        XCTAssertNil(r.temperature)
        XCTAssertEqual(r.stop, ["END"])
        XCTAssertFalse(r.stream)
        XCTAssertFalse(r.includeUsage)
        XCTAssertEqual(r.n, 1)
        XCTAssertNil(r.tools)
        XCTAssertNil(r.effectiveMaxTokens)
        XCTAssertFalse(r.ignoreEOS)
        XCTAssertTrue(try decode(#"{"messages":[{"role":"user","content":"x"}],"ignore_eos":true}"#).get().ignoreEOS)
    }

    func testBodyErrors() {
        assert400("not json", param: nil, contains: "not valid JSON")
        assert400("", param: nil, contains: "empty")
        assert400("[1,2]", param: nil, contains: "JSON object")
        assert400("\"str\"", param: nil, contains: "JSON object")
        assert400("{}", param: "messages", contains: "required")
        assert400(#"{"messages":[]}"#, param: "messages", contains: "at least one")
        assert400(#"{"messages":"hi"}"#, param: "messages")
        assert400(#"{"messages":null}"#, param: "messages")
    }

    func testExactErrorBody() {
        guard let e = error(#"{"messages":[]}"#) else { return }
        XCTAssertEqual(String(decoding: e.encoded(), as: UTF8.self),
                       #"{"error":{"message":"'messages' must contain at least one message","type":"invalid_request_error","param":"messages","code":null}}"#)
        guard let n = error(#"{"messages":\#(user),"n":129}"#) else { return }
        XCTAssertEqual(String(decoding: n.encoded(), as: UTF8.self),
                       #"{"error":{"message":"'n' must be <= 128, got 129","type":"invalid_request_error","param":"n","code":null}}"#)
    }

    func testMessageErrors() {
        assert400(#"{"messages":[1]}"#, param: "messages[0]")
        assert400(#"{"messages":[{"content":"x"}]}"#, param: "messages[0].role")
        assert400(#"{"messages":[{"role":"wizard","content":"x"}]}"#, param: "messages[0].role", contains: "wizard")
        assert400(#"{"messages":[{"role":"user","content":"x"},{"role":"user","content":null}]}"#, param: "messages[1].content")
        assert400(#"{"messages":[{"role":"user","content":5}]}"#, param: "messages[0].content")
        assert400(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}"#,
                  param: "messages[0].content[0].type", contains: "not supported")
        assert400(#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#, param: "messages[0].content[0].text")
        assert400(#"{"messages":[{"role":"user","content":["x"]}]}"#, param: "messages[0].content[0]")
        assert400(#"{"messages":[{"role":"tool","content":"x"}]}"#, param: "messages[0].tool_call_id")
        assert400(#"{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function"}]}]}"#,
                  param: "messages[0].tool_calls[0].function")
        assert400(#"{"messages":[{"role":"user","content":"x","name":3}]}"#, param: "messages[0].name")
        // An assistant message with neither content nor tool calls (a new-user report: it failed later, in the template).
        assert400(#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null}]}"#,
                  param: "messages[1].content", contains: "tool_calls")
        assert400(#"{"messages":[{"role":"user","content":"x"},{"role":"assistant"}]}"#, param: "messages[1].content")
        XCTAssertNoThrow(try ChatCompletionRequest.decode(Array(#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"refusal":"no"}]}"#.utf8)).get())
    }

    func testSamplingErrors() {
        let cases: [(String, String)] = [
            (#""n":129"#, "n"), (#""n":0"#, "n"), (#""temperature":2.5"#, "temperature"), (#""temperature":-0.1"#, "temperature"),
            (#""temperature":"hot""#, "temperature"), (#""top_p":-0.1"#, "top_p"), (#""top_p":1.01"#, "top_p"),
            (#""max_tokens":0"#, "max_tokens"), (#""max_tokens":1.5"#, "max_tokens"), (#""max_completion_tokens":-1"#, "max_completion_tokens"),
            (#""stop":["a","b","c","d","e"]"#, "stop"), (#""stop":5"#, "stop"), (#""stop":[1]"#, "stop"),
            (#""stop":"""#, "stop"), (#""stop":["a",""]"#, "stop"),
            (#""seed":"x""#, "seed"), (#""seed":1.5"#, "seed"), (#""stream":"yes""#, "stream"),
            (#""stream_options":{"include_usage":true}"#, "stream_options"),
            (#""stream":true,"stream_options":{"include_usage":1}"#, "stream_options.include_usage"),
            (#""top_k":-2"#, "top_k"), (#""min_p":1.5"#, "min_p"), (#""presence_penalty":3"#, "presence_penalty"),
            (#""frequency_penalty":-2.5"#, "frequency_penalty"), (#""repetition_penalty":0"#, "repetition_penalty"),
            (#""logprobs":"yes""#, "logprobs"), (#""logprobs":true,"top_logprobs":21"#, "top_logprobs"),
            (#""top_logprobs":3"#, "top_logprobs"), (#""tools":{}"#, "tools"), (#""tools":[{"type":"function"}]"#, "tools[0].function"),
            (#""tool_choice":"sometimes""#, "tool_choice"), (#""tool_choice":{"type":"function"}"#, "tool_choice"),
            (#""tool_choice":"required""#, "tool_choice"),
            (#""tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}"#, "tool_choice"),
            (#""response_format":{"type":"json_schema"}"#, "response_format.json_schema"), (#""parallel_tool_calls":1"#, "parallel_tool_calls"),
            (#""response_format":{"type":"yaml"}"#, "response_format"), (#""response_format":"json""#, "response_format"),
            (#""user":1"#, "user"), (#""priority":"high""#, "priority"), (#""reasoning_effort":"max""#, "reasoning_effort"),
            (#""model":5"#, "model"), (#""ignore_eos":"yes""#, "ignore_eos"),
        ]
        for (field, param) in cases {
            assert400(#"{"messages":\#(user),\#(field)}"#, param: param)
        }
    }

    /// `stream_options.continuous_usage_stats` (vLLM's; guidellm always sends it): accepted as a boolean, off by
    /// default and when false or null; any other type is a 400 naming it; like every stream option, only with `stream`.
    func testContinuousUsageStats() throws {
        let on = try decode(#"{"messages":\#(user),"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#).get()
        XCTAssertTrue(on.continuousUsage)
        XCTAssertTrue(on.includeUsage)
        let alone = try decode(#"{"messages":\#(user),"stream":true,"stream_options":{"continuous_usage_stats":true}}"#).get()
        XCTAssertTrue(alone.continuousUsage)
        XCTAssertFalse(alone.includeUsage)
        for v in ["false", "null"] {
            let off = try decode(#"{"messages":\#(user),"stream":true,"stream_options":{"continuous_usage_stats":\#(v)}}"#).get()
            XCTAssertFalse(off.continuousUsage, v)
        }
        XCTAssertFalse(try decode(#"{"messages":\#(user),"stream":true,"stream_options":{"include_usage":true}}"#).get().continuousUsage)
        for v in ["1", #""true""#, "[]", "{}"] {
            assert400(#"{"messages":\#(user),"stream":true,"stream_options":{"continuous_usage_stats":\#(v)}}"#,
                      param: "stream_options.continuous_usage_stats", contains: "boolean")
        }
        assert400(#"{"messages":\#(user),"stream_options":{"continuous_usage_stats":true}}"#, param: "stream_options")
    }

    func testBoundaryValuesAccepted() throws {
        let r = try decode(#"{"messages":\#(user),"temperature":2,"top_p":1,"max_tokens":1,"top_k":-1,"stop":[],"seed":-5,"n":1.0,"logprobs":true,"top_logprobs":0}"#).get()
        XCTAssertEqual(r.temperature, 2)
        XCTAssertEqual(r.stop, [])
        XCTAssertEqual(r.seed, -5)
        XCTAssertEqual(r.topLogprobs, 0)
    }

    /// Text parts are joined by a newline, as vLLM and llama-server join them for a string-content template (they
    /// were joined with nothing: helper-58's "Rule one." + "Rule two." reached the model as "Rule one.Rule two.").
    func testContentPartsJoinByNewline() throws {
        let parts = try decode(#"{"messages":[{"role":"user","content":[{"type":"text","text":"Rule one."},{"type":"text","text":"Rule two."}]},{"role":"assistant","content":[{"type":"refusal","refusal":"No."},{"type":"text","text":"4"}]}]}"#).get()
        XCTAssertEqual(parts.messages[0].content, "Rule one.\nRule two.")
        // A refusal part is what the assistant said: its text joins the others (it was dropped).
        XCTAssertEqual(parts.messages[1].content, "No.\n4")
    }

    func testContentTypeCheck() {
        XCTAssertNil(APIError.checkJSONContentType("application/json; charset=utf-8", lenient: false))
        XCTAssertNil(APIError.checkJSONContentType("Application/JSON", lenient: false))
        XCTAssertNil(APIError.checkJSONContentType("application/vnd.api+json", lenient: false))
        XCTAssertEqual(APIError.checkJSONContentType("application/x-www-form-urlencoded", lenient: false)?.status, 415)
        XCTAssertEqual(APIError.checkJSONContentType(nil, lenient: false)?.code, "unsupported_media_type")
        XCTAssertNil(APIError.checkJSONContentType("application/x-www-form-urlencoded", lenient: true))
        XCTAssertNil(APIError.checkJSONContentType(nil, lenient: true))
        XCTAssertEqual(APIError.checkJSONContentType("image/png", lenient: true)?.status, 415)
    }

    func testNonObjectBodiesAre400() {
        for body in ["[]", "null", "123", "\"x\"", "", "{\"model\":"] {
            guard case .failure(let e) = decode(body) else { XCTFail(body); continue }
            XCTAssertEqual(e.status, 400, body)
        }
    }

    /// `"tools": []` declares no tools: the request is one without tools (helper's report of 2026-12-06: it was
    /// refused because the model's template cannot render tools); `tool_choice` "auto" or "none" with it is fine,
    /// "required" is not.
    func testEmptyToolsListIsNoTools() throws {
        var r = try decode(#"{"messages":\#(user),"tools":[]}"#).get()
        XCTAssertNil(r.tools)
        r = try decode(#"{"messages":\#(user),"tools":[],"tool_choice":"auto"}"#).get()
        XCTAssertNil(r.tools)
        XCTAssertNoThrow(try decode(#"{"messages":\#(user),"tools":[],"tool_choice":"none"}"#).get())
        assert400(#"{"messages":\#(user),"tools":[],"tool_choice":"required"}"#, param: "tools")
    }

    func testToolCallArgumentsObjectKeptAsText() throws {
        let r = try decode(#"{"messages":[{"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"b":1,"a":2}}}]},{"role":"tool","tool_call_id":"c","content":"ok"}]}"#).get()
        XCTAssertEqual(r.messages[0].toolCalls[0].arguments, #"{"b":1,"a":2}"#)
        XCTAssertEqual(r.messages[0].content, "")
    }

    // Issue 21: every integer field is bounded at the edge (32-bit unless documented), so nothing after
    // validation can overflow. Each hostile literal is a 400 naming the field, or accepted in the documented range.
    func testHostileNumbersAreBoundedAtTheEdge() throws {
        let literals = ["0", "-1", "2147483647", "2147483648", "9007199254740993", "9223372036854775807",
                        "9223372036854775808", "18446744073709551616", "1e308", "1.5", #""10""#, "null",
                        "1234567890123456789012345678901234567890"]
        // field → the literals (by index) that are valid values of it; all others must be a 400 naming the field.
        let accepted: [String: Set<Int>] = [
            "max_tokens": [2], "max_completion_tokens": [2], "top_k": [0, 1, 2], "n": [],
            "seed": [0, 1, 2, 3, 4, 5], "priority": [0, 1], "temperature": [0, 9], "top_p": [0], "min_p": [0],
            "presence_penalty": [0, 1, 9], "frequency_penalty": [0, 1, 9], "repetition_penalty": [2, 3, 4, 5, 6, 7, 8, 9, 12],
        ]
        for (field, ok) in accepted {
            for (i, lit) in literals.enumerated() {
                let body = #"{"messages":\#(user),"\#(field)":\#(lit)}"#
                if lit == "null" || ok.contains(i) {
                    XCTAssertNoThrow(try decode(body).get(), body)
                } else {
                    assert400(body, param: field)
                }
            }
        }
        let r = try decode(#"{"messages":\#(user),"max_tokens":2147483647,"seed":9223372036854775807,"priority":-100}"#).get()
        XCTAssertEqual(r.maxTokens, Int(Int32.max))
        XCTAssertEqual(r.seed, Int.max)
        XCTAssertEqual(r.priority, -100)
        assert400(#"{"messages":\#(user),"priority":101}"#, param: "priority")
        assert400(#"{"messages":\#(user),"priority":-101}"#, param: "priority")
        // The message says what is wrong (helper's report of 2026-12-06: "must be a number, got number" for 1e999,
        // "must be an integer" for 2^64).
        assert400(#"{"messages":\#(user),"temperature":1e999}"#, param: "temperature", contains: "must be a finite number")
        assert400(#"{"messages":\#(user),"seed":18446744073709551616}"#, param: "seed",
                  contains: "must be <= \(Int.max)")
        assert400(#"{"messages":\#(user),"seed":-18446744073709551616}"#, param: "seed", contains: "must be >= ")
        assert400(#"{"messages":\#(user),"seed":1.5}"#, param: "seed", contains: "must be an integer")
    }
}
