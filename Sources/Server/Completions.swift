import Engine
import Foundation
import HTTPServer
import OpenAIAPI
import Scheduling
import Tokenizer

/// `POST /v1/completions` (the legacy text API): each prompt of `prompt` is its own choice, generated concurrently;
/// `suffix` runs fill-in-the-middle on models whose vocabulary has Qwen2.5-Coder's FIM tokens.
extension SputnikServer {
    func handleCompletion(_ req: HTTPRequest, _ res: HTTPResponder) {
        let request: CompletionRequest
        var gens: [GenerationRequest] = []
        var echoes: [String] = []
        do throws(APIError) {
            request = try CompletionRequest.decode(req.body).get()
            exchange(res)?.user = request.sampling.user
            let base = try generationRequest(request.sampling)
            // An empty suffix is no suffix on a model without fill-in-the-middle tokens (clients send `""`).
            let suffix = request.suffix == "" && fimTokens() == nil ? nil : request.suffix
            for (i, prompt) in request.prompts.enumerated() {
                var gen = base
                gen.promptTokens = try completionPromptTokens(prompt, suffix: suffix, index: i)
                // Echo only: the engine prefills the prompt (and scores it, with logprobs) and samples one token,
                // which CompletionRun drops; it needs no room in the context (lm-eval's rolling windows are exactly
                // the context long).
                if request.echoOnly { gen.maxNewTokens = 0 }
                gens.append(gen)
                let echo = request.echo ? promptText(prompt) : ""
                echoes += Array(repeating: echo, count: gen.n)
            }
        } catch {
            return sendError(res, error)
        }
        let run = CompletionRun(server: self, id: "cmpl-" + Self.randomId(), created: Int(Date().timeIntervalSince1970),
                                echoes: echoes, echo: request.echo, echoOnly: request.echoOnly,
                                logprobs: request.sampling.logprobs,
                                stream: request.sampling.stream ? sseWriter(res) : nil,
                                includeUsage: request.sampling.includeUsage,
                                continuousUsage: request.sampling.continuousUsage ? gens.reduce(0) { $0 + $1.promptTokens.count } : nil,
                                responder: res)
        run.start(gens)
    }

    /// The prompt's token ids: text tokenized as the chat prompt is (special tokens parsed, BOS as the vocabulary
    /// says), ids checked against the vocabulary; with `suffix`, the fill-in-the-middle layout
    /// `<|fim_prefix|>` prompt `<|fim_suffix|>` suffix `<|fim_middle|>`.
    /// - Throws: `APIError` 400 naming `prompt` (empty, or an id outside the vocabulary) or `suffix` (no FIM tokens).
    func completionPromptTokens(_ prompt: CompletionPrompt, suffix: String?, index: Int) throws(APIError) -> [Int32] {
        let tokenizer = engine.tokenizer
        var ids: [Int32]
        switch prompt {
        case .text(let s):
            // Too long to fit the context whatever its tokens: refused without tokenizing it.
            let limit = engine.config.contextSize, bytes = s.utf8.count + (suffix?.utf8.count ?? 0)
            if let atLeast = tokenizer.tokensAtLeast(bytes: bytes, over: limit) {
                throw APIError.promptTooLong(atLeast: atLeast, bytes: bytes, limit: limit, promptField: "prompt")
            }
            ids = tokenizer.encode(s, addSpecial: suffix == nil, parseSpecial: suffix == nil)
        case .tokens(let raw):
            ids = []
            ids.reserveCapacity(raw.count)
            for id in raw {
                guard id < tokenizer.vocabSize else {
                    throw APIError.invalidRequest("'prompt' names token \(id), outside the vocabulary (0..<\(tokenizer.vocabSize))",
                                                  param: "prompt")
                }
                ids.append(Int32(id))
            }
        }
        if let suffix {
            guard let fim = fimTokens() else {
                throw APIError.invalidRequest("'suffix' needs a fill-in-the-middle model (one whose vocabulary has "
                                              + "<|fim_prefix|>, <|fim_suffix|> and <|fim_middle|>); this one has none",
                                              param: "suffix")
            }
            let bos = tokenizer.addBOS ? tokenizer.bosTokenId.map { [$0] } ?? [] : []
            ids = bos + [fim.prefix] + ids + [fim.suffix]
                + tokenizer.encode(suffix, addSpecial: false, parseSpecial: false) + [fim.middle]
        }
        guard !ids.isEmpty else {
            throw APIError.invalidRequest("'prompt' \(index) is empty: it has no tokens", param: "prompt")
        }
        return ids
    }

    /// Qwen2.5-Coder's fill-in-the-middle tokens, when the vocabulary has all three as single special tokens.
    func fimTokens() -> (prefix: Int32, suffix: Int32, middle: Int32)? {
        let tokenizer = engine.tokenizer
        func special(_ text: String) -> Int32? {
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
            guard ids.count == 1, tokenizer.isSpecial(ids[0]) || tokenizer.isControl(ids[0]),
                  tokenizer.tokenText(ids[0]) == text else { return nil }
            return ids[0]
        }
        guard let p = special("<|fim_prefix|>"), let s = special("<|fim_suffix|>"), let m = special("<|fim_middle|>") else {
            return nil
        }
        return (p, s, m)
    }

    /// The text `echo` repeats: the prompt string, or its token ids detokenized.
    func promptText(_ prompt: CompletionPrompt) -> String {
        switch prompt {
        case .text(let s): return s
        case .tokens(let ids): return engine.tokenizer.detokenize(ids.map { Int32($0) })
        }
    }

    /// `GET /v1/models/{id}`: the served model's card, or 404 `model_not_found` in OpenAI's shape.
    func handleModel(_ req: HTTPRequest, _ res: HTTPResponder) {
        let path = req.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? req.path
        let prefix = path.hasPrefix("/v1/models/") ? "/v1/models/" : "/models/"
        let raw = String(path.dropFirst(prefix.count))
        let id = raw.removingPercentEncoding ?? raw
        guard id == modelId else {
            return sendError(res, APIError.notFound("The model '\(id)' does not exist", param: "model", code: "model_not_found"))
        }
        sendJSON(res, 200, ModelCard(id: modelId, created: created, ownedBy: "sputnik",
                                     maxModelLen: loadedServing?.engine.config.contextSize).encoded())
    }
}

/// One `/v1/completions` request in flight: its choices' engine requests (prompt p's choice k has index
/// p · n + k, as OpenAI orders them), their text and log-probabilities, and
/// the answer (whole, or streamed as chunks). Engine events arrive on the engine thread; `lock` orders them with
/// the submitting thread.
private final class CompletionRun: @unchecked Sendable {
    private weak var server: SputnikServer?
    private let id: String
    private let created: Int
    private let modelId: String
    private let echoes: [String]
    /// `echo` with `logprobs`: the echoed prompt carries its tokens' log-probabilities.
    private let echoLogprobs: Bool
    /// `echo` with `max_tokens: 0`: each choice is its prompt alone; the one token the engine samples is dropped,
    /// and the choice ends with `length` and no completion tokens (vLLM's echo without generation).
    private let echoOnly: Bool
    private let wantsLogprobs: Bool
    private let sse: SSEWriter?
    private let includeUsage: Bool
    /// With `stream_options.continuous_usage_stats`: the prompt tokens of all prompts (each counted once), the
    /// running usage's `prompt_tokens`; nil without it.
    private let continuousPromptTokens: Int?
    /// Tokens generated so far per choice (streamed ids; the engine's count once the choice finished) and their sum.
    private var generated: [Int]
    private var generatedTotal = 0
    private let responder: HTTPResponder
    /// The access-log record of this request (first token time, token counts).
    private let exchange: Exchange?
    private let lock = NSLock()
    private let gate = OrderedGate()
    private var texts: [String]
    private var logprobs: [CompletionLogprobs]
    /// Each choice's `text_offset` counter, at the scalars of its text so far.
    private var offsets: [TextOffsets]
    private var reasons: [OpenAIAPI.FinishReason?]
    private var usage = Usage(promptTokens: 0, completionTokens: 0)
    private var remaining: Int
    /// A submission failed or a choice was aborted: nothing more is sent.
    private var failed = false
    /// Streamed: the response head has been sent (at the first `.started`).
    private var headSent = false

    init(server: SputnikServer, id: String, created: Int, echoes: [String], echo: Bool, echoOnly: Bool, logprobs: Bool,
         stream: SSEWriter?, includeUsage: Bool, continuousUsage: Int?, responder: HTTPResponder) {
        echoLogprobs = echo && logprobs
        self.echoOnly = echoOnly
        self.server = server
        self.id = id
        self.created = created
        modelId = server.modelId
        self.echoes = echoes
        wantsLogprobs = logprobs
        sse = stream
        self.includeUsage = includeUsage
        continuousPromptTokens = continuousUsage
        generated = Array(repeating: 0, count: echoes.count)
        self.responder = responder
        exchange = server.exchange(responder)
        texts = echoes
        self.logprobs = Array(repeating: CompletionLogprobs(), count: echoes.count)
        offsets = echoes.map { TextOffsets(tokenizer: server.tokenizer, start: $0.unicodeScalars.count) }
        reasons = Array(repeating: nil, count: echoes.count)
        remaining = echoes.count
    }

    /// Submits every choice; on a refused submission the ones already running are cancelled and the error answered.
    /// Events wait behind `gate` until every choice is submitted (and, streamed, the response head is out).
    func start(_ gens: [GenerationRequest]) {
        guard let server else { return }
        var gens = gens
        if echoLogprobs {
            for p in gens.indices {
                let first = gens[p].promptTokens[0], n = gens[p].n
                gens[p].onPromptLogprobs = { [self] entries in
                    gate.run { self.promptLogprobs(choices: (p * n)..<(p * n + n), first: first, entries) }
                }
            }
        }
        let n = gens.first?.n ?? 1   // every prompt has the request's n
        let submitted: [GenerationHandle]
        do {
            // All prompts or none: a partly admitted request would start prompts only to abort them.
            submitted = try server.engine.submit(batch: gens) { [self] p, k, event in
                gate.run { self.event(p * n + k, firstOfPrompt: k == 0, event) }
            }
            for gen in gens { exchange?.submitted(promptTokens: gen.promptTokens.count) }
        } catch {
            lock.lock()
            failed = true
            lock.unlock()
            gate.open {}
            server.sendError(responder, SputnikServer.apiError(error, promptField: "prompt"))
            return
        }
        responder.onClose { for h in submitted { h.cancel() } }
        gate.open {}
    }

    /// Streamed: the response head and the echoed prompts, when the engine starts the first prompt (one it never
    /// starts, the server draining, can still get a retryable 503). Called with `lock` held.
    private func sendHead(_ sse: SSEWriter, _ server: SputnikServer) {
        headSent = true
        sse.start(extraHeaders: server.requestIdHeaders(responder, status: 200))
        for (i, echo) in echoes.enumerated() where !echo.isEmpty && !echoLogprobs {
            sse.send(data: chunk([.init(text: echo, index: i)]))
        }
    }

    /// A stream chunk; with `continuous_usage_stats` it carries the running usage (tokens generated so far).
    private func chunk(_ choices: [CompletionResponse.Choice]) -> String {
        let running = continuousPromptTokens.map { Usage.running(promptTokens: $0, completionTokens: generatedTotal) }
        return CompletionResponse(id: id, created: created, model: modelId, choices: choices, usage: running,
                                  includeUsageField: includeUsage).serialized()
    }

    /// The echoed prompt's log-probabilities, for each choice of its prompt: the first token has none (`null`),
    /// then one entry per later prompt token (engine thread, before the prompt's generated tokens).
    private func promptLogprobs(choices: Range<Int>, first: Int32, _ entries: [TokenLogprobs]) {
        lock.lock()
        defer { lock.unlock() }
        guard !failed, let server else { return }
        var lp = CompletionLogprobs()
        var offsets = TextOffsets(tokenizer: server.tokenizer)
        // The echo is the prompt text as sent: a control token the client typed (`<|im_start|>`) is in it and takes
        // its width; one the server added (BOS) or a token-id prompt's control token (detokenized without them) is not.
        let echo = Array((choices.first.map { echoes[$0] } ?? "").unicodeScalars)
        func inEcho(_ id: Int32) -> Bool {
            guard server.tokenizer.isControl(id) else { return false }
            let piece = Array(server.tokenPiece(id).0.unicodeScalars), at = offsets.scalars
            return !piece.isEmpty && at + piece.count <= echo.count && echo[at..<at + piece.count].elementsEqual(piece)
        }
        lp.append(token: server.tokenPiece(first).0, logprob: nil, top: nil, offset: offsets.next(first, renderSpecial: inEcho(first)))
        for e in entries {
            let token = server.tokenPiece(e.tokenId).0
            lp.append(token: token, logprob: SputnikServer.wireLogprob(e.logprob),
                      top: e.top.map { a in (server.tokenPiece(a.tokenId).0, SputnikServer.wireLogprob(a.logprob)) },
                      offset: offsets.next(e.tokenId, renderSpecial: inEcho(e.tokenId)))
        }
        for i in choices {
            if let sse {
                sse.send(data: chunk([.init(text: echoes[i], index: i, logprobs: lp)]))
            } else {
                logprobs[i] = lp
            }
        }
    }

    /// One engine event of choice `i` (engine thread, in order behind `gate`); `usage` counts each prompt once.
    private func event(_ i: Int, firstOfPrompt: Bool, _ event: GenerationEvent) {
        lock.lock()
        defer { lock.unlock() }
        guard !failed, let server else { return }
        switch event {
        case .started:
            if let sse, !headSent { sendHead(sse, server) }
        case .text where echoOnly:
            break
        case .text(let t, let ids, let entries):
            exchange?.tokenArrived(ids.count)
            generated[i] += ids.count
            generatedTotal += ids.count
            var piece = CompletionLogprobs()
            if wantsLogprobs {
                let base = offsets[i].scalars
                for e in entries {
                    let (token, _) = server.tokenPiece(e.tokenId)
                    piece.append(token: token, logprob: SputnikServer.wireLogprob(e.logprob),
                                 top: e.top.map { a in (server.tokenPiece(a.tokenId).0, SputnikServer.wireLogprob(a.logprob)) },
                                 offset: offsets[i].next(e.tokenId, limit: base + t.unicodeScalars.count))
                }
                offsets[i].sync(base + t.unicodeScalars.count)
            }
            if let sse {
                if !t.isEmpty || !piece.tokens.isEmpty {
                    sse.send(data: chunk([.init(text: t, index: i, logprobs: wantsLogprobs ? piece : nil)]))
                }
            } else {
                texts[i] += t
                logprobs[i].tokens += piece.tokens
                logprobs[i].tokenLogprobs += piece.tokenLogprobs
                logprobs[i].topLogprobs += piece.topLogprobs
                logprobs[i].textOffset += piece.textOffset
            }
        case .reasoning, .toolCallBegin, .toolCallArguments:
            break   // completions never ask for output parsing (`GenerationRequest.parsing` stays plain text)
        case .finished(let reason, let u):
            guard reason != .abort else {
                // The client left (nothing reaches it) or the server stopped: one error event, or a 503 when
                // nothing was sent yet.
                if let sse, headSent {
                    sse.send(data: String(decoding: SputnikServer.abortedError.encoded(), as: UTF8.self))
                    sse.finish()
                    server.endExchange(responder, status: SputnikServer.abortedError.status)   // logged 503, not 200
                } else {
                    server.sendError(responder, SputnikServer.abortedError)
                }
                failed = true
                return
            }
            reasons[i] = echoOnly ? .length : SputnikServer.apiReason(reason)
            if firstOfPrompt {
                usage.promptTokens += u.promptTokens
                usage.cachedTokens += u.cachedTokens
            }
            let completion = echoOnly ? 0 : u.completionTokens
            usage.completionTokens += completion
            generatedTotal += completion - generated[i]
            generated[i] = completion
            remaining -= 1
            if remaining == 0 { exchange?.usage(prompt: usage.promptTokens, completion: usage.completionTokens) }
            if let sse {
                sse.send(data: chunk([.init(text: "", index: i, logprobs: nil, finishReason: reasons[i])]))
                guard remaining == 0 else { return }
                if includeUsage {
                    sse.send(data: CompletionResponse(id: id, created: created, model: modelId, choices: [], usage: usage,
                                                      includeUsageField: true).serialized())
                }
                sse.send(data: "[DONE]")
                sse.finish()
                server.endExchange(responder)
            } else if remaining == 0 {
                let choices = (0..<texts.count).map { k in
                    CompletionResponse.Choice(text: texts[k], index: k, logprobs: wantsLogprobs ? logprobs[k] : nil,
                                              finishReason: reasons[k])
                }
                server.sendJSON(responder, 200,
                                CompletionResponse(id: id, created: created, model: modelId, choices: choices, usage: usage).encoded())
            }
        }
    }
}
