/// Expression grammar of the parser (jinja2 `parser.py` precedence, see `Parser`).
extension Parser {
    // MARK: expressions

    /// `a, b` (a tuple) or a single expression.
    mutating func parseTuple(allowCond: Bool) throws -> Expr {
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

    mutating func parseOr() throws -> Expr {
        var e = try parseAnd()
        while isName("or") { _ = advance(); e = .or(e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws -> Expr {
        var e = try parseNot()
        while isName("and") { _ = advance(); e = .and(e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws -> Expr {
        if isName("not") {
            _ = advance()
            try enter()
            defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expr {
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

    mutating func parseMath1() throws -> Expr {
        var e = try parseConcat()
        while case .op(let o) = cur.kind, o == "+" || o == "-" {
            let l = line
            _ = advance()
            e = .binary(o == "+" ? .add : .sub, e, try parseConcat(), line: l)
        }
        return e
    }

    mutating func parseConcat() throws -> Expr {
        var e = try parseMath2()
        while isOp("~") {
            let l = line
            _ = advance()
            e = .binary(.concat, e, try parseMath2(), line: l)
        }
        return e
    }

    mutating func parseMath2() throws -> Expr {
        var e = try parsePow()
        while case .op(let o) = cur.kind, let op = BinaryOp(rawValue: o), [.mul, .div, .floorDiv, .mod].contains(op) {
            let l = line
            _ = advance()
            e = .binary(op, e, try parsePow(), line: l)
        }
        return e
    }

    mutating func parsePow() throws -> Expr {
        var e = try parseUnary(withFilter: true)
        while isOp("**") {
            let l = line
            _ = advance()
            e = .binary(.pow, e, try parseUnary(withFilter: true), line: l)
        }
        return e
    }

    mutating func parseUnary(withFilter: Bool) throws -> Expr {
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

    mutating func parsePrimary() throws -> Expr {
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

    mutating func parseArgs() throws -> ([Expr], KwArgs) {
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

    mutating func parsePostfix(_ base: Expr) throws -> Expr {
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

    mutating func parseSubscript(_ base: Expr, line l: Int) throws -> Expr {
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

    mutating func parseFilterExpr(_ base: Expr) throws -> Expr {
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

    func startsPrimary() -> Bool {
        switch cur.kind {
        case .name(let n): return !["in", "not", "is"].contains(n)
        case .string, .int, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
