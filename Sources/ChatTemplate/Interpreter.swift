import Foundation

/// Errors raised while evaluating; the interpreter attaches the current template line when it surfaces them.
enum InterpreterError: Error {
    case type(String)
    case undefined(String)
    case value(String)
    case raised(String)
    case limit(String)
}

/// Loop control signalled by statements.
enum Flow { case normal, breakLoop, continueLoop }

/// Tree-walking evaluator for one render call. Scoping follows jinja2: `for` bodies and macros get a fresh frame
/// per iteration/call (assignments there do not leak out), `if` blocks share the enclosing frame, and namespaces
/// carry state out of loops.
final class Interpreter {
    var frames: [[String: Value]]
    private var buffers: [String] = [""]
    /// Template line of the statement or expression being evaluated (for error messages).
    var line = 0
    private var callDepth = 0
    private var steps = 0
    private var outputBytes = 0
    let now: Date

    static let maxCallDepth = 48
    /// Default bound on executed statements, loop iterations and calls per render (a safety net against
    /// hostile templates; an O(n²) template over 1,000 messages needs about 1–3 million).
    static let defaultMaxSteps = 10_000_000
    let maxSteps: Int
    static let maxOutputBytes = 32 << 20

    init(variables: [String: Value], now: Date, maxSteps: Int = Interpreter.defaultMaxSteps) {
        frames = [variables]
        self.now = now
        self.maxSteps = maxSteps
    }

    // MARK: output

    func write(_ s: String) throws {
        outputBytes += s.utf8.count
        if outputBytes > Interpreter.maxOutputBytes {
            throw InterpreterError.limit("output exceeds \(Interpreter.maxOutputBytes) bytes")
        }
        buffers[buffers.count - 1] += s
    }

    func capture(_ body: () throws -> Void) throws -> String {
        buffers.append("")
        defer { buffers.removeLast() }
        try body()
        return buffers[buffers.count - 1]
    }

    var output: String { buffers[0] }

    private func tick() throws {
        steps += 1
        if steps > maxSteps { throw InterpreterError.limit("template exceeded \(maxSteps) evaluation steps") }
    }

    // MARK: variables

    func lookup(_ name: String) -> Value {
        for f in frames.reversed() { if let v = f[name] { return v } }
        if let g = globalFunction(name) { return g }
        return .undefined(name)
    }

    func assign(_ name: String, _ v: Value) { frames[frames.count - 1][name] = v }

    // MARK: statements

    func exec(_ body: [Stmt]) throws -> Flow {
        for s in body {
            let f = try exec(s)
            if f != .normal { return f }
        }
        return .normal
    }

    private func exec(_ s: Stmt) throws -> Flow {
        try tick()
        switch s {
        case .text(let t):
            try write(t)
        case .output(let e, let l):
            line = l
            let v = try eval(e)
            try write(v.str)
        case .ifs(let branches, let orElse, let l):
            line = l
            for (c, body) in branches {
                if try eval(c).truthy { return try exec(body) }
            }
            return try exec(orElse)
        case .forLoop(let targets, let iterExpr, let cond, let body, let orElse, let l):
            line = l
            return try execFor(targets: targets, iterExpr: iterExpr, cond: cond, body: body, orElse: orElse)
        case .set(let target, let e, let l):
            line = l
            let v = try eval(e)
            try assign(target, v)
        case .setBlock(let name, let filters, let body, let l):
            line = l
            var v = Value.string(try capture { _ = try exec(body) })
            for f in filters { v = try applyFilter(f.name, v, try f.args.map(eval), try evalKw(f.kwargs)) }
            assign(name, v)
        case .macro(let def):
            assign(def.name, macroFunction(def))
        case .callBlock(let callExpr, let params, let body, let l):
            line = l
            guard case .call(let calleeExpr, let args, let kw, _) = callExpr else { return .normal }
            let callerDef = MacroDef(name: "caller", params: params, body: body, line: l)
            let callee = try eval(calleeExpr)
            var kwVals = try evalKw(kw)
            kwVals.append(("caller", macroFunction(callerDef)))
            let v = try call(callee, try args.map(eval), kwVals)
            try write(v.str)
        case .filterBlock(let filters, let body, let l):
            line = l
            var v = Value.string(try capture { _ = try exec(body) })
            for f in filters { v = try applyFilter(f.name, v, try f.args.map(eval), try evalKw(f.kwargs)) }
            try write(v.str)
        case .with(let assigns, let body, let l):
            line = l
            var frame: [String: Value] = [:]
            for (n, e) in assigns { frame[n] = try eval(e) }
            frames.append(frame)
            defer { frames.removeLast() }
            return try exec(body)
        case .breakLoop: return .breakLoop
        case .continueLoop: return .continueLoop
        }
        return .normal
    }

    private func assign(_ target: SetTarget, _ v: Value) throws {
        switch target {
        case .name(let n): assign(n, v)
        case .attr(let obj, let attr):
            guard case .namespace(let ns) = lookup(obj) else {
                throw InterpreterError.type("cannot assign attribute on non-namespace object")
            }
            ns.attrs[attr] = v
        case .names(let names):
            let items = try iterate(v)
            guard items.count == names.count else {
                throw InterpreterError.value("expected \(names.count) values to unpack, got \(items.count)")
            }
            for (n, x) in zip(names, items) { assign(n, x) }
        }
    }

    private func execFor(targets: [String], iterExpr: Expr, cond: Expr?, body: [Stmt], orElse: [Stmt]) throws -> Flow {
        var items = try iterate(try eval(iterExpr))
        func bind(_ item: Value, into frame: inout [String: Value]) throws {
            if targets.count == 1 {
                frame[targets[0]] = item
            } else {
                let parts = try iterate(item)
                guard parts.count == targets.count else {
                    throw InterpreterError.value("expected \(targets.count) values to unpack, got \(parts.count)")
                }
                for (n, x) in zip(targets, parts) { frame[n] = x }
            }
        }
        if let cond {
            var kept: [Value] = []
            for item in items {
                try tick()
                var frame: [String: Value] = [:]
                try bind(item, into: &frame)
                frames.append(frame)
                defer { frames.removeLast() }
                if try eval(cond).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty { return try exec(orElse) }
        let n = items.count
        let position = LoopPosition()
        let cycle = Value.function(Function("cycle") { _, args, _ in
            args.isEmpty ? .undefined("cycle") : args[position.index % args.count]
        })
        var loop = OrderedDict()
        for (idx, item) in items.enumerated() {
            try tick()
            position.index = idx
            var frame: [String: Value] = [:]
            try bind(item, into: &frame)
            loop["index"] = .int(idx + 1)
            loop["index0"] = .int(idx)
            loop["revindex"] = .int(n - idx)
            loop["revindex0"] = .int(n - idx - 1)
            loop["first"] = .bool(idx == 0)
            loop["last"] = .bool(idx == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = idx > 0 ? items[idx - 1] : .undefined("previtem")
            loop["nextitem"] = idx < n - 1 ? items[idx + 1] : .undefined("nextitem")
            loop["cycle"] = cycle
            frame["loop"] = .object(loop)
            frames.append(frame)
            let flow: Flow
            do {
                defer { frames.removeLast() }
                flow = try exec(body)
            }
            if flow == .breakLoop { break }
        }
        return .normal
    }

    // MARK: macros and calls

    func macroFunction(_ def: MacroDef) -> Value {
        .function(Function(def.name) { interp, args, kwargs in try interp.callMacro(def, args, kwargs) })
    }

    private func callMacro(_ def: MacroDef, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > Interpreter.maxCallDepth {
            throw InterpreterError.limit("maximum macro recursion depth (\(Interpreter.maxCallDepth)) exceeded")
        }
        var frame: [String: Value] = [:]
        var kw = OrderedDict(kwargs)
        let saved = frames
        frames = [frames[0], frame]
        defer { frames = saved }
        for (idx, (pname, pdef)) in def.params.enumerated() {
            if idx < args.count {
                frame[pname] = args[idx]
            } else if let v = kw[pname] {
                frame[pname] = v
                kw[pname] = nil
            } else if let d = pdef {
                frames[1] = frame
                frame[pname] = try eval(d)
            } else {
                frame[pname] = .undefined(pname)
            }
        }
        frame["varargs"] = .tuple(args.count > def.params.count ? Array(args[def.params.count...]) : [])
        if let c = kw["caller"] { frame["caller"] = c; kw["caller"] = nil }
        frame["kwargs"] = .object(kw)
        frames[1] = frame
        let savedLine = line
        let text = try capture { _ = try exec(def.body) }
        line = savedLine
        return .string(text)
    }

    func call(_ callee: Value, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        try tick()
        switch callee {
        case .function(let f): return try f.body(self, args, kwargs)
        case .undefined(let n): throw InterpreterError.undefined("'\(n)' is undefined")
        default: throw InterpreterError.type("'\(callee.typeName)' object is not callable")
        }
    }

    func evalKw(_ kw: KwArgs) throws -> [(String, Value)] {
        try kw.map { ($0.0, try eval($0.1)) }
    }

    // MARK: expressions

    func eval(_ e: Expr) throws -> Value {
        switch e {
        case .literal(let j): return Value(j)
        case .name(let n, _): return lookup(n)
        case .list(let items): return .array(try items.map(eval))
        case .tuple(let items): return .tuple(try items.map(eval))
        case .dict(let pairs):
            var d = OrderedDict()
            for (k, v) in pairs { d[try eval(k).str] = try eval(v) }
            return .object(d)
        case .attr(let base, let name, let l):
            let b = try eval(base)
            line = l
            return try getAttr(b, name)
        case .item(let base, let idx, let l):
            let b = try eval(base)
            let i = try eval(idx)
            line = l
            return try getItem(b, i)
        case .slice(let base, let a, let b, let c, let l):
            let v = try eval(base)
            let start = try a.map(eval), stop = try b.map(eval), step = try c.map(eval)
            line = l
            return try slice(v, start, stop, step)
        case .call(let calleeExpr, let args, let kw, let l):
            let callee = try eval(calleeExpr)
            let a = try args.map(eval)
            let k = try evalKw(kw)
            line = l
            return try call(callee, a, k)
        case .filter(let base, let name, let args, let kw, let l):
            let v = try eval(base)
            let a = try args.map(eval)
            let k = try evalKw(kw)
            line = l
            return try applyFilter(name, v, a, k)
        case .test(let base, let name, let args, let negated, let l):
            let v = try eval(base)
            let a = try args.map(eval)
            line = l
            let r = try applyTest(name, v, a)
            return .bool(negated ? !r : r)
        case .not(let x): return .bool(!(try eval(x).truthy))
        case .neg(let x, let l):
            let v = try eval(x)
            line = l
            switch v {
            case .int(let i):
                if i == Int.min { throw InterpreterError.limit("integer overflow") }
                return .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            default: throw InterpreterError.type("bad operand type for unary -: '\(v.typeName)'")
            }
        case .pos(let x, _):
            let v = try eval(x)
            guard v.number != nil else { throw InterpreterError.type("bad operand type for unary +: '\(v.typeName)'") }
            return v
        case .binary(let op, let a, let b, let l):
            let x = try eval(a)
            let y = try eval(b)
            line = l
            return try binary(op, x, y)
        case .and(let a, let b):
            let x = try eval(a)
            return x.truthy ? try eval(b) : x
        case .or(let a, let b):
            let x = try eval(a)
            return x.truthy ? x : try eval(b)
        case .compare(let first, let ops, let l):
            var left = try eval(first)
            for (op, rhsExpr) in ops {
                let right = try eval(rhsExpr)
                line = l
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .cond(let c, let a, let b):
            if try eval(c).truthy { return try eval(a) }
            return try b.map(eval) ?? .undefined("conditional expression")
        }
    }
}

/// Current iteration index shared with the loop's `cycle` function.
final class LoopPosition {
    var index = 0
}
