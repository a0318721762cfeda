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
    private var certain: [Int32: TokenMask] = [:]
    private var uncertain: [Int32: [(token: Int32, offset: Int32)]] = [:]
    private var nodeMasks: [Int32: TokenMask] = [:]
    private var stateMasks: [[Int32]: TokenMask] = [:]
    private var freeStates: [[Int32]: Bool] = [:]
    private let eogMask: TokenMask
    /// The state before any byte.
    public private(set) var initialState: [Int32] = []

    public init(grammar: Grammar, vocabulary: TokenVocabulary) {
        self.grammar = grammar
        self.vocabulary = vocabulary
        elements = grammar.elements
        alternatives = grammar.alternatives
        var eog = TokenMask(size: vocabulary.size)
        for id in vocabulary.endOfGeneration { eog.insert(id) }
        eogMask = eog
        var start: [Int32] = []
        for a in alternatives[Int(grammar.root)] { expand(a, parent: 0, into: &start) }
        initialState = start.sorted()
    }

    /// Number of stack nodes made so far (diagnostics).
    public var nodeCount: Int { nodePos.count }

    private func node(_ pos: Int32, _ parent: Int32) -> Int32 {
        let key = Int64(pos) << 32 | Int64(UInt32(bitPattern: parent))
        if let n = nodeIds[key] { return n }
        let n = Int32(nodePos.count)
        nodePos.append(pos)
        nodeParent.append(parent)
        nodeIds[key] = n
        return n
    }

    @inline(__always) private static func addUnique(_ x: Int32, _ out: inout [Int32]) {
        if !out.contains(x) { out.append(x) }
    }

    /// Expands position `pos` over `parent` until every top is a byte set (or the stack is empty).
    private func expand(_ pos: Int32, parent: Int32, into out: inout [Int32]) {
        switch elements[Int(pos)] {
        case .bytes: Self.addUnique(node(pos, parent), &out)
        case .end:
            if parent == 0 { Self.addUnique(0, &out); return }
            let r = expansion(parent)
            for k in 0..<Int(r & 0xFFFF_FFFF) { Self.addUnique(pool[Int(r >> 32) + k], &out) }
        case .ref(let rule):
            let cont = elements[Int(pos) + 1] == .end ? parent : node(pos + 1, parent)
            for a in alternatives[Int(rule)] { expand(a, parent: cont, into: &out) }
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
        var out: [Int32] = []
        expand(nodePos[Int(n)], parent: nodeParent[Int(n)], into: &out)
        let r = store(out)
        expansions[n] = r
        return r
    }

    /// The stacks after top node `n` consumes byte `b` (a range of `pool`; count 0 when it does not match).
    @inline(__always) private func step(_ n: Int32, _ b: UInt8) -> Int64 {
        guard n != 0, case .bytes(let set) = elements[Int(nodePos[Int(n)])], set.contains(b) else { return 0 }
        let key = Int64(n) << 8 | Int64(b)
        if let r = transitions[key] { return r }
        var out: [Int32] = []
        expand(nodePos[Int(n)] + 1, parent: nodeParent[Int(n)], into: &out)
        let r = store(out)
        transitions[key] = r
        return r
    }

    /// The state after `state` consumes `b` (empty: rejected).
    func advance(_ state: [Int32], _ b: UInt8) -> [Int32] {
        var out: [Int32] = []
        for n in state {
            let r = step(n, b)
            for k in 0..<Int(r & 0xFFFF_FFFF) { Self.addUnique(pool[Int(r >> 32) + k], &out) }
        }
        return out
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
        var m = TokenMask(size: vocabulary.size)
        for n in state { m.formUnion(nodeMask(n)) }
        stateMasks[state] = m
        return m
    }

    private func nodeMask(_ n: Int32) -> TokenMask {
        if let m = nodeMasks[n] { return m }
        if n == 0 { return eogMask }
        let pos = nodePos[Int(n)], parent = nodeParent[Int(n)]
        computePosition(pos)
        var m = certain[pos]!
        if parent != 0 {
            let r = expansion(parent)
            let base = Array(pool[Int(r >> 32)..<Int(r >> 32) + Int(r & 0xFFFF_FFFF)])
            for (token, offset) in uncertain[pos]! where !m.allows(token) {
                let b = vocabulary.bytes(of: token)
                if !advance(base, bytes: b.dropFirst(Int(offset))).isEmpty { m.insert(token) }
            }
        }
        nodeMasks[n] = m
        return m
    }

    /// One walk of the sorted vocabulary from the stack (pos, empty): the tokens certainly accepted, and those that
    /// finish pos's rule part-way (with the byte offset where it finished).
    private func computePosition(_ pos: Int32) {
        if certain[pos] != nil { return }
        let v = vocabulary
        var accepted = TokenMask(size: v.size)
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
                var end = false
                for k in from..<to {
                    let r = step(buf[k], b)
                    let s = Int(r >> 32)
                    for q in 0..<Int(r & 0xFFFF_FFFF) {
                        let x = pool[s + q]
                        var seen = false
                        for y in to..<buf.count where buf[y] == x { seen = true; break }
                        if !seen { buf.append(x); if x == 0 { end = true } }
                    }
                }
                if buf.count == to { break }
                depthStart.append(buf.count)
                reachedEnd.append(end)
                d += 1
            }
            valid = d
            let token = v.sorted[j]
            if d == len {
                accepted.insert(token)
                j += 1
                continue
            }
            var pending = false
            if d >= 1 {
                for k in 1...d where reachedEnd[k] { open.append((token, Int32(k))); pending = true }
            }
            j = pending ? j + 1 : v.subtreeEnd(j, prefix: d + 1)
        }
        certain[pos] = accepted
        uncertain[pos] = open
    }
}
