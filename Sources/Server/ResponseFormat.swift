import Grammar
import JSON
import OpenAIAPI

/// `response_format` → the grammar the engine constrains the answer to.
extension SputnikServer {
    /// nil for `text` (or no `response_format`); any JSON object for `json_object` (or, with llama-server's
    /// `{"type": "json_object", "schema": {…}}`, the schema's values); the schema's values for
    /// `json_schema` (`strict` true or false: the schema is enforced either way, as vLLM and llama-server do). As the
    /// expression (to combine with tool calls or reasoning) and its grammar (built here, which validates it).
    /// - Throws: `APIError` (400) naming `response_format.json_schema.…` for a malformed field or a schema keyword
    ///   that cannot be enforced (the `param` points into the schema, e.g.
    ///   `response_format.json_schema.schema.properties.url.format`).
    static func responseFormat(_ rf: JSONValue?) throws(APIError) -> (expr: GrammarExpr, grammar: Grammar)? {
        guard let rf, let type = rf["type"]?.stringValue, type != "text" else { return nil }
        let schema: JSONValue, field: String
        if type == "json_schema" {
            let spec = rf["json_schema"] ?? .null
            if let name = spec["name"], name.stringValue == nil {
                throw APIError.invalidRequest("'response_format.json_schema.name' must be a string", param: "response_format.json_schema.name")
            }
            if let strict = spec["strict"], strict.boolValue == nil, !strict.isNull {
                throw APIError.invalidRequest("'response_format.json_schema.strict' must be a boolean", param: "response_format.json_schema.strict")
            }
            guard let s = spec["schema"] else {
                throw APIError.invalidRequest("'response_format.json_schema.schema' is required (use {\"type\":\"json_object\"} for any JSON object)",
                                              param: "response_format.json_schema.schema")
            }
            guard s.objectValue != nil || s.boolValue != nil else {
                throw APIError.invalidRequest("'response_format.json_schema.schema' must be an object", param: "response_format.json_schema.schema")
            }
            (schema, field) = (s, "response_format.json_schema.schema")
        } else if let s = rf["schema"], !s.isNull {
            (schema, field) = (s, "response_format.schema")   // llama-server's json_object with a schema
        } else {
            do {
                return (.jsonObject, try Grammar.build(.jsonObject))
            } catch {
                throw APIError.invalidRequest("Invalid 'response_format': \(error)", param: "response_format")
            }
        }
        do {
            return (.json(schema: schema), try Grammar.jsonSchema(schema))
        } catch {
            throw APIError.invalidRequest("Invalid '\(field)': \(error)", param: schemaParam(error, under: field))
        }
    }
}

extension SputnikServer {
    /// The request field a schema error points at: `base` (where the schema sits in the request), then the error's
    /// JSON pointer as dotted keys, then the refused keyword (`….properties.url.format`).
    static func schemaParam(_ e: GrammarError, under base: String) -> String {
        var param = base
        if let path = e.path, !path.isEmpty {
            param += path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { "." + $0 }.joined()
        }
        if case .unsupported(let keyword, _, _) = e { param += "." + keyword }
        return param
    }
}
