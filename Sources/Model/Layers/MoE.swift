// Mixture-of-Experts feed-forward block: router → top-k routed SwiGLU experts (+ shared experts).
//
// Sources: DeepSeek-V2 paper §2.2 (DeepSeekMoE: shared experts + fine-grained routed experts);
// DeepSeek-V3 report §2.1.2; HF modeling_deepseek_v3.py `DeepseekV3MoE`, modeling_qwen2_moe.py
// `Qwen2MoeSparseMoeBlock` (sigmoid-gated shared expert), modeling_mixtral.py; llama.cpp src/llama-graph.cpp
// `build_moe_ffn`. Two execution paths as ktransformers' `forward_one` / `forward_many`:
//
// NOTE: grouped path for n tokens (prefill / large batches):
// ```
//  route every token ─▶ (token, expert, weight) triples ─▶ counting sort by expert
//  for each active expert e:  X_e = rows of its tokens [m_e, embd] ─▶ SwiGLU_e (weights read once) ─▶ Y_e [m_e, embd]
//                             out[token] += weight · Y_e[row]              (weighted scatter-add)
// ```
// per-token path (decode): for each token, for each of its k experts: out[t] += w · SwiGLU_e(x[t]).
import Compute
import Foundation
import GGUF

/// Which MoE execution path a forward uses.
public enum MoEExecution: Sendable {
    /// Steps of up to `MoERunner.fusedMaxTokens` tokens take the fused expert jobs (`FusedExperts`: every
    /// distinct expert once against the tokens that chose it) when the weights allow it; otherwise per-token when
    /// `numTokens * topK < numExperts` (each expert sees about one token), else grouped.
    case automatic
    /// Always visit each token's experts one token at a time (fused per token when the weights allow it).
    case perToken
    /// Always bucket tokens by expert and run one matmul per active expert (long prefill chunks).
    case grouped
}

/// Weights of one MoE block (GGUF names `blk.N.ffn_*_exps`, `ffn_gate_inp`, `exp_probs_b`, `ffn_*_shexp`).
struct MoEWeights {
    /// Router `[E, embd]` (`ffn_gate_inp.weight`).
    let router: WeightMatrix
    /// Selection-only score-correction bias `[E]` (`exp_probs_b.bias`), DeepSeek-V3.
    let selectionBias: UnsafePointer<Float>?
    /// Per expert `[ffnExp, embd]` (slices of the 3-D `ffn_gate_exps`).
    let gate: [WeightMatrix]
    /// Per expert `[ffnExp, embd]`.
    let up: [WeightMatrix]
    /// Per expert `[embd, ffnExp]`.
    let down: [WeightMatrix]
    /// Shared expert(s) fused into one SwiGLU `[ffnShared, embd]` / `[embd, ffnShared]`, or nil.
    let sharedGate: WeightMatrix?
    let sharedUp: WeightMatrix?
    let sharedDown: WeightMatrix?
    /// Qwen2-MoE: shared expert output is scaled by sigmoid(x · w) with w `[1, embd]` (`ffn_gate_inp_shexp`).
    let sharedScale: WeightMatrix?
    /// Whether every matrix has a type `FusedExperts` runs (quantized experts, f32 or quantized router) and
    /// there is no shared-expert gate: decode then takes the fused path.
    let fusable: Bool

    /// Loads `blk.<layer>.` MoE weights of `shape`.
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    init(_ c: inout ModelContext, layer: Int, shape: MoEShape) throws {
        let p = "blk.\(layer).", t = c.tensors, embd = c.keys.embd
        let e = shape.config.numExperts, f = shape.expertFFN, sf = shape.sharedFFN
        selectionBias = t.has(p + "exp_probs_b.bias") ? try c.tensors.vector(p + "exp_probs_b.bias", count: e) : nil
        router = try t.matrix(p + "ffn_gate_inp.weight", rows: e, cols: embd)
        // Routed experts stay in the file mapping (no copy: they are most of the file, the kernels read their
        // GGUF layout, and replicas share them through the page cache).
        gate = try t.slices(p + "ffn_gate_exps.weight", count: e, rows: f, cols: embd)
        up = try t.slices(p + "ffn_up_exps.weight", count: e, rows: f, cols: embd)
        down = try t.slices(p + "ffn_down_exps.weight", count: e, rows: embd, cols: f)
        sharedGate = sf > 0 ? try t.weight(p + "ffn_gate_shexp.weight", rows: sf, cols: embd) : nil
        sharedUp = sf > 0 ? try t.weight(p + "ffn_up_shexp.weight", rows: sf, cols: embd) : nil
        sharedDown = sf > 0 ? try t.weight(p + "ffn_down_shexp.weight", rows: embd, cols: sf) : nil
        sharedScale = try Self.sharedGateInput(t, name: p + "ffn_gate_inp_shexp.weight", embd: embd)
        let experts = [gate[0], up[0], down[0]] + [sharedGate, sharedUp, sharedDown].compactMap { $0 }
        fusable = sharedScale == nil && FusedExperts.supports(router, allowF32: true)
            && experts.allSatisfy { FusedExperts.supports($0) }
    }

    /// `ffn_gate_inp_shexp` as a `[1, embd]` matrix; stored with ne `[embd, 1]` by the converter and `[embd]` by
    /// llama.cpp's quantizer. Nil when absent.
    private static func sharedGateInput(_ tl: TensorLoader, name: String, embd: Int) throws -> WeightMatrix? {
        guard let info = tl.gguf.tensorInfo(named: name) else { return nil }
        if info.dimensions == [embd] {
            guard let type = WeightType(ggml: info.type), embd % type.blockSize == 0 else {
                throw ModelLoadError.unsupportedTensorType(name: name, type: "\(info.type)")
            }
            return WeightMatrix(type: type, data: tl.gguf.data(for: info), rows: 1, cols: embd)
        }
        return try tl.matrix(name, rows: 1, cols: embd)
    }
}

/// Runs MoE blocks with per-step scratch sized at init (shared by all MoE layers of a model).
final class MoERunner {
    let embd: Int
    let expertFFN: Int
    let sharedFFN: Int
    let config: RouterConfig
    let maxTokens: Int
    private let matmul: RoundingMatmul
    /// Execution path override (tests compare the two).
    var execution: MoEExecution = .automatic
    /// Whether steps take the fused path (`FusedExperts`) when the weights allow it; tests switch it off to
    /// compare with the one-matmul-per-expert path.
    var fusedDecode = true
    /// Most tokens of a step the fused path takes at once (decode batches, short prefill chunks); longer chunks
    /// run grouped, where each expert's matmul sees enough tokens to be a GEMM.
    static let fusedMaxTokens = 64
    /// Fused scratch and jobs: shared + routed experts of up to `fusedMaxTokens` tokens.
    private let fused: FusedExperts
    /// The step's assignments bucketed by expert (fused and grouped paths).
    private let buckets: ExpertBuckets
    /// Token-layer steps that took the fused path so far.
    var fusedSteps: Int { fused.tokens }
    /// Tokens routed to each expert of each layer (`[numLayers, E]`), for `/metrics`.
    let expertCounts: ExpertTokenCounts

    private let logits: ScratchBuffer       // [T, E] router logits
    private let routeScratch: ScratchBuffer // [scratchCount]
    private let weights: ScratchBuffer      // [T, k] routing weights
    private let ids: UnsafeMutablePointer<Int32>        // [T, k] chosen experts
    private let xg: ScratchBuffer           // [T, embd] gathered input rows of one expert
    private let g: ScratchBuffer            // [T, max(ffnExp, ffnShared)] gate
    private let u: ScratchBuffer            // [T, max(ffnExp, ffnShared)] up
    private let y: ScratchBuffer            // [T, embd] one expert's output rows
    private let sharedGateValue: ScratchBuffer  // [T] Qwen2-MoE shared-expert gate logits

    /// Scratch for `c.maxTokens` tokens through MoE blocks of `shape`.
    init(_ c: ModelContext, shape: MoEShape) {
        embd = c.keys.embd
        expertFFN = shape.expertFFN
        sharedFFN = shape.sharedFFN
        config = shape.config
        maxTokens = c.maxTokens
        matmul = c.matmul
        let T = maxTokens, k = config.topK, e = config.numExperts, f = max(expertFFN, sharedFFN)
        logits = ScratchBuffer(count: T * e)
        routeScratch = ScratchBuffer(count: config.scratchCount)
        weights = ScratchBuffer(count: T * k)
        ids = .allocate(capacity: T * k)
        xg = ScratchBuffer(count: T * embd)
        g = ScratchBuffer(count: T * f)
        u = ScratchBuffer(count: T * f)
        y = ScratchBuffer(count: T * embd)
        sharedGateValue = ScratchBuffer(count: T)
        expertCounts = ExpertTokenCounts(numLayers: c.keys.numLayers, numExperts: e)
        let ft = min(T, Self.fusedMaxTokens)
        fused = FusedExperts(pool: c.matmul.pool, embd: embd, maxFFN: f, maxTokens: ft,
                             maxSlots: 1 + min(ft * k, e), maxAssignments: ft * (k + 1))
        buckets = ExpertBuckets(numExperts: e, capacity: T * k)
    }

    deinit {
        ids.deallocate()
    }

    /// out `[n, embd]` = MoE(x) for normed input x `[n, embd]` of layer `layer` (out must not alias x). Traces the
    /// chosen ids (as floats) and weights `[n, k]` as `"moe_topk_ids"` / `"moe_topk_weights"` when the hook is set.
    func run(_ w: MoEWeights, layer: Int, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>, trace: Trace) {
        precondition(n >= 1 && n <= maxTokens, "MoE batch \(n) outside 1...\(maxTokens)")
        let e = config.numExperts, k = config.topK
        let fusable = fusedDecode && w.fusable && !matmul.base.floatReference
        let perToken: Bool
        switch execution {
        case .automatic:
            if fusable && n <= Self.fusedMaxTokens {
                runFused(w, layer: layer, x: x, n: n, out: out, trace: trace)
                return
            }
            perToken = n * k < e
        case .perToken:
            if fusable {
                for t in 0..<n { runFused(w, layer: layer, x: x + t * embd, n: 1, out: out + t * embd, trace: trace) }
                return
            }
            perToken = true
        case .grouped: perToken = false
        }
        // Router.                                                              logits [n, E]
        matmul(x, numTokens: n, w.router, logits.pointer)
        for t in 0..<n {
            Router.route(logits: logits.pointer + t * e, bias: w.selectionBias, config: config,
                         scratch: routeScratch.pointer, ids: ids + t * k, weights: weights.pointer + t * k)
        }
        for a in 0..<(n * k) { expertCounts.increment(layer: layer, expert: Int(ids[a])) }
        if trace.isOn {
            let f = (0..<(n * k)).map { Float(ids[$0]) }                        // allocates: tracing only
            f.withUnsafeBufferPointer { trace("moe_topk_ids", layer, $0.baseAddress!, n, k) }
            trace("moe_topk_weights", layer, weights.pointer, n, k)
        }
        // Shared experts (or zero).                                            out [n, embd]
        if let sg = w.sharedGate, let su = w.sharedUp, let sd = w.sharedDown {
            matmul(x, numTokens: n, sg, g.pointer, su, u.pointer)              // [n, ffnShared] each
            Ops.siluMul(gate: g.pointer, up: u.pointer, n: n * sharedFFN, out: g.pointer)
            matmul(g.pointer, numTokens: n, sd, out)                           // [n, embd]
            if let ss = w.sharedScale {
                matmul(x, numTokens: n, ss, sharedGateValue.pointer)           // [n, 1]
                for t in 0..<n {
                    let s = 1 / (1 + expf(-sharedGateValue.pointer[t]))
                    for i in 0..<embd { out[t * embd + i] *= s }
                }
            }
        } else {
            out.update(repeating: 0, count: n * embd)
        }
        if perToken { runPerToken(w, x: x, n: n, out: out) } else { runGrouped(w, x: x, n: n, out: out) }
    }

    /// Fused path for `n ≤ fusedMaxTokens` tokens: the router of all n tokens in one job, then the shared experts'
    /// gate/up and that of every distinct routed expert against the tokens that chose it in one job, and all down
    /// projections (each token's weighted sum, shared expert first, then top-k order) in one more (`FusedExperts`).
    private func runFused(_ w: MoEWeights, layer: Int, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>,
                          trace: Trace) {
        let e = config.numExperts, k = config.topK
        let first = w.sharedGate == nil ? 0 : 1
        fused.begin(x, count: n, terms: first + k)
        fused.gemmForAnyTokenCount = matmul.base.gemmForAnyTokenCount
        fused.gateUp(from: 0, extra: (w.router, logits.pointer))                 // logits [n, E] (no slots yet)
        for t in 0..<n {
            Router.route(logits: logits.pointer + t * e, bias: w.selectionBias, config: config,
                         scratch: routeScratch.pointer, ids: ids + t * k, weights: weights.pointer + t * k)
        }
        // The shared expert(s) run in the routed experts' job: in a batched step its items are compute-bound and
        // overlap the routed experts' memory reads (`FusedExperts.interleaveWideItems`).
        if let sg = w.sharedGate, let su = w.sharedUp, let sd = w.sharedDown {
            fused.add(FusedExpert(gate: sg, up: su, down: sd))
            for t in 0..<n { fused.assign(token: t, weight: 1, term: 0) }
        }
        buckets.bucket(ids, count: n * k)
        for i in 0..<buckets.activeCount {
            let ex = Int(buckets.experts[i])
            fused.add(FusedExpert(gate: w.gate[ex], up: w.up[ex], down: w.down[ex]))
            for a in buckets.assignments(ofActive: i) {
                let a = Int(a)
                fused.assign(token: a / k, weight: weights.pointer[a], term: first + a % k)
            }
        }
        fused.gateUp(from: 0)                                                    // h [assignments, ffn]
        fused.down(into: out)                                                    // out [n, embd]
        for a in 0..<(n * k) { expertCounts.increment(layer: layer, expert: Int(ids[a])) }
        if trace.isOn {
            let f = (0..<(n * k)).map { Float(ids[$0]) }                        // allocates: tracing only
            f.withUnsafeBufferPointer { trace("moe_topk_ids", layer, $0.baseAddress!, n, k) }
            trace("moe_topk_weights", layer, weights.pointer, n, k)
        }
    }

    /// Decode path: each token's k experts, one token at a time.
    private func runPerToken(_ w: MoEWeights, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let k = config.topK, f = expertFFN
        for t in 0..<n {
            for j in 0..<k {
                let ex = Int(ids[t * k + j])
                matmul(x + t * embd, numTokens: 1, w.gate[ex], g.pointer, w.up[ex], u.pointer)   // [1, ffnExp]
                Ops.siluMul(gate: g.pointer, up: u.pointer, n: f, out: g.pointer)
                matmul(g.pointer, numTokens: 1, w.down[ex], y.pointer)                           // [1, embd]
                axpy(weights.pointer[t * k + j], y.pointer, out + t * embd)
            }
        }
    }

    /// Prefill path: bucket (token, slot) pairs by expert, one matmul per active expert, weighted scatter-add.
    private func runGrouped(_ w: MoEWeights, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let k = config.topK, f = expertFFN
        buckets.bucket(ids, count: n * k)
        for i in 0..<buckets.activeCount {
            let ex = Int(buckets.experts[i])
            let list = buckets.assignments(ofActive: i), m = list.count
            for r in 0..<m {                                                      // xg [m, embd]
                let t = Int(list[r]) / k
                (xg.pointer + r * embd).update(from: x + t * embd, count: embd)
            }
            matmul(xg.pointer, numTokens: m, w.gate[ex], g.pointer, w.up[ex], u.pointer)       // [m, ffnExp] each
            Ops.siluMul(gate: g.pointer, up: u.pointer, n: m * f, out: g.pointer)
            matmul(g.pointer, numTokens: m, w.down[ex], y.pointer)                              // [m, embd]
            for r in 0..<m {
                let a = Int(list[r])
                axpy(weights.pointer[a], y.pointer + r * embd, out + (a / k) * embd)
            }
        }
    }

    /// `y[0..<embd] += a * x[0..<embd]` (plain loop; the compiler vectorises it).
    @inline(__always)
    private func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<embd { y[i] += a * x[i] }
    }
}

/// Sizes of a model's MoE blocks.
struct MoEShape {
    let config: RouterConfig
    /// Hidden width of one routed expert (`<arch>.expert_feed_forward_length`).
    let expertFFN: Int
    /// Total hidden width of the shared expert(s), 0 = none.
    let sharedFFN: Int

    init(config: RouterConfig, expertFFN: Int, sharedFFN: Int) {
        self.config = config
        self.expertFFN = expertFFN
        self.sharedFFN = sharedFFN
    }

    /// The routing keys (see `RouterConfig.init(_:normalizeByDefault:)`, validated) and the expert width
    /// `<arch>.expert_feed_forward_length` (default `feed_forward_length`), with `sharedFFN` of shared experts.
    /// - Throws: `ModelLoadError.invalidHyperparameter`; `GGUFError` for missing keys.
    init(_ k: CommonKeys, normalizeByDefault: Bool, sharedFFN: Int) throws {
        config = try RouterConfig(k, normalizeByDefault: normalizeByDefault)
        try config.validate(architecture: k.arch)
        expertFFN = try k.optionalInt("expert_feed_forward_length") ?? k.int("feed_forward_length")
        self.sharedFFN = sharedFFN
    }
}

extension RouterConfig {
    /// Reads `<arch>.expert_count`, `expert_used_count`, `expert_gating_func` (default softmax),
    /// `expert_group_count` / `expert_group_used_count` (default 1), `expert_weights_norm` (default
    /// `normalizeByDefault`, the architecture's HF `norm_topk_prob`), `expert_weights_scale` (default 1).
    /// - Throws: `ModelLoadError.invalidHyperparameter` for an unknown gating function; `GGUFError` for missing keys.
    init(_ k: CommonKeys, normalizeByDefault: Bool) throws {
        let gatingID = try k.optionalInt("expert_gating_func") ?? GatingFunction.softmax.rawValue
        guard let gating = GatingFunction(rawValue: gatingID) else { throw k.invalid("expert_gating_func", "unknown value \(gatingID)") }
        self.init(numExperts: try k.int("expert_count"), topK: try k.int("expert_used_count"), gating: gating,
                  groupCount: try k.optionalInt("expert_group_count") ?? 1,
                  groupUsedCount: try k.optionalInt("expert_group_used_count") ?? 1,
                  normalizeWeights: try k.optionalBool("expert_weights_norm") ?? normalizeByDefault,
                  weightScale: Float(try k.optionalDouble("expert_weights_scale") ?? 1))
    }
}
