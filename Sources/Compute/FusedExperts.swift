// The shared and routed SwiGLU experts of a step's tokens as a few byte-balanced pool jobs (the MoE path for decode
// steps and short prefill chunks).
//
// A DeepSeek-style MoE layer reads the router, the shared expert(s) and the k routed experts of every token: many
// small matrices (1408 × 2048 for V2-Lite). One pool job per matrix costs a wake-up and a barrier each (~30 per
// layer and token) and leaves threads idle at every barrier; running each token of a batch on its own re-reads an
// expert once per token that chose it. Here a layer is three jobs for all the step's tokens together, and each
// expert's weights are read once per step, against the tokens that chose it (llama.cpp `mul_mat_id`,
// ktransformers' forward_many):
//
// NOTE: n tokens through one MoE layer:
// ```
//  quantize x [n, embd] once per partner format (q8_0 / q8_1 / q8_K)                          (calling thread)
//  job 1: router rows (→ logits [n, E]) for all n                                            one item list
//  route every token, bucket the assignments by expert (`ExpertBuckets`)                     (caller)
//      ─▶ one slot for the shared expert(s) (all n tokens), one per distinct routed expert, holding the tokens
//         that chose it and their routing weights
//  job 2: gate/up rows of every slot against its tokens (→ h = SiLU(g)·u per (e, t)); the shared
//         slot's items (compute-bound from 4 tokens) spread among the routed ones (memory-bound)  one item list
//  quantize every h_(e,t)                                                                    (calling thread)
//  job 3: down rows: out[t][r] = Σ_j w_(t,j) · (down_(e_j)[r] · h_(e_j,t)) for each token t, terms in the order
//         the caller gave them (shared first, then top-k order), all slots per row range: no scatter conflicts
// ```
// Items are row ranges of about the same cost (weight bytes, more for slots with more tokens), claimed dynamically
// from the pool, so slots of different widths, types and token counts balance and a descheduled thread's share is
// taken by the others. Each item hints the start of the next item's slice into L2 (`ck_prefetch_l2`): consecutive
// items usually sit in different experts, which the hardware prefetchers cannot follow. Weights are read where they
// are (the file mapping, or a `WeightRepacker` copy; repacked Q4_1/Q8_0 use their interleaved kernels). The
// arithmetic per output element is that of `Matmul` (the same kernel for the same number of tokens) +
// `Ops.siluMul` + a weighted sum in term order, so a one-token step equals the unfused per-token path exactly.
import CKernels

/// One SwiGLU expert of a fused step: `down · (SiLU(gate · x) ⊙ (up · x))`.
public struct FusedExpert {
    /// `[ffn, embd]`.
    public var gate: WeightMatrix
    /// `[ffn, embd]`.
    public var up: WeightMatrix
    /// `[embd, ffn]`.
    public var down: WeightMatrix

    /// An expert of the three matrices.
    public init(gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix) {
        self.gate = gate
        self.up = up
        self.down = down
    }
}

/// Runs the experts (shared and routed) of up to `maxTokens` tokens as byte-balanced pool jobs; see the file header.
/// Scratch is sized at init; a step (`begin`, `add`/`assign`, `gateUp`, `down`) allocates nothing. Not thread-safe
/// (one caller, like `Matmul`).
public final class FusedExperts: @unchecked Sendable {
    /// The pool the jobs run on.
    public let pool: ThreadPool
    /// Model width (input of gate/up, output of down).
    public let embd: Int
    /// Largest expert hidden width.
    public let maxFFN: Int
    /// Most tokens one step holds.
    public let maxTokens: Int
    /// Most experts (slots) one step holds.
    public let maxSlots: Int
    /// Most (slot, token) assignments one step holds.
    public let maxAssignments: Int

    /// Tokens run so far (summed over `begin` calls), for tests and diagnostics.
    public private(set) var tokens = 0

    /// Experts of the step `[maxSlots]`, with the range of their assignments `[maxSlots + 1]` (slot s owns
    /// assignments `slotStart[s] ..< slotStart[s + 1]`).
    private let slots: UnsafeMutablePointer<FusedExpert>
    private let slotStart: UnsafeMutablePointer<Int32>
    private var slotCount = 0
    /// Per assignment: its token `[maxAssignments]` and weight in that token's sum.
    private let assignToken: UnsafeMutablePointer<Int32>
    private let assignWeight: UnsafeMutablePointer<Float>
    private var assignCount = 0
    /// Assignment of each term of each token's sum `[maxTokens, terms]`.
    private let termTable: UnsafeMutablePointer<Int32>
    private var terms = 0
    private var n = 0
    /// x `[n, embd]` in q8_0 / q8_1 / q8_K, `[maxTokens, rowBytes(fmt, embd)]` each.
    private let xq: (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer)
    /// x rows gathered per assignment (each slot's tokens contiguous), per format `[maxAssignments, rowBytes]`.
    private let xg: (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer)
    /// Gate, up and SiLU(g)·u per assignment `[maxAssignments, maxFFN]` (h overwrites g).
    private let g: UnsafeMutablePointer<Float>
    private let u: UnsafeMutablePointer<Float>
    /// h per assignment in its slot's down partner format `[maxAssignments, hqStride]` bytes.
    private let hq: UnsafeMutableRawPointer
    private let hqStride: Int
    /// Down outputs per assignment `[maxAssignments, embd]`.
    private let yd: UnsafeMutablePointer<Float>
    /// Work items `[itemCapacity]`: (slot or -1 for the extra matrix, first row, end row).
    private let items: UnsafeMutablePointer<(Int32, Int32, Int32)>
    /// A copy of the items while `interleaveWideItems` reorders them `[itemCapacity]`.
    private let spare: UnsafeMutablePointer<(Int32, Int32, Int32)>
    private let itemCapacity: Int
    private var itemCount = 0
    /// The plain matrix of job 1 (the router) and its output `[n, rows]`, or nil.
    private var extra: (WeightMatrix, UnsafeMutablePointer<Float>)?
    private var x: UnsafePointer<Float>?
    /// Whether x is already in q8_0 / q8_1 / q8_K for this step.
    private var quantized = (false, false, false)
    /// Whether slot s's gate/up inputs are gathered into `xg` (false: its tokens are 0..<n in order, read from `xq`).
    private let gathered: UnsafeMutablePointer<Bool>

    /// Scratch for up to `maxTokens` tokens, `maxSlots` experts and `maxAssignments` (expert, token) pairs of hidden
    /// width up to `maxFFN` over inputs of width `embd`.
    public init(pool: ThreadPool, embd: Int, maxFFN: Int, maxTokens: Int, maxSlots: Int, maxAssignments: Int) {
        precondition(maxTokens >= 1 && maxSlots >= 1 && maxAssignments >= maxTokens, "bad FusedExperts capacity")
        self.pool = pool
        self.embd = embd
        self.maxFFN = maxFFN
        self.maxTokens = maxTokens
        self.maxSlots = maxSlots
        self.maxAssignments = maxAssignments
        slots = .allocate(capacity: maxSlots)
        slotStart = .allocate(capacity: maxSlots + 1)
        gathered = .allocate(capacity: maxSlots)
        assignToken = .allocate(capacity: maxAssignments)
        assignWeight = .allocate(capacity: maxAssignments)
        termTable = .allocate(capacity: maxAssignments)
        let padE = (embd + 255) / 256 * 256, padF = (maxFFN + 255) / 256 * 256
        func raw(_ n: Int) -> UnsafeMutableRawPointer { .allocate(byteCount: max(64, n), alignment: 64) }
        func rb(_ t: Int32) -> Int { Int(ck_row_size(t, Int64(padE))) }
        xq = (raw(maxTokens * rb(ckQ8_0)), raw(maxTokens * rb(ckQ8_1)), raw(maxTokens * rb(ckQ8_K)))
        xg = (raw(maxAssignments * rb(ckQ8_0)), raw(maxAssignments * rb(ckQ8_1)), raw(maxAssignments * rb(ckQ8_K)))
        hqStride = ([ckQ8_0, ckQ8_1, ckQ8_K].map { Int(ck_row_size($0, Int64(padF))) }.max()! + 63) / 64 * 64
        hq = raw(maxAssignments * hqStride)
        g = .allocate(capacity: maxAssignments * maxFFN)
        u = .allocate(capacity: maxAssignments * maxFFN)
        yd = .allocate(capacity: maxAssignments * embd)
        // Items per job: at most one per 8 rows of every slot, plus the extra matrix's rows.
        itemCapacity = maxSlots * ((max(maxFFN, embd) + 7) / 8) + 4096
        items = .allocate(capacity: itemCapacity)
        spare = .allocate(capacity: itemCapacity)
    }

    deinit {
        slots.deallocate(); slotStart.deallocate(); gathered.deallocate()
        assignToken.deallocate(); assignWeight.deallocate(); termTable.deallocate()
        xq.0.deallocate(); xq.1.deallocate(); xq.2.deallocate()
        xg.0.deallocate(); xg.1.deallocate(); xg.2.deallocate()
        hq.deallocate()
        g.deallocate(); u.deallocate(); yd.deallocate()
        items.deallocate(); spare.deallocate()
    }

    /// Whether `w` can run here: a quantized type (its partner format is q8_0/q8_1/q8_K), or f32 when `allowF32`.
    public static func supports(_ w: WeightMatrix, allowF32: Bool = false) -> Bool {
        let a = w.type.activationTypeID
        return a == ckQ8_0 || a == ckQ8_1 || a == ckQ8_K || (allowF32 && w.type == .f32)
    }

    /// As `Matmul.gemmForAnyTokenCount`, for this step's expert matmuls (set before `gateUp`).
    public var gemmForAnyTokenCount = false

    /// Starts a step of `count` tokens `x[count, embd]` whose outputs are sums of `terms` expert terms each, and
    /// clears the slots. `x` must stay valid until the step's `down`.
    public func begin(_ x: UnsafePointer<Float>, count: Int, terms: Int) {
        precondition(count >= 1 && count <= maxTokens, "\(count) tokens outside 1...\(maxTokens)")
        precondition(terms >= 1 && count * terms <= maxAssignments, "\(terms) terms per token exceed the scratch")
        tokens += count
        self.x = x
        n = count
        self.terms = terms
        slotCount = 0
        assignCount = 0
        slotStart[0] = 0
        termTable.update(repeating: -1, count: count * terms)
        quantized = (false, false, false)
    }

    /// Converts x to the partner format of `w` once per step.
    private func quantizeInput(for w: WeightMatrix) {
        let fmt = w.type.activationTypeID
        let dst: UnsafeMutableRawPointer
        switch fmt {
        case ckQ8_0 where !quantized.0: dst = xq.0; quantized.0 = true
        case ckQ8_1 where !quantized.1: dst = xq.1; quantized.1 = true
        case ckQ8_K where !quantized.2: dst = xq.2; quantized.2 = true
        default: return
        }
        let rb = Int(ck_row_size(fmt, Int64(embd)))
        for t in 0..<n {
            switch fmt {
            case ckQ8_0: ck_quantize_row_q8_0(x! + t * embd, dst + t * rb, Int64(embd))
            case ckQ8_1: ck_quantize_row_q8_1(x! + t * embd, dst + t * rb, Int64(embd))
            default: ck_quantize_row_q8_K(x! + t * embd, dst + t * rb, Int64(embd))
            }
        }
    }

    /// Adds an expert slot (its tokens follow with `assign`); returns its index. Its matrices must have `supports`
    /// types and the step's widths.
    @discardableResult
    public func add(_ e: FusedExpert) -> Int {
        precondition(slotCount < maxSlots, "more than \(maxSlots) experts in one step")
        precondition(e.gate.cols == embd && e.up.cols == embd && e.down.rows == embd, "expert widths differ from embd \(embd)")
        precondition(e.gate.rows == e.up.rows && e.down.cols == e.gate.rows && e.gate.rows <= maxFFN, "bad expert shape")
        precondition(Self.supports(e.gate) && Self.supports(e.up) && Self.supports(e.down), "expert matrices must be quantized")
        slots[slotCount] = e
        slotCount += 1
        slotStart[slotCount] = Int32(assignCount)
        return slotCount - 1
    }

    /// Gives token `token` of the step to the last added slot, scaled by `weight` as term `term` of that token's
    /// output sum (terms add in ascending order; every term of every token must be assigned before `down`).
    public func assign(token: Int, weight: Float, term: Int) {
        precondition(slotCount > 0 && assignCount < maxAssignments, "assignment without a slot or beyond the scratch")
        precondition(token >= 0 && token < n && term >= 0 && term < terms, "token \(token) / term \(term) out of range")
        assignToken[assignCount] = Int32(token)
        assignWeight[assignCount] = weight
        termTable[token * terms + term] = Int32(assignCount)
        assignCount += 1
        slotStart[slotCount] = Int32(assignCount)
    }

    /// Tokens of slot s.
    @inline(__always)
    private func tokenCount(_ s: Int) -> Int { Int(slotStart[s + 1] - slotStart[s]) }

    /// Job 1/2: h = SiLU(gate·x) ⊙ (up·x) for the tokens of slots `first..<slotCount`; with `extra`, also
    /// `y[n, w.rows] = x · wᵀ` for that matrix (the router; f32 or quantized) in the same job.
    public func gateUp(from first: Int, extra: (WeightMatrix, UnsafeMutablePointer<Float>)? = nil) {
        itemCount = 0
        self.extra = extra
        var total = 0
        if let w = extra?.0 { total += cost(rows: w.rows, rowBytes: w.rowBytes, tokens: n); quantizeInput(for: w) }
        for s in first..<slotCount {
            let e = slots[s], m = tokenCount(s)
            total += cost(rows: e.gate.rows, rowBytes: e.gate.rowBytes + e.up.rowBytes, tokens: m)
            quantizeInput(for: e.gate)
            quantizeInput(for: e.up)
            gather(slot: s)
        }
        let target = itemBytes(total)
        if let w = extra?.0 { appendItems(slot: -1, rows: w.rows, cost: cost(rows: 1, rowBytes: w.rowBytes, tokens: n), target: target) }
        for s in first..<slotCount {
            let e = slots[s]
            appendItems(slot: s, rows: e.gate.rows, cost: cost(rows: 1, rowBytes: e.gate.rowBytes + e.up.rowBytes, tokens: tokenCount(s)),
                        target: target)
        }
        interleaveWideItems()
        pool.parallelFor(itemCount, chunk: 1, context: Unmanaged.passUnretained(self).toOpaque()) { ctx, start, end, _ in
            let me = Unmanaged<FusedExperts>.fromOpaque(ctx!).takeUnretainedValue()
            for i in start..<end { me.gateUpItem(i) }
        }
        self.extra = nil
    }

    /// Whether an item is compute-bound: a slot of `wideTokens` or more tokens (the shared expert of a batched step),
    /// whose weights are reused across its tokens, where the other slots' items (one or two tokens each) are bound
    /// by reading their weights from memory.
    @inline(__always)
    private func isWide(_ item: (Int32, Int32, Int32)) -> Bool { item.0 >= 0 && tokenCount(Int(item.0)) >= Self.wideTokens }

    /// Tokens from which a slot's items count as compute-bound (`isWide`).
    static let wideTokens = 4

    /// Spreads the compute-bound items evenly among the others in the claim order (each kind keeps its own order),
    /// so the pool's threads mostly run one of each at a time and the arithmetic of one overlaps the other's
    /// memory reads; in list order the threads would first compute together, then wait on memory together (on two
    /// cores, one thread alone reads at ~96% of both threads' bandwidth). Only the order changes: every item
    /// computes the same rows with the same kernels, so the results are the same bits.
    private func interleaveWideItems() {
        var wide = 0
        for i in 0..<itemCount where isWide(items[i]) { wide += 1 }
        let narrow = itemCount - wide
        guard wide > 0 && narrow > 0 else { return }
        spare.update(from: items, count: itemCount)
        var wi = 0, ni = 0            // next unread item of each kind in spare
        var takenWide = 0, takenNarrow = 0
        for out in 0..<itemCount {
            // A wide item while the wide share taken so far is behind its share of the whole list.
            let takeWide = takenWide < wide
                && (takenNarrow == narrow || (takenWide * 2 + 1) * narrow <= (takenNarrow * 2 + 1) * wide)
            if takeWide {
                while !isWide(spare[wi]) { wi += 1 }
                items[out] = spare[wi]
                wi += 1
                takenWide += 1
            } else {
                while isWide(spare[ni]) { ni += 1 }
                items[out] = spare[ni]
                ni += 1
                takenNarrow += 1
            }
        }
    }

    /// Copies the quantized inputs of slot s's tokens into consecutive rows of `xg` (unless they are 0..<n in order).
    private func gather(slot s: Int) {
        let a0 = Int(slotStart[s]), m = tokenCount(s)
        var identity = m == n
        if identity { for c in 0..<m where assignToken[a0 + c] != Int32(c) { identity = false; break } }
        gathered[s] = !identity
        if identity { return }
        let e = slots[s]
        for fmt in Set2(e.gate.type.activationTypeID, e.up.type.activationTypeID) {
            let (src, dst) = buffers(fmt)
            let rb = Int(ck_row_size(fmt, Int64(embd)))
            for c in 0..<m { (dst + (a0 + c) * rb).copyMemory(from: src + Int(assignToken[a0 + c]) * rb, byteCount: rb) }
        }
    }

    /// `xq` and `xg` of a partner format.
    private func buffers(_ fmt: Int32) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        switch fmt {
        case ckQ8_0: return (xq.0, xg.0)
        case ckQ8_1: return (xq.1, xg.1)
        default: return (xq.2, xg.2)
        }
    }

    /// Job 3: `out[t][embd] = Σ_terms weight · down · h` for every token t, terms in ascending order
    /// (`accumulate`: added to `out`). `out` is `[n, embd]`.
    public func down(into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        precondition(!UnsafeBufferPointer(start: termTable, count: n * terms).contains(-1), "a token term was not assigned")
        var rowCost = 0
        for s in 0..<slotCount {                                               // h in its down's partner format
            let d = slots[s].down
            for a in Int(slotStart[s])..<Int(slotStart[s + 1]) {
                let h = g + a * maxFFN, dst = hq + a * hqStride
                switch d.type.activationTypeID {
                case ckQ8_0: ck_quantize_row_q8_0(h, dst, Int64(d.cols))
                case ckQ8_1: ck_quantize_row_q8_1(h, dst, Int64(d.cols))
                default: ck_quantize_row_q8_K(h, dst, Int64(d.cols))
                }
            }
            rowCost += cost(rows: 1, rowBytes: d.rowBytes, tokens: tokenCount(s))
        }
        itemCount = 0
        appendItems(slot: 0, rows: embd, cost: rowCost, target: itemBytes(embd * rowCost))
        var job = DownJob(me: Unmanaged.passUnretained(self), out: out, accumulate: accumulate)
        pool.parallelFor(itemCount, chunk: 1, context: &job) { ctx, start, end, _ in
            let j = ctx!.assumingMemoryBound(to: DownJob.self).pointee
            let me = j.me.takeUnretainedValue()
            for i in start..<end { me.downItem(i, out: j.out, accumulate: j.accumulate) }
        }
    }

    /// Cost units of `rows` weight rows of `rowBytes` against `tokens` tokens: the bytes for one token (decode is
    /// bound by reading them), one more third of them per further token (the arithmetic).
    @inline(__always)
    private func cost(rows: Int, rowBytes: Int, tokens: Int) -> Int { rows * rowBytes * (2 + tokens) / 3 }

    /// Cost per item: about 8 items per thread, at least 16 KiB (so claiming stays cheap).
    private func itemBytes(_ total: Int) -> Int { max(16 << 10, total / (pool.threadCount * 8)) }

    /// Items of whole 8-row groups covering `rows` rows of `slot`, each about `target` cost units.
    private func appendItems(slot: Int, rows: Int, cost: Int, target: Int) {
        let per = max(8, target / max(cost, 1) / 8 * 8)
        var r = 0
        while r < rows {
            let e = min(rows, r + per)
            precondition(itemCount < itemCapacity, "fused expert item list overflow")
            items[itemCount] = (Int32(slot), Int32(r), Int32(e))
            itemCount += 1
            r = e
        }
    }

    /// The first bytes of item i's weights (for the cross-expert prefetch hint).
    private func hintNext(_ i: Int, gateUp: Bool) {
        guard i < itemCount else { return }
        let (s, r0, _) = items[i]
        if gateUp {
            if s < 0 { if let w = extra?.0 { ck_prefetch_l2(w.data + Int(r0) * w.rowBytes, 1024) }; return }
            let gt = slots[Int(s)].gate, up = slots[Int(s)].up
            ck_prefetch_l2(rowPointer(gt, Int(r0)), 1024)
            ck_prefetch_l2(rowPointer(up, Int(r0)), 1024)
        } else {
            ck_prefetch_l2(rowPointer(slots[0].down, Int(r0)), 1024)
        }
    }

    private func rowPointer(_ w: WeightMatrix, _ r: Int) -> UnsafeRawPointer { (w.packed ?? w.data) + r * w.rowBytes }

    /// Activations of `w` for slot s (or all n tokens when s < 0): first row and row stride in bytes.
    private func activation(_ w: WeightMatrix, slot s: Int) -> (UnsafeRawPointer, Int) {
        let fmt = w.type.activationTypeID
        guard fmt == ckQ8_0 || fmt == ckQ8_1 || fmt == ckQ8_K else {
            precondition(s < 0 || !gathered[s], "f32 weights run only as the extra matrix")
            return (UnsafeRawPointer(x!), embd * 4)
        }
        let rb = Int(ck_row_size(fmt, Int64(embd)))
        let (src, dst) = buffers(fmt)
        if s >= 0 && gathered[s] { return (UnsafeRawPointer(dst + Int(slotStart[s]) * rb), rb) }
        return (UnsafeRawPointer(src), rb)
    }

    /// `y[c * ys + r] = row r of w · activation row c` for r in `r0..<r1`, c in `0..<m` (`WeightMatrix.multiply`).
    @inline(__always)
    private func rows(_ w: WeightMatrix, _ r0: Int, _ r1: Int, _ a: UnsafeRawPointer, _ arb: Int, _ m: Int,
                      _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        w.multiply(rows: r0, r1, a, arb, m, y, ys, gemmForAnyTokenCount: gemmForAnyTokenCount)
    }

    private func gateUpItem(_ i: Int) {
        hintNext(i + 1, gateUp: true)
        let (s32, r0i, r1i) = items[i]
        let r0 = Int(r0i), r1 = Int(r1i)
        if s32 < 0 {
            let (w, y) = extra!
            let (a, arb) = activation(w, slot: -1)
            rows(w, r0, r1, a, arb, n, y, w.rows)
            return
        }
        let s = Int(s32), e = slots[s], a0 = Int(slotStart[s]), m = tokenCount(s)
        let gs = g + a0 * maxFFN, us = u + a0 * maxFFN
        let (ag, agb) = activation(e.gate, slot: s), (au, aub) = activation(e.up, slot: s)
        rows(e.gate, r0, r1, ag, agb, m, gs, maxFFN)
        rows(e.up, r0, r1, au, aub, m, us, maxFFN)
        for c in 0..<m {
            Ops.siluMul(gate: gs + c * maxFFN + r0, up: us + c * maxFFN + r0, n: r1 - r0, out: gs + c * maxFFN + r0)
        }
    }

    private func downItem(_ i: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        hintNext(i + 1, gateUp: false)
        let (_, r0i, r1i) = items[i]
        let r0 = Int(r0i), r1 = Int(r1i)
        for s in 0..<slotCount {
            let d = slots[s].down, a0 = Int(slotStart[s])
            rows(d, r0, r1, UnsafeRawPointer(hq + a0 * hqStride), hqStride, tokenCount(s), yd + a0 * embd, embd)
        }
        // Each token's terms in ascending order, as the unfused path accumulates (shared expert first).
        for t in 0..<n {
            let o = out + t * embd, row = termTable + t * terms
            for r in r0..<r1 {
                var acc: Float = accumulate ? o[r] : 0
                for j in 0..<terms {
                    let a = Int(row[j])
                    let w = assignWeight[a], v = yd[a * embd + r]
                    if j == 0 && !accumulate && w == 1 { acc = v } else { acc += w * v }
                }
                o[r] = acc
            }
        }
    }
}

/// The distinct values of two partner formats (one or two), without allocating.
private struct Set2: Sequence, IteratorProtocol {
    private var a: Int32?, b: Int32?
    init(_ a: Int32, _ b: Int32) { self.a = a; self.b = b == a ? nil : b }
    mutating func next() -> Int32? {
        if let v = a { a = nil; return v }
        if let v = b { b = nil; return v }
        return nil
    }
}

/// Arguments of the down job (passed by pointer, no closure context).
private struct DownJob {
    let me: Unmanaged<FusedExperts>
    let out: UnsafeMutablePointer<Float>
    let accumulate: Bool
}
