// A grammar bound to a vocabulary: the pushdown automaton the matcher runs, and its token masks.
//
// NOTE: stacks. A matcher state is a set of stacks. A stack is a node of a persistent tree, hash-consed so equal
// stacks have one id: node = (grammar position, parent node); node 0 is the empty stack (the grammar is
// complete). A top node's position is always a byte set; parents hold positions still to be expanded (after a rule
// reference). A reference at the end of an alternative pushes nothing (a tail call), so loops keep stacks flat.
//
// NOTE: masks (XGrammar's adaptive token mask cache). For a top position P, the tokens accepted from the stack
// (P, empty) split into those that stay inside P's rule — the same whatever lies below, so computed once per P by
// one walk of the sorted vocabulary — and those that finish P's rule part-way ("uncertain": the rest of the token
// depends on the stack below). A real stack (P, parent) then costs a copy of P's certain set plus a check of its
// few uncertain tokens against the parent. Masks are cached per stack node and per state.

/// A grammar compiled against a vocabulary, with every cache the matcher uses. Not thread-safe: one thread (the
/// engine's) uses it at a time; matchers (`GrammarMatcher`) share it.
public final class TokenGrammar {
    public let grammar: Grammar
    public let vocabulary: TokenVocabulary

    private let elements: [Grammar.Element]
    private let alternatives: [[Int32]]
    // Stack nodes: position and parent of each id (id 0: the empty stack).
    private var nodePos: [Int32] = [-1]
    private var nodeParent: [Int32] = [-1]
    private var nodeIds: [Int64: Int32] = [:]
    /// Node lists (transitions, expansions) as ranges of `pool`, packed `start << 32 | count`.
    private var pool: [Int32] = []
    private var transitions: [Int64: Int64] = [:]
    private var expansions: [Int32: Int64] = [:]
    /// Tokens each position accepts whatever the stack below (`TokenSet`).
    private var certain: [Int32: TokenSet] = [:]
    private var uncertain: [Int32: [(token: Int32, offset: Int32)]] = [:]
    private var nodeMasks: [Int32: TokenMask] = [:]
    private var nodeExtras: [Int32: [Int32]] = [:]
    private var stateMasks: [[Int32]: TokenMask] = [:]
    private var freeStates: [[Int32]: Bool] = [:]
    private let eogMask: TokenMask
    /// Most masks `nodeMasks` and `stateMasks` each hold (~16 MiB of rows each); when full a cache starts over, as
    /// its masks can be made again.
    private let maskCacheLimit: Int
    /// The state before any byte.
    public private(set) var initialState: [Int32] = []

    /// Whether string-content positions take their masks from `vocabulary.stringSets` (false only for the grammar
    /// those shared sets are computed with).
    private let sharesStringMasks: Bool

    public convenience init(grammar: Grammar, vocabulary: TokenVocabulary) {
        self.init(grammar: grammar, vocabulary: vocabulary, sharesStringMasks: true)
    }

    /// - Parameter sharesStringMasks: false computes string-content positions like any other (the shared sets'
    ///   own grammar; tests compare the two).
    init(grammar: Grammar, vocabulary: TokenVocabulary, sharesStringMasks: Bool) {
        self.sharesStringMasks = sharesStringMasks
        self.grammar = grammar
        self.vocabulary = vocabulary
        elements = grammar.elements
        alternatives = grammar.alternatives
        var eog = TokenMask(size: vocabulary.size)
        for id in vocabulary.endOfGeneration { eog.insert(id) }
        eogMask = eog
        maskCacheLimit = max(64, (16 << 20) / max(1, eog.words.count * 8))
        var start = NodeList()
        for a in alternatives[Int(grammar.root)] { expand(a, parent: 0, into: &start) }
        initialState = start.items.sorted()
    }

    /// Number of stack nodes made so far (diagnostics).
    public var nodeCount: Int { nodePos.count }

    /// Approximate bytes this grammar holds: its rules, token masks (node, state and position masks), position and
    /// node token lists, stack nodes and their transition and expansion tables. What `GrammarCache` budgets.
    public var cachedBytes: Int {
        var positions = 0
        for (pos, set) in certain where !(sharesStringMasks && grammar.stringPosition(pos) != nil) {   // shared sets are the vocabulary's
            switch set {
            case .list(let ids): positions += 16 + ids.count * 4
            case .mask: positions += 16 + eogMask.words.count * 8
            }
        }
        for (pos, list) in uncertain where !(sharesStringMasks && grammar.stringPosition(pos) != nil) { positions += 16 + list.count * 8 }
        let masks = (nodeMasks.count + stateMasks.count) * (eogMask.words.count * 8 + 32)
            + nodeExtras.values.reduce(0) { $0 + 48 + $1.count * 4 }
        let rules = grammar.elements.count * MemoryLayout<Grammar.Element>.stride
            + grammar.alternatives.reduce(0) { $0 + 32 + $1.count * 4 }
        let stateKeys = stateMasks.keys.reduce(0) { $0 + $1.count * 4 } + freeStates.keys.reduce(0) { $0 + $1.count * 4 }
        // Dictionary entries cost about twice their key and value.
        let tables = nodePos.count * 8 + nodeIds.count * 32 + pool.count * 4 + transitions.count * 32 + expansions.count * 24
        return positions + masks + stateKeys + tables + rules
    }

    private func node(_ pos: Int32, _ parent: Int32) -> Int32 {
        let key = Int64(pos) << 32 | Int64(UInt32(bitPattern: parent))
        if let n = nodeIds[key] { return n }
        let n = Int32(nodePos.count)
        nodePos.append(pos)
        nodeParent.append(parent)
        nodeIds[key] = n
        return n
    }

    /// Nodes in insertion order without repeats. A short list is scanned; a long one (an object with hundreds of
    /// optional properties puts one stack per property in a state) is indexed, so building a state stays linear.
    /// `items[start...]` is the list; what precedes `start` is left as it is (the walk in `computePosition` keeps
    /// every depth in one buffer).
    struct NodeList {
        private(set) var items: [Int32]
        private let start: Int
        private var index: Set<Int32>?

        init(appendingTo items: [Int32] = [], from start: Int = 0) {
            self.items = items
            self.start = start
        }

        /// Appends `x` unless the list has it; returns whether it was appended.
        @discardableResult @inline(__always) mutating func insert(_ x: Int32) -> Bool {
            if index != nil {
                guard index!.insert(x).inserted else { return false }
                items.append(x)
                return true
            }
            for y in start..<items.count where items[y] == x { return false }
            items.append(x)
            if items.count - start == 32 { index = Set(items[start...]) }
            return true
        }
    }

    /// Expands position `pos` over `parent` until every top is a byte set (or the stack is empty). Depth first, with
    /// its own work list: a chain of tail references (an object's optional properties) can be thousands of rules
    /// long, deeper than a thread's stack allows recursion.
    private func expand(_ pos: Int32, parent: Int32, into out: inout NodeList) {
        var work: [(pos: Int32, parent: Int32)] = [(pos, parent)]
        while let (p, par) = work.popLast() {
            switch elements[Int(p)] {
            case .bytes: out.insert(node(p, par))
            case .end:
                if par == 0 { out.insert(0); continue }
                let r = expansion(par)
                for k in 0..<Int(r & 0xFFFF_FFFF) { out.insert(pool[Int(r >> 32) + k]) }
            case .ref(let rule):
                let cont = elements[Int(p) + 1] == .end ? par : node(p + 1, par)
                for a in alternatives[Int(rule)].reversed() { work.append((a, cont)) }
            }
        }
    }

    private func store(_ list: [Int32]) -> Int64 {
        let start = Int64(pool.count)
        pool += list
        return start << 32 | Int64(list.count)
    }

    /// The expansion of a parent node (its position is still to be expanded).
    private func expansion(_ n: Int32) -> Int64 {
        if let r = expansions[n] { return r }
        var out = NodeList()
        expand(nodePos[Int(n)], parent: nodeParent[Int(n)], into: &out)
        let r = store(out.items)
        expansions[n] = r
        return r
    }

    /// The stacks after top node `n` consumes byte `b` (a range of `pool`; count 0 when it does not match).
    @inline(__always) private func step(_ n: Int32, _ b: UInt8) -> Int64 {
        guard n != 0, case .bytes(let set) = elements[Int(nodePos[Int(n)])], set.contains(b) else { return 0 }
        let key = Int64(n) << 8 | Int64(b)
        if let r = transitions[key] { return r }
        var out = NodeList()
        expand(nodePos[Int(n)] + 1, parent: nodeParent[Int(n)], into: &out)
        let r = store(out.items)
        transitions[key] = r
        return r
    }

    /// The state after `state` consumes `b` (empty: rejected).
    func advance(_ state: [Int32], _ b: UInt8) -> [Int32] {
        var out = NodeList()
        for n in state {
            let r = step(n, b)
            for k in 0..<Int(r & 0xFFFF_FFFF) { out.insert(pool[Int(r >> 32) + k]) }
        }
        return out.items
    }

    /// The state after `state` consumes `bytes`, sorted (empty: rejected).
    func advance<C: Collection>(_ state: [Int32], bytes: C) -> [Int32] where C.Element == UInt8 {
        var cur = state
        for b in bytes {
            cur = advance(cur, b)
            if cur.isEmpty { return [] }
        }
        return cur.sorted()
    }

    /// Whether `state` is free: the grammar may end there and every byte leaves it where it is (the any-bytes tail a
    /// lazy grammar ends with, `LazyGrammar`). Cached per state.
    public func isFree(_ state: [Int32]) -> Bool {
        // Only a state where the grammar may end can be free (inside a tool call none is): no lookup, no allocation.
        guard state.first == 0 else { return false }
        if let f = freeStates[state] { return f }
        let f = (0...255).allSatisfy { advance(state, bytes: CollectionOfOne(UInt8($0))) == state }
        freeStates[state] = f
        return f
    }

    /// Allowed tokens in `state` (a sorted state of this grammar); end-of-generation only when it is complete.
    public func mask(_ state: [Int32]) -> TokenMask {
        if state.count == 1 { return nodeMask(state[0]) }
        if let m = stateMasks[state] { return m }
        // A wide state (one stack per optional property or enum value) is unioned directly: a mask per node would
        // cost a vocabulary row each.
        var m = TokenMask(size: vocabulary.size)
        for n in state {
            if let nm = nodeMasks[n] { m.formUnion(nm) } else { addAllowed(n, into: &m) }
        }
        if stateMasks.count >= maskCacheLimit { stateMasks.removeAll(keepingCapacity: true) }
        stateMasks[state] = m
        return m
    }

    private func nodeMask(_ n: Int32) -> TokenMask {
        if let m = nodeMasks[n] { return m }
        var m = TokenMask(size: vocabulary.size)
        addAllowed(n, into: &m)
        if nodeMasks.count >= maskCacheLimit { nodeMasks.removeAll(keepingCapacity: true) }
        nodeMasks[n] = m
        return m
    }

    /// Adds the tokens stack `n` accepts to `m`.
    private func addAllowed(_ n: Int32, into m: inout TokenMask) {
        if n == 0 { m.formUnion(eogMask); return }
        let pos = nodePos[Int(n)], parent = nodeParent[Int(n)]
        computePosition(pos)
        switch certain[pos]! {
        case .list(let ids): for id in ids { m.insert(id) }
        case .mask(let c): m.formUnion(c)
        }
        guard parent != 0 else { return }
        for id in extras(n) { m.insert(id) }
    }

    /// The uncertain tokens of node `n`'s position that its parent lets through (cached per node: a wide state
    /// shares most nodes with the state before it, and a list costs bytes where a node mask costs a row).
    private func extras(_ n: Int32) -> [Int32] {
        if let e = nodeExtras[n] { return e }
        let pos = nodePos[Int(n)], parent = nodeParent[Int(n)]
        var out: [Int32] = []
        // The parent is expanded only for a token that needs it: most positions have none, and expanding every
        // parent of a wide state (one stack per optional property) would cost the square of its width.
        var base: Int64?
        // Per first byte after the offset: 0 no stack of the parent takes it, 1 some does, 2 not known yet. Most
        // uncertain tokens (digits then punctuation, after a number) fail on that byte, so each costs a lookup.
        var firstByte = [UInt8](repeating: 2, count: 256)
        for (token, offset) in uncertain[pos]! {
            if base == nil { base = expansion(parent) }
            guard let b = vocabulary.byte(of: token, at: Int(offset)) else { continue }
            if firstByte[Int(b)] == 2 { firstByte[Int(b)] = accepts(base!, CollectionOfOne(b)[...]) ? 1 : 0 }
            if firstByte[Int(b)] == 0 { continue }
            if accepts(base!, vocabulary.bytes(of: token).dropFirst(Int(offset))) { out.append(token) }
        }
        if nodeExtras.count >= 1 << 20 { nodeExtras.removeAll(keepingCapacity: true) }
        nodeExtras[n] = out
        return out
    }

    /// Whether some stack of the node list `r` (a range of `pool`) accepts every byte of `bytes`: depth first,
    /// stopping at the first that does, allocating nothing (a wide parent, one stack per optional property, is
    /// checked for each uncertain token). Indices, not slices, into `pool`: `step` may append to it.
    private func accepts<C: Collection>(_ r: Int64, _ bytes: C) -> Bool where C.Element == UInt8, C.SubSequence == C {
        guard let b = bytes.first else { return r & 0xFFFF_FFFF > 0 }
        let start = Int(r >> 32)
        for k in 0..<Int(r & 0xFFFF_FFFF) {
            let next = step(pool[start + k], b)
            if next & 0xFFFF_FFFF > 0 && accepts(next, bytes.dropFirst()) { return true }
        }
        return false
    }

    /// Fills `certain[pos]` and `uncertain[pos]`: from the vocabulary's shared string sets for string content, else
    /// by one walk of the vocabulary.
    private func computePosition(_ pos: Int32) {
        if certain[pos] != nil { return }
        if sharesStringMasks, let sp = grammar.stringPosition(pos) {
            (certain[pos], uncertain[pos]) = vocabulary.stringSets.sets(sp, vocabulary: vocabulary)
            return
        }
        let (accepted, open) = walk(pos)
        certain[pos] = TokenSet(accepted, size: vocabulary.size)
        uncertain[pos] = open
    }

    /// One walk of the sorted vocabulary from the stack (pos, empty): the tokens certainly accepted, and those that
    /// finish pos's rule part-way (with the byte offset where it finished).
    func walk(_ pos: Int32) -> (accepted: [Int32], open: [(token: Int32, offset: Int32)]) {
        let v = vocabulary
        var accepted: [Int32] = []
        var open: [(token: Int32, offset: Int32)] = []
        // The stack sets after each depth of the current token: buf[depthStart[d]..<depthStart[d + 1]].
        var buf: [Int32] = [node(pos, 0)]
        var depthStart = [0, 1]
        var reachedEnd = [false]
        var valid = 0
        var j = 0
        let count = v.sorted.count
        while j < count {
            let off = Int(v.offsets[j]), len = Int(v.offsets[j + 1]) - off
            var d = min(Int(v.lcpPrevious[j]), valid)
            buf.removeSubrange(depthStart[d + 1]...)
            depthStart.removeSubrange((d + 2)...)
            reachedEnd.removeSubrange((d + 1)...)
            while d < len {
                let b = v.bytes[off + d]
                let from = depthStart[d], to = depthStart[d + 1]
                var next = NodeList(appendingTo: buf, from: to)
                buf = []   // `next` owns the storage, so appends stay in place
                var end = false
                for k in from..<to {
                    let r = step(next.items[k], b)
                    for q in 0..<Int(r & 0xFFFF_FFFF) {
                        let x = pool[Int(r >> 32) + q]
                        if next.insert(x), x == 0 { end = true }
                    }
                }
                buf = next.items
                if buf.count == to { break }
                depthStart.append(buf.count)
                reachedEnd.append(end)
                d += 1
            }
            valid = d
            let token = v.sorted[j]
            if d == len {
                accepted.append(token)
                j += 1
                continue
            }
            var pending = false
            if d >= 1 {
                for k in 1...d where reachedEnd[k] { open.append((token, Int32(k))); pending = true }
            }
            j = pending ? j + 1 : v.subtreeEnd(j, prefix: d + 1)
        }
        return (accepted, open)
    }
}
