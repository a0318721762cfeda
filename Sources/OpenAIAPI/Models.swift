// `GET /v1/models` and `GET /v1/models/{id}` objects (OpenAI "Models").

/// `{"id","object":"model","created","owned_by"}`.
public struct ModelCard: Sendable, Equatable {
    /// The id clients pass as `model` (never a filesystem path).
    public var id: String
    /// Unix time, seconds.
    public var created: Int
    public var ownedBy: String

    public init(id: String, created: Int, ownedBy: String = "sputnik") {
        self.id = id
        self.created = created
        self.ownedBy = ownedBy
    }

    public var json: JSONValue {
        .object([("id", .string(id)), ("object", .string("model")), ("created", .int(created)), ("owned_by", .string(ownedBy))])
    }

    public func encoded() -> [UInt8] { json.encoded() }
}

/// `{"object":"list","data":[ModelCard…]}`.
public struct ModelList: Sendable, Equatable {
    public var data: [ModelCard]

    public init(data: [ModelCard]) { self.data = data }

    public var json: JSONValue { .object([("object", .string("list")), ("data", .array(data.map(\.json)))]) }

    public func encoded() -> [UInt8] { json.encoded() }
}
