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
    /// Per-token when `numTokens * topK < numExperts` (each expert sees about one token), else grouped.
    case automatic
    /// Always visit each token's experts one token at a time (decode path).
    case perToken
    /// Always bucket tokens by expert and run one matmul per active expert (prefill path).
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

    /// Loads `blk.<layer>.` MoE weights. `sharedFFN` is the shared experts' total hidden width (0 = none).
    /// - Throws: `ModelLoadError` for a missing tensor, wrong shape or unsupported type.
    static func load(_ tl: inout TensorLoader, layer: Int, embd: Int, expertFFN: Int, sharedFFN: Int,
                     config: RouterConfig, repack: (WeightMatrix) -> WeightMatrix) throws -> MoEWeights {
        let p = "blk.\(layer)."
        let e = config.numExperts
        let bias = tl.has(p + "exp_probs_b.bias") ? try tl.vector(p + "exp_probs_b.bias", count: e) : nil
        let hasShared = sharedFFN > 0
        return MoEWeights(
            router: try tl.matrix(p + "ffn_gate_inp.weight", rows: e, cols: embd),
            selectionBias: bias,
            gate: try tl.experts(p + "ffn_gate_exps.weight", count: e, rows: expertFFN, cols: embd).map(repack),
            up: try tl.experts(p + "ffn_up_exps.weight", count: e, rows: expertFFN, cols: embd).map(repack),
            down: try tl.experts(p + "ffn_down_exps.weight", count: e, rows: embd, cols: expertFFN).map(repack),
            sharedGate: hasShared ? repack(try tl.matrix(p + "ffn_gate_shexp.weight", rows: sharedFFN, cols: embd)) : nil,
            sharedUp: hasShared ? repack(try tl.matrix(p + "ffn_up_shexp.weight", rows: sharedFFN, cols: embd)) : nil,
            sharedDown: hasShared ? repack(try tl.matrix(p + "ffn_down_shexp.weight", rows: embd, cols: sharedFFN)) : nil,
            sharedScale: try sharedGateInput(tl, name: p + "ffn_gate_inp_shexp.weight", embd: embd))
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

extension TensorLoader {
    /// The `count` expert matrices `[rows, cols]` of a 3-D GGUF tensor with ne `[cols, rows, count]`; expert e is
    /// the contiguous slice starting at byte `e * rows * rowBytes(cols)`.
    func experts(_ name: String, count: Int, rows: Int, cols: Int) throws -> [WeightMatrix] {
        let info = try info(name, shape: [cols, rows, count])
        guard let type = WeightType(ggml: info.type), cols % type.blockSize == 0 else {
            throw ModelLoadError.unsupportedTensorType(name: name, type: "\(info.type)")
        }
        let base = gguf.data(for: info)
        let stride = rows * type.rowBytes(cols)
        return (0..<count).map { WeightMatrix(type: type, data: base + $0 * stride, rows: rows, cols: cols) }
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

    private let logits: ScratchBuffer       // [T, E] router logits
    private let routeScratch: ScratchBuffer // [scratchCount]
    private let weights: ScratchBuffer      // [T, k] routing weights
    private let ids: UnsafeMutablePointer<Int32>        // [T, k] chosen experts
    private let counts: UnsafeMutablePointer<Int32>     // [E + 1] tokens per expert, then offsets
    private let order: UnsafeMutablePointer<Int32>      // [T * k] (token * k + j) sorted by expert
    private let xg: ScratchBuffer           // [T, embd] gathered input rows of one expert
    private let g: ScratchBuffer            // [T, max(ffnExp, ffnShared)] gate
    private let u: ScratchBuffer            // [T, max(ffnExp, ffnShared)] up
    private let y: ScratchBuffer            // [T, embd] one expert's output rows
    private let sharedGateValue: ScratchBuffer  // [T] Qwen2-MoE shared-expert gate logits

    init(embd: Int, expertFFN: Int, sharedFFN: Int, config: RouterConfig, maxTokens: Int, matmul: RoundingMatmul) {
        self.embd = embd
        self.expertFFN = expertFFN
        self.sharedFFN = sharedFFN
        self.config = config
        self.maxTokens = maxTokens
        self.matmul = matmul
        let T = maxTokens, k = config.topK, e = config.numExperts, f = max(expertFFN, sharedFFN)
        logits = ScratchBuffer(count: T * e)
        routeScratch = ScratchBuffer(count: config.scratchCount)
        weights = ScratchBuffer(count: T * k)
        ids = .allocate(capacity: T * k)
        counts = .allocate(capacity: e + 1)
        order = .allocate(capacity: T * k)
        xg = ScratchBuffer(count: T * embd)
        g = ScratchBuffer(count: T * f)
        u = ScratchBuffer(count: T * f)
        y = ScratchBuffer(count: T * embd)
        sharedGateValue = ScratchBuffer(count: T)
    }

    deinit {
        ids.deallocate()
        counts.deallocate()
        order.deallocate()
    }

    /// out `[n, embd]` = MoE(x) for normed input x `[n, embd]` (out must not alias x). `trace` receives the chosen
    /// ids `[n, k]` and weights `[n, k]` when set.
    func run(_ w: MoEWeights, x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>,
             routing trace: ((UnsafePointer<Int32>, UnsafePointer<Float>) -> Void)? = nil) {
        precondition(n >= 1 && n <= maxTokens, "MoE batch \(n) outside 1...\(maxTokens)")
        let e = config.numExperts, k = config.topK
        // Router.                                                              logits [n, E]
        matmul(x, numTokens: n, w.router, logits.pointer)
        for t in 0..<n {
            Router.route(logits: logits.pointer + t * e, bias: w.selectionBias, config: config,
                         scratch: routeScratch.pointer, ids: ids + t * k, weights: weights.pointer + t * k)
        }
        trace?(ids, weights.pointer)
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
        let perToken: Bool
        switch execution {
        case .automatic: perToken = n * k < e
        case .perToken: perToken = true
        case .grouped: perToken = false
        }
        if perToken { runPerToken(w, x: x, n: n, out: out) } else { runGrouped(w, x: x, n: n, out: out) }
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
        let e = config.numExperts, k = config.topK, f = expertFFN
        // Counting sort of the n*k assignments by expert.
        counts.update(repeating: 0, count: e + 1)
        for a in 0..<(n * k) { counts[Int(ids[a]) + 1] += 1 }
        for i in 0..<e { counts[i + 1] += counts[i] }                            // counts[e] = start of expert e
        for a in 0..<(n * k) {
            let ex = Int(ids[a])
            order[Int(counts[ex])] = Int32(a)
            counts[ex] += 1
        }                                                                         // now counts[e] = end of expert e
        var start = 0
        for ex in 0..<e {
            let end = Int(counts[ex])
            let m = end - start
            if m > 0 {
                for r in 0..<m {                                                  // xg [m, embd]
                    let t = Int(order[start + r]) / k
                    (xg.pointer + r * embd).update(from: x + t * embd, count: embd)
                }
                matmul(xg.pointer, numTokens: m, w.gate[ex], g.pointer, w.up[ex], u.pointer)   // [m, ffnExp] each
                Ops.siluMul(gate: g.pointer, up: u.pointer, n: m * f, out: g.pointer)
                matmul(g.pointer, numTokens: m, w.down[ex], y.pointer)                          // [m, embd]
                for r in 0..<m {
                    let a = Int(order[start + r])
                    axpy(weights.pointer[a], y.pointer + r * embd, out + (a / k) * embd)
                }
            }
            start = end
        }
    }

    /// `y[0..<embd] += a * x[0..<embd]` (plain loop; the compiler vectorises it).
    @inline(__always)
    private func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<embd { y[i] += a * x[i] }
    }
}

/// A language model with Mixture-of-Experts blocks whose execution path can be chosen (for verification).
public protocol MixtureOfExpertsModel: LanguageModel {
    /// Routing hyper-parameters.
    var routerConfig: RouterConfig { get }
    /// MoE execution path used by the following forwards.
    var moeExecution: MoEExecution { get set }
}
