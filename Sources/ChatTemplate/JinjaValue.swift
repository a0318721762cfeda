import Foundation

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

    /// Parses UTF-8 JSON text with an order-preserving parser (numbers without '.'/exponent become `.int`).
    /// - Throws: `ChatTemplateError.runtime(line: 0, message:)` describing the first malformed byte offset.
    public static func fromJSON(_ data: Data) throws -> JinjaValue {
        var parser = JSONParser(bytes: [UInt8](data))
        return try parser.parseDocument()
    }

    /// The value as Python `json.dumps(value, ensure_ascii=False)` prints it (separators ", " and ": ", key order
    /// kept). Undefined values print as `null`.
    public func jsonString() -> String {
        var out = ""
        let runtime = RuntimeValue(self)
        do { try runtime.writeJSON(into: &out, indent: nil, level: 0) } catch { out = "null" }
        return out
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

/// Order-preserving JSON parser over UTF-8 bytes (RFC 8259; nesting bounded to 512 levels).
struct JSONParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ msg: String) -> ChatTemplateError {
        .runtime(line: 0, message: "invalid JSON at byte \(pos): \(msg)")
    }

    mutating func skipWS() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func parseDocument() throws -> JinjaValue {
        let v = try parseValue()
        skipWS()
        if pos != bytes.count { throw fail("trailing characters") }
        return v
    }

    mutating func parseValue() throws -> JinjaValue {
        skipWS()
        guard pos < bytes.count else { throw fail("unexpected end") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            depth += 1
            defer { depth -= 1 }
            if depth > 512 { throw fail("nesting too deep") }
            pos += 1
            var obj = JinjaObject()
            skipWS()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(obj) }
            while true {
                skipWS()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected key") }
                let key = try parseString()
                skipWS()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                obj[key] = try parseValue()
                skipWS()
                guard pos < bytes.count else { throw fail("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(obj) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            defer { depth -= 1 }
            if depth > 512 { throw fail("nesting too deep") }
            pos += 1
            var arr: [JinjaValue] = []
            skipWS()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(arr) }
            while true {
                arr.append(try parseValue())
                skipWS()
                guard pos < bytes.count else { throw fail("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(arr) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return try parseNumber()
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else { throw fail("bad literal") }
        pos += w.count
    }

    mutating func parseNumber() throws -> JinjaValue {
        let start = pos
        var isFloat = false
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        while pos < bytes.count {
            let c = bytes[pos]
            if c >= 0x30 && c <= 0x39 { pos += 1 } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e")
                || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                isFloat = true; pos += 1
            } else { break }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if text.isEmpty || text == "-" { throw fail("unexpected character") }
        if !isFloat, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw fail("bad number '\(text)'") }
        return .double(d)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[pos..<pos + 4], as: UTF8.self), radix: 16)
        else { throw fail("bad \\u escape") }
        pos += 4
        return v
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var buf: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c != UInt8(ascii: "\\") { buf.append(c); continue }
            guard pos < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "n"): buf.append(0x0A)
            case UInt8(ascii: "t"): buf.append(0x09)
            case UInt8(ascii: "r"): buf.append(0x0D)
            case UInt8(ascii: "b"): buf.append(0x08)
            case UInt8(ascii: "f"): buf.append(0x0C)
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): buf.append(e)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00, pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"),
                   bytes[pos + 1] == UInt8(ascii: "u") {
                    let save = pos
                    pos += 2
                    let lo = try hex4()
                    if lo >= 0xDC00 && lo < 0xE000 { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00) } else { pos = save }
                }
                let scalar = Unicode.Scalar(cp) ?? "\u{FFFD}"
                buf.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("bad escape")
            }
        }
        return String(decoding: buf, as: UTF8.self)
    }
}
