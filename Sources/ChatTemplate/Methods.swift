import Foundation

/// Python methods of `str`, `dict` and `list` reachable from templates, and the globals transformers installs
/// (`raise_exception`, `strftime_now`, `dict`, `namespace`) plus jinja2's `range`.
extension Interpreter {
    private func argString(_ args: [Value], _ i: Int, _ fn: String) throws -> String? {
        guard i < args.count, !args[i].isNone else { return nil }
        guard case .string(let s) = args[i] else {
            throw InterpreterError.type("\(fn)() argument must be str, not \(args[i].typeName)")
        }
        return s
    }

    private func argInt(_ args: [Value], _ i: Int, _ def: Int) throws -> Int {
        guard i < args.count, !args[i].isNone else { return def }
        guard let v = args[i].intValue else { throw InterpreterError.type("an integer is required") }
        return v
    }

    /// A bound method `obj.name`, or nil when the type has no such method.
    func method(_ obj: Value, _ name: String) -> Value? {
        switch obj {
        case .string(let s): return stringMethod(s, name)
        case .object(let o): return dictMethod(o, name)
        case .array(let a), .tuple(let a): return listMethod(a, name)
        default: return nil
        }
    }

    private func bound(_ name: String, _ body: @escaping ([Value], [(String, Value)]) throws -> Value) -> Value {
        .function(Function(name) { _, args, kw in try body(args, kw) })
    }

    private func dictMethod(_ o: OrderedDict, _ name: String) -> Value? {
        switch name {
        case "items": return bound(name) { _, _ in .array(o.pairs.map { .tuple([.string($0.0), $0.1]) }) }
        case "keys": return bound(name) { _, _ in .array(o.keys.map { .string($0) }) }
        case "values": return bound(name) { _, _ in .array(o.values) }
        case "get":
            return bound(name) { args, _ in
                guard let k = args.first else { throw InterpreterError.type("get expected at least 1 argument, got 0") }
                if case .string(let key) = k, let v = o[key] { return v }
                return args.count > 1 ? args[1] : .none
            }
        case "copy": return bound(name) { _, _ in .object(o) }
        case "pop", "popitem", "update", "setdefault", "clear":
            return bound(name) { _, _ in throw InterpreterError.type("access to attribute '\(name)' of 'dict' object is unsafe") }
        default: return nil
        }
    }

    private func listMethod(_ a: [Value], _ name: String) -> Value? {
        switch name {
        case "index":
            return bound(name) { args, _ in
                guard let x = args.first, let i = a.firstIndex(where: { $0.equals(x) }) else {
                    throw InterpreterError.value("value is not in list")
                }
                return .int(i)
            }
        case "count": return bound(name) { args, _ in .int(a.filter { $0.equals(args.first ?? .none) }.count) }
        case "copy": return bound(name) { _, _ in .array(a) }
        case "append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear":
            return bound(name) { _, _ in throw InterpreterError.type("access to attribute '\(name)' of 'list' object is unsafe") }
        default: return nil
        }
    }

    private func stringMethod(_ s: String, _ name: String) -> Value? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return bound(name) { [unowned self] args, _ in
                let chars = try self.argString(args, 0, name)
                return .string(pyStrip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return bound(name) { [unowned self] args, kw in
                var a = args
                for (k, v) in kw {
                    if k == "sep" { while a.count < 1 { a.append(.none) }; a[0] = v }
                    if k == "maxsplit" { while a.count < 2 { a.append(.none) }; a[1] = v }
                }
                let sep = try self.argString(a, 0, name)
                let maxsplit = try self.argInt(a, 1, -1)
                return .array(try pySplit(s, sep: sep, maxsplit: maxsplit, fromRight: name == "rsplit").map { .string($0) })
            }
        case "splitlines":
            return bound(name) { _, _ in
                .array(s.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }).map { .string(String($0)) }
                    .dropLast(s.last?.isNewline == true ? 1 : 0).map { $0 })
            }
        case "startswith", "endswith":
            return bound(name) { args, _ in
                guard let p = args.first else { throw InterpreterError.type("\(name) takes at least 1 argument") }
                let cands: [Value]
                if case .tuple(let xs) = p { cands = xs } else if case .array(let xs) = p { cands = xs } else { cands = [p] }
                let hay = Array(s.unicodeScalars)
                for c in cands {
                    guard case .string(let x) = c else {
                        throw InterpreterError.type("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                    }
                    let n = Array(x.unicodeScalars)
                    if n.count <= hay.count
                        && (name == "startswith" ? hay.prefix(n.count).elementsEqual(n) : hay.suffix(n.count).elementsEqual(n)) {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "upper": return bound(name) { _, _ in .string(s.uppercased()) }
        case "lower": return bound(name) { _, _ in .string(s.lowercased()) }
        case "title": return bound(name) { _, _ in .string(pyTitle(s)) }
        case "capitalize": return bound(name) { _, _ in .string(pyCapitalize(s)) }
        case "swapcase":
            return bound(name) { _, _ in
                .string(String(s.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) }))
            }
        case "replace":
            return bound(name) { [unowned self] args, _ in
                guard let old = try self.argString(args, 0, name), let new = try self.argString(args, 1, name) else {
                    throw InterpreterError.type("replace expected 2 arguments")
                }
                return .string(pyReplace(s, old, new, count: try self.argInt(args, 2, -1)))
            }
        case "find", "rfind", "index", "rindex", "count":
            return bound(name) { [unowned self] args, _ in
                guard let sub = try self.argString(args, 0, name) else { throw InterpreterError.type("\(name) expected 1 argument") }
                let hay = Array(s.unicodeScalars), needle = Array(sub.unicodeScalars)
                if name == "count" {
                    var n = 0, i = 0
                    while let j = findScalars(hay, needle, from: i) { n += 1; i = j + max(1, needle.count) }
                    return .int(n)
                }
                var found: Int? = nil
                if name.hasPrefix("r") {
                    var i = 0
                    while let j = findScalars(hay, needle, from: i) { found = j; i = j + 1 }
                } else {
                    found = findScalars(hay, needle, from: 0)
                }
                if let f = found { return .int(f) }
                if name.hasSuffix("index") { throw InterpreterError.value("substring not found") }
                return .int(-1)
            }
        case "join":
            return bound(name) { [unowned self] args, _ in
                let items = try self.iterate(args.first ?? .array([]))
                var parts: [String] = []
                for (i, v) in items.enumerated() {
                    guard case .string(let x) = v else {
                        throw InterpreterError.type("sequence item \(i): expected str instance, \(v.typeName) found")
                    }
                    parts.append(x)
                }
                return .string(parts.joined(separator: s))
            }
        case "isdigit", "isnumeric", "isdecimal":
            return bound(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil }) }
        case "isalpha": return bound(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic }) }
        case "isalnum":
            return bound(name) { _, _ in
                .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
            }
        case "isspace": return bound(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isWhitespace }) }
        case "isupper": return bound(name) { _, _ in .bool(s.contains { $0.isCased } && s == s.uppercased()) }
        case "islower": return bound(name) { _, _ in .bool(s.contains { $0.isCased } && s == s.lowercased()) }
        case "format":
            return bound(name) { args, kw in .string(try pyFormat(s, args, kw)) }
        case "center":
            return bound(name) { [unowned self] args, _ in .string(try pyCenter(s, try self.argInt(args, 0, 0))) }
        case "zfill":
            return bound(name) { [unowned self] args, _ in
                let w = try self.argInt(args, 0, 0)
                let n = s.unicodeScalars.count
                guard w > n else { return .string(s) }
                var body = s
                var sign = ""
                if let f = s.first, f == "-" || f == "+" { sign = String(f); body.removeFirst() }
                return .string(try sign + padding("0", w - n) + body)
            }
        default: return nil
        }
    }

    // MARK: globals

    func globalFunction(_ name: String) -> Value? {
        switch name {
        case "range":
            return bound(name) { args, _ in
                let ints = try args.map { v -> Int in
                    guard let i = v.intValue else { throw InterpreterError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
                    return i
                }
                var start = 0, stop = 0, step = 1
                switch ints.count {
                case 1: stop = ints[0]
                case 2: start = ints[0]; stop = ints[1]
                case 3: start = ints[0]; stop = ints[1]; step = ints[2]
                default: throw InterpreterError.type("range expected 1 to 3 arguments, got \(ints.count)")
                }
                if step == 0 { throw InterpreterError.value("range() arg 3 must not be zero") }
                // Count in floating point first so extreme bounds cannot overflow.
                let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
                if span / Double(step.magnitude) > 100_000 { throw InterpreterError.limit("range too big (limit 100000 items)") }
                var out: [Value] = []
                var v = start
                while step > 0 ? v < stop : v > stop {
                    out.append(.int(v))
                    let (next, overflow) = v.addingReportingOverflow(step)
                    if overflow { break }
                    v = next
                }
                return .array(out)
            }
        case "dict":
            return bound(name) { [unowned self] args, kw in
                var d = OrderedDict()
                if let first = args.first {
                    switch first {
                    case .object(let o): d = o
                    default:
                        for pair in try self.iterate(first) {
                            let kv = try self.iterate(pair)
                            guard kv.count == 2 else { throw InterpreterError.value("dictionary update sequence element has length \(kv.count); 2 is required") }
                            d[kv[0].str] = kv[1]
                        }
                    }
                }
                for (k, v) in kw { d[k] = v }
                return .object(d)
            }
        case "namespace":
            return bound(name) { args, kw in
                var d = OrderedDict()
                if case .object(let o)? = args.first { d = o }
                for (k, v) in kw { d[k] = v }
                return .namespace(Namespace(d))
            }
        case "raise_exception":
            return bound(name) { args, _ in throw InterpreterError.raised(args.first?.str ?? "") }
        case "strftime_now":
            return bound(name) { [unowned self] args, _ in
                guard case .string(let fmt)? = args.first else { throw InterpreterError.type("strftime_now expects a format string") }
                return .string(strftime(fmt, self.now))
            }
        default: return nil
        }
    }
}

// MARK: - Python string helpers

func isPyWhitespace(_ u: Unicode.Scalar) -> Bool {
    u.properties.isWhitespace || (u.value >= 0x1C && u.value <= 0x1F)
}

/// `str.strip/lstrip/rstrip(chars)`.
func pyStrip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    let strip: (Unicode.Scalar) -> Bool = { u in set.map { $0.contains(u) } ?? isPyWhitespace(u) }
    let u = Array(s.unicodeScalars)
    var a = 0, b = u.count
    if left { while a < b, strip(u[a]) { a += 1 } }
    if right { while b > a, strip(u[b - 1]) { b -= 1 } }
    var out = String.UnicodeScalarView()
    out.append(contentsOf: u[a..<b])
    return String(out)
}

/// `str.split` / `str.rsplit` with Python's rules for `sep=None` (runs of whitespace, no empty strings).
func pySplit(_ s: String, sep: String?, maxsplit: Int, fromRight: Bool) throws -> [String] {
    let u = Array(s.unicodeScalars)
    func str(_ r: ArraySlice<Unicode.Scalar>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: r); return String(v) }
    if let sep {
        let n = Array(sep.unicodeScalars)
        if n.isEmpty { throw InterpreterError.value("empty separator") }
        let limit = maxsplit < 0 ? Int.max : maxsplit
        var positions: [Int] = []
        if fromRight {
            var k = u.count - n.count
            while k >= 0 && positions.count < limit {
                if u[k..<k + n.count].elementsEqual(n) { positions.insert(k, at: 0); k -= n.count } else { k -= 1 }
            }
        } else {
            var i = 0
            while positions.count < limit, let j = findScalars(u, n, from: i) { positions.append(j); i = j + n.count }
        }
        var out: [String] = []
        var start = 0
        for p in positions { out.append(str(u[start..<p])); start = p + n.count }
        out.append(str(u[start...]))
        return out
    }
    var words: [(Int, Int)] = []
    var i = 0
    while i < u.count {
        while i < u.count, isPyWhitespace(u[i]) { i += 1 }
        if i >= u.count { break }
        let st = i
        while i < u.count, !isPyWhitespace(u[i]) { i += 1 }
        words.append((st, i))
    }
    if maxsplit < 0 || words.count <= maxsplit { return words.map { str(u[$0.0..<$0.1]) } }
    if fromRight {
        return [str(u[..<words[words.count - maxsplit - 1].1])] + words.suffix(maxsplit).map { str(u[$0.0..<$0.1]) }
    }
    return words.prefix(maxsplit).map { str(u[$0.0..<$0.1]) } + [str(u[words[maxsplit].0...])]
}

func pyReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    let u = Array(s.unicodeScalars), o = Array(old.unicodeScalars)
    var out = String.UnicodeScalarView()
    var i = 0, done = 0
    if o.isEmpty {
        for c in u {
            if count < 0 || done < count { out.append(contentsOf: new.unicodeScalars); done += 1 }
            out.append(c)
        }
        if count < 0 || done < count { out.append(contentsOf: new.unicodeScalars) }
        return String(out)
    }
    while i < u.count {
        if (count < 0 || done < count), let j = findScalars(u, o, from: i) {
            out.append(contentsOf: u[i..<j])
            out.append(contentsOf: new.unicodeScalars)
            i = j + o.count
            done += 1
        } else {
            out.append(contentsOf: u[i...])
            break
        }
    }
    return String(out)
}

/// Python `str.title()`: uppercase after any non-letter, lowercase after a letter.
func pyTitle(_ s: String) -> String {
    var out = ""
    var prevCased = false
    for ch in s {
        out += prevCased ? ch.lowercased() : ch.uppercased()
        prevCased = ch.isCased
    }
    return out
}

func pyCapitalize(_ s: String) -> String {
    guard let f = s.first else { return s }
    return f.uppercased() + s.dropFirst().lowercased()
}

/// `str.format` with `{}`, `{0}` and `{name}` fields (no format specs beyond plain conversion).
func pyFormat(_ fmt: String, _ args: [Value], _ kw: [(String, Value)]) throws -> String {
    var out = ""
    var auto = 0
    var it = Array(fmt).makeIterator()
    while let c = it.next() {
        if c == "{" {
            var field = ""
            var closed = false
            while let d = it.next() {
                if d == "{" && field.isEmpty { out += "{"; closed = true; field = "\u{0}"; break }
                if d == "}" { closed = true; break }
                field.append(d)
            }
            if field == "\u{0}" { continue }
            guard closed else { throw InterpreterError.value("Single '{' encountered in format string") }
            let key = field.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
            let v: Value
            if key.isEmpty {
                guard auto < args.count else { throw InterpreterError.value("Replacement index \(auto) out of range") }
                v = args[auto]; auto += 1
            } else if let i = Int(key) {
                guard i < args.count else { throw InterpreterError.value("Replacement index \(i) out of range") }
                v = args[i]
            } else {
                guard let x = kw.first(where: { $0.0 == key })?.1 else { throw InterpreterError.value("KeyError: '\(key)'") }
                v = x
            }
            out += v.str
        } else if c == "}" {
            if it.next() != "}" { throw InterpreterError.value("Single '}' encountered in format string") }
            out += "}"
        } else {
            out.append(c)
        }
    }
    return out
}

/// C `strftime` subset over `date` in the process time zone (Python's naive `datetime.now()`).
func strftime(_ fmt: String, _ date: Date) -> String {
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone.current
    let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
    let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December"]
    let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    let y = c.year ?? 1970, mo = c.month ?? 1, d = c.day ?? 1, h = c.hour ?? 0, mi = c.minute ?? 0, s = c.second ?? 0
    let wd = (c.weekday ?? 1) - 1
    func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    var out = ""
    var it = fmt.makeIterator()
    while let ch = it.next() {
        guard ch == "%" else { out.append(ch); continue }
        guard let spec = it.next() else { out += "%"; break }
        switch spec {
        case "Y": out += String(y)
        case "y": out += p2(y % 100)
        case "m": out += p2(mo)
        case "d": out += p2(d)
        case "e": out += d < 10 ? " \(d)" : "\(d)"
        case "H": out += p2(h)
        case "I": out += p2(h % 12 == 0 ? 12 : h % 12)
        case "M": out += p2(mi)
        case "S": out += p2(s)
        case "p": out += h < 12 ? "AM" : "PM"
        case "B": out += months[mo - 1]
        case "b", "h": out += String(months[mo - 1].prefix(3))
        case "A": out += days[wd]
        case "a": out += String(days[wd].prefix(3))
        case "w": out += String(wd)
        case "j":
            let doy = cal.ordinality(of: .day, in: .year, for: date) ?? 1
            out += doy < 10 ? "00\(doy)" : (doy < 100 ? "0\(doy)" : "\(doy)")
        case "F": out += "\(y)-\(p2(mo))-\(p2(d))"
        case "T": out += "\(p2(h)):\(p2(mi)):\(p2(s))"
        case "%": out += "%"
        case "z", "Z": break
        default: out += "%" + String(spec)
        }
    }
    return out
}
