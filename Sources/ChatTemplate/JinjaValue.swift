import Foundation
import JSON

/// A JSON-like value handed to a chat template (messages, tools, extra variables).
///
/// Objects keep their key order (`JinjaObject`), so tool schemas print with `tojson` in the order they were written,
/// exactly as Python's `json.dumps` prints a `dict` loaded by `json.loads`.
public enum JinjaValue: Sendable, Equatable {
    /// Python `None` / JSON `null`.
    case null
    /// A Jinja undefined value (prints as "", fails in arithmetic). Passing it is the same as omitting a variable.
    case undefined
    /// Python `True`/`False`.
    case bool(Bool)
    /// A JSON number without '.' or exponent (Python `int`, 64-bit here; overflow in arithmetic throws).
    case int(Int)
    /// Python `float`; prints with Python's shortest round-trip `repr` (`1.0`, `1e-05`).
    case double(Double)
    /// Python `str`; lengths, indices and slices count Unicode scalars (code points) as Python does.
    case string(String)
    /// Python `list`.
    case array([JinjaValue])
    /// Python `dict` with string keys, in insertion order.
    case object(JinjaObject)

    /// Parses UTF-8 JSON text (strict RFC 8259, key order kept) into template values as `init(json:)` converts them.
    /// - Throws: `ChatTemplateError.runtime(line: 0, message:)` naming the first problem and its byte offset.
    public static func fromJSON(_ data: Data) throws -> JinjaValue {
        do {
            return JinjaValue(json: try JSONValue(parsing: [UInt8](data)))
        } catch {
            throw ChatTemplateError.runtime(line: 0, message: "invalid JSON: \(error)")
        }
    }

    /// The template value of a JSON value, as Python's `json.loads` would build it: key order kept (a repeated key
    /// keeps its first position and its last value, like a `dict`), a number without fraction or exponent that fits
    /// in 64 bits becomes `.int`, every other number `.double` (so `2.0` and `3e2` are floats, and integers beyond
    /// 64 bits lose precision).
    public init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let text):
            if let i = Int(text) { self = .int(i) } else { self = .double(Double(text) ?? .nan) }
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(JinjaValue.init(json:)))
        case .object(let o): self = .object(JinjaObject(o.map { ($0.key, JinjaValue(json: $0.value)) }))
        }
    }

    /// The value as Python `json.dumps(value, ensure_ascii=False)` prints it (separators ", " and ": ", key order
    /// kept). A value holding an undefined prints as `null`.
    public func jsonString() -> String {
        (try? RuntimeValue(self).json().serialized(.python())) ?? "null"
    }
}

/// The interpreter value type (named so because `Value` inside `JinjaValue` is the dictionary-literal type).
typealias RuntimeValue = Value

/// An ordered string-keyed map (a Python `dict` keeps insertion order; so does this).
public struct JinjaObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    /// An empty object.
    public init() {}

    /// Builds an object from pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, JinjaValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    /// `["a": 1, "b": 2]` keeps the written order.
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self.init(elements)
    }

    /// The value for `key`; assigning `nil` removes the key, assigning a new key appends it.
    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Pairs in key order.
    public var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0]!) } }

    /// Number of keys.
    public var count: Int { keys.count }

    /// Python dict equality: same keys and values, order ignored.
    public static func == (a: JinjaObject, b: JinjaObject) -> Bool {
        a.storage == b.storage
    }
}

/// Literal conveniences: `"s"`, `1`, `true`, `1.5`, `[...]`, `["k": v]` (ordered), `nil` (= `.null`).
extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}
