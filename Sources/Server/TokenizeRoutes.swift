import Engine
import HTTPServer
import JSON
import OpenAIAPI
import Tokenizer

/// llama-server-compatible `POST /tokenize` and `POST /detokenize`.
extension SputnikServer {
    /// Most tokens one `/tokenize` answers (413 beyond): a bit over 7 MiB of JSON at most.
    static let maxTokenizeTokens = 1 << 20
    /// Most tokens one `/tokenize` with `with_pieces` answers (413 beyond): each is an object with its text.
    static let maxTokenizePieces = 1 << 16
    /// Most bytes of text one `/detokenize` answers (413 beyond).
    static let maxDetokenizeBytes = 4 << 20

    /// `POST /apply-template` (llama-server's): a chat completion request → `{"prompt": "…"}`, the prompt text this
    /// server renders for it, exactly as generation would (the template with the request's tools, tool-call arguments
    /// as the template expects them, `chat_template_kwargs`, reasoning mode, `continue_final_message`, the ChatML
    /// fallback). Nothing is generated, so the context length is not checked (a text too long to be that many tokens
    /// at all is still refused, untokenized). Control-token text a client typed is plain text in the prompt the
    /// server tokenizes; this text does not say so. - Errors: the chat route's 400s for the same body.
    func handleApplyTemplate(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            let request = try ChatCompletionRequest.decode(req.body).get()
            let rendered = try renderPrompt(for: request, tokenLimit: engine.config.contextSize)
            sendJSON(res, 200, JSONValue.object([("prompt", .string(rendered.text))]).encoded())
        } catch {
            sendError(res, error)
        }
    }

    /// `{"content": String, "add_special": Bool = false, "parse_special": Bool = true, "with_pieces": Bool = false}`
    /// → `{"tokens": [Int]}` (or `[{"id", "piece"}]` with `with_pieces`).
    func handleTokenize(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            let json = try JSONValue.parse(req.body)
            guard case .object = json else { throw APIError.invalidRequest("The body must be a JSON object") }
            guard let raw = json["content"] else { throw APIError.invalidRequest("'content' is a required property", param: "content") }
            try Self.refuseUnknownKeys(json, known: ["content", "add_special", "parse_special", "with_pieces", "model"])
            guard let content = raw.stringValue else {
                throw APIError.invalidRequest("'content' must be a string, got \(raw.typeName)", param: "content")
            }
            let addSpecial = try flag(json, "add_special", default: false)
            let parseSpecial = try flag(json, "parse_special", default: true)
            let withPieces = try flag(json, "with_pieces", default: false)
            let ids = tokenizer.encode(content, addSpecial: addSpecial, parseSpecial: parseSpecial)
            // Bounded before the answer is built: an 8 MiB body is ~2M tokens, and pieces cost an object each.
            let limit = withPieces ? Self.maxTokenizePieces : Self.maxTokenizeTokens
            guard ids.count <= limit else {
                var e = APIError.invalidRequest(
                    "'content' is \(ids.count) tokens; /tokenize answers at most \(limit) tokens"
                        + (withPieces ? " with 'with_pieces' (\(Self.maxTokenizeTokens) without)" : ""),
                    param: "content", code: "request_too_large")
                e.status = 413
                throw e
            }
            guard withPieces else {
                // Plain ids are written straight out: no JSON tree of up to a million numbers.
                var out = Array(#"{"tokens":["#.utf8)
                out.reserveCapacity(out.count + ids.count * 7 + 2)
                for (i, id) in ids.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: String(id).utf8)
                }
                out.append(contentsOf: "]}".utf8)
                return sendJSON(res, 200, out)
            }
            let tokens: [JSONValue] = ids.map { id in
                let bytes = tokenizer.tokenBytes(id, renderSpecial: true)
                let piece: JSONValue = String(validating: bytes, as: UTF8.self).map { .string($0) }
                    ?? .array(bytes.map { .int(Int($0)) })
                return .object([("id", .int(Int(id))), ("piece", piece)])
            }
            sendJSON(res, 200, JSONValue.object([("tokens", .array(tokens))]).encoded())
        } catch {
            sendError(res, error)
        }
    }

    /// `{"tokens": [Int]}` → `{"content": String}` (special tokens rendered, as llama-server does).
    func handleDetokenize(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            let json = try JSONValue.parse(req.body)
            guard case .object = json, let list = json["tokens"]?.arrayValue else {
                throw APIError.invalidRequest("'tokens' must be an array of token ids", param: "tokens")
            }
            try Self.refuseUnknownKeys(json, known: ["tokens", "model"])
            var ids: [Int32] = []
            for (i, v) in list.enumerated() {
                guard let id = v.intValue, id >= 0, id < tokenizer.vocabSize else {
                    throw APIError.invalidRequest("tokens[\(i)] is not a token id of this vocabulary (0..<\(tokenizer.vocabSize))",
                                                  param: "tokens")
                }
                ids.append(Int32(id))
            }
            // Bounded before the text is built: escaped as JSON, 4 MiB of text stays under the 32 MiB output cap.
            var textBytes = 0
            for id in ids { textBytes += tokenizer.tokenBytes(id, renderSpecial: true).count }
            guard textBytes <= Self.maxDetokenizeBytes else {
                var e = APIError.invalidRequest("These \(ids.count) tokens are \(textBytes) bytes of text; /detokenize answers at most \(Self.maxDetokenizeBytes)",
                                                param: "tokens", code: "request_too_large")
                e.status = 413
                throw e
            }
            let text = tokenizer.detokenize(ids, renderSpecial: true)
            sendJSON(res, 200, JSONValue.object([("content", .string(text))]).encoded())
        } catch {
            sendError(res, error)
        }
    }

    /// A member outside `known` is a 400 naming it, as every other route answers one (it was read past: vLLM's chat
    /// form `{"messages": …}` beside `content` came back with the tokens of `content`: helper-65).
    private static func refuseUnknownKeys(_ json: JSONValue, known: Set<String>) throws(APIError) {
        for (key, _) in json.objectValue ?? [] where !known.contains(key) {
            throw APIError.invalidRequest("Unrecognized request argument supplied: \(key)", param: key)
        }
    }

    private func flag(_ json: JSONValue, _ key: String, default d: Bool) throws(APIError) -> Bool {
        guard let v = json[key], !v.isNull else { return d }
        guard let b = v.boolValue else { throw APIError.invalidRequest("'\(key)' must be a boolean", param: key) }
        return b
    }
}
