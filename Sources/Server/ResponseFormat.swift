import Grammar
import JSON
import OpenAIAPI

/// `response_format` → the grammar the engine constrains the answer to.
extension SputnikServer {
    /// nil for `text` (or no `response_format`); any JSON object for `json_object`; the schema's grammar for
    /// `json_schema` (`strict` true or false: the schema is enforced either way, as vLLM and llama-server do).
    /// - Throws: `APIError` (400) naming `response_format.json_schema.…` for a malformed field or a schema keyword
    ///   that cannot be enforced (the `param` points into the schema, e.g.
    ///   `response_format.json_schema.schema.properties.url.format`).
    static func responseGrammar(_ rf: JSONValue?) throws(APIError) -> Grammar? {
        guard let rf, let type = rf["type"]?.stringValue, type != "text" else { return nil }
        do {
            guard type == "json_schema" else { return try Grammar.build(.jsonObject) }
            let spec = rf["json_schema"] ?? .null
            if let name = spec["name"], name.stringValue == nil {
                throw APIError.invalidRequest("'response_format.json_schema.name' must be a string", param: "response_format.json_schema.name")
            }
            if let strict = spec["strict"], strict.boolValue == nil, !strict.isNull {
                throw APIError.invalidRequest("'response_format.json_schema.strict' must be a boolean", param: "response_format.json_schema.strict")
            }
            guard let schema = spec["schema"] else {
                throw APIError.invalidRequest("'response_format.json_schema.schema' is required (use {\"type\":\"json_object\"} for any JSON object)",
                                              param: "response_format.json_schema.schema")
            }
            guard schema.objectValue != nil || schema.boolValue != nil else {
                throw APIError.invalidRequest("'response_format.json_schema.schema' must be an object", param: "response_format.json_schema.schema")
            }
            return try Grammar.jsonSchema(schema)
        } catch let e as APIError {
            throw e
        } catch let e as GrammarError {
            var param = "response_format.json_schema.schema"
            if let path = e.path, !path.isEmpty {
                param += path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { "." + $0 }.joined()
            }
            if case .unsupported(let keyword, _, _) = e { param += "." + keyword }
            throw APIError.invalidRequest("Invalid 'response_format.json_schema.schema': \(e)", param: param)
        } catch {
            throw APIError.invalidRequest("Invalid 'response_format': \(error)", param: "response_format")
        }
    }
}

extension SputnikServer {
    /// The grammar expression of a `response_format` that `responseGrammar` accepted (nil for `text` or none): any JSON
    /// object for `json_object`, the schema's values for `json_schema`.
    static func responseFormatExpr(_ rf: JSONValue?) -> GrammarExpr? {
        guard let rf, let type = rf["type"]?.stringValue, type != "text" else { return nil }
        guard type == "json_schema", let schema = rf["json_schema"]?["schema"] else { return .jsonObject }
        return .json(schema: schema)
    }
}
