// `GET /v1/models` objects (OpenAI "Models").
import JSON

/// `{"id","object":"model","created","owned_by"}`, then vLLM's `root` (the id), `parent` (null) and, when known,
/// `max_model_len` (the context length a request may use, tokens).
public struct ModelCard: Sendable, Equatable {
    /// The id clients pass as `model` (never a filesystem path).
    public var id: String
    /// Unix time, seconds.
    public var created: Int
    /// Owner shown in `owned_by`.
    public var ownedBy: String

    /// Context length in tokens (vLLM's `max_model_len`), or nil to leave it out.
    public var maxModelLen: Int?

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(id: String, created: Int, ownedBy: String = "sputnik", maxModelLen: Int? = nil) {
        self.id = id
        self.created = created
        self.ownedBy = ownedBy
        self.maxModelLen = maxModelLen
    }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order, then vLLM's.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("id", .string(id)), ("object", .string("model")), ("created", .int(created)),
                                              ("owned_by", .string(ownedBy)), ("root", .string(id)), ("parent", .null)]
        if let maxModelLen { members.append(("max_model_len", .int(maxModelLen))) }
        return .object(members)
    }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}

/// `{"object":"list","data":[ModelCard…]}`.
public struct ModelList: Sendable, Equatable {
    /// The served models.
    public var data: [ModelCard]

    /// Memberwise initializer; field meanings, units and defaults as documented on the properties.
    public init(data: [ModelCard]) { self.data = data }

    /// The wire JSON (shape in the type's doc), members in OpenAI's order.
    public var json: JSONValue { .object([("object", .string("list")), ("data", .array(data.map(\.json)))]) }

    /// Compact JSON as UTF-8 bytes.
    public func encoded() -> [UInt8] { json.encoded() }
}
