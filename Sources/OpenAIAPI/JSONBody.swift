// Request bodies are parsed by the JSON module; this file words its errors as API errors. `JSONValue` appears in
// this module's public API (tool schemas, response_format, wire encodings): users import JSON too.
import JSON

extension JSONValue {
    /// Parses a request body (see `JSONValue.init(parsing:)` for the accepted syntax and limits).
    /// - Parameter bytes: UTF-8 input.
    /// - Throws: `APIError.invalidRequest` (400): "Request body is empty; expected a JSON object" for whitespace-only
    ///   input, otherwise "Request body is not valid JSON: <problem> at byte <offset>".
    public static func parse(_ bytes: [UInt8]) throws(APIError) -> JSONValue {
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            if error.isEmptyInput { throw APIError.invalidRequest("Request body is empty; expected a JSON object") }
            throw APIError.invalidRequest("Request body is not valid JSON: \(error)")
        }
    }

    /// Parses a request body given as a String (see `parse(_:)` for bytes).
    public static func parse(_ text: String) throws(APIError) -> JSONValue { try parse(Array(text.utf8)) }
}
