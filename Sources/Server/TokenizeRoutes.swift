import HTTPServer
import OpenAIAPI

/// llama-server-compatible `POST /tokenize` and `POST /detokenize`.
extension SputnikServer {
    /// `{"content": String, "add_special": Bool = false, "parse_special": Bool = true, "with_pieces": Bool = false}`
    /// → `{"tokens": [Int]}` (or `[{"id", "piece"}]` with `with_pieces`).
    func handleTokenize(_ req: HTTPRequest, _ res: HTTPResponder) {
        do throws(APIError) {
            let json = try JSONValue.parse(req.body)
            guard case .object = json else { throw APIError.invalidRequest("The body must be a JSON object") }
            guard let content = json["content"]?.stringValue else {
                throw APIError.invalidRequest("'content' must be a string", param: "content")
            }
            let addSpecial = try flag(json, "add_special", default: false)
            let parseSpecial = try flag(json, "parse_special", default: true)
            let withPieces = try flag(json, "with_pieces", default: false)
            let ids = tokenizer.encode(content, addSpecial: addSpecial, parseSpecial: parseSpecial)
            let tokens: [JSONValue] = ids.map { id in
                guard withPieces else { return .int(Int(id)) }
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
            var ids: [Int32] = []
            for (i, v) in list.enumerated() {
                guard let id = v.intValue, id >= 0, id < tokenizer.vocabSize else {
                    throw APIError.invalidRequest("tokens[\(i)] is not a token id of this vocabulary (0..<\(tokenizer.vocabSize))",
                                                  param: "tokens")
                }
                ids.append(Int32(id))
            }
            let text = tokenizer.detokenize(ids, renderSpecial: true)
            sendJSON(res, 200, JSONValue.object([("content", .string(text))]).encoded())
        } catch {
            sendError(res, error)
        }
    }

    private func flag(_ json: JSONValue, _ key: String, default d: Bool) throws(APIError) -> Bool {
        guard let v = json[key], !v.isNull else { return d }
        guard let b = v.boolValue else { throw APIError.invalidRequest("'\(key)' must be a boolean", param: key) }
        return b
    }
}
