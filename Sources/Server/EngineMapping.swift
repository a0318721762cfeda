import ChatTemplate
import Engine
import Grammar
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
    /// `promptField`: the route's name for the conversation (`messages`, Responses' `input`), named by the 400 for a
    /// prompt refused before tokenizing.
    func generationRequest(_ r: ChatCompletionRequest, promptField: String = "messages") throws(APIError) -> GenerationRequest {
        var gen = try generationRequest(r.sampling)
        let answerFormat = try Self.responseFormat(r.responseFormat)
        let chat = try renderPrompt(for: r, tokenLimit: engine.config.contextSize, promptField: promptField)
        (gen.promptTokens, gen.parsing) = (chat.tokens, chat.parsing)
        gen.parsing.streamToolArguments = r.stream   // a streamed reply gets a call's arguments as they are generated
        let forced = chat.forced
        if let forced {
            guard answerFormat == nil else {
                throw APIError.invalidRequest(
                    "'response_format' cannot be combined with 'tool_choice' 'required' or a named function: the answer is the tool call",
                    param: "response_format")
            }
            gen.grammar = forced
        } else if let calls = chat.lazyCalls {
            do {
                if let answer = answerFormat?.expr {
                    // `auto` with `response_format`: the reply is the JSON answer or a call (OpenAI lets the model
                    // choose); one grammar from the first token. An answer shaped like a bare call is the answer:
                    // this grammar did not hold it to a tool's schema.
                    gen.parsing.bareCallNames = []
                    gen.grammar = try Grammar.build(.alternatives([answer, .sequence([.literal(calls.trigger), calls.expr])]))
                } else {
                    gen.lazyGrammar = try LazyGrammar(trigger: calls.trigger, stretch: calls.expr, start: calls.bare)
                }
            } catch {
                throw APIError.invalidRequest("The tool-call grammar could not be built: \(error)", param: "tools")
            }
        } else if let answer = answerFormat?.expr, let reasoning = chat.parsing.reasoning {
            // A template that reasons: the reasoning is free text and the answer after `</think>` (and the blank line
            // the model writes) follows the format (vLLM's structured output with a reasoning parser). Held from the
            // first token, the model wrote its thoughts as JSON. Where the prompt does not open the block the model
            // may open one or answer at once — unless the template closed one (its non-thinking mode, or
            // `reasoning_effort` none): then the reply is the answer (helper-61: the model opened a second block and
            // never reached the JSON).
            let gap = GrammarExpr.repeated(.bytes(ByteSet(ranges: [0x0A...0x0A, 0x20...0x20])), min: 0, max: 3)
            let thought = GrammarExpr.sequence([.text(through: "</think>"), gap, answer])
            do {
                gen.grammar = try Grammar.build(reasoning == .startsInside ? thought
                                                : chat.reasoningClosed ? answer
                                                : .alternatives([answer, .sequence([.literal("<think>"), thought])]))
            } catch {
                throw APIError.invalidRequest("Invalid 'response_format': \(error)", param: "response_format")
            }
        } else {
            gen.grammar = answerFormat?.grammar
        }
        if let prefill = chat.prefill {
            // The reply continues the final message: a grammar from the first token has seen its answer text (after
            // any reasoning it carries), which must be a start of it; a lazy grammar scans all of it for its trigger.
            if let g = gen.grammar {
                let answer = chat.prefillAnswer ?? prefill
                guard g.acceptsPrefix(answer) else {
                    throw APIError.invalidRequest(
                        "'continue_final_message': the final assistant message is not the start of an answer 'response_format' allows "
                            + "(as generated: compact JSON, at most one space after ':' and ',', properties in the schema's order)",
                        param: "messages")
                }
                gen.grammarPrefix = answer
            } else {
                gen.grammarPrefix = prefill
            }
        }
        if gen.grammar != nil {
            // The grammar decides where the answer ends; these would run past it. `stop` and `stop_token_ids` apply
            // as OpenAI and vLLM apply them beside a schema (the answer ends at the first match, cut short: finish
            // `stop`, and a forced call a stop cut is no call); clients send stop strings with every request
            // (LangChain's `stop` with `with_structured_output`, helper-71).
            let what = forced != nil ? "a forced tool call ('tool_choice' 'required' or a named function)" : "'response_format'"
            if gen.processing.minTokens > 0 {
                throw APIError.invalidRequest("'min_tokens' cannot be combined with \(what): the grammar ends the answer when it is complete",
                                              param: "min_tokens")
            }
            if gen.ignoreEOS {
                throw APIError.invalidRequest("'ignore_eos' cannot be combined with \(what)", param: "ignore_eos")
            }
        }
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
        // -100 bans a token (its logit is -∞): with every token banned there is nothing to sample, and a draw
        // among the banned gave banned tokens (helper-73). Tokens `min_tokens` bans at first count too.
        if bias.count >= vocabSize {
            let minTokensBans = (s.minTokens ?? 0) > 0 ? Set(engine.tokenizer.endOfGenerationIds).union(s.stopTokenIds.map(Int32.init)) : []
            if bias.allSatisfy({ $0.value <= -100 || minTokensBans.contains($0.key) }) {
                throw APIError.invalidRequest("'logit_bias' bans every token of the vocabulary (-100 bans one): nothing is left to sample",
                                              param: "logit_bias")
            }
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
        gen.reusePrefix = s.cachePrompt
        return gen
    }

    /// Renders the chat template over the messages and tokenizes the result.
    /// - Throws: `APIError` (400, param `messages`) when the template fails on these messages.
    func promptTokens(for request: ChatCompletionRequest) throws(APIError) -> [Int32] {
        try renderPrompt(for: request).tokens
    }

    /// A chat request rendered: its prompt and what decoding it needs besides.
    struct RenderedChat {
        /// The prompt. `[numPromptTokens]`
        var tokens: [Int32]
        /// The prompt's text (what `tokens` spell; with `continue_final_message`, ending in the prefill).
        var text: String
        var parsing: OutputParsing
        /// `tool_choice` `required` or a named function: the grammar of the one call.
        var forced: Grammar?
        /// `tool_choice` `auto` with tools in a parsed markup: the format's trigger and the grammar of what follows
        /// it, and for Hermes the start-only trigger of a bare call (`lazyToolCalls`).
        var lazyCalls: LazyCalls?
        /// `continue_final_message`: the text the reply continues (the final message's, as rendered after the prompt).
        var prefill: String?
        /// The answer part of `prefill` when it opens with the message's reasoning (its `content`); nil otherwise.
        var prefillAnswer: String?
        /// The prompt ends with a think block the template closed (its non-thinking mode): no reasoning comes first.
        var reasoningClosed = false
    }

    /// The prompt of a chat request and how its output is parsed:
    /// - `tools` are offered to the template unless `tool_choice` is `"none"`; then tool calls are parsed in the
    ///   template's markup (`parallel_tool_calls: false` → at most one). `tool_choice` `"required"` or a named
    ///   function also returns `forced`: the grammar of exactly one call in that markup to one of those tools, its
    ///   arguments valid against the tool's `parameters` (the template's non-thinking mode is used, so the call
    ///   comes first).
    /// - `reasoning_effort: "none"` or `chat_template_kwargs` `thinking`/`enable_thinking` false select the
    ///   template's non-thinking mode (or close the think block at once); another effort turns thinking on and is
    ///   passed to the template as `reasoning_effort`.
    /// - `continue_final_message`: the whole history is rendered without the generation prompt and cut right after
    ///   the last (assistant) message's content, as transformers and vLLM do (`Prompt.render`'s `continuingFinal`; a
    ///   400 naming `continue_final_message` when the template does not render that content). A final message with
    ///   reasoning (`reasoning_content`, an Anthropic `thinking` block) on a template with think blocks, which
    ///   templates drop from assistant turns, and an empty one, are appended after the generation prompt instead.
    ///   The content primes the parsers. `<think>` blocks are split off unless the reasoning format (request
    ///   `reasoning_format`, else `--reasoning-format`) is `none`.
    /// - Throws: `APIError` 400 naming `tool_choice`, `tools` (the template cannot render tools or its call markup is
    ///   not parsed), `reasoning_effort` (a thinking effort on a template without reasoning), or `messages` (the
    ///   template failed).
    /// With `tokenLimit`, a prompt whose text is too long to be that many tokens is refused (400
    /// `context_length_exceeded`) without tokenizing it.
    func renderPrompt(for r: ChatCompletionRequest, tokenLimit: Int? = nil, promptField: String = "messages") throws(APIError) -> RenderedChat {
        let prompt = serving.prompt
        var offerTools = r.tools != nil
        /// `tool_choice` `required` (any declared tool) or a named function: the output is forced to one call.
        var forcedNames: [String]?
        switch r.toolChoice {
        case .string("none")?: offerTools = false
        case .string("required")?: forcedNames = r.tools?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue }
        case .object(_)?: forcedNames = r.toolChoice?["function"]?["name"]?.stringValue.map { [$0] }
        default: break
        }
        if offerTools && !prompt.supportsTools {
            throw APIError.invalidRequest(
                "This model's chat template cannot render tools (it has no tool-call format this server parses: Hermes/Qwen <tool_call>, Llama 3 JSON, Mistral [TOOL_CALLS], DeepSeek V3/R1/V3.1); pass --chat-template with one that does",
                param: "tools")
        }
        // A name holding the template's markup cannot be read back from a call (helper-61: `a<｜tool▁sep｜>b` came back
        // as a call to an undeclared `a`).
        if offerTools, let tools = r.tools?.arrayValue {
            for (i, t) in tools.enumerated() {
                if let name = t["function"]?["name"]?.stringValue, let bad = prompt.markupInToolName(name) {
                    throw APIError.invalidRequest(
                        "'tools[\(i)].function.name' contains \(bad), markup of this model's chat template: a call to it could not be read back; rename the tool",
                        param: "tools[\(i)].function.name")
                }
            }
        }
        var extra: [String: JinjaValue] = [:]
        for (k, v) in r.chatTemplateKwargs { extra[k] = JinjaValue(json: v) }
        var thinking: Bool?
        if let effort = r.reasoningEffort {
            if effort == "none" {
                thinking = false
            } else {
                guard prompt.hasReasoning else {
                    throw APIError.invalidRequest(
                        "'reasoning_effort' '\(effort)' needs a model that reasons; this model's chat template has no <think> blocks",
                        param: "reasoning_effort")
                }
                thinking = true
                if extra["reasoning_effort"] == nil { extra["reasoning_effort"] = .string(effort) }
            }
        }
        if extra["thinking"] == .bool(false) || extra["enable_thinking"] == .bool(false) { thinking = false }
        // A forced call comes first: the template's non-thinking mode (or a think block closed at once).
        if forcedNames != nil && prompt.hasReasoning { thinking = false }
        var history = Self.toolResultsInCallOrder(r.messages)
        // `developer` is OpenAI's newer name for the system role: a template that never names it gets it as `system`
        // (helper-60: Qwen2.5's template skips roles it does not know, so the instructions vanished from the prompt).
        if history.contains(where: { $0.role == .developer }) && !prompt.templateNamesRole("developer") {
            history = history.map { $0.role == .developer ? RoleNormalisation.rebuilt($0, role: .system) : $0 }
        }
        var prefill: String?
        var prefillAnswer: String?
        /// The final message stays in the history and the template renders it (transformers' / vLLM's way).
        var continuing = false
        if r.continueFinalMessage, let last = history.last {
            prefill = last.content
            if let reasoning = last.reasoningContent, prompt.hasReasoning {
                // Its reasoning (`reasoning_content`, an Anthropic `thinking` block) is the start of the reply too, in
                // the template's think block: the reply continues the reasoning, or the answer after it. Templates
                // drop the reasoning of assistant turns, so this one is appended after the generation prompt.
                history.removeLast()
                let answer = last.content ?? ""
                prefill = "<think>\n" + reasoning + (answer.isEmpty ? "" : "\n</think>\n\n" + answer)
                prefillAnswer = answer
            } else if last.content?.contains(where: { !$0.isWhitespace }) == true {
                continuing = true
            } else {
                history.removeLast()   // an empty prefill (Anthropic allows one): the reply starts as usual
            }
        }
        let tools = offerTools ? r.tools.map(JinjaValue.init(json:)) : nil
        func render(_ history: [ChatMessage]) throws(ChatTemplateError) -> Prompt.Rendered {
            try prompt.render(messages: .array(history.map(Self.templateMessage)), tools: tools, extra: extra,
                              prefill: prefill, continuingFinal: continuing, thinking: thinking, tokenLimit: tokenLimit)
        }
        let rendered: Prompt.Rendered
        var asSent = false   // rendered from the history as sent (not a normalised or patched one)
        do {
            rendered = try render(history)
            asSent = true
        } catch {
            if case .raised = error, let r = RoleNormalisation.firstAccepted(history, render: render) {
                rendered = r   // a template that refuses the role order (raise_exception) gets the normalised history (C13)
            } else if case .runtime = error, r.emptyContentForNone,
                      history.contains(where: { $0.role == .assistant && $0.content == nil }),
                      let again = try? render(history.map { m in
                          var m = m
                          if m.role == .assistant && m.content == nil { m.content = "" }
                          return m
                      }) {
                rendered = again   // a tool-call turn of these routes, on a template that fails on `none`
            } else {
                throw APIError.invalidRequest("The chat template failed on these messages: \(error)", param: "messages")
            }
        }
        // Too long first: a client shrinking its history reads this refusal, whatever else the request holds
        // (helper-72: a huge history ending in a prefill got the prefill's refusal instead).
        if let atLeast = rendered.tokensAtLeast, let tokenLimit {
            throw APIError.promptTooLong(atLeast: atLeast, bytes: rendered.text.utf8.count, limit: tokenLimit, promptField: promptField)
        }
        if continuing {
            guard let continued = rendered.continued else {
                throw APIError.invalidRequest(
                    "'continue_final_message': this model's chat template does not render the final message's content as sent, so the reply cannot continue it",
                    param: "continue_final_message")
            }
            prefill = continued   // as the prompt ends with it (whitespace the template trimmed left out)
        }
        // A message field only the template can use (`name`, a key outside OpenAI's schema) that leaves the prompt
        // as it is would be dropped: refuse it instead. Decided on renders of the history as sent; a normalised or
        // patched history falls back to whether the template names the key at all.
        if asSent {
            try refuseUnusedMessageFields(history, removedFinal: r.continueFinalMessage && !continuing ? r.messages.last : nil) { messages in
                try? prompt.render(messages: .array(messages), tools: tools, extra: extra, prefill: prefill,
                                   continuingFinal: continuing, thinking: thinking, tokenLimit: 0).text   // the text alone: nothing tokenized
            }
        } else {
            for (i, m) in r.messages.enumerated() {
                for key in m.templateOnlyKeys where !prompt.templateNames(key) {
                    throw APIError.invalidRequest(
                        "'messages[\(i)].\(key)' is not used by this model's chat template, so it cannot be honoured; remove it",
                        param: "messages[\(i)].\(key)")
                }
            }
        }
        var parsing = OutputParsing()
        if prompt.hasReasoning && (r.reasoningFormat ?? options.reasoningFormat) == "deepseek" {
            parsing.reasoning = rendered.endsInsideReasoning ? .startsInside : .startsOutside
        }
        if offerTools {
            parsing.toolCalls = prompt.toolCallFormat
            if r.parallelToolCalls == false { parsing.maxToolCalls = 1 }
        }
        parsing.markupTokens = prompt.markupTokenIds
        if parsing.reasoning != nil || parsing.toolCalls != nil { parsing.prefix = prefill ?? "" }
        var forced: Grammar?
        var lazyCalls: LazyCalls?
        if let names = forcedNames, names.isEmpty {
            throw APIError.invalidRequest("'tool_choice' 'required' needs at least one tool in 'tools'", param: "tools")
        }
        if let names = forcedNames, let format = prompt.toolCallFormat, let tools = r.tools?.arrayValue {
            guard prefill == nil else {
                throw APIError.invalidRequest(
                    "'continue_final_message' cannot be combined with 'tool_choice' 'required' or a named function",
                    param: "continue_final_message")
            }
            // `required` is one or more calls (OpenAI: "must call one or more tools"; Anthropic's `any` likewise) unless
            // parallel calls are off; a named function is exactly one (helper-66: `required` gave one call where
            // `auto` gave two).
            let several = r.toolChoice == .string("required") && r.parallelToolCalls != false
            forced = try Self.toolCallGrammar(format: format, tools: tools, names: Set(names), parallel: several)
            parsing.maxToolCalls = several ? nil : 1
        } else if offerTools, let format = prompt.toolCallFormat, let tools = r.tools?.arrayValue, !tools.isEmpty {
            lazyCalls = try Self.lazyToolCalls(format: format, tools: tools, parallel: r.parallelToolCalls != false)
            if lazyCalls?.bare.isEmpty == false { parsing.bareCallNames = Set(tools.compactMap { $0["function"]?["name"]?.stringValue }) }
        }
        return RenderedChat(tokens: rendered.tokens, text: rendered.text, parsing: parsing, forced: forced, lazyCalls: lazyCalls, prefill: prefill,
                            prefillAnswer: prefillAnswer, reasoningClosed: rendered.endsAfterClosedReasoning)
    }

    /// The grammar of exactly one call, in the template's markup (`ToolCallFormat.callSkeleton`), to one of the
    /// tools named in `names`, its arguments valid against that tool's `parameters` schema (`{}` when absent); with
    /// `parallel` (`tool_choice` `required` with parallel calls allowed), of one or more such calls.
    /// - Throws: `APIError` 400 naming `tools[i].function.parameters…` for a schema the grammar cannot enforce.
    static func toolCallGrammar(format: ToolCallFormat, tools: [JSONValue], names: Set<String>, parallel: Bool = false) throws(APIError) -> Grammar {
        let skeletons = try toolCallSkeletons(format: format, tools: tools, names: names)
        // One or more calls, as the parser reads several: Hermes / Mistral calls one after another (Llama's with `;`
        // between), DeepSeek's inside one group (each call's markup without the group's open and close); at most two
        // whitespace characters between and after them.
        let (open, close) = parallel ? (format.groupClose.map { _ in format.callTrigger } ?? "", format.groupClose ?? "") : ("", "")
        let calls = skeletons.map { s in
            GrammarExpr.sequence([.literal(String(s.prefix.dropFirst(open.count))), s.arguments,
                                  .literal(String(s.suffix.dropLast(close.count)))])
        }
        let one: GrammarExpr = calls.count == 1 ? calls[0] : .alternatives(calls)
        let expr: GrammarExpr
        if parallel {
            let gap = GrammarExpr.repeated(.bytes(ByteSet(ranges: [0x0A...0x0A, 0x20...0x20])), min: 0, max: 2)
            let sep = format == .llama3JSON ? GrammarExpr.sequence([gap, .alternatives([.empty, .literal(";")]), gap]) : gap
            let group: (String) -> GrammarExpr = { $0.isEmpty ? .empty : .literal($0) }
            expr = .sequence([group(open), one, .repeated(.sequence([sep, one]), min: 0, max: nil), group(close), gap])
        } else {
            expr = one
        }
        do {
            return try Grammar.build(expr)
        } catch {
            throw APIError.invalidRequest("The tool-call grammar could not be built: \(error)", param: "tools")
        }
    }

    /// The lazy grammar of `tool_choice` `auto` (llama-server's): output is free until the format's
    /// `callTrigger`; after it, a call to one of `tools` in the template's markup with arguments valid against its
    /// `parameters` (so a call names a declared tool and `strict` schemas hold), then free output again. For
    /// DeepSeek's grouped markup: one call (more with `parallel`), then the group's close.
    /// A schema the grammar cannot enforce is a 400 when the tool is `strict`; otherwise the keywords it cannot enforce
    /// are left out (`relaxedSchema`), or, when that does not make it compile, its arguments are any object.
    /// - Returns: the trigger and the grammar of what follows it.
    /// - Throws: `APIError` 400 naming `tools[i].function.parameters…`.
    /// For Hermes also the bare form llama.cpp's Hermes 2 Pro handler triggers on at the start of the output:
    /// `{"name": "<tool>", "arguments": {…}}` without `<tool_call>` (Qwen2.5-Coder writes its calls so).
    static func lazyToolCalls(format: ToolCallFormat, tools: [JSONValue], parallel: Bool) throws(APIError) -> LazyCalls {
        let trigger = format.callTrigger
        var calls: [GrammarExpr] = [], bare: [(trigger: GrammarExpr, stretch: GrammarExpr)] = []
        let ws = GrammarExpr.repeated(.bytes(ByteSet(ranges: [0x09...0x0A, 0x0D...0x0D, 0x20...0x20])), min: 0, max: nil)
        let fence = GrammarExpr.alternatives([.empty, .sequence([.literal("```"), .alternatives([.empty, .literal("json")]), ws])])
        for s in try toolCallSkeletons(format: format, tools: tools, names: nil) {
            var suffix = Substring(s.suffix)
            if let close = format.groupClose { suffix = suffix.dropLast(close.count) }
            calls.append(.sequence([.literal(String(s.prefix.dropFirst(trigger.count))), s.arguments, .literal(String(suffix))]))
            // A bare call to this tool: the start of the reply (whitespace, an optional ```json line) through
            // `{"name": "<its name>"`, then its arguments with the model's own spacing between keys (it pretty-prints).
            bare.append((.sequence([ws, fence, .literal("{"), ws, .literal("\"name\""), ws, .literal(":"), ws,
                                    .literal(JSONValue.string(s.name).serialized())]),
                         .sequence([ws, .literal(","), ws, .literal("\"arguments\""), ws, .literal(":"), ws, s.arguments, ws,
                                    .literal("}")])))
        }
        let one: GrammarExpr = calls.count == 1 ? calls[0] : .alternatives(calls)
        let bareStart = format == .hermes ? bare : []
        guard let close = format.groupClose else { return LazyCalls(trigger: trigger, expr: one, bare: bareStart) }
        let group: [GrammarExpr] = parallel ? [one, .repeated(one, min: 0, max: nil)] : [one]
        return LazyCalls(trigger: trigger, expr: .sequence(group + [.literal(close)]), bare: bareStart)
    }

    /// The grammar of `tool_choice` `auto` (`lazyToolCalls`): what follows the format's trigger, and for Hermes a
    /// start-only trigger with what follows it (`LazyGrammar.start`).
    struct LazyCalls {
        let trigger: String
        let expr: GrammarExpr
        /// Hermes: one start-only trigger and stretch per tool (`LazyGrammar.start`); empty for the other formats.
        let bare: [(trigger: GrammarExpr, stretch: GrammarExpr)]
    }

    /// Each tool of `tools` named in `names` (every one when nil) as one call's markup around its arguments:
    /// `ToolCallFormat.callSkeleton` (the name JSON-escaped where the markup quotes it) and the arguments' grammar
    /// (the `parameters` schema; `{}` when absent). A `strict` tool's schema the grammar cannot enforce is a 400; a
    /// non-strict tool's is enforced without the keywords the grammar cannot enforce (`relaxedSchema`), and when it
    /// still does not compile (malformed) it is a 400 for a forced call (`names`) and any object under `auto`.
    /// - Throws: `APIError` 400 naming `tools[i].function.parameters…`.
    static func toolCallSkeletons(format: ToolCallFormat, tools: [JSONValue], names: Set<String>?) throws(APIError)
        -> [(prefix: String, arguments: GrammarExpr, suffix: String, name: String)] {
        var out: [(prefix: String, arguments: GrammarExpr, suffix: String, name: String)] = []
        for (i, tool) in tools.enumerated() {
            guard let name = tool["function"]?["name"]?.stringValue, names?.contains(name) ?? true else { continue }
            // No `parameters`: "an empty parameter list" (OpenAI), so the arguments are `{}`.
            let schema = tool["function"]?["parameters"] ?? .object([("type", .string("object")), ("properties", .object([]))])
            let strict = tool["function"]?["strict"]?.boolValue == true
            var arguments = GrammarExpr.json(schema: schema)
            do {
                _ = try Grammar.jsonSchema(schema)
            } catch {
                // A tool that is not `strict` promises no schema adherence (OpenAI): the keywords the grammar cannot
                // enforce are left out and the rest still holds; a schema that stays uncompilable takes any object
                // under `auto`, and is a 400 for a forced call.
                if !strict, let relaxed = Self.relaxedSchema(schema) {
                    arguments = .json(schema: relaxed)
                } else if names == nil && !strict {
                    arguments = .jsonObject
                } else {
                    let what = names == nil ? "a strict tool" : "a forced tool call"
                    throw APIError.invalidRequest("Invalid 'tools[\(i)].function.parameters' for \(what): \(error)",
                                                  param: Self.schemaParam(error, under: "tools[\(i)].function.parameters"))
                }
            }
            // The name as a JSON string body where the markup quotes it (the quotes of the serialized string dropped).
            let spelled = format.namesInJSONString ? String(JSONValue.string(name).serialized().dropFirst().dropLast()) : name
            let (prefix, suffix) = format.callSkeleton(name: spelled)
            out.append((prefix, arguments, suffix, name))
        }
        return out
    }

    /// `schema` without the keywords the grammar cannot enforce (`GrammarError.unsupported`: `uniqueItems`, a
    /// `maxLength` over the grammar's bound, a `pattern` it cannot read, …), removed one at a time where the compiler
    /// points, until it compiles; nil when it still fails for another reason (a malformed schema, left recursion) or
    /// after 512 removals. For tools that are not `strict`.
    /// A string's length limits cannot be enforced together with its `pattern` / `format`: the limits go when the
    /// pattern alone compiles, else the pattern (helper-60: an unreadable pattern took the limits with it).
    static func relaxedSchema(_ schema: JSONValue) -> JSONValue? {
        var s = schema
        for _ in 0..<512 {
            do {
                _ = try Grammar.jsonSchema(s)
                return s
            } catch {
                guard case .unsupported(let keyword, let path, _) = error else { return nil }
                var drop = [keyword]
                if keyword == "minLength" || keyword == "maxLength", case .object(let members)? = s.value(at: JSONValue.pointerTokens(path[...])) {
                    let text = members.first { $0.key == "pattern" } ?? members.first { $0.key == "format" }
                    if let text {
                        let alone = JSONValue.object(members.filter { $0.key != "minLength" && $0.key != "maxLength" })
                        drop = (try? Grammar.jsonSchema(alone)) != nil ? ["minLength", "maxLength"] : [text.key]
                    }
                }
                var next = s, removed = false
                for k in drop {
                    if let n = next.removingMember(k, at: JSONValue.pointerTokens(path[...])[...]) { next = n; removed = true }
                }
                guard removed else { return nil }
                s = next
            }
        }
        return nil
    }

    /// Refuses a message field only the template can use (`name`, a key outside OpenAI's schema) that has no effect
    /// on the prompt, found by rendering the history (`render`) with and without such fields: a key (all its
    /// occurrences) is refused when it changes nothing on its own — the history with only that key's fields renders as
    /// the history with none — and nothing beside the others — the history without it renders as the history with
    /// all. So a field the template prints whole (`message|tojson`), reads in a loop over the message's items, reads
    /// only together with another field (`m.name or m.nick`) or only in some messages (a speaker printed when it
    /// changes) is kept; one it never reads, like a user message's `name` on Qwen2.5's template (which reads only
    /// `tool_call.name`), is refused. The textual check this replaces (`Prompt.templateNames`) passed every key a
    /// template names anywhere and refused keys read indirectly (helper-63, helper-65). At most 8 keys are tried
    /// (2 renders, plus 2 per key when there are several; nothing tokenized); a template whose output varies between
    /// renders (a date) lets fields through.
    /// `removedFinal`: the message `continue_final_message` continues when it is appended as text after the
    /// generation prompt (its reasoning continued), so the template never sees its other fields.
    /// - Throws: `APIError` 400 naming `messages[i].key` (the first message carrying the key).
    private func refuseUnusedMessageFields(_ history: [ChatMessage], removedFinal: ChatMessage?,
                                           render: ([JinjaValue]) -> String?) throws(APIError) {
        if let last = removedFinal, let key = last.templateOnlyKeys.first {
            let p = "messages[\(history.count)].\(key)"
            throw APIError.invalidRequest("'\(p)' is on the message continue_final_message continues: that message's text is "
                                          + "appended to the prompt as it is, so its other fields cannot be honoured; remove it",
                                          param: p)
        }
        var keys: [String] = []
        for m in history { for k in m.templateOnlyKeys where !keys.contains(k) { keys.append(k) } }
        guard !keys.isEmpty else { return }
        let full = history.map(Self.templateMessage)
        func keeping(_ kept: (String) -> Bool) -> [JinjaValue] {
            full.enumerated().map { i, v in
                guard case .object(var o) = v else { return v }
                for k in history[i].templateOnlyKeys where !kept(k) { o[k] = nil }
                return .object(o)
            }
        }
        guard let all = render(full), let none = render(keeping { _ in false }) else { return }
        for key in keys.prefix(8) {
            // With one key, "only it" is the whole history and "without it" the bare one: the two renders above.
            let alone = keys.count == 1 ? all : render(keeping { $0 == key })
            let without = keys.count == 1 ? none : render(keeping { $0 != key })
            guard alone == none, without == all else { continue }
            let i = history.firstIndex { $0.templateOnlyKeys.contains(key) } ?? 0
            throw APIError.invalidRequest("'messages[\(i)].\(key)' does not change the prompt this model's chat template "
                                          + "renders, so it cannot be honoured; remove it", param: "messages[\(i)].\(key)")
        }
    }

    /// One message as chat templates expect it: the object as the client sent it (every key, `null` as `none`, a
    /// missing `content` as `none`), with array-of-parts content replaced by its joined text. A message built in code (no `json`) maps its fields, and
    /// nil content becomes `none`.
    static func templateMessage(_ m: ChatMessage) -> JinjaValue {
        if case .object(var o)? = m.json.map(JinjaValue.init(json:)) {
            // Array-of-parts content as its joined text; an assistant `refusal` as the content it stands for.
            if let c = m.content, m.contentParts != nil || o["content"] == nil || o["content"] == .null { o["content"] = .string(c) }
            // An assistant message with tool calls may leave `content` out (OpenAI): the template sees `none`, as for
            // `null` (vLLM's default), never an undefined key.
            if o["content"] == nil { o["content"] = .null }
            return .object(o)
        }
        var fields: [(String, JinjaValue)] = [("role", .string(m.role.rawValue))]
        fields.append(("content", m.content.map(JinjaValue.string) ?? .null))
        if let n = m.name { fields.append(("name", .string(n))) }
        if let r = m.reasoningContent { fields.append(("reasoning_content", .string(r))) }
        if !m.toolCalls.isEmpty { fields.append(("tool_calls", JinjaValue(json: .array(m.toolCalls.map(\.json))))) }
        if let id = m.toolCallId { fields.append(("tool_call_id", .string(id))) }
        return .object(JinjaObject(fields))
    }

    /// OpenAI's `finish_reason` for an engine finish: a reply that made tool calls and ended normally is
    /// `tool_calls`; one cut by the token limit is `length` (a call it cut off was dropped).
    static func apiReason(_ r: Scheduling.FinishReason, toolCalls: Int = 0) -> OpenAIAPI.FinishReason {
        r == .length ? .length : toolCalls > 0 ? .toolCalls : .stop
    }

    /// `messages` with each run of tool messages that answers an assistant message's calls put in the order of
    /// those calls. Both APIs match results to calls by id, in any order (agents append results as they finish),
    /// while templates that print no ids (Qwen's `<tool_response>`, Llama 3's) pair them by position: results sent
    /// in reverse order gave one call's result to the other (helper-71). A run is reordered only when its ids are
    /// distinct calls of that message and none of its messages carries a key only the template reads (a refusal
    /// names such a key by its index as sent).
    static func toolResultsInCallOrder(_ messages: [ChatMessage]) -> [ChatMessage] {
        var out = messages
        var i = 0
        while i < out.count {
            guard out[i].role == .assistant, !out[i].toolCalls.isEmpty else { i += 1; continue }
            let order = Dictionary(out[i].toolCalls.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
            var end = i + 1
            while end < out.count && out[end].role == .tool { end += 1 }
            let run = out[(i + 1)..<end]
            let ranks = run.compactMap { $0.toolCallId.flatMap { order[$0] } }
            if ranks.count == run.count, Set(ranks).count == ranks.count, run.allSatisfy({ $0.templateOnlyKeys.isEmpty }) {
                let sorted = zip(ranks, run).sorted { $0.0 < $1.0 }.map(\.1)
                out.replaceSubrange((i + 1)..<end, with: sorted)
            }
            i = end
        }
        return out
    }

    /// The API error for a refused submission; a context overflow names `promptField` (the request's prompt field).
    static func apiError(_ error: Error, promptField: String = "messages") -> APIError {
        switch error as? EngineError {
        case .queueFull?: return APIError.rateLimited("\(error)")
        case .contextLengthExceeded(let p, let m, let l)?:
            return APIError.contextLengthExceeded(requested: m > Int.max - p ? Int.max : p + m, limit: l, promptTokens: p,
                                                  promptField: promptField)
        case .shuttingDown?: return APIError.overloaded("\(error)")
        case .batchTooLarge?: return APIError.invalidRequest("\(error)", param: promptField)
        default: return APIError.invalidRequest("\(error)", param: nil)
        }
    }
}
