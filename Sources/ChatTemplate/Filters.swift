import Foundation
import JSON

/// Positional-or-keyword argument access for filters and tests (`name` is the Python parameter name,
/// `index` its position after the filtered value).
struct FilterArgs {
    let args: [Value]
    let kwargs: [(String, Value)]
    func get(_ index: Int, _ name: String) -> Value? {
        if index < args.count { return args[index] }
        return kwargs.first { $0.0 == name }?.1
    }
    func bool(_ index: Int, _ name: String, _ def: Bool) -> Bool { get(index, name)?.truthy ?? def }
}

/// jinja2's builtin filters (jinja2/filters.py) plus transformers' `tojson` (json.dumps, ensure_ascii=False).
extension Interpreter {
    func applyFilter(_ name: String, _ value: Value, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        let a = FilterArgs(args: args, kwargs: kwargs)
        switch name {
        case "abs":
            switch value {
            case .int(let i):
                if i == Int.min { throw InterpreterError.limit("integer overflow") }
                return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw InterpreterError.type("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            guard case .string(let n)? = a.get(0, "name") else { throw InterpreterError.type("attr expects a name") }
            return try getAttr(value, n)
        case "batch":
            guard let n = a.get(0, "linecount")?.intValue, n > 0, n <= Interpreter.maxSequence else {
                throw InterpreterError.value("batch size must be positive and at most \(Interpreter.maxSequence)")
            }
            let fill = a.get(1, "fill_with")
            var out: [Value] = []
            var cur: [Value] = []
            for x in try iterate(value) {
                cur.append(x)
                if cur.count == n { out.append(.array(cur)); cur = [] }
            }
            if !cur.isEmpty {
                if let fill, !fill.isNone { while cur.count < n { cur.append(fill) } }
                out.append(.array(cur))
            }
            return .array(out)
        case "capitalize": return .string(pyCapitalize(value.str))
        case "center":
            return .string(try pyCenter(value.str, a.get(0, "width")?.intValue ?? 80))
        case "count", "length":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let x), .tuple(let x): return .int(x.count)
            case .object(let o): return .int(o.count)
            case .undefined: return .int(0)
            default: throw InterpreterError.type("object of type '\(value.typeName)' has no len()")
            }
        case "d", "default":
            let def = a.get(0, "default_value") ?? .string("")
            if value.isUndefined || (a.bool(1, "boolean", false) && !value.truthy) { return def }
            return value
        case "dictsort":
            guard case .object(let o) = value else { throw InterpreterError.type("dictsort expects a mapping") }
            let byValue = (a.get(1, "by")?.str ?? "key") == "value"
            let cs = a.bool(0, "case_sensitive", false)
            let pairs = try sorted(o.pairs.map { Value.tuple([.string($0.0), $0.1]) }, reverse: a.bool(2, "reverse", false)) {
                guard case .tuple(let p) = $0 else { return $0 }
                return cs ? p[byValue ? 1 : 0] : lowerIfString(p[byValue ? 1 : 0])
            }
            return .array(pairs)
        case "e", "escape", "forceescape":
            return .string(htmlEscape(value.str))
        case "first":
            return try iterate(value).first ?? .undefined("first")
        case "last":
            if case .string(let s) = value { return s.unicodeScalars.last.map { .string(String($0)) } ?? .undefined("last") }
            return try iterate(value).last ?? .undefined("last")
        case "float":
            if value.isUndefined { throw undefinedError(value) }
            let def = a.get(0, "default") ?? .double(0)
            switch value {
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .double: return value
            case .string(let s):
                return Double(s.trimmingCharacters(in: .whitespaces)).map { .double($0) } ?? def
            default: return def
            }
        case "int":
            if value.isUndefined { throw undefinedError(value) }
            let def = a.get(0, "default") ?? .int(0)
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return d.isFinite ? .int(try exactInt(d)) : def
            case .string(let s):
                let t = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
                let base = a.get(1, "base")?.intValue ?? 10
                if let i = Int(t, radix: base) { return .int(i) }
                if let d = Double(t), d.isFinite { return .int(try exactInt(d)) }
                return def
            default: return def
            }
        case "format":
            return try binary(.mod, .string(value.str), .tuple(args))
        case "indent":
            let width = a.get(0, "width") ?? .int(4)
            let ind: String
            if case .string(let s) = width { ind = s } else { ind = try padding(" ", width.intValue ?? 4) }
            let first = a.bool(1, "first", false), blank = a.bool(2, "blank", false)
            var lines = value.str.components(separatedBy: "\n")
            for i in lines.indices where i > 0 || first {
                if blank || !lines[i].trimmingCharacters(in: .whitespaces).isEmpty { lines[i] = ind + lines[i] }
            }
            return .string(lines.joined(separator: "\n"))
        case "items":
            switch value {
            case .object(let o): return .array(o.pairs.map { .tuple([.string($0.0), $0.1]) })
            case .undefined: return .array([])
            default: throw InterpreterError.type("Can only get item pairs from a mapping.")
            }
        case "join":
            let sep = a.get(0, "d")?.str ?? ""
            var items = try iterate(value)
            if let attr = a.get(1, "attribute") { items = try items.map { try attribute($0, attr) } }
            return .string(items.map { $0.str }.joined(separator: sep))
        case "list":
            return .array(try iterate(value))
        case "lower": return .string(value.str.lowercased())
        case "upper": return .string(value.str.uppercased())
        case "map":
            let items = try iterate(value)
            if let attr = a.kwargs.first(where: { $0.0 == "attribute" })?.1 {
                let def = a.kwargs.first { $0.0 == "default" }?.1
                return .array(try items.map {
                    let v = try attribute($0, attr)
                    if v.isUndefined, let def { return def }
                    return v
                })
            }
            guard case .string(let f)? = args.first else { throw InterpreterError.type("map expects a filter name or attribute=") }
            let rest = Array(args.dropFirst())
            return .array(try items.map { try applyFilter(f, $0, rest, kwargs) })
        case "max", "min":
            let items = try iterate(value)
            guard !items.isEmpty else { return .undefined(name) }
            let cs = a.bool(0, "case_sensitive", false)
            let attr = a.get(1, "attribute")
            let s = try sorted(items, reverse: name == "max") { x in
                let k = try attr.map { try self.attribute(x, $0) } ?? x
                return cs ? k : self.lowerIfString(k)
            }
            return s[0]
        case "reject", "select":
            return .array(try iterate(value).filter { x in
                let r = args.isEmpty ? x.truthy : try applyTest(args[0].str, x, Array(args.dropFirst()))
                return name == "select" ? r : !r
            })
        case "rejectattr", "selectattr":
            guard let attr = args.first else { throw InterpreterError.type("\(name) expects an attribute") }
            return .array(try iterate(value).filter { x in
                let v = try attribute(x, attr)
                let r = args.count < 2 ? v.truthy : try applyTest(args[1].str, v, Array(args.dropFirst(2)))
                return name == "selectattr" ? r : !r
            })
        case "replace":
            guard let old = a.get(0, "old"), let new = a.get(1, "new") else { throw InterpreterError.type("replace expects 2 arguments") }
            let count = a.get(2, "count").flatMap { $0.isNone ? nil : $0.intValue } ?? -1
            return .string(pyReplace(value.str, old.str, new.str, count: count))
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try iterate(value).reversed())
        case "round":
            guard let x = value.number else { throw InterpreterError.type("round expects a number") }
            let precision = a.get(0, "precision")?.intValue ?? 0
            let method = a.get(1, "method")?.str ?? "common"
            let m = Foundation.pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule = method == "ceil" ? .up : (method == "floor" ? .down : .toNearestOrEven)
            var r = (x * m).rounded(rule) / m
            if method == "common", precision >= 0, precision <= 340, x.isFinite {
                // Python's round() rounds the exact binary value half-to-even, as C's printf does.
                r = Double(String(format: "%.\(precision)f", x)) ?? r
            }
            if case .int = value, method == "common" { return value }
            return .double(r)
        case "safe": return value
        case "sort":
            let cs = a.bool(1, "case_sensitive", false)
            let attr = a.get(2, "attribute")
            return .array(try sorted(try iterate(value), reverse: a.bool(0, "reverse", false)) { x in
                let k = try attr.map { try self.attribute(x, $0) } ?? x
                return cs ? k : self.lowerIfString(k)
            })
        case "string": return .string(value.str)
        case "sum":
            var total = a.get(1, "start") ?? .int(0)
            let attr = a.get(0, "attribute")
            for x in try iterate(value) { total = try binary(.add, total, try attr.map { try attribute(x, $0) } ?? x) }
            return total
        case "title": return .string(jinjaTitle(value.str))
        case "tojson":
            var indent: String? = nil
            if let i = a.get(0, "indent"), !i.isNone {
                if case .string(let s) = i { indent = s } else { indent = try padding(" ", i.intValue ?? 0) }
            }
            return .string(try value.json().serialized(.python(indent: indent)))
        case "trim":
            let chars = a.get(0, "chars").flatMap { $0.isNone ? nil : $0.str }
            return .string(pyStrip(value.str, chars: chars, left: true, right: true))
        case "unique":
            let cs = a.bool(0, "case_sensitive", false)
            let attr = a.get(1, "attribute")
            var seen: [Value] = []
            var out: [Value] = []
            for x in try iterate(value) {
                var k = try attr.map { try attribute(x, $0) } ?? x
                if !cs { k = lowerIfString(k) }
                if !seen.contains(where: { $0.equals(k) }) { seen.append(k); out.append(x) }
            }
            return .array(out)
        case "wordcount":
            var n = 0
            var inWord = false
            for u in value.str.unicodeScalars {
                let w = u.properties.isAlphabetic || u.properties.numericType != nil || u == "_"
                if w && !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        case "pprint": return .string(value.repr)
        default:
            throw InterpreterError.value("No filter named '\(name)' found.")
        }
    }

    /// Attribute lookup used by `map(attribute=)`, `selectattr`, `sort(attribute=)`: dotted paths, ints as indices.
    func attribute(_ x: Value, _ attr: Value) throws -> Value {
        if let i = attr.intValue { return try getItem(x, .int(i)) }
        var v = x
        for part in attr.str.split(separator: ".") {
            if let i = Int(part) { v = try getItem(v, .int(i)) } else { v = try getItem(v, .string(String(part))) }
            if v.isUndefined { return v }
        }
        return v
    }

    func lowerIfString(_ v: Value) -> Value {
        if case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    /// Stable sort by key (Python `sorted`), raising TypeError for unorderable keys.
    func sorted(_ items: [Value], reverse: Bool, key: (Value) throws -> Value) throws -> [Value] {
        let keyed = try items.map { (try key($0), $0) }
        var err: Error? = nil
        let idx = Array(keyed.indices).sorted { i, j in
            do {
                let c = try order(keyed[i].0, keyed[j].0)
                if c == 0 { return i < j }
                return reverse ? c > 0 : c < 0
            } catch { err = error; return i < j }
        }
        if let err { throw err }
        return idx.map { keyed[$0].1 }
    }

    // MARK: tests

    func applyTest(_ name: String, _ v: Value, _ args: [Value]) throws -> Bool {
        func arg() throws -> Value {
            guard let x = args.first else { throw InterpreterError.type("test '\(name)' expects an argument") }
            return x
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": return v.isBoolLike
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "number": return v.number != nil
        case "string": if case .string = v { return true }; return false
        case "mapping": if case .object = v { return true }; return false
        case "iterable":
            switch v { case .string, .array, .tuple, .object, .undefined: return true; default: return false }
        case "sequence":
            switch v { case .string, .array, .tuple, .object: return true; default: return false }
        case "callable": if case .function = v { return true }; return false
        case "odd", "even":
            guard let i = v.intValue else { throw InterpreterError.type("test '\(name)' expects an integer") }
            return (i & 1 == 1) == (name == "odd")
        case "divisibleby":
            guard let i = v.intValue, let d = try arg().intValue, d != 0 else { throw InterpreterError.value("divisibleby needs non-zero integers") }
            return d == -1 || i % d == 0
        case "eq", "equalto", "==": return v.equals(try arg())
        case "ne", "!=": return !v.equals(try arg())
        case "lt", "lessthan", "<": return try order(v, try arg()) < 0
        case "le", "<=": return try order(v, try arg()) <= 0
        case "gt", "greaterthan", ">": return try order(v, try arg()) > 0
        case "ge", ">=": return try order(v, try arg()) >= 0
        case "in": return try contains(try arg(), v)
        case "sameas":
            let o = try arg()
            switch (v, o) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.int(let x), .int(let y)): return x == y && x >= -5 && x <= 256
            case (.namespace(let x), .namespace(let y)): return x === y
            default: return false
            }
        case "lower": if case .string(let s) = v { return s == s.lowercased() }; return false
        case "upper": if case .string(let s) = v { return s == s.uppercased() }; return false
        case "escaped": return false
        case "filter", "test": return false
        default: throw InterpreterError.value("No test named '\(name)' found.")
        }
    }
}

func htmlEscape(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}

/// jinja2's `title` filter: each word (split at whitespace, '-', '(', '{', '[', '<') gets an upper first character
/// and a lowered rest.
func jinjaTitle(_ s: String) -> String {
    var out = ""
    var atStart = true
    for ch in s {
        if ch.isWhitespace || "-({[<".contains(ch) {
            out.append(ch)
            atStart = true
        } else if atStart {
            out += ch.uppercased()
            atStart = false
        } else {
            out += ch.lowercased()
        }
    }
    return out
}

/// Python `str.center(width)` (CPython's split of odd padding: `left = pad / 2 + (pad & width & 1)`).
func pyCenter(_ s: String, _ w: Int) throws -> String {
    let n = s.unicodeScalars.count
    guard w > n else { return s }
    let pad = w - n
    let left = pad / 2 + (pad & w & 1)
    return try padding(" ", left) + s + padding(" ", pad - left)
}

/// `Int(d)` truncating toward zero; throws when `d` is outside the 64-bit range (Python would make a big int).
func exactInt(_ d: Double) throws -> Int {
    guard let i = Int(exactly: d.rounded(.towardZero)) else { throw InterpreterError.limit("integer overflow converting \(d)") }
    return i
}

/// `count` copies of `unit` (none when `count` <= 0); throws instead of exhausting memory for huge counts.
func padding(_ unit: String, _ count: Int) throws -> String {
    guard count > 0 else { return "" }
    let (total, overflow) = count.multipliedReportingOverflow(by: max(1, unit.utf8.count))
    guard !overflow, total <= Interpreter.maxSequence else {
        throw InterpreterError.limit("string of \(count) repetitions is too large")
    }
    return String(repeating: unit, count: count)
}
