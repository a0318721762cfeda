/// Binary operators of the expression language (arithmetic, `~` concatenation).
enum BinaryOp: String, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**", concat = "~"
}

/// Comparison operators (chainable as in Python: `a < b < c`).
enum CompareOp: String, Sendable {
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", isIn = "in", notIn = "not in"
}

/// Keyword argument list of a call, filter or test, in source order.
typealias KwArgs = [(String, Expr)]

/// Expression tree. `line` fields locate runtime errors.
indirect enum Expr: Sendable {
    case literal(JinjaValue)
    case name(String, line: Int)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attr(Expr, String, line: Int)
    case item(Expr, Expr, line: Int)
    case slice(Expr, Expr?, Expr?, Expr?, line: Int)
    case call(Expr, [Expr], KwArgs, line: Int)
    case filter(Expr, String, [Expr], KwArgs, line: Int)
    case test(Expr, String, [Expr], negated: Bool, line: Int)
    case not(Expr)
    case neg(Expr, line: Int)
    case pos(Expr, line: Int)
    case binary(BinaryOp, Expr, Expr, line: Int)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case compare(Expr, [(CompareOp, Expr)], line: Int)
    case cond(Expr, Expr, Expr?)
}

/// Target of `{% set %}`: a variable, a namespace attribute or a tuple of variables.
enum SetTarget: Sendable {
    case name(String)
    case attr(String, String)
    case names([String])
}

/// A filter application inside `{% filter %}` or `{% set x | f %}`.
struct FilterCall: Sendable {
    let name: String
    let args: [Expr]
    let kwargs: KwArgs
    let line: Int
}

/// Statement tree.
indirect enum Stmt: Sendable {
    case text(String)
    case output(Expr, line: Int)
    case ifs([(Expr, [Stmt])], orElse: [Stmt], line: Int)
    case forLoop(targets: [String], iter: Expr, cond: Expr?, body: [Stmt], orElse: [Stmt], line: Int)
    case set(SetTarget, Expr, line: Int)
    case setBlock(String, [FilterCall], [Stmt], line: Int)
    case macro(MacroDef)
    case callBlock(Expr, [(String, Expr?)], [Stmt], line: Int)
    case filterBlock([FilterCall], [Stmt], line: Int)
    case with([(String, Expr)], [Stmt], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}

/// `{% macro name(params) %}body{% endmacro %}`.
final class MacroDef: Sendable {
    let name: String
    let params: [(String, Expr?)]
    let body: [Stmt]
    let line: Int
    init(name: String, params: [(String, Expr?)], body: [Stmt], line: Int) {
        self.name = name
        self.params = params
        self.body = body
        self.line = line
    }
}
