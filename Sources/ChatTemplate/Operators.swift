import Foundation

/// Python operator semantics (`+ - * / // % ** ~`, comparisons, `in`), attribute/item lookup as jinja2's sandboxed
/// `getattr`/`getitem` do it, slicing and iteration.
extension Interpreter {
    static let maxSequence = 1 << 22

    func undefinedError(_ v: Value) -> InterpreterError {
        if case .undefined(let n) = v { return .undefined("'\(n)' is undefined") }
        return .undefined("value is undefined")
    }

    func binary(_ op: BinaryOp, _ a: Value, _ b: Value) throws -> Value {
        if op == .concat { return .string(try checkedJoin(a.str, b.str)) }
        if op == .mod, case .string(let fmt) = a { return .string(try percentFormat(fmt, b)) }
        if a.isUndefined { throw undefinedError(a) }
        if b.isUndefined { throw undefinedError(b) }
        let unsupported = InterpreterError.type("unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'")
        switch op {
        case .add:
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(try checkedJoin(x, y))
            case (.array(let x), .array(let y)):
                guard x.count + y.count <= Interpreter.maxSequence else { throw InterpreterError.limit("list too large") }
                return .array(x + y)
            case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
            case (.string, _): throw InterpreterError.type("can only concatenate str (not \"\(b.typeName)\") to str")
            case (.array, _): throw InterpreterError.type("can only concatenate list (not \"\(b.typeName)\") to list")
            default: break
            }
            return try arith(a, b, unsupported, { $0.addingReportingOverflow($1) }, { $0 + $1 })
        case .sub:
            return try arith(a, b, unsupported, { $0.subtractingReportingOverflow($1) }, { $0 - $1 })
        case .mul:
            if let n = b.intValue, !b.isBoolLike {
                switch a {
                case .string(let s):
                    return .string(s.isEmpty ? "" : try padding(s, n))
                case .array(let x):
                    let (total, overflow) = max(0, n).multipliedReportingOverflow(by: x.count)
                    guard !overflow, total <= Interpreter.maxSequence else { throw InterpreterError.limit("list too large") }
                    return .array(Array([[Value]](repeating: x, count: max(0, n)).joined()))
                default: break
                }
            }
            if case .string = b, a.intValue != nil { return try binary(.mul, b, a) }
            if case .array = b, a.intValue != nil { return try binary(.mul, b, a) }
            return try arith(a, b, unsupported, { $0.multipliedReportingOverflow(by: $1) }, { $0 * $1 })
        case .div:
            guard let x = a.number, let y = b.number else { throw unsupported }
            if y == 0 { throw InterpreterError.value("division by zero") }
            return .double(x / y)
        case .floorDiv:
            if let x = a.intValue, let y = b.intValue {
                if y == 0 { throw InterpreterError.value("integer division or modulo by zero") }
                if x == Int.min && y == -1 { throw InterpreterError.limit("integer overflow") }
                var q = x / y
                if x % y != 0 && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(q)
            }
            guard let x = a.number, let y = b.number else { throw unsupported }
            if y == 0 { throw InterpreterError.value("float floor division by zero") }
            return .double((x / y).rounded(.down))
        case .mod:
            if case .string(let fmt) = a { return .string(try percentFormat(fmt, b)) }
            if let x = a.intValue, let y = b.intValue {
                if y == 0 { throw InterpreterError.value("integer division or modulo by zero") }
                if y == -1 { return .int(0) }
                var r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { r += y }
                return .int(r)
            }
            guard let x = a.number, let y = b.number else { throw unsupported }
            if y == 0 { throw InterpreterError.value("float modulo") }
            return .double(x - y * (x / y).rounded(.down))
        case .pow:
            if let x = a.intValue, let y = b.intValue, y >= 0 {
                var result = 1
                for _ in 0..<min(y, 64) {
                    let (r, o) = result.multipliedReportingOverflow(by: x)
                    if o { throw InterpreterError.limit("integer overflow") }
                    result = r
                }
                if y > 64 && x.magnitude > 1 { throw InterpreterError.limit("integer overflow") }
                if y > 64 && x == -1 { result = y % 2 == 0 ? 1 : -1 }
                return .int(result)
            }
            guard let x = a.number, let y = b.number else { throw unsupported }
            return .double(Foundation.pow(x, y))
        case .concat:
            return .string(a.str + b.str)
        }
    }

    /// String concatenation bounded by the output limit (a template doubling a string must fail, not exhaust memory).
    private func checkedJoin(_ x: String, _ y: String) throws -> String {
        guard x.utf8.count + y.utf8.count <= Interpreter.maxOutputBytes else {
            throw InterpreterError.limit("string exceeds \(Interpreter.maxOutputBytes) bytes")
        }
        return x + y
    }

    private func arith(_ a: Value, _ b: Value, _ unsupported: InterpreterError,
                       _ i: (Int, Int) -> (partialValue: Int, overflow: Bool),
                       _ d: (Double, Double) -> Double) throws -> Value {
        if let x = a.intValue, let y = b.intValue {
            let (r, o) = i(x, y)
            if o { throw InterpreterError.limit("integer overflow") }
            return .int(r)
        }
        guard let x = a.number, let y = b.number else { throw unsupported }
        return .double(d(x, y))
    }

    /// Python `str % args` for `%s`, `%r`, `%d`, `%i`, `%f` and `%%`.
    private func percentFormat(_ fmt: String, _ arg: Value) throws -> String {
        var args: [Value]
        if case .tuple(let a) = arg { args = a } else { args = [arg] }
        var out = ""
        var it = Array(fmt.unicodeScalars).makeIterator()
        while let c = it.next() {
            guard c == "%" else { out.unicodeScalars.append(c); continue }
            var flags = "", width = "", precision: String? = nil
            var spec: Unicode.Scalar? = it.next()
            while let f = spec, f == "-" || f == "0" || f == " " || f == "+" { flags.unicodeScalars.append(f); spec = it.next() }
            while let d = spec, d.properties.numericType != nil, d.isASCII { width.unicodeScalars.append(d); spec = it.next() }
            if spec == "." {
                precision = ""
                spec = it.next()
                while let d = spec, d.properties.numericType != nil, d.isASCII { precision!.unicodeScalars.append(d); spec = it.next() }
            }
            guard let spec else { throw InterpreterError.value("incomplete format") }
            if spec == "%" { out += "%"; continue }
            guard !args.isEmpty else { throw InterpreterError.type("not enough arguments for format string") }
            let v = args.removeFirst()
            var piece: String
            switch spec {
            case "s", "r":
                piece = spec == "s" ? v.str : v.repr
                if let p = precision, let n = Int(p) { piece = String(String.UnicodeScalarView(piece.unicodeScalars.prefix(n))) }
            case "d", "i":
                guard let n = v.number else { throw InterpreterError.type("%d format: a real number is required, not \(v.typeName)") }
                piece = String(try exactInt(n))
            case "f", "F":
                guard let n = v.number else { throw InterpreterError.type("must be real number, not \(v.typeName)") }
                piece = String(format: "%.\(min(340, Int(precision ?? "6") ?? 6))f", n)
            default: throw InterpreterError.value("unsupported format character '\(spec)'")
            }
            let w = width.isEmpty ? 0 : (Int(width) ?? Int.max)
            let len = piece.unicodeScalars.count
            if len < w {
                if flags.contains("-") {
                    piece += try padding(" ", w - len)
                } else if flags.contains("0") && spec != "s" && spec != "r" {
                    let neg = piece.hasPrefix("-")
                    piece = (neg ? "-" : "") + (try padding("0", w - len)) + (neg ? String(piece.dropFirst()) : piece)
                } else {
                    piece = try padding(" ", w - len) + piece
                }
            }
            out += piece
        }
        return out
    }

    /// Three-way ordering for `<`, `<=`, `>`, `>=`, `sort`, `min`, `max`.
    func order(_ a: Value, _ b: Value, opName: String = "<") throws -> Int {
        if a.isUndefined { throw undefinedError(a) }
        if b.isUndefined { throw undefinedError(b) }
        if let x = a.intValue, let y = b.intValue { return x < y ? -1 : (x > y ? 1 : 0) }
        if let x = a.number, let y = b.number { return x < y ? -1 : (x > y ? 1 : 0) }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return compareScalars(x, y)
        case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) where !p.equals(q) { return try order(p, q, opName: opName) }
            return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
        default:
            throw InterpreterError.type("'\(opName)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    func compare(_ op: CompareOp, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case .eq: return a.equals(b)
        case .ne: return !a.equals(b)
        case .lt: return try order(a, b, opName: "<") < 0
        case .le: return try order(a, b, opName: "<=") <= 0
        case .gt: return try order(a, b, opName: ">") > 0
        case .ge: return try order(a, b, opName: ">=") >= 0
        case .isIn: return try contains(b, a)
        case .notIn: return !(try contains(b, a))
        }
    }

    /// Python `item in container`.
    func contains(_ container: Value, _ item: Value) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let needle) = item else {
                throw InterpreterError.type("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return findScalars(Array(s.unicodeScalars), Array(needle.unicodeScalars), from: 0) != nil
        case .array(let a), .tuple(let a): return a.contains { $0.equals(item) }
        case .object(let o):
            if case .string(let k) = item { return o[k] != nil }
            return false
        case .undefined: return false
        default: throw InterpreterError.type("argument of type '\(container.typeName)' is not iterable")
        }
    }

    /// Python iteration: lists, dict keys, string characters; undefined iterates as empty.
    func iterate(_ v: Value) throws -> [Value] {
        switch v {
        case .array(let a), .tuple(let a): return a
        case .object(let o): return o.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw InterpreterError.type("'\(v.typeName)' object is not iterable")
        }
    }

    /// `obj.name`: Python attribute first (methods), then item lookup.
    func getAttr(_ obj: Value, _ name: String) throws -> Value {
        switch obj {
        case .undefined(let n): throw InterpreterError.undefined("'\(n)' is undefined (no attribute '\(name)')")
        case .object(let o):
            if let m = method(obj, name) { return m }
            return o[name] ?? .undefined(name)
        case .namespace(let ns): return ns.attrs[name] ?? .undefined(name)
        default:
            return method(obj, name) ?? .undefined(name)
        }
    }

    /// `obj[key]`: item first, then attribute.
    func getItem(_ obj: Value, _ key: Value) throws -> Value {
        switch obj {
        case .undefined(let n): throw InterpreterError.undefined("'\(n)' is undefined (no item \(key.repr))")
        case .object(let o):
            if case .string(let k) = key {
                if let v = o[k] { return v }
                return method(obj, k) ?? .undefined(k)
            }
            return .undefined(key.repr)
        case .array(let a), .tuple(let a):
            if let i = key.intValue {
                let j = i < 0 ? i + a.count : i
                return j >= 0 && j < a.count ? a[j] : .undefined("[\(i)]")
            }
            if case .string(let k) = key { return method(obj, k) ?? .undefined(k) }
            return .undefined(key.repr)
        case .string(let s):
            if let i = key.intValue {
                let u = Array(s.unicodeScalars)
                let j = i < 0 ? i + u.count : i
                return j >= 0 && j < u.count ? .string(String(u[j])) : .undefined("[\(i)]")
            }
            if case .string(let k) = key { return method(obj, k) ?? .undefined(k) }
            return .undefined(key.repr)
        case .namespace(let ns):
            if case .string(let k) = key { return ns.attrs[k] ?? .undefined(k) }
            return .undefined(key.repr)
        default:
            return .undefined(key.repr)
        }
    }

    /// Python `slice.indices` then element selection.
    func slice(_ v: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        func intOrNil(_ x: Value?) throws -> Int? {
            guard let x, !x.isNone else { return nil }
            guard let i = x.intValue else { throw InterpreterError.type("slice indices must be integers or None") }
            return i
        }
        let st = try intOrNil(step) ?? 1
        if st == 0 { throw InterpreterError.value("slice step cannot be zero") }
        func indices(_ n: Int) throws -> [Int] {
            func clamp(_ x: Int?, _ def: Int) -> Int {
                guard var x else { return def }
                if x < 0 { x += n; if x < 0 { x = st < 0 ? -1 : 0 } } else if x >= n { x = st < 0 ? n - 1 : n }
                return x
            }
            let a = clamp(try intOrNil(start), st < 0 ? n - 1 : 0)
            let b = clamp(try intOrNil(stop), st < 0 ? -1 : n)
            var out: [Int] = []
            var i = a
            while st > 0 ? i < b : i > b { out.append(i); i += st }
            return out
        }
        switch v {
        case .array(let a): return .array(try indices(a.count).map { a[$0] })
        case .tuple(let a): return .tuple(try indices(a.count).map { a[$0] })
        case .string(let s):
            let u = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(u.count) { out.append(u[i]) }
            return .string(String(out))
        case .undefined: throw undefinedError(v)
        default: throw InterpreterError.type("'\(v.typeName)' object is not subscriptable")
        }
    }
}

extension Value {
    var isBoolLike: Bool { if case .bool = self { return true }; return false }
}

/// Lexicographic comparison by Unicode code point (Python `str` ordering).
func compareScalars(_ a: String, _ b: String) -> Int {
    var i = a.unicodeScalars.makeIterator(), j = b.unicodeScalars.makeIterator()
    while true {
        switch (i.next(), j.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case (let x?, let y?): if x != y { return x.value < y.value ? -1 : 1 }
        }
    }
}

/// First index of `needle` in `hay` at or after `from` (code-point based, like Python `str.find`).
func findScalars(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int) -> Int? {
    if needle.isEmpty { return from <= hay.count ? from : nil }
    guard needle.count <= hay.count else { return nil }
    var i = max(0, from)
    while i + needle.count <= hay.count {
        if hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
        i += 1
    }
    return nil
}
