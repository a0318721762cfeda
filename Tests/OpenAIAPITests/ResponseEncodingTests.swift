import JSON
import XCTest
@testable import OpenAIAPI

final class ResponseEncodingTests: XCTestCase {
    func testChatCompletionResponseExactJSON() {
        let r = ChatCompletionResponse(id: "chatcmpl-1", created: 1700000000, model: "m", systemFingerprint: "fp_1",
                                       choices: [.init(content: "Hello", reasoningContent: "hmm", finishReason: .stop)],
                                       usage: Usage(promptTokens: 5, completionTokens: 2, cachedTokens: 1))
        XCTAssertEqual(String(decoding: r.encoded(), as: UTF8.self),
                       #"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello","reasoning_content":"hmm"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}"#)
    }

    func testToolCallResponseHasNullContent() {
        let call = ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)
        let r = ChatCompletionResponse(id: "x", created: 1, model: "m",
                                       choices: [.init(content: nil, toolCalls: [call], finishReason: .toolCalls)],
                                       usage: Usage(promptTokens: 1, completionTokens: 1))
        XCTAssertEqual(r.json.serialized(),
                       #"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0}}}"#)
    }

    func testChunksExactJSON() {
        let first = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [.init(role: "assistant", content: "")])
        XCTAssertEqual(first.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#)
        let mid = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [.init(reasoningContent: "th")], includeUsageField: true)
        XCTAssertEqual(mid.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"th"},"logprobs":null,"finish_reason":null}],"usage":null}"#)
        let last = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [.init(finishReason: .length)], includeUsageField: true)
        XCTAssertEqual(last.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}"#)
        let usage = ChatCompletionChunk.usageChunk(id: "c", created: 2, model: "m", usage: Usage(promptTokens: 3, completionTokens: 4))
        XCTAssertEqual(usage.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0}}}"#)
    }

    /// Chunks of a `continuous_usage_stats` stream carry the running counts (no details), with or without
    /// `include_usage`; the final usage chunk keeps its details.
    func testRunningUsageChunks() {
        let running = Usage.running(promptTokens: 5, completionTokens: 2)
        let withField = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [.init(content: "a")], usage: running,
                                            includeUsageField: true)
        XCTAssertEqual(withField.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#)
        let withoutField = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [.init(content: "a")], usage: running)
        XCTAssertEqual(withoutField.serialized(), withField.serialized())
        let legacy = CompletionResponse(id: "cmpl-1", created: 2, model: "m", choices: [.init(text: "a", index: 0)], usage: running)
        XCTAssertEqual(legacy.serialized(),
                       #"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"text":"a","index":0,"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#)
    }

    func testToolCallDeltaAndLogprobs() {
        let c = ChatCompletionChunk(id: "c", created: 2, model: "m", choices: [
            .init(toolCalls: [ToolCallDelta(index: 0, id: "call_1", type: "function", name: "f", arguments: ""),
                              ToolCallDelta(index: 1, arguments: "{\"a\"")],
                  logprobs: [TokenLogprob(token: "é", logprob: -0.25, bytes: [0xC3, 0xA9],
                                          topLogprobs: [TopLogprob(token: "é", logprob: -0.25, bytes: [0xC3, 0xA9])])]),
        ])
        XCTAssertEqual(c.serialized(),
                       #"{"id":"c","object":"chat.completion.chunk","created":2,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}},{"index":1,"function":{"arguments":"{\"a\""}}]},"logprobs":{"content":[{"token":"é","logprob":-0.25,"bytes":[195,169],"top_logprobs":[{"token":"é","logprob":-0.25,"bytes":[195,169]}]}]},"finish_reason":null}]}"#)
    }

    func testModelListExactJSON() {
        let l = ModelList(data: [ModelCard(id: "qwen2.5-0.5b", created: 1700000000)])
        XCTAssertEqual(String(decoding: l.encoded(), as: UTF8.self),
                       #"{"object":"list","data":[{"id":"qwen2.5-0.5b","object":"model","created":1700000000,"owned_by":"sputnik","root":"qwen2.5-0.5b","parent":null}]}"#)
    }

    func testAPIErrorConstructors() {
        let cases: [(APIError, Int, String, String?, String?)] = [
            (.invalidRequest("m", param: "p"), 400, "invalid_request_error", "p", nil),
            (.notFound("no", code: "model_not_found"), 404, "invalid_request_error", nil, "model_not_found"),
            (.authentication(), 401, "invalid_request_error", nil, "invalid_api_key"),
            (.rateLimited(), 429, "rate_limit_error", nil, "rate_limit_exceeded"),
            (.overloaded(), 503, "server_error", nil, "server_overloaded"),
            (.contextLengthExceeded(requested: 5000, limit: 4096), 400, "invalid_request_error", "messages", "context_length_exceeded"),
            (.internal(), 500, "server_error", nil, "internal_error"),
        ]
        for (e, status, type, param, code) in cases {
            XCTAssertEqual(e.status, status)
            XCTAssertEqual(e.type, type)
            XCTAssertEqual(e.param, param)
            XCTAssertEqual(e.code, code)
            let obj = try? JSONValue.parse(e.encoded())
            XCTAssertEqual(obj?["error"]?.objectValue?.map(\.key), ["message", "type", "param", "code"])
        }
        XCTAssertEqual(String(decoding: APIError.authentication("bad key").encoded(), as: UTF8.self),
                       #"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#)
    }
}
