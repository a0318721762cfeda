// The one JSON writer and the one JSON string escaper, in two layouts: compact (the API wire format) and Python's
// `json.dumps(ensure_ascii=False)` (what chat templates' `tojson` must reproduce byte for byte).

/// How JSON text is laid out by `JSONValue.serialized(_:)` and escaped by `JSONValue.writeString(_:to:format:)`.
public struct JSONFormat: Sendable, Equatable {
    /// Written between array elements and between object members (before the newline when indenting).
    public var itemSeparator: String
    /// Written between an object key and its value.
    public var keySeparator: String
    /// With an indent, each element and member goes on its own line, prefixed by the indent once per nesting level
    /// (empty containers stay `[]` / `{}`); nil writes everything on one line.
    public var indent: String?
    /// Whether U+2028 and U+2029 are written as `\u2028` / `\u2029` (they end lines in JavaScript source).
    public var escapesLineSeparators: Bool

    /// Memberwise initializer; meanings as documented on the properties.
    public init(itemSeparator: String, keySeparator: String, indent: String? = nil, escapesLineSeparators: Bool) {
        self.itemSeparator = itemSeparator
        self.keySeparator = keySeparator
        self.indent = indent
        self.escapesLineSeparators = escapesLineSeparators
    }

    /// No whitespace (`{"a":[1,2]}`), U+2028/U+2029 escaped: the wire format of API responses.
    public static let compact = JSONFormat(itemSeparator: ",", keySeparator: ":", escapesLineSeparators: true)

    /// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: separators `", "` and `": "` on one line, or
    /// `","` and `": "` with an indent; only `"`, `\` and U+0000–U+001F are escaped.
    public static func python(indent: String? = nil) -> JSONFormat {
        JSONFormat(itemSeparator: indent == nil ? ", " : ",", keySeparator: ": ", indent: indent,
                   escapesLineSeparators: false)
    }
}

extension JSONValue {
    /// JSON text in `format` (compact by default), members in order, non-ASCII written as UTF-8, number text as held.
    public func serialized(_ format: JSONFormat = .compact) -> String {
        var out = ""
        write(to: &out, format: format)
        return out
    }

    /// `serialized(format)` as UTF-8 bytes.
    public func encoded(_ format: JSONFormat = .compact) -> [UInt8] { Array(serialized(format).utf8) }

    /// Appends this value's JSON text in `format` to `out`.
    public func write(to out: inout String, format: JSONFormat = .compact) {
        write(to: &out, format: format, level: 0)
    }

    private func write(to out: inout String, format: JSONFormat, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let t): out += t
        case .string(let s): JSONValue.writeString(s, to: &out, format: format)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (n, v) in items.enumerated() {
                JSONValue.writeItemStart(n, level: level, to: &out, format: format)
                v.write(to: &out, format: format, level: level + 1)
            }
            JSONValue.writeClosingIndent(level: level, to: &out, format: format)
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (n, m) in members.enumerated() {
                JSONValue.writeItemStart(n, level: level, to: &out, format: format)
                JSONValue.writeString(m.key, to: &out, format: format)
                out += format.keySeparator
                m.value.write(to: &out, format: format, level: level + 1)
            }
            JSONValue.writeClosingIndent(level: level, to: &out, format: format)
            out += "}"
        }
    }

    /// The separator before item `n` (none before the first) and, when indenting, its new line.
    private static func writeItemStart(_ n: Int, level: Int, to out: inout String, format: JSONFormat) {
        if n > 0 { out += format.itemSeparator }
        guard let indent = format.indent else { return }
        out += "\n"
        for _ in 0...level { out += indent }
    }

    private static func writeClosingIndent(level: Int, to out: inout String, format: JSONFormat) {
        guard let indent = format.indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    /// Appends `s` as a quoted JSON string (RFC 8259 §7): `"` and `\` escaped, `\b \f \n \r \t` by name, other
    /// U+0000–U+001F as lowercase `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029` when `format.escapesLineSeparators`;
    /// everything else, non-ASCII included, is written as itself (UTF-8). This is the project's one JSON escaper.
    public static func writeString(_ s: String, to out: inout String, format: JSONFormat = .compact) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (format.escapesLineSeparators && (u.value == 0x2028 || u.value == 0x2029)) {
                    writeUnicodeEscape(u.value, to: &out)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    /// `\uXXXX` with four lowercase hex digits (as Python writes it) for a BMP code point.
    private static func writeUnicodeEscape(_ v: UInt32, to out: inout String) {
        let hex = String(v, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
