// Lowering `GrammarExpr` into rules, and the checks a finished grammar must pass.
import JSON

/// One symbol of an alternative while building.
enum Symbol: Hashable {
    case bytes(ByteSet)
    case rule(Int)
}

/// Rules under construction: `rules[r]` is rule r's alternatives, each a sequence of symbols.
struct RuleSet {
    private(set) var rules: [[[Symbol]]] = []
    /// Shared rules by name (JSON string body, whitespace, ...) so equal pieces are one rule: the token matcher
    /// caches masks per grammar position, so sharing a rule shares its cache.
    var named: [String: Int] = [:]
    /// Rules of JSON string content (`stringBody` and the counted chains of `string(minLength:maxLength:)`), whose
    /// token masks `TokenGrammar` takes from the vocabulary's shared string masks (`StringTokenSets`).
    var stringRules: [StringRule] = []

    /// A rule laid out like the string body (its character alternatives in the same order, then the closing quote
    /// when `quoteOnly` or allowed), with the character counts that still bound it at the start of each alternative.
    struct StringRule {
        let rule: Int
        /// The rule is the closing quote alone (the end of a `maxLength` chain).
        let quoteOnly: Bool
        /// Characters that must still start before the closing quote.
        let minChars: Int
        /// Characters that may still start (nil: any number).
        let maxChars: Int?
    }

    /// A new rule with no alternatives yet (define it later: rules may refer to themselves).
    mutating func reserve() -> Int {
        rules.append([])
        return rules.count - 1
    }

    mutating func define(_ r: Int, _ alts: [[Symbol]]) { rules[r] = alts }

    /// A new rule with these alternatives.
    mutating func add(_ alts: [[Symbol]]) -> Int {
        let r = reserve()
        define(r, alts)
        return r
    }

    /// The shared rule `name`, made by `make` the first time.
    mutating func shared(_ name: String, _ make: (inout RuleSet) -> [[Symbol]]) -> Int {
        if let r = named[name] { return r }
        let r = reserve()
        named[name] = r
        define(r, make(&self))
        return r
    }

    static func literal(_ s: String) -> [Symbol] { s.utf8.map { .bytes(ByteSet($0)) } }

    /// Any one of `texts`, as a trie of rules: texts that share a prefix share its symbols, so the matcher follows
    /// one path per distinct next byte, not one per text (an enum of 10,000 values stays a handful of stacks
    /// wide). Built with a work list, not recursion.
    mutating func literalAlternatives(_ texts: [String]) -> [Symbol] {
        let sorted = Array(Set(texts.map { Array($0.utf8) })).sorted { $0.lexicographicallyPrecedes($1) }
        guard sorted.count > 1 else { return sorted.first.map { $0.map { .bytes(ByteSet($0)) } } ?? [] }
        func lcp(_ a: [UInt8], _ b: [UInt8]) -> Int {
            var n = 0
            while n < a.count && n < b.count && a[n] == b[n] { n += 1 }
            return n
        }
        // Work item: rule `rule` matches the rest (from byte `depth`) of sorted[lo..<hi], which share that prefix.
        let root = reserve()
        var work = [(rule: root, lo: 0, hi: sorted.count, depth: 0)]
        while let (rule, lo0, hi, depth) = work.popLast() {
            var alts: [[Symbol]] = []
            var lo = lo0
            if sorted[lo].count == depth {   // one text ends here (sorted first; texts are distinct)
                alts.append([])
                lo += 1
            }
            while lo < hi {
                var end = lo + 1
                while end < hi && sorted[end][depth] == sorted[lo][depth] { end += 1 }
                if end - lo == 1 {
                    alts.append(sorted[lo][depth...].map { .bytes(ByteSet($0)) })
                } else {
                    let shared = lcp(sorted[lo], sorted[end - 1])   // sorted: the group's common prefix
                    let next = reserve()
                    alts.append(sorted[lo][depth..<shared].map { .bytes(ByteSet($0)) } + [.rule(next)])
                    work.append((next, lo, end, shared))
                }
                lo = end
            }
            define(rule, alts)
        }
        return [.rule(root)]
    }

    /// `expr` as a sequence of symbols (alternatives and repetitions become new rules).
    mutating func lower(_ expr: GrammarExpr) throws(GrammarError) -> [Symbol] {
        switch expr {
        case .literal(let s): return Self.literal(s)
        case .bytes(let set): return [.bytes(set)]
        case .empty: return []
        case .sequence(let es):
            var out: [Symbol] = []
            for e in es { out += try lower(e) }
            return out
        case .alternatives(let es):
            var alts: [[Symbol]] = []
            for e in es { alts.append(try lower(e)) }
            if alts.count == 1 { return alts[0] }
            return [.rule(add(alts))]
        case .repeated(let e, let lo, let hi):
            return repeated(try lower(e), min: lo, max: hi)
        case .json(let schema):
            var c = JSONSchemaCompiler(root: schema)
            return try c.compile(into: &self)
        case .jsonObject:
            var c = JSONSchemaCompiler(root: .object([("type", .string("object"))]))
            return try c.compile(into: &self)
        }
    }

    /// `body` repeated `lo` to `hi` times (`hi` nil: unbounded). Tail calls keep the matcher's stacks flat.
    mutating func repeated(_ body: [Symbol], min lo: Int, max hi: Int?) -> [Symbol] {
        var out: [Symbol] = []
        for _ in 0..<lo { out += body }
        if let hi {
            guard hi > lo else { return out }
            // O_1 = body | ε ; O_k = body O_{k-1} | ε
            var prev = add([body, []])
            if hi - lo > 1 {
                for _ in 2...(hi - lo) { prev = add([body + [.rule(prev)], []]) }
            }
            return out + [.rule(prev)]
        }
        let star = reserve()
        define(star, [body + [.rule(star)], []])
        return out + [.rule(star)]
    }

    /// The flat grammar, after checking that no rule can reach itself without consuming a byte.
    func finish(root: Int) throws(GrammarError) -> Grammar {
        try checkLeftRecursion()
        var elements: [Grammar.Element] = []
        var alternatives: [[Int32]] = []
        for alts in rules {
            var starts: [Int32] = []
            for seq in alts {
                starts.append(Int32(elements.count))
                for s in seq {
                    switch s {
                    case .bytes(let b): elements.append(.bytes(b))
                    case .rule(let r): elements.append(.ref(Int32(r)))
                    }
                }
                elements.append(.end)
            }
            alternatives.append(starts)
        }
        return Grammar(elements: elements, alternatives: alternatives, root: Int32(root),
                       stringRules: stringRules.compactMap { s in
                           // A rule's elements run from its first alternative to the `.end` of its last.
                           guard let first = alternatives[s.rule].first, var end = alternatives[s.rule].last else { return nil }
                           while elements[Int(end)] != .end { end += 1 }
                           return Grammar.StringRule(start: first, end: end + 1, rule: Int32(s.rule), quoteOnly: s.quoteOnly,
                                                     minChars: Int32(s.minChars), maxChars: s.maxChars.map(Int32.init) ?? -1)
                       }.sorted { $0.start < $1.start })
    }

    /// Nullable rules (those that can match the empty string), by fixpoint.
    private func nullable() -> [Bool] {
        var n = [Bool](repeating: false, count: rules.count)
        var changed = true
        while changed {
            changed = false
            for (r, alts) in rules.enumerated() where !n[r] {
                if alts.contains(where: { seq in seq.allSatisfy { if case .rule(let x) = $0 { return n[x] } else { return false } } }) {
                    n[r] = true
                    changed = true
                }
            }
        }
        return n
    }

    /// Fails when a rule can call itself before any byte is consumed (the matcher's expansion would not end).
    private func checkLeftRecursion() throws(GrammarError) {
        let nul = nullable()
        // left[r]: rules r can enter before consuming a byte.
        let left: [[Int]] = rules.map { alts in
            var out: [Int] = []
            for seq in alts {
                for s in seq {
                    guard case .rule(let x) = s else { break }
                    out.append(x)
                    if !nul[x] { break }
                }
            }
            return out
        }
        // Iterative DFS for a cycle.
        var color = [UInt8](repeating: 0, count: rules.count)   // 0 new, 1 on stack, 2 done
        for start in 0..<rules.count where color[start] == 0 {
            var stack: [(Int, Int)] = [(start, 0)]
            color[start] = 1
            while let (r, i) = stack.last {
                if i < left[r].count {
                    stack[stack.count - 1].1 += 1
                    let x = left[r][i]
                    if color[x] == 1 { throw GrammarError.leftRecursive }
                    if color[x] == 0 { color[x] = 1; stack.append((x, 0)) }
                } else {
                    color[r] = 2
                    stack.removeLast()
                }
            }
        }
    }
}

/// A plain byte-level matcher over explicit stacks (llama.cpp's `llama_grammar_advance_stack` scheme): the
/// reference the token matcher is tested against, and `Grammar.matches`.
struct StackSet {
    let grammar: Grammar
    /// Each stack lists element positions, top last; the top is always a `.bytes` element. An empty stack means
    /// the grammar is complete.
    private(set) var stacks: [[Int32]] = []

    init(grammar: Grammar) {
        self.grammar = grammar
        var out: [[Int32]] = [], seen = Set<[Int32]>()
        for a in grammar.alternatives[Int(grammar.root)] { Self.expand(grammar, [a], into: &out, seen: &seen) }
        stacks = out
    }

    var isAccepting: Bool { stacks.contains { $0.isEmpty } }

    /// Consumes one byte; false (and no stacks) when no stack accepts it.
    mutating func advance(_ b: UInt8) -> Bool {
        var out: [[Int32]] = [], seen = Set<[Int32]>()
        for s in stacks {
            guard let top = s.last, case .bytes(let set) = grammar.elements[Int(top)], set.contains(b) else { continue }
            var next = s
            next[next.count - 1] = top + 1
            Self.expand(grammar, next, into: &out, seen: &seen)
        }
        stacks = out
        return !out.isEmpty
    }

    /// Expands the top of `stack` until it is a byte set (or the stack is empty) and adds the results not in `seen`.
    /// Depth first with its own work list: a chain of tail references can be thousands of rules long.
    static func expand(_ g: Grammar, _ stack: [Int32], into out: inout [[Int32]], seen: inout Set<[Int32]>) {
        var work = [stack]
        while var s = work.popLast() {
            guard let top = s.last else {
                if seen.insert([]).inserted { out.append([]) }
                continue
            }
            switch g.elements[Int(top)] {
            case .bytes:
                if seen.insert(s).inserted { out.append(s) }
            case .end:
                s.removeLast()
                work.append(s)
            case .ref(let r):
                s.removeLast()
                if g.elements[Int(top) + 1] != .end { s.append(top + 1) }
                for a in g.alternatives[Int(r)].reversed() { work.append(s + [a]) }
            }
        }
    }
}
