import ChatTemplate
import Engine
import JSON
import OpenAIAPI
import Scheduling
import Tokenizer

/// The one place where API types become engine types and engine outcomes become API answers: request fields →
/// `GenerationRequest` (the engine's defaults fill what the client left out), messages → template values,
/// `EngineError` → `APIError`, `FinishReason` → OpenAI's `finish_reason`.
extension SputnikServer {
    /// The generation a chat request asks for. The cheap checks come first; the prompt is rendered and tokenized last.
    /// - Throws: `APIError` (400) for a `priority` the scheduling policy does not honour, token ids outside the
    ///   vocabulary (`logit_bias`, `stop_token_ids`), or a template failure.
    func generationRequest(_ r: ChatCompletionRequest) throws(APIError) -> GenerationRequest {
        var gen = try generationRequest(r.sampling)
        gen.grammar = try Self.responseGrammar(r.responseFormat)
        gen.promptTokens = try promptTokens(for: r)
        return gen
    }

    /// Everything but the prompt (left empty) of the generation `s` asks for: the engine's defaults fill what the
    /// client left out. `logprobs` asks for `top_logprobs` alternatives (0 when absent).
    /// - Throws: `APIError` (400) for a `priority` the scheduling policy does not honour, or token ids outside the
    ///   vocabulary (`logit_bias`, `stop_token_ids`).
    func generationRequest(_ s: SamplingParameters) throws(APIError) -> GenerationRequest {
        if let p = s.priority, p != 0, options.schedulingPolicy != SchedulingPolicy.priority.rawValue {
            throw APIError.invalidRequest(
                "'priority' \(p) needs a server started with --scheduling-policy priority; this one serves first come, first served",
                param: "priority")
        }
        let maxN = min(options.maxChoices, engine.config.maxNumSeqs)
        guard s.n <= maxN else {
            throw APIError.invalidRequest("'n' must be <= \(maxN) on this server (every choice runs at once; see "
                                          + "--max-num-seqs), got \(s.n)", param: "n")
        }
        let vocabSize = engine.tokenizer.vocabSize
        var bias: [Int32: Float] = [:]
        for (id, b) in s.logitBias {
            guard id < vocabSize else {
                throw APIError.invalidRequest("'logit_bias' names token \(id), outside the vocabulary (0..<\(vocabSize))",
                                              param: "logit_bias")
            }
            bias[Int32(id)] = Float(b)
        }
        var stopIds: [Int32] = []
        for id in s.stopTokenIds {
            guard id < vocabSize else {
                throw APIError.invalidRequest("'stop_token_ids' names token \(id), outside the vocabulary (0..<\(vocabSize))",
                                              param: "stop_token_ids")
            }
            stopIds.append(Int32(id))
        }
        let defaults = SamplingParams()
        let sampling = SamplingParams(temperature: s.temperature ?? defaults.temperature, topP: s.topP ?? defaults.topP,
                                      topK: max(0, s.topK ?? defaults.topK),  // -1 and 0 disable
                                      minP: s.minP ?? defaults.minP,
                                      seed: s.seed.map { UInt64(bitPattern: Int64($0)) })
        let processing = LogitsProcessing(presencePenalty: Float(s.presencePenalty ?? 0),
                                          frequencyPenalty: Float(s.frequencyPenalty ?? 0),
                                          repetitionPenalty: Float(s.repetitionPenalty ?? 1),
                                          logitBias: bias, minTokens: s.minTokens ?? 0)
        var gen = GenerationRequest(promptTokens: [], maxNewTokens: s.effectiveMaxTokens, sampling: sampling,
                                    stop: s.stop, priority: s.priority ?? 0, ignoreEOS: s.ignoreEOS,
                                    processing: processing, stopTokenIds: stopIds,
                                    logprobs: s.logprobs ? (s.topLogprobs ?? 0) : nil)
        gen.n = s.n
        return gen
    }

    /// Renders the chat template over the messages and tokenizes the result.
    /// - Throws: `APIError` (400, param `messages`) when the template fails on these messages.
    func promptTokens(for request: ChatCompletionRequest) throws(APIError) -> [Int32] {
        let messages = JinjaValue.array(request.messages.map(Self.templateMessage))
        do {
            return try serving.prompt.tokens(messages: messages, tools: request.tools.map(JinjaValue.init(json:)))
        } catch {
            throw APIError.invalidRequest("The chat template failed on these messages: \(error)", param: "messages")
        }
    }

    /// One message as chat templates expect it: text parts joined into a string, absent fields left out.
    static func templateMessage(_ m: ChatMessage) -> JinjaValue {
        var fields: [(String, JinjaValue)] = [("role", .string(m.role.rawValue))]
        if let c = m.content { fields.append(("content", .string(c))) }
        if let n = m.name { fields.append(("name", .string(n))) }
        if let r = m.reasoningContent {
            fields.append(("reasoning_content", .string(r)))
            fields.append(("thinking", .string(r)))
        }
        if !m.toolCalls.isEmpty { fields.append(("tool_calls", JinjaValue(json: .array(m.toolCalls.map(\.json))))) }
        if let id = m.toolCallId { fields.append(("tool_call_id", .string(id))) }
        return .object(JinjaObject(fields))
    }

    /// OpenAI's `finish_reason` for an engine finish.
    static func apiReason(_ r: Scheduling.FinishReason) -> OpenAIAPI.FinishReason {
        r == .length ? .length : .stop
    }

    /// The API error for a refused submission.
    static func apiError(_ error: Error) -> APIError {
        switch error as? EngineError {
        case .queueFull?: return APIError.rateLimited("\(error)")
        case .contextLengthExceeded(let p, let m, let l)?:
            return APIError.contextLengthExceeded(requested: m > Int.max - p ? Int.max : p + m, limit: l, promptTokens: p)
        case .shuttingDown?: return APIError.overloaded("\(error)")
        default: return APIError.invalidRequest("\(error)", param: nil)
        }
    }
}
