import JSON
import XCTest
@testable import OpenAIAPI

/// `/v1/completions` request validation, the sampling extras of issue 15, and the legacy response shapes.
final class CompletionRequestTests: XCTestCase {
    private func decode(_ s: String) -> Result<CompletionRequest, APIError> { CompletionRequest.decode(Array(s.utf8)) }

    private func assert400(_ body: String, param: String, file: StaticString = #filePath, line: UInt = #line) {
        switch decode(body) {
        case .success: XCTFail("accepted: \(body)", file: file, line: line)
        case .failure(let e):
            XCTAssertEqual(e.status, 400, file: file, line: line)
            XCTAssertEqual(e.param, param, body, file: file, line: line)
        }
    }

    func testPromptShapes() throws {
        XCTAssertEqual(try decode(#"{"prompt":"hi"}"#).get().prompts, [.text("hi")])
        XCTAssertEqual(try decode(#"{"prompt":["a","b"]}"#).get().prompts, [.text("a"), .text("b")])
        XCTAssertEqual(try decode(#"{"prompt":[1,2,3]}"#).get().prompts, [.tokens([1, 2, 3])])
        XCTAssertEqual(try decode(#"{"prompt":[[1],[2,3]]}"#).get().prompts, [.tokens([1]), .tokens([2, 3])])
        XCTAssertEqual(try decode(#"{"prompt":["a",[7]]}"#).get().prompts, [.text("a"), .tokens([7])])
    }

    /// `echo` with a token cap of 0 is echo only; `max_completion_tokens` wins over `max_tokens` here too, and
    /// without `echo` a cap of 0 is a 400.
    func testEchoOnlyFollowsTheEffectiveCap() throws {
        XCTAssertTrue(try decode(#"{"prompt":"hi","echo":true,"max_tokens":0}"#).get().echoOnly)
        XCTAssertFalse(try decode(#"{"prompt":"hi","echo":true,"max_tokens":0,"max_completion_tokens":5}"#).get().echoOnly)
        XCTAssertFalse(try decode(#"{"prompt":"hi","echo":true}"#).get().echoOnly)
        assert400(#"{"prompt":"hi","max_tokens":0}"#, param: "max_tokens")
    }

    func testDefaultsAndFields() throws {
        let r = try decode(#"{"prompt":"x","echo":true,"logprobs":0,"best_of":1,"stream":true,"stream_options":{"include_usage":true}}"#).get()
        XCTAssertEqual(r.sampling.maxTokens, 16)
        XCTAssertTrue(r.echo)
        XCTAssertTrue(r.sampling.logprobs)   // 0: the chosen tokens only
        XCTAssertEqual(r.sampling.topLogprobs, 0)
        XCTAssertTrue(r.sampling.includeUsage)
        let s = try decode(#"{"prompt":"x","suffix":"y","max_tokens":3}"#).get()
        XCTAssertEqual(s.suffix, "y")
        XCTAssertEqual(s.sampling.maxTokens, 3)
        XCTAssertFalse(s.sampling.logprobs)
    }

    /// `stream_options.continuous_usage_stats` on the legacy route: a boolean (any other type is a 400 naming it).
    func testContinuousUsageStats() throws {
        XCTAssertTrue(try decode(#"{"prompt":"x","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#)
            .get().sampling.continuousUsage)
        XCTAssertFalse(try decode(#"{"prompt":"x","stream":true,"stream_options":{"continuous_usage_stats":false}}"#)
            .get().sampling.continuousUsage)
        assert400(#"{"prompt":"x","stream":true,"stream_options":{"continuous_usage_stats":"yes"}}"#,
                  param: "stream_options.continuous_usage_stats")
    }

    func testErrors() {
        for (body, param) in [
            (#"{}"#, "prompt"), (#"{"prompt":5}"#, "prompt"), (#"{"prompt":[]}"#, "prompt"), (#"{"prompt":[[]]}"#, "prompt"),
            (#"{"prompt":[1,-2]}"#, "prompt"), (#"{"prompt":[1,"a"]}"#, "prompt"), (#"{"prompt":[{"a":1}]}"#, "prompt"),
            (#"{"prompt":[[1.5]]}"#, "prompt"), (#"{"prompt":"x","echo":"yes"}"#, "echo"), (#"{"prompt":"x","suffix":3}"#, "suffix"),
            (#"{"prompt":"x","best_of":2}"#, "best_of"), (#"{"prompt":"x","logprobs":21}"#, "logprobs"),
            (#"{"prompt":"x","logprobs":true}"#, "logprobs"), (#"{"prompt":"x","n":129}"#, "n"),
            (#"{"prompt":"x","echo":true,"suffix":"y"}"#, "suffix"), (#"{"prompt":"x","max_tokens":4,"min_tokens":5}"#, "min_tokens"),
            (#"{"prompt":"x","min_tokens":17}"#, "min_tokens"),
        ] {
            assert400(body, param: param)
        }
        let many = "[" + Array(repeating: #""a""#, count: 17).joined(separator: ",") + "]"
        assert400(#"{"prompt":\#(many)}"#, param: "prompt")
    }

    func testSamplingExtras() throws {
        let r = try decode(#"{"prompt":"x","logit_bias":{"5":-100,"17":2.5},"min_tokens":4,"stop_token_ids":[3,9]}"#).get()
        XCTAssertEqual(r.sampling.logitBias, [5: -100, 17: 2.5])
        XCTAssertEqual(r.sampling.minTokens, 4)
        XCTAssertEqual(r.sampling.stopTokenIds, [3, 9])
        for (field, param) in [
            (#""logit_bias":[1]"#, "logit_bias"), (#""logit_bias":{"a":1}"#, "logit_bias"), (#""logit_bias":{"-1":1}"#, "logit_bias"),
            (#""logit_bias":{"05":1}"#, "logit_bias"), (#""logit_bias":{"1":101}"#, "logit_bias"), (#""logit_bias":{"1":"x"}"#, "logit_bias"),
            (#""logit_bias":{"99999999999999999999999":1}"#, "logit_bias"), (#""min_tokens":-1"#, "min_tokens"),
            (#""stop_token_ids":5"#, "stop_token_ids"), (#""stop_token_ids":[-1]"#, "stop_token_ids"), (#""stop_token_ids":["a"]"#, "stop_token_ids"),
        ] {
            assert400(#"{"prompt":"x",\#(field)}"#, param: param)
        }
        // The chat request reads the same fields.
        let chat = try ChatCompletionRequest.decode(Array(#"{"messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":1},"min_tokens":2,"stop_token_ids":[4]}"#.utf8)).get()
        XCTAssertEqual(chat.logitBias, [1: 1])
        XCTAssertEqual(chat.minTokens, 2)
        XCTAssertEqual(chat.stopTokenIds, [4])
    }

    func testLegacyResponseShapes() {
        var lp = CompletionLogprobs()
        lp.append(token: " a", logprob: -0.5, top: [(" a", -0.5), ("\u{FFFD}", -1.25), ("\u{FFFD}", -2)], offset: 3)
        lp.append(token: "b", logprob: nil, top: nil, offset: 5)
        let r = CompletionResponse(id: "cmpl-1", created: 7, model: "m",
                                   choices: [.init(text: "xyz a", index: 0, logprobs: lp, finishReason: .length)],
                                   usage: Usage(promptTokens: 2, completionTokens: 2))
        XCTAssertEqual(r.json.serialized(),
                       #"{"id":"cmpl-1","object":"text_completion","created":7,"model":"m","choices":[{"text":"xyz a","index":0,"logprobs":{"tokens":[" a","b"],"token_logprobs":[-0.5,null],"top_logprobs":[{" a":-0.5,"\#u{FFFD}":-1.25},null],"text_offset":[3,5]},"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0}}}"#)
        let chunk = CompletionResponse(id: "c", created: 1, model: "m", choices: [.init(text: "t", index: 2)], includeUsageField: true)
        XCTAssertEqual(chunk.json.serialized(),
                       #"{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"text":"t","index":2,"logprobs":null,"finish_reason":null}],"usage":null}"#)
    }
}
