// One token's SwiGLU experts as a few byte-balanced pool jobs (the MoE decode path).
//
// A decode step of a DeepSeek-style MoE layer reads the router, the shared expert(s) and k routed experts: many
// small matrices (1408 × 2048 for V2-Lite). One pool job per matrix costs a wake-up and a barrier each (~30 per
// layer) and leaves threads idle at every barrier. Here a layer is three jobs:
//
// NOTE: one token through one MoE layer:
// ```
//  quantize x once per partner format (q8_0 / q8_1 / q8_K)                               (calling thread)
//  job 1: router rows (→ logits) + shared-expert gate/up rows (→ h = SiLU(g)·u)           one item list
//  route (caller) ─▶ slots of the k routed experts with their weights
//  job 2: routed gate/up rows of all k experts (→ h_e = SiLU(g_e)·u_e)                    one item list
//  quantize every h_e                                                                     (calling thread)
//  job 3: down rows: out[r] = Σ_e w_e · (down_e[r] · h_e)  (all slots per row range, no scatter conflicts)
// ```
// Items are row ranges of about the same number of weight bytes, claimed dynamically from the pool, so slots of
// different widths or types balance and a descheduled thread's share is taken by the others. Each item hints
// the start of the next item's slice into L2 (`ck_prefetch_l2`): consecutive items usually sit in different
// experts, which the hardware prefetchers cannot follow. Weights are read where they are (the file mapping, or
// a `WeightRepacker` copy; repacked Q4_1/Q8_0 use their interleaved kernels). The arithmetic per output element
// is that of `Matmul` + `Ops.siluMul` + a weighted sum in slot order, so results equal the unfused path's.
import CKernels

/// One SwiGLU expert of a fused step: `down · (SiLU(gate · x) ⊙ (up · x))`, scaled by `weight` in the sum.
public struct FusedExpert {
    /// `[ffn, embd]`.
    public var gate: WeightMatrix
    /// `[ffn, embd]`.
    public var up: WeightMatrix
    /// `[embd, ffn]`.
    public var down: WeightMatrix
    /// Routing weight (1 for a shared expert).
    public var weight: Float

    /// An expert of the three matrices and its weight in the sum.
    public init(gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix, weight: Float) {
        self.gate = gate
        self.up = up
        self.down = down
        self.weight = weight
    }
}

/// Runs one token's experts (shared and routed) as byte-balanced pool jobs; see the file header. Scratch is
/// sized at init; `run` allocates nothing. Not thread-safe (one caller, like `Matmul`).
public final class FusedExperts: @unchecked Sendable {
    /// The pool the jobs run on.
    public let pool: ThreadPool
    /// Model width (input of gate/up, output of down).
    public let embd: Int
    /// Largest expert hidden width.
    public let maxFFN: Int
    /// Most experts (slots) one step holds.
    public let maxSlots: Int

    /// Tokens run so far (`begin` calls), for tests and diagnostics.
    public private(set) var tokens = 0

    /// Experts of the step `[maxSlots]`.
    private let slots: UnsafeMutablePointer<FusedExpert>
    private var slotCount = 0
    /// x in q8_0 / q8_1 / q8_K `[rowBytes(fmt, embd)]` each.
    private let xq: (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer)
    /// Gate, up and SiLU(g)·u per slot `[maxSlots, maxFFN]` (h overwrites g).
    private let g: UnsafeMutablePointer<Float>
    private let u: UnsafeMutablePointer<Float>
    /// h per slot in its down matrix's partner format `[maxSlots, hqStride]` bytes.
    private let hq: UnsafeMutableRawPointer
    private let hqStride: Int
    /// Down outputs per slot `[maxSlots, embd]`.
    private let yd: UnsafeMutablePointer<Float>
    /// Work items `[itemCapacity]`: (slot or -1 for the extra matrix, first row, end row).
    private let items: UnsafeMutablePointer<(Int32, Int32, Int32)>
    private let itemCapacity: Int
    private var itemCount = 0
    /// The plain matrix of job 1 (the router) and its output, or nil.
    private var extra: (WeightMatrix, UnsafeMutablePointer<Float>)?
    private var x: UnsafePointer<Float>?

    /// Scratch for up to `maxSlots` experts of hidden width up to `maxFFN` over inputs of width `embd`.
    public init(pool: ThreadPool, embd: Int, maxFFN: Int, maxSlots: Int) {
        self.pool = pool
        self.embd = embd
        self.maxFFN = maxFFN
        self.maxSlots = maxSlots
        slots = .allocate(capacity: maxSlots)
        let padE = (embd + 255) / 256 * 256, padF = (maxFFN + 255) / 256 * 256
        func raw(_ n: Int) -> UnsafeMutableRawPointer { .allocate(byteCount: max(64, n), alignment: 64) }
        xq = (raw(Int(ck_row_size(ckQ8_0, Int64(padE)))), raw(Int(ck_row_size(ckQ8_1, Int64(padE)))),
              raw(Int(ck_row_size(ckQ8_K, Int64(padE)))))
        hqStride = ([ckQ8_0, ckQ8_1, ckQ8_K].map { Int(ck_row_size($0, Int64(padF))) }.max()! + 63) / 64 * 64
        hq = raw(maxSlots * hqStride)
        g = .allocate(capacity: maxSlots * maxFFN)
        u = .allocate(capacity: maxSlots * maxFFN)
        yd = .allocate(capacity: maxSlots * embd)
        // Items per job: at most one per 8 rows of every slot, plus the extra matrix's rows.
        itemCapacity = maxSlots * ((max(maxFFN, embd) + 7) / 8) + 4096
        items = .allocate(capacity: itemCapacity)
    }

    deinit {
        slots.deallocate()
        xq.0.deallocate(); xq.1.deallocate(); xq.2.deallocate()
        hq.deallocate()
        g.deallocate(); u.deallocate(); yd.deallocate()
        items.deallocate()
    }

    /// Whether `w` can run here: a quantized type (its partner format is q8_0/q8_1/q8_K), or f32 when `allowF32`.
    public static func supports(_ w: WeightMatrix, allowF32: Bool = false) -> Bool {
        let a = w.type.activationTypeID
        return a == ckQ8_0 || a == ckQ8_1 || a == ckQ8_K || (allowF32 && w.type == .f32)
    }

    /// Starts a token `x[embd]` and clears the slots. `x` must stay valid until the token's `down`.
    public func begin(_ x: UnsafePointer<Float>) {
        tokens += 1
        self.x = x
        slotCount = 0
        quantized = (false, false, false)
    }

    /// Whether x is already in q8_0 / q8_1 / q8_K for this token.
    private var quantized = (false, false, false)

    /// Converts x to the partner format of `w` once per token.
    private func quantizeInput(for w: WeightMatrix) {
        switch w.type.activationTypeID {
        case ckQ8_0 where !quantized.0: ck_quantize_row_q8_0(x!, xq.0, Int64(embd)); quantized.0 = true
        case ckQ8_1 where !quantized.1: ck_quantize_row_q8_1(x!, xq.1, Int64(embd)); quantized.1 = true
        case ckQ8_K where !quantized.2: ck_quantize_row_q8_K(x!, xq.2, Int64(embd)); quantized.2 = true
        default: break
        }
    }

    /// Adds an expert slot; returns its index. Its matrices must have `supports` types and the step's widths.
    @discardableResult
    public func add(_ e: FusedExpert) -> Int {
        precondition(slotCount < maxSlots, "more than \(maxSlots) experts in one step")
        precondition(e.gate.cols == embd && e.up.cols == embd && e.down.rows == embd, "expert widths differ from embd \(embd)")
        precondition(e.gate.rows == e.up.rows && e.down.cols == e.gate.rows && e.gate.rows <= maxFFN, "bad expert shape")
        slots[slotCount] = e
        slotCount += 1
        return slotCount - 1
    }

    /// Job 1/2: h = SiLU(gate·x) ⊙ (up·x) for slots `first..<slotCount`; with `extra`, also `y[w.rows] = w · x` for
    /// that matrix (the router; f32 or quantized) in the same job.
    public func gateUp(from first: Int, extra: (WeightMatrix, UnsafeMutablePointer<Float>)? = nil) {
        itemCount = 0
        self.extra = extra
        var total = 0
        if let w = extra?.0 { total += w.rows * w.rowBytes; quantizeInput(for: w) }
        for s in first..<slotCount {
            total += slots[s].gate.rows * (slots[s].gate.rowBytes + slots[s].up.rowBytes)
            quantizeInput(for: slots[s].gate)
            quantizeInput(for: slots[s].up)
        }
        let target = itemBytes(total)
        if let w = extra?.0 { appendItems(slot: -1, rows: w.rows, rowBytes: w.rowBytes, target: target) }
        for s in first..<slotCount {
            appendItems(slot: s, rows: slots[s].gate.rows, rowBytes: slots[s].gate.rowBytes + slots[s].up.rowBytes, target: target)
        }
        pool.parallelFor(itemCount, chunk: 1, context: Unmanaged.passUnretained(self).toOpaque()) { ctx, start, end, _ in
            let me = Unmanaged<FusedExperts>.fromOpaque(ctx!).takeUnretainedValue()
            for i in start..<end { me.gateUpItem(i) }
        }
        self.extra = nil
    }

    /// Job 3: `out[embd] = Σ_slots weight_s · down_s · h_s` in slot order (`accumulate`: added to `out`).
    public func down(into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        for s in 0..<slotCount {                                               // h_s in its down's partner format
            let d = slots[s].down
            let h = g + s * maxFFN, dst = hq + s * hqStride
            switch d.type.activationTypeID {
            case ckQ8_0: ck_quantize_row_q8_0(h, dst, Int64(d.cols))
            case ckQ8_1: ck_quantize_row_q8_1(h, dst, Int64(d.cols))
            default: ck_quantize_row_q8_K(h, dst, Int64(d.cols))
            }
        }
        itemCount = 0
        var rowBytes = 0
        for s in 0..<slotCount { rowBytes += slots[s].down.rowBytes }
        appendItems(slot: 0, rows: embd, rowBytes: rowBytes, target: itemBytes(embd * rowBytes))
        var job = DownJob(me: Unmanaged.passUnretained(self), out: out, accumulate: accumulate)
        pool.parallelFor(itemCount, chunk: 1, context: &job) { ctx, start, end, _ in
            let j = ctx!.assumingMemoryBound(to: DownJob.self).pointee
            let me = j.me.takeUnretainedValue()
            for i in start..<end { me.downItem(i, out: j.out, accumulate: j.accumulate) }
        }
    }

    /// Bytes per item: about 8 items per thread, at least 16 KiB (so claiming stays cheap).
    private func itemBytes(_ total: Int) -> Int { max(16 << 10, total / (pool.threadCount * 8)) }

    /// Items of whole 8-row groups covering `rows` rows of `slot`, each about `target` bytes.
    private func appendItems(slot: Int, rows: Int, rowBytes: Int, target: Int) {
        let per = max(8, target / max(rowBytes, 1) / 8 * 8)
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

    /// Activation of `w` (`x` in its partner format) and that row's byte width.
    private func activation(_ w: WeightMatrix) -> (UnsafeRawPointer, Int) {
        switch w.type.activationTypeID {
        case ckQ8_0: return (UnsafeRawPointer(xq.0), Int(ck_row_size(ckQ8_0, Int64(embd))))
        case ckQ8_1: return (UnsafeRawPointer(xq.1), Int(ck_row_size(ckQ8_1, Int64(embd))))
        case ckQ8_K: return (UnsafeRawPointer(xq.2), Int(ck_row_size(ckQ8_K, Int64(embd))))
        default: return (UnsafeRawPointer(x!), embd * 4)
        }
    }

    /// `y[r0..<r1] = rows r0..<r1 of w · a` for one activation row (repacked kernels when w has them).
    @inline(__always)
    private func rows(_ w: WeightMatrix, _ r0: Int, _ r1: Int, _ a: UnsafeRawPointer, _ arb: Int, _ y: UnsafeMutablePointer<Float>) {
        if let p = w.packed, r0 % 8 == 0, r1 % 8 == 0 {
            if w.type == .q4_1 {
                ck_matmul_q4_1_x8(p, Int64(w.cols), Int64(r0), Int64(r1), a, arb, 1, y, Int64(w.rows))
            } else {
                ck_matmul_q8_0_x8(p, Int64(w.cols), Int64(r0), Int64(r1), a, arb, 1, y, Int64(w.rows))
            }
            return
        }
        ck_matmul_rows(w.type.rawValue, w.data, w.rowBytes, Int64(w.cols), Int64(r0), Int64(r1), a, arb, 1, y, Int64(w.rows))
    }

    private func gateUpItem(_ i: Int) {
        hintNext(i + 1, gateUp: true)
        let (s32, r0i, r1i) = items[i]
        let r0 = Int(r0i), r1 = Int(r1i)
        if s32 < 0 {
            let (w, y) = extra!
            let (a, arb) = activation(w)
            rows(w, r0, r1, a, arb, y)
            return
        }
        let s = Int(s32), e = slots[s]
        let gs = g + s * maxFFN, us = u + s * maxFFN
        let (ag, agb) = activation(e.gate), (au, aub) = activation(e.up)
        rows(e.gate, r0, r1, ag, agb, gs)
        rows(e.up, r0, r1, au, aub, us)
        Ops.siluMul(gate: gs + r0, up: us + r0, n: r1 - r0, out: gs + r0)
    }

    private func downItem(_ i: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        hintNext(i + 1, gateUp: false)
        let (_, r0i, r1i) = items[i]
        let r0 = Int(r0i), r1 = Int(r1i)
        for s in 0..<slotCount {
            let d = slots[s].down
            rows(d, r0, r1, UnsafeRawPointer(hq + s * hqStride), Int(ck_row_size(d.type.activationTypeID, Int64(d.cols))),
                 yd + s * embd)
        }
        // Slot 0 is added first, then each next slot's weighted output, as the unfused path accumulates.
        for r in r0..<r1 {
            var acc: Float = accumulate ? out[r] : 0
            for s in 0..<slotCount {
                let w = slots[s].weight, v = yd[s * embd + r]
                if s == 0 && !accumulate && w == 1 { acc = v } else { acc += w * v }
            }
            out[r] = acc
        }
    }
}

/// Arguments of the down job (passed by pointer, no closure context).
private struct DownJob {
    let me: Unmanaged<FusedExperts>
    let out: UnsafeMutablePointer<Float>
    let accumulate: Bool
}
