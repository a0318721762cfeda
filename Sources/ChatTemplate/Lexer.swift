/// Token kinds of the template lexer: raw text, tag delimiters and expression tokens.
import Foundation

enum Tok: Equatable, Sendable {
    case text(String)
    case varBegin, varEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token: Sendable {
    let kind: Tok
    let line: Int
}

/// Splits a template into tokens the way jinja2's lexer does with `trim_blocks=True, lstrip_blocks=True`:
/// newlines normalised to "\n", one trailing newline dropped (`keep_trailing_newline=False`), `{%-`/`-%}` strip all
/// whitespace on that side, `{%+` disables lstrip, comments removed, `{% raw %}` kept verbatim.
struct Lexer {
    private var src: [Unicode.Scalar]
    private var pos = 0
    private var line = 1
    private(set) var tokens: [Token] = []

    init(_ source: String) {
        var s: [Unicode.Scalar] = []
        s.reserveCapacity(source.unicodeScalars.count)
        var prevCR = false
        for u in source.unicodeScalars {
            if u == "\r" { s.append("\n"); prevCR = true; continue }
            if u == "\n" && prevCR { prevCR = false; continue }
            prevCR = false
            s.append(u)
        }
        if s.last == "\n" { s.removeLast() }
        src = s
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func startsWith(_ lit: String, at i: Int) -> Bool {
        var j = i
        for u in lit.unicodeScalars {
            guard j < src.count, src[j] == u else { return false }
            j += 1
        }
        return true
    }

    private func string(_ a: Int, _ b: Int) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[a..<b])
        return String(s)
    }

    private func countLines(_ a: Int, _ b: Int) -> Int {
        var n = 0
        for i in a..<b where src[i] == "\n" { n += 1 }
        return n
    }

    private static func isSpace(_ u: Unicode.Scalar) -> Bool { u.properties.isWhitespace }

    /// Finds the next `{{`, `{%` or `{#` at or after `from`.
    private func nextTag(from: Int) -> Int? {
        var i = from
        while i + 1 < src.count {
            if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    private mutating func emitText(_ a: Int, _ b: Int, startLine: Int) {
        if b > a { tokens.append(Token(kind: .text(string(a, b)), line: startLine)) }
    }

    /// Trims text `[a, b)` before a tag according to the tag's marker and kind; returns the new end.
    private func trimmedEnd(_ a: Int, _ b: Int, marker: Unicode.Scalar?, lstrip: Bool) -> Int {
        var end = b
        if marker == "-" {
            while end > a, Lexer.isSpace(src[end - 1]) { end -= 1 }
            return end
        }
        if marker == "+" || !lstrip { return end }
        var l = b
        while l > a, src[l - 1] != "\n" { l -= 1 }
        let lineStarting = (l > a) || a == 0 || src[a - 1] == "\n"
        guard lineStarting, l < b else { return end }
        if src[l..<b].allSatisfy({ $0 == " " || $0 == "\t" || (Lexer.isSpace($0) && $0 != "\n") }) { end = l }
        return end
    }

    /// Lexes the whole source. Throws `ChatTemplateError.syntax` for unterminated tags, strings or comments.
    mutating func run() throws {
        while pos < src.count {
            guard let t = nextTag(from: pos) else {
                emitText(pos, src.count, startLine: line)
                line += countLines(pos, src.count)
                pos = src.count
                break
            }
            let kind = src[t + 1]
            var marker: Unicode.Scalar? = at(t + 2)
            if marker != "-" && marker != "+" { marker = nil }
            let textEnd = trimmedEnd(pos, t, marker: marker, lstrip: kind != "{")
            emitText(pos, textEnd, startLine: line)
            line += countLines(pos, t)
            pos = t + 2 + (marker == nil ? 0 : 1)
            switch kind {
            case "#":
                var j = pos
                while j + 1 < src.count, !(src[j] == "#" && src[j + 1] == "}") { j += 1 }
                guard j + 1 < src.count else { throw ChatTemplateError.syntax(line: line, message: "Missing end of comment tag") }
                let strip = j > pos && src[j - 1] == "-"
                line += countLines(pos, j)
                pos = j + 2
                afterTagEnd(strip: strip, trim: true)
            case "{":
                tokens.append(Token(kind: .varBegin, line: line))
                try lexExpression(block: false)
            default:
                let begin = tokens.count
                tokens.append(Token(kind: .blockBegin, line: line))
                try lexExpression(block: true)
                if tokens.count == begin + 3, case .name("raw") = tokens[begin + 1].kind {
                    tokens.removeLast(3)
                    try lexRaw()
                }
            }
        }
        tokens.append(Token(kind: .eof, line: line))
    }

    private mutating func afterTagEnd(strip: Bool, trim: Bool) {
        if strip {
            while pos < src.count, Lexer.isSpace(src[pos]) {
                if src[pos] == "\n" { line += 1 }
                pos += 1
            }
        } else if trim, pos < src.count, src[pos] == "\n" {
            pos += 1
            line += 1
        }
    }

    /// After `{% raw %}`: everything up to `{% endraw %}` is text.
    private mutating func lexRaw() throws {
        var j = pos
        while j < src.count {
            if src[j] == "{", at(j + 1) == "%" {
                var k = j + 2
                var marker: Unicode.Scalar? = nil
                if at(k) == "-" || at(k) == "+" { marker = src[k]; k += 1 }
                while at(k) == " " || at(k) == "\t" || at(k) == "\n" { k += 1 }
                if startsWith("endraw", at: k) {
                    k += 6
                    while at(k) == " " || at(k) == "\t" || at(k) == "\n" { k += 1 }
                    var strip = false
                    if at(k) == "-" { strip = true; k += 1 } else if at(k) == "+" { k += 1 }
                    if startsWith("%}", at: k) {
                        let end = trimmedEnd(pos, j, marker: marker, lstrip: true)
                        emitText(pos, end, startLine: line)
                        line += countLines(pos, k)
                        pos = k + 2
                        afterTagEnd(strip: strip, trim: true)
                        return
                    }
                }
            }
            j += 1
        }
        throw ChatTemplateError.syntax(line: line, message: "Missing end of raw directive")
    }

    private static let ops2: Set<String> = ["//", "**", "==", "!=", "<=", ">="]
    private static let ops1: Set<Unicode.Scalar> = ["+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]",
                                                    "{", "}", ",", ".", ":", "|", ";", "!"]

    /// Lexes expression tokens until the closing `}}` / `%}` at brace depth 0.
    private mutating func lexExpression(block: Bool) throws {
        var depth = 0
        let close: Unicode.Scalar = block ? "%" : "}"
        let startLine = line
        while true {
            guard pos < src.count else {
                throw ChatTemplateError.syntax(line: startLine, message: block ? "Unexpected end of template, expected '%}'" : "Unexpected end of template, expected '}}'")
            }
            let c = src[pos]
            if c == "\n" { line += 1; pos += 1; continue }
            if Lexer.isSpace(c) { pos += 1; continue }
            if depth == 0 {
                if (c == "-" || c == "+") && at(pos + 1) == close && at(pos + 2) == "}" {
                    pos += 3
                    tokens.append(Token(kind: block ? .blockEnd : .varEnd, line: line))
                    afterTagEnd(strip: c == "-", trim: block)
                    return
                }
                if c == close && at(pos + 1) == "}" {
                    pos += 2
                    tokens.append(Token(kind: block ? .blockEnd : .varEnd, line: line))
                    afterTagEnd(strip: false, trim: block)
                    return
                }
            }
            if c == "'" || c == "\"" {
                tokens.append(Token(kind: .string(try lexString(quote: c)), line: line))
                continue
            }
            if c.properties.numericType != nil && c.isASCII {
                lexNumber()
                continue
            }
            if c == "_" || c.properties.isAlphabetic {
                let s = pos
                while pos < src.count, src[pos] == "_" || src[pos].properties.isAlphabetic
                    || (src[pos].isASCII && src[pos].properties.numericType != nil) { pos += 1 }
                tokens.append(Token(kind: .name(string(s, pos)), line: line))
                continue
            }
            if pos + 1 < src.count, Lexer.ops2.contains(string(pos, pos + 2)) {
                tokens.append(Token(kind: .op(string(pos, pos + 2)), line: line))
                pos += 2
                continue
            }
            if Lexer.ops1.contains(c) {
                if c == "(" || c == "[" || c == "{" { depth += 1 }
                if c == ")" || c == "]" || c == "}" { depth = max(0, depth - 1) }
                tokens.append(Token(kind: .op(String(c)), line: line))
                pos += 1
                continue
            }
            throw ChatTemplateError.syntax(line: line, message: "unexpected char '\(c)'")
        }
    }

    private mutating func lexNumber() {
        let s = pos
        var isFloat = false
        func digits() { while pos < src.count, src[pos].isASCII, src[pos].properties.numericType != nil || src[pos] == "_" { pos += 1 } }
        digits()
        if at(pos) == ".", let n = at(pos + 1), n.isASCII, n.properties.numericType != nil {
            isFloat = true
            pos += 1
            digits()
        }
        if at(pos) == "e" || at(pos) == "E" {
            var k = pos + 1
            if at(k) == "+" || at(k) == "-" { k += 1 }
            if let n = at(k), n.isASCII, n.properties.numericType != nil {
                isFloat = true
                pos = k
                digits()
            }
        }
        let text = string(s, pos).replacingOccurrences(of: "_", with: "")
        if isFloat {
            tokens.append(Token(kind: .float(Double(text) ?? 0), line: line))
        } else {
            tokens.append(Token(kind: .int(Int(text) ?? Int.max), line: line))
        }
    }

    /// A quoted literal with Python `unicode_escape` escapes (unknown escapes keep their backslash).
    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let startLine = line
        pos += 1
        var out = String.UnicodeScalarView()
        while true {
            guard pos < src.count else { throw ChatTemplateError.syntax(line: startLine, message: "unexpected end of string") }
            let c = src[pos]
            pos += 1
            if c == quote { break }
            if c == "\n" { line += 1 }
            if c != "\\" { out.append(c); continue }
            guard pos < src.count else { throw ChatTemplateError.syntax(line: startLine, message: "unexpected end of string") }
            let e = src[pos]
            pos += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n": line += 1
            case "x", "u", "U":
                let n = e == "x" ? 2 : (e == "u" ? 4 : 8)
                guard pos + n <= src.count, let v = UInt32(string(pos, pos + n), radix: 16), let u = Unicode.Scalar(v) else {
                    throw ChatTemplateError.syntax(line: line, message: "truncated \\\(e) escape in string")
                }
                out.append(u)
                pos += n
            case "0"..."7":
                var v = e.value - 48
                var k = 1
                while k < 3, let d = at(pos), d >= "0" && d <= "7" { v = v * 8 + d.value - 48; pos += 1; k += 1 }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default:
                out.append("\\")
                out.append(e)
            }
        }
        return String(out)
    }
}
