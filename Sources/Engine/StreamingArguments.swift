import ChatTemplate
import Foundation

/// A tool call's arguments, re-written as they are generated in the form the whole call is returned in
/// (`ToolCallParser.argumentsText`: Python `json.dumps` spacing, as vLLM returns arguments), so a streamed call's
/// argument pieces concatenate to the non-streamed `arguments` text. Fed the raw characters of one JSON object;
/// emits as much of its canonical text as is settled: structure and string characters at once, a number or literal
/// when the character after it arrives, whitespace never.
///
/// Exact for any object without a repeated key (the whole-object form keeps a repeated key's first position and
/// last value, which a stream cannot know in advance; `ToolCallParser` then adds nothing at the end, and the streamed
/// text differs from the whole one). Invalid JSON, or a number no JSON number can write, stops the output (`failed`).
/// A value type holding the open containers and the escape or number in progress; it runs once per generated
/// character of a call's arguments, not in the model's hot loops.
struct StreamingArguments: Sendable {
    private enum Container: Sendable { case object, array }
    /// Where in the grammar the next character is.
    private enum Expect: Sendable {
        /// A value (an object member's value, an array element, or the top-level object).
        case value
        /// An object key or `}` (right after `{`).
        case keyOrEnd
        /// An object key (after `,`).
        case key
        /// `:` after a key.
        case colon
        /// `,` or the container's end.
        case commaOrEnd
        /// Nothing: the top-level object is complete.
        case done
    }

    private var stack: [Container] = []
    private var expect = Expect.value
    /// Inside a string: its characters are being copied.
    private var inString = false
    /// The string being read is a key (after it, `:` is expected).
    private var stringIsKey = false
    /// An escape in progress (`\`, `\u12`, a high surrogate waiting for its pair), as raw text.
    private var escape: [Unicode.Scalar] = []
    /// A number or literal in progress, as raw text.
    private var token: [Unicode.Scalar] = []
    /// Malformed input was seen: nothing more is emitted.
    private(set) var failed = false

    /// True once the top-level object has been closed.
    var isComplete: Bool { expect == .done }

    /// Reads `c`; returns the canonical text it settles ("" when none). After `isComplete` or `failed`, "".
    mutating func feed(_ c: Unicode.Scalar) -> String {
        guard !failed, expect != .done else { return "" }
        if inString { return stringChar(c) }
        var out = ""
        if !token.isEmpty {
            if Self.isTokenChar(c) { token.append(c); return "" }
            guard let text = Self.scalarText(token) else { return fail() }
            token.removeAll()
            out = text
            expect = .commaOrEnd
        }
        if c == " " || c == "\n" || c == "\t" || c == "\r" { return out }
        let afterOpenBracket = openedArray
        openedArray = false
        switch expect {
        case .value:
            switch c {
            case "{": stack.append(.object); expect = .keyOrEnd; return out + "{"
            case "[" where !stack.isEmpty: stack.append(.array); expect = .value; openedArray = true; return out + "["
            case "]" where afterOpenBracket: return close(out, "]")
            case "\"" where !stack.isEmpty: inString = true; stringIsKey = false; return out + "\""
            default:
                guard !stack.isEmpty, Self.isTokenChar(c) else { return fail() }
                token = [c]
                return out
            }
        case .keyOrEnd, .key:
            if c == "}" && expect == .keyOrEnd { return close(out, "}") }
            guard c == "\"" else { return fail() }
            inString = true
            stringIsKey = true
            return out + "\""
        case .colon:
            guard c == ":" else { return fail() }
            expect = .value
            return out + ": "
        case .commaOrEnd:
            switch (c, stack.last) {
            case (",", .object?): expect = .key; return out + ", "
            case (",", .array?): expect = .value; return out + ", "
            case ("}", .object?): return close(out, "}")
            case ("]", .array?): return close(out, "]")
            default: return fail()
            }
        case .done:
            return out
        }
    }

    /// Set right after `[`, so that `[]` closes at once.
    private var openedArray = false

    private mutating func close(_ out: String, _ bracket: String) -> String {
        stack.removeLast()
        expect = stack.isEmpty ? .done : .commaOrEnd
        return out + bracket
    }

    private mutating func fail() -> String {
        failed = true
        return ""
    }

    /// A character inside a string: copied in its canonical escaping once it is whole.
    private mutating func stringChar(_ c: Unicode.Scalar) -> String {
        if escape.isEmpty {
            if c == "\"" {
                inString = false
                expect = stringIsKey ? .colon : .commaOrEnd
                return "\""
            }
            if c == "\\" { escape = [c]; return "" }
            if c.value < 0x20 { return fail() }
            return Self.escaped(c)
        }
        escape.append(c)
        let n = escape.count
        // `\x`; `\uXXXX`; a high surrogate `\uD8xx` followed by `\uDCxx`.
        if n == 2 && c != "u" { return flushEscape() }
        if (3...6).contains(n) || (9...12).contains(n) {
            guard c.properties.isASCIIHexDigit else { return fail() }
        }
        if n == 7 && c != "\\" { return fail() }
        if n == 8 && c != "u" { return fail() }
        if n == 6 {
            let unit = UInt32(String(String.UnicodeScalarView(escape[2..<6])), radix: 16) ?? 0
            return (0xD800...0xDBFF).contains(unit) ? "" : flushEscape()   // a high surrogate waits for its pair
        }
        return n == 12 ? flushEscape() : ""
    }

    private mutating func flushEscape() -> String {
        let text = escape
        escape.removeAll()
        guard let s = Self.decode(text) else { return fail() }
        return Self.escaped(s)
    }

    /// The scalar a complete JSON escape spells, decoded by the JSON parser the whole-object form uses.
    private static func decode(_ escape: [Unicode.Scalar]) -> Unicode.Scalar? {
        let text = "\"" + String(String.UnicodeScalarView(escape)) + "\""
        guard case .string(let s)? = try? JinjaValue.fromJSON(Data(text.utf8)), s.unicodeScalars.count == 1 else { return nil }
        return s.unicodeScalars.first
    }

    /// `c` as the whole-object form writes it inside a string (its escaping, no quotes).
    private static func escaped(_ c: Unicode.Scalar) -> String {
        let quoted = JinjaValue.string(String(Character(c))).jsonString()
        // By scalars: a combining mark joins the opening quote into one Character (helper-69: U+0301 was dropped).
        return String(String.UnicodeScalarView(quoted.unicodeScalars.dropFirst().dropLast()))
    }

    /// A number or literal as the whole-object form writes it (`1.0`, `1e+16`, `true`), or nil when it is not one.
    private static func scalarText(_ token: [Unicode.Scalar]) -> String? {
        guard let v = try? JinjaValue.fromJSON(Data(String(String.UnicodeScalarView(token)).utf8)) else { return nil }
        switch v {
        case .double(let d) where !d.isFinite: return nil   // 1e400: no JSON number (helper-68: it came out as Infinity)
        case .int, .double, .bool, .null: return v.jsonString()
        default: return nil
        }
    }

    private static func isTokenChar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "0"..."9", "-", "+", ".", "e", "E", "a"..."z": return true
        default: return false
        }
    }
}
