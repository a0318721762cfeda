/// Recursive-descent parser over lexer tokens, following jinja2's grammar and operator precedence
/// (`jinja2/parser.py`: or → and → not → compare → + - → ~ → * / // % → ** → unary → primary/postfix/filters/tests).
struct Parser {
    let toks: [Token]
    var i = 0
    var depth = 0
    static let maxDepth = 120

    init(tokens: [Token]) { toks = tokens }

    var cur: Token { toks[i] }
    var line: Int { toks[i].line }

    func err(_ msg: String) -> ChatTemplateError { .syntax(line: line, message: msg) }

    mutating func advance() -> Token {
        let t = toks[i]
        if i < toks.count - 1 { i += 1 }
        return t
    }

    func isOp(_ s: String) -> Bool { if case .op(s) = cur.kind { return true }; return false }
    func isName(_ s: String) -> Bool { if case .name(s) = cur.kind { return true }; return false }
    func peekName(_ offset: Int) -> String? {
        guard i + offset < toks.count, case .name(let n) = toks[i + offset].kind else { return nil }
        return n
    }

    mutating func expectOp(_ s: String) throws {
        guard isOp(s) else { throw err("expected '\(s)', got \(describe(cur.kind))") }
        _ = advance()
    }

    mutating func expectName() throws -> String {
        guard case .name(let n) = cur.kind else { throw err("expected name, got \(describe(cur.kind))") }
        _ = advance()
        return n
    }

    mutating func expectBlockEnd() throws {
        guard case .blockEnd = cur.kind else { throw err("expected end of statement block, got \(describe(cur.kind))") }
        _ = advance()
    }

    func describe(_ t: Tok) -> String {
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

    mutating func enter() throws {
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
    mutating func parseBody(until: Set<String>) throws -> ([Stmt], String?) {
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

    mutating func parseStatement() throws -> Stmt {
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

    mutating func parseIf(line l: Int) throws -> Stmt {
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

    mutating func parseFor(line l: Int) throws -> Stmt {
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

    mutating func parseSet(line l: Int) throws -> Stmt {
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

    mutating func parseParams() throws -> [(String, Expr?)] {
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

    mutating func parseMacro(line l: Int) throws -> Stmt {
        let name = try expectName()
        let params = try parseParams()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        if case .name = cur.kind { _ = advance() }
        try expectBlockEnd()
        return .macro(MacroDef(name: name, params: params, body: body, line: l))
    }

    mutating func parseCall(line l: Int) throws -> Stmt {
        var params: [(String, Expr?)] = []
        if isOp("(") { params = try parseParams() }
        let callExpr = try parseExpression()
        guard case .call = callExpr else { throw err("expected call") }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(callExpr, params, body, line: l)
    }

    mutating func parseFilterChain() throws -> [FilterCall] {
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
}
