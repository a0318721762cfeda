/// Recursive-descent parser over lexer tokens, following jinja2's grammar and operator precedence
/// (`jinja2/parser.py`: or → and → not → compare → + - → ~ → * / // % → ** → unary → primary/postfix/filters/tests).
struct Parser {
    private let toks: [Token]
    private var i = 0
    private var depth = 0
    private static let maxDepth = 120

    init(tokens: [Token]) { toks = tokens }

    private var cur: Token { toks[i] }
    private var line: Int { toks[i].line }

    private func err(_ msg: String) -> ChatTemplateError { .syntax(line: line, message: msg) }

    private mutating func advance() -> Token {
        let t = toks[i]
        if i < toks.count - 1 { i += 1 }
        return t
    }

    private func isOp(_ s: String) -> Bool { if case .op(s) = cur.kind { return true }; return false }
    private func isName(_ s: String) -> Bool { if case .name(s) = cur.kind { return true }; return false }
    private func peekName(_ offset: Int) -> String? {
        guard i + offset < toks.count, case .name(let n) = toks[i + offset].kind else { return nil }
        return n
    }

    private mutating func expectOp(_ s: String) throws {
        guard isOp(s) else { throw err("expected '\(s)', got \(describe(cur.kind))") }
        _ = advance()
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = cur.kind else { throw err("expected name, got \(describe(cur.kind))") }
        _ = advance()
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard case .blockEnd = cur.kind else { throw err("expected end of statement block, got \(describe(cur.kind))") }
        _ = advance()
    }

    private func describe(_ t: Tok) -> String {
        switch t {
        case .text: return "text"
        case .varBegin: return "'{{'"
        case .varEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string: return "string"
        case .int(let v): return "'\(v)'"
        case .float(let v): return "'\(v)'"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Parser.maxDepth { throw err("template nested too deeply") }
    }

    // MARK: statements

    /// Parses the whole template.
    mutating func parseTemplate() throws -> [Stmt] {
        let (body, end) = try parseBody(until: [])
        if let end { throw err("unexpected '\(end)'") }
        return body
    }

    /// Parses statements until a block tag whose first name is in `until`; returns that name (tag left open).
    private mutating func parseBody(until: Set<String>) throws -> ([Stmt], String?) {
        try enter()
        defer { depth -= 1 }
        var out: [Stmt] = []
        while true {
            switch cur.kind {
            case .eof:
                if !until.isEmpty {
                    throw err("unexpected end of template, expected one of: \(until.sorted().joined(separator: ", "))")
                }
                return (out, nil)
            case .text(let s):
                _ = advance()
                out.append(.text(s))
            case .varBegin:
                _ = advance()
                let l = line
                let e = try parseTuple(allowCond: true)
                guard case .varEnd = cur.kind else { throw err("expected '}}', got \(describe(cur.kind))") }
                _ = advance()
                out.append(.output(e, line: l))
            case .blockBegin:
                if let n = peekName(1), until.contains(n) {
                    _ = advance()
                    _ = advance()
                    return (out, n)
                }
                _ = advance()
                out.append(try parseStatement())
            default:
                throw err("unexpected \(describe(cur.kind))")
            }
        }
    }

    private mutating func parseStatement() throws -> Stmt {
        let l = line
        let kw = try expectName()
        switch kw {
        case "if": return try parseIf(line: l)
        case "for": return try parseFor(line: l)
        case "set": return try parseSet(line: l)
        case "macro": return try parseMacro(line: l)
        case "call": return try parseCall(line: l)
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters, body, line: l)
        case "with":
            var assigns: [(String, Expr)] = []
            while case .name(let n) = cur.kind {
                _ = advance()
                try expectOp("=")
                assigns.append((n, try parseExpression()))
                if isOp(",") { _ = advance() } else { break }
            }
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endwith"])
            try expectBlockEnd()
            return .with(assigns, body, line: l)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .with([], body, line: l)
        case "break":
            try expectBlockEnd()
            return .breakLoop(line: l)
        case "continue":
            try expectBlockEnd()
            return .continueLoop(line: l)
        default:
            throw ChatTemplateError.syntax(line: l, message: "Encountered unknown tag '\(kw)'")
        }
    }

    private mutating func parseIf(line l: Int) throws -> Stmt {
        var branches: [(Expr, [Stmt])] = []
        var cond = try parseTuple(allowCond: true)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((cond, body))
            if end == "elif" {
                cond = try parseTuple(allowCond: true)
                continue
            }
            if end == "else" {
                try expectBlockEnd()
                let (elseBody, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .ifs(branches, orElse: elseBody, line: l)
            }
            try expectBlockEnd()
            return .ifs(branches, orElse: [], line: l)
        }
    }

    private mutating func parseFor(line l: Int) throws -> Stmt {
        var targets: [String] = []
        let paren = isOp("(")
        if paren { _ = advance() }
        repeat {
            if isOp(",") { _ = advance() }
            if isName("in") && !targets.isEmpty { break }
            targets.append(try expectName())
        } while isOp(",")
        if paren { try expectOp(")") }
        guard isName("in") else { throw err("expected 'in'") }
        _ = advance()
        let iter = try parseTuple(allowCond: false)
        var cond: Expr? = nil
        if isName("if") {
            _ = advance()
            cond = try parseExpression()
        }
        if isName("recursive") { throw err("recursive loops are not supported") }
        try expectBlockEnd()
        let (body, end) = try parseBody(until: ["else", "endfor"])
        var orElse: [Stmt] = []
        if end == "else" {
            try expectBlockEnd()
            (orElse, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .forLoop(targets: targets, iter: iter, cond: cond, body: body, orElse: orElse, line: l)
    }

    private mutating func parseSet(line l: Int) throws -> Stmt {
        let first = try expectName()
        var target = SetTarget.name(first)
        if isOp(".") {
            _ = advance()
            target = .attr(first, try expectName())
        } else if isOp(",") {
            var names = [first]
            while isOp(",") {
                _ = advance()
                if isOp("=") { break }
                names.append(try expectName())
            }
            target = .names(names)
        }
        if isOp("=") {
            _ = advance()
            let e = try parseTuple(allowCond: true)
            try expectBlockEnd()
            return .set(target, e, line: l)
        }
        guard case .name(let n) = target else { throw err("expected '='") }
        var filters: [FilterCall] = []
        if isOp("|") {
            _ = advance()
            filters = try parseFilterChain()
        }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(n, filters, body, line: l)
    }

    private mutating func parseParams() throws -> [(String, Expr?)] {
        var params: [(String, Expr?)] = []
        try expectOp("(")
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let n = try expectName()
            var def: Expr? = nil
            if isOp("=") {
                _ = advance()
                def = try parseExpression()
            }
            params.append((n, def))
        }
        try expectOp(")")
        return params
    }

    private mutating func parseMacro(line l: Int) throws -> Stmt {
        let name = try expectName()
        let params = try parseParams()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        if case .name = cur.kind { _ = advance() }
        try expectBlockEnd()
        return .macro(MacroDef(name: name, params: params, body: body, line: l))
    }

    private mutating func parseCall(line l: Int) throws -> Stmt {
        var params: [(String, Expr?)] = []
        if isOp("(") { params = try parseParams() }
        let callExpr = try parseExpression()
        guard case .call = callExpr else { throw err("expected call") }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(callExpr, params, body, line: l)
    }

    private mutating func parseFilterChain() throws -> [FilterCall] {
        var out: [FilterCall] = []
        repeat {
            if isOp("|") { _ = advance() }
            let l = line
            let name = try expectName()
            var args: [Expr] = []
            var kw: KwArgs = []
            if isOp("(") { (args, kw) = try parseArgs() }
            out.append(FilterCall(name: name, args: args, kwargs: kw, line: l))
        } while isOp("|")
        return out
    }

    // MARK: expressions

    /// `a, b` (a tuple) or a single expression.
    private mutating func parseTuple(allowCond: Bool) throws -> Expr {
        let first = allowCond ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            _ = advance()
            if case .blockEnd = cur.kind { break }
            if case .varEnd = cur.kind { break }
            if isOp(")") { break }
            items.append(allowCond ? try parseExpression() : try parseOr())
        }
        return .tuple(items)
    }

    /// Full expression including `a if c else b`.
    mutating func parseExpression() throws -> Expr {
        try enter()
        defer { depth -= 1 }
        var e = try parseOr()
        while isName("if") {
            _ = advance()
            let c = try parseOr()
            var other: Expr? = nil
            if isName("else") {
                _ = advance()
                other = try parseExpression()
            }
            e = .cond(c, e, other)
        }
        return e
    }

    private mutating func parseOr() throws -> Expr {
        var e = try parseAnd()
        while isName("or") { _ = advance(); e = .or(e, try parseAnd()) }
        return e
    }

    private mutating func parseAnd() throws -> Expr {
        var e = try parseNot()
        while isName("and") { _ = advance(); e = .and(e, try parseNot()) }
        return e
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            _ = advance()
            try enter()
            defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let l = line
        let first = try parseMath1()
        var ops: [(CompareOp, Expr)] = []
        while true {
            if case .op(let o) = cur.kind, let op = CompareOp(rawValue: o), op != .isIn, op != .notIn {
                _ = advance()
                ops.append((op, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                ops.append((.isIn, try parseMath1()))
            } else if isName("not"), peekName(1) == "in" {
                _ = advance(); _ = advance()
                ops.append((.notIn, try parseMath1()))
            } else { break }
        }
        return ops.isEmpty ? first : .compare(first, ops, line: l)
    }

    private mutating func parseMath1() throws -> Expr {
        var e = try parseConcat()
        while case .op(let o) = cur.kind, o == "+" || o == "-" {
            let l = line
            _ = advance()
            e = .binary(o == "+" ? .add : .sub, e, try parseConcat(), line: l)
        }
        return e
    }

    private mutating func parseConcat() throws -> Expr {
        var e = try parseMath2()
        while isOp("~") {
            let l = line
            _ = advance()
            e = .binary(.concat, e, try parseMath2(), line: l)
        }
        return e
    }

    private mutating func parseMath2() throws -> Expr {
        var e = try parsePow()
        while case .op(let o) = cur.kind, let op = BinaryOp(rawValue: o), [.mul, .div, .floorDiv, .mod].contains(op) {
            let l = line
            _ = advance()
            e = .binary(op, e, try parsePow(), line: l)
        }
        return e
    }

    private mutating func parsePow() throws -> Expr {
        var e = try parseUnary(withFilter: true)
        while isOp("**") {
            let l = line
            _ = advance()
            e = .binary(.pow, e, try parseUnary(withFilter: true), line: l)
        }
        return e
    }

    private mutating func parseUnary(withFilter: Bool) throws -> Expr {
        try enter()
        defer { depth -= 1 }
        let l = line
        var e: Expr
        if isOp("-") {
            _ = advance()
            e = .neg(try parseUnary(withFilter: false), line: l)
        } else if isOp("+") {
            _ = advance()
            e = .pos(try parseUnary(withFilter: false), line: l)
        } else {
            e = try parsePostfix(try parsePrimary())
        }
        if withFilter { e = try parseFilterExpr(e) }
        return e
    }

    private mutating func parsePrimary() throws -> Expr {
        let t = advance()
        switch t.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.null)
            default: return .name(n, line: t.line)
            }
        case .string(var s):
            while case .string(let more) = cur.kind { s += more; _ = advance() }
            return .literal(.string(s))
        case .int(let v): return .literal(.int(v))
        case .float(let v): return .literal(.double(v))
        case .op("("):
            if isOp(")") { _ = advance(); return .tuple([]) }
            let e = try parseTuple(allowCond: true)
            try expectOp(")")
            return e
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                pairs.append((k, try parseExpression()))
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw ChatTemplateError.syntax(line: t.line, message: "unexpected \(describe(t.kind))")
        }
    }

    private mutating func parseArgs() throws -> ([Expr], KwArgs) {
        try expectOp("(")
        var args: [Expr] = []
        var kw: KwArgs = []
        while !isOp(")") {
            if !args.isEmpty || !kw.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if case .name(let n) = cur.kind, i + 1 < toks.count, case .op("=") = toks[i + 1].kind {
                _ = advance(); _ = advance()
                kw.append((n, try parseExpression()))
            } else {
                if !kw.isEmpty { throw err("positional argument after keyword argument") }
                args.append(try parseExpression())
            }
        }
        try expectOp(")")
        return (args, kw)
    }

    private mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            let l = line
            if isOp(".") {
                _ = advance()
                switch advance().kind {
                case .name(let n): e = .attr(e, n, line: l)
                case .int(let v): e = .item(e, .literal(.int(v)), line: l)
                default: throw ChatTemplateError.syntax(line: l, message: "expected name after '.'")
                }
            } else if isOp("[") {
                _ = advance()
                e = try parseSubscript(e, line: l)
            } else if isOp("(") {
                let (a, k) = try parseArgs()
                e = .call(e, a, k, line: l)
            } else {
                return e
            }
        }
    }

    private mutating func parseSubscript(_ base: Expr, line l: Int) throws -> Expr {
        var parts: [Expr?] = [nil]
        var colons = 0
        while !isOp("]") {
            if isOp(":") {
                _ = advance()
                colons += 1
                if colons > 2 { throw err("invalid slice") }
                parts.append(nil)
            } else {
                if parts[parts.count - 1] != nil { throw err("expected ']'") }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        try expectOp("]")
        if colons == 0 {
            guard let idx = parts[0] else { throw err("expected subscript") }
            return .item(base, idx, line: l)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, parts[0], parts[1], parts[2], line: l)
    }

    private mutating func parseFilterExpr(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            let l = line
            if isOp("|") {
                _ = advance()
                let name = try expectName()
                var args: [Expr] = []
                var kw: KwArgs = []
                if isOp("(") { (args, kw) = try parseArgs() }
                e = .filter(e, name, args, kw, line: l)
            } else if isName("is") {
                _ = advance()
                var negated = false
                if isName("not") { _ = advance(); negated = true }
                let name = try expectName()
                var args: [Expr] = []
                if isOp("(") {
                    let (a, _) = try parseArgs()
                    args = a
                } else if startsPrimary(), !isName("else"), !isName("or"), !isName("and"), !isName("if") {
                    args = [try parsePostfix(try parsePrimary())]
                }
                e = .test(e, name, args, negated: negated, line: l)
            } else if isOp("(") || isOp(".") || isOp("[") {
                e = try parsePostfix(e)
            } else {
                return e
            }
        }
    }

    private func startsPrimary() -> Bool {
        switch cur.kind {
        case .name(let n): return !["in", "not", "is"].contains(n)
        case .string, .int, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
