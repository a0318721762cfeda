// An order-preserving JSON value (RFC 8259). Object members keep their source order (tool schemas and
// response_format are passed on verbatim), and numbers keep their source text so integers beyond 2^53 and exact
// decimals survive a parse → write round trip. Parsing is in JSONParser.swift, writing in JSONWriter.swift.

/// A JSON value. Objects are ordered `(key, value)` lists; numbers hold their JSON text (e.g. `"1e-3"`).
public enum JSONValue: Sendable, Equatable, CustomStringConvertible {
    /// JSON `null`.
    case null
    /// JSON `true` / `false`.
    case bool(Bool)
    /// A number as JSON text, exactly as parsed; build with `.int(_:)` / `.double(_:)`.
    case number(String)
    /// A string (any Unicode scalars; the writer escapes what JSON requires).
    case string(String)
    /// An array, in order.
    case array([JSONValue])
    /// Members in source order; duplicate keys are kept (lookups return the last one, like Python's `json`).
    case object([(key: String, value: JSONValue)])

    /// A number value from an integer.
    public static func int(_ v: Int) -> JSONValue { .number(String(v)) }

    /// A number value from a double (`0.7`, `2.0`, `1e-05`); NaN and infinities become `null` (JSON has no such
    /// numbers).
    public static func double(_ v: Double) -> JSONValue { v.isFinite ? .number(formatDouble(v)) : .null }

    /// A string value, or `null` when `s` is nil.
    public static func stringOrNull(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }

    /// Value of the last member called `key` of an object; nil for absent keys and non-objects.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    /// True for `null`.
    public var isNull: Bool { if case .null = self { return true } else { return false } }
    /// The string, or nil for other kinds.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The boolean, or nil for other kinds.
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    /// The elements, or nil for other kinds.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    /// The ordered members, or nil for other kinds.
    public var objectValue: [(key: String, value: JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }
    /// The number as a Double (nil for non-numbers; out-of-range magnitudes give ±infinity or 0).
    public var doubleValue: Double? { if case .number(let t) = self { return Double(t) } else { return nil } }
    /// The number as an Int when it is integral and in range (`3`, `3.0`, `3e0`); nil otherwise.
    public var intValue: Int? {
        guard case .number(let t) = self else { return nil }
        if let i = Int(t) { return i }
        guard let d = Double(t), d.rounded() == d, abs(d) < 9.2e18 else { return nil }
        return Int(d)
    }

    /// JSON type name for error messages: "null", "boolean", "number", "string", "array", "object".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Structural equality: member order and duplicate keys matter; numbers compare by their text.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// Compact JSON text (see `serialized()`).
    public var description: String { serialized() }

    /// Shortest round-tripping text for a finite double, integral values with a `.0` (`0.7`, `1e-05`, `2.0`).
    static func formatDouble(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int(v)) + ".0" }
        return String(v)
    }
}
