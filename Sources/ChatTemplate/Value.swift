import Foundation
import JSON

/// Mutable attribute bag created by `namespace(...)` (Jinja's `Namespace`).
final class Namespace {
    var attrs: OrderedDict
    init(_ attrs: OrderedDict) { self.attrs = attrs }
}

/// A callable value: a global function, a macro, a bound method or `loop.cycle`.
final class Function {
    let name: String
    let body: (Interpreter, [Value], [(String, Value)]) throws -> Value
    init(_ name: String, _ body: @escaping (Interpreter, [Value], [(String, Value)]) throws -> Value) {
        self.name = name
        self.body = body
    }
}

/// Insertion-ordered dictionary of runtime values (Python dict semantics).
struct OrderedDict {
    private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    init() {}
    init(_ pairs: [(String, Value)]) { for (k, v) in pairs { self[k] = v } }

    subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
    var pairs: [(String, Value)] { keys.map { ($0, storage[$0]!) } }
    var values: [Value] { keys.map { storage[$0]! } }
    var count: Int { keys.count }
}

/// Runtime value of the interpreter: Python objects as jinja2 sees them.
enum Value {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([Value])
    /// A Python tuple (tuple literals, `dict.items()` pairs, `varargs`); prints as `(a, b)`.
    case tuple([Value])
    case object(OrderedDict)
    case namespace(Namespace)
    case function(Function)

    init(_ j: JinjaValue) {
        switch j {
        case .null: self = .none
        case .undefined: self = .undefined("value")
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(Value.init))
        case .object(let o): self = .object(OrderedDict(o.pairs.map { ($0.0, Value($0.1)) }))
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }
    var isNone: Bool { if case .none = self { return true }; return false }

    /// Python type name, used in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .object(let o): return o.count > 0
        case .namespace, .function: return true
        }
    }

    /// Numeric view (bool is an int subclass in Python).
    var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    var intValue: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    /// Python `==`.
    func equals(_ other: Value) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (k, v) in a.pairs { guard let w = b[k], v.equals(w) else { return false } }
            return true
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.function(let a), .function(let b)): return a === b
        default:
            if let x = intValue, let y = other.intValue { return x == y }
            if let x = number, let y = other.number { return x == y }
            return false
        }
    }

    /// Python `str(value)` as jinja2 prints it (`{{ value }}`).
    var str: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python `repr(value)`.
    var repr: String { repr(depth: 0) }

    /// `repr` with a nesting bound: a namespace can contain itself, which Python prints with `...`.
    private func repr(depth: Int) -> String {
        if depth > 200 { return "..." }
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringRepr(s)
        case .array(let a): return "[" + a.map { $0.repr(depth: depth + 1) }.joined(separator: ", ") + "]"
        case .tuple(let a):
            return "(" + a.map { $0.repr(depth: depth + 1) }.joined(separator: ", ") + (a.count == 1 ? ",)" : ")")
        case .object(let o):
            return "{" + o.pairs.map { pythonStringRepr($0.0) + ": " + $0.1.repr(depth: depth + 1) }.joined(separator: ", ") + "}"
        case .namespace(let n):
            return "<Namespace " + Value.object(n.attrs).repr(depth: depth + 1) + ">"
        case .function(let f): return "<function \(f.name)>"
        }
    }

    /// This value as a JSON tree for `json.dumps`: numbers as Python prints them (`1.0`, `1e-05`, and `NaN` /
    /// `Infinity` / `-Infinity` as `json.dumps` writes non-finite floats), tuples as arrays, dict order kept.
    /// - Throws: `InterpreterError` for values JSON cannot represent (undefined, functions, namespaces).
    func json() throws -> JSONValue {
        switch self {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d):
            if d.isNaN { return .number("NaN") }
            if d.isInfinite { return .number(d < 0 ? "-Infinity" : "Infinity") }
            return .number(pythonFloatRepr(d))
        case .string(let s): return .string(s)
        case .array(let a), .tuple(let a): return .array(try a.map { try $0.json() })
        case .object(let o): return .object(try o.pairs.map { (key: $0.0, value: try $0.1.json()) })
        case .undefined, .namespace, .function:
            throw InterpreterError.type("Object of type \(typeName) is not JSON serializable")
        }
    }
}

/// Python `repr(str)`: single quotes unless the text holds `'` and no `"`; non-printable characters escaped.
func pythonStringRepr(_ s: String) -> String {
    let hasSingle = s.unicodeScalars.contains("'")
    let hasDouble = s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
    var out = String(quote)
    for u in s.unicodeScalars {
        switch u {
        case quote: out += "\\" + String(quote)
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if isPythonPrintable(u) {
                out.unicodeScalars.append(u)
            } else if u.value < 0x100 {
                out += String(format: "\\x%02x", u.value)
            } else if u.value < 0x10000 {
                out += String(format: "\\u%04x", u.value)
            } else {
                out += String(format: "\\U%08x", u.value)
            }
        }
    }
    out.unicodeScalars.append(quote)
    return out
}

/// Python's `str.isprintable` for one character (used by `repr`).
func isPythonPrintable(_ u: Unicode.Scalar) -> Bool {
    if u.value < 0x20 || u.value == 0x7F { return false }
    if u.value < 0x7F { return true }
    switch u.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
    case .spaceSeparator: return u.value == 0x20
    default: return true
    }
}

/// Python `repr(float)`: shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16, else `1e+16` style.
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description is also shortest round-trip; extract digits and decimal exponent from it.
    var text = "\(abs(d))"
    var exp10 = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exp10 = Int(text[text.index(after: e)...]) ?? 0
        text = String(text[..<e])
    }
    var intPart = text
    var fracPart = ""
    if let dot = text.firstIndex(of: ".") {
        intPart = String(text[..<dot])
        fracPart = String(text[text.index(after: dot)...])
    }
    var digits = intPart + fracPart
    var point = intPart.count + exp10  // decimal point position relative to digits start
    while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); point -= 1 }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let sciExp = point - 1
    var out = d < 0 ? "-" : ""
    if sciExp < -4 || sciExp >= 16 {
        out += String(digits.first!)
        if digits.count > 1 { out += "." + digits.dropFirst() }
        out += "e" + (sciExp < 0 ? "-" : "+") + (abs(sciExp) < 10 ? "0" : "") + String(abs(sciExp))
    } else if point <= 0 {
        out += "0." + String(repeating: "0", count: -point) + digits
    } else if point >= digits.count {
        out += digits + String(repeating: "0", count: point - digits.count) + ".0"
    } else {
        let idx = digits.index(digits.startIndex, offsetBy: point)
        out += digits[..<idx] + "." + digits[idx...]
    }
    return out
}
