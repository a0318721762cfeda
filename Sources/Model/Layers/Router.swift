// Mixture-of-Experts routing: which experts a token visits and with what weight.
//
// Sources: DeepSeek-V2 paper §2.2 (DeepSeekMoE: softmax affinities, top-K, device/group-limited routing);
// DeepSeek-V3 technical report §2.1.2 (sigmoid affinities, auxiliary-loss-free balancing: a per-expert bias is added
// for *selection only*, the gating weights come from the unbiased affinities and are normalised);
// HF transformers models/deepseek_v3/modeling_deepseek_v3.py (`DeepseekV3TopkRouter.get_topk_indices`: group score =
// sum of the top-2 biased scores of the group), HF modeling_deepseek_v2.py (`group_limited_greedy`: group score = max),
// HF models/qwen2_moe, qwen3_moe, mixtral (softmax → top-k → optional renormalisation);
// llama.cpp src/llama-graph.cpp `build_moe_ffn` (probs → selection bias → group mask → top-k → norm → scale).
import Foundation

/// How router logits become expert affinities (GGUF `<arch>.expert_gating_func`: 1 = softmax, 2 = sigmoid).
public enum GatingFunction: Int, Sendable {
    /// Softmax over all experts (DeepSeek-V2, Qwen-MoE, Mixtral).
    case softmax = 1
    /// Element-wise sigmoid (DeepSeek-V3/R1).
    case sigmoid = 2
}

/// Routing hyper-parameters of one MoE model.
public struct RouterConfig: Sendable, Equatable {
    /// Routed experts `E` (`<arch>.expert_count`).
    public var numExperts: Int
    /// Experts per token `k` (`<arch>.expert_used_count`).
    public var topK: Int
    /// Affinity function.
    public var gating: GatingFunction
    /// Expert groups (`<arch>.expert_group_count`, 1 = no group limit). `numExperts` must be divisible by it.
    public var groupCount: Int = 1
    /// Groups a token may pick experts from (`<arch>.expert_group_used_count`).
    public var groupUsedCount: Int = 1
    /// Renormalise the k chosen affinities to sum 1 (`<arch>.expert_weights_norm`).
    public var normalizeWeights: Bool = false
    /// Multiplier applied to the final weights (`<arch>.expert_weights_scale`, DeepSeek `routed_scaling_factor`).
    public var weightScale: Float = 1

    /// A configuration; see the properties.
    public init(numExperts: Int, topK: Int, gating: GatingFunction, groupCount: Int = 1, groupUsedCount: Int = 1,
                normalizeWeights: Bool = false, weightScale: Float = 1) {
        self.numExperts = numExperts
        self.topK = topK
        self.gating = gating
        self.groupCount = groupCount
        self.groupUsedCount = groupUsedCount
        self.normalizeWeights = normalizeWeights
        self.weightScale = weightScale
    }

    /// Floats of scratch `Router.route` needs: `[2 * numExperts + groupCount]`.
    public var scratchCount: Int { 2 * numExperts + groupCount }

    /// Checks the invariants `Router.route` relies on.
    /// - Throws: `ModelLoadError.invalidHyperparameter` naming the offending key.
    public func validate(architecture arch: String) throws {
        func bad(_ k: String, _ r: String) -> ModelLoadError { .invalidHyperparameter(key: "\(arch).\(k)", reason: r) }
        guard numExperts > 0 else { throw bad("expert_count", "must be > 0") }
        guard topK > 0, topK <= numExperts else { throw bad("expert_used_count", "\(topK) not in 1...\(numExperts)") }
        guard groupCount > 0, numExperts % groupCount == 0 else {
            throw bad("expert_group_count", "\(numExperts) experts not divisible into \(groupCount) groups")
        }
        guard groupUsedCount > 0, groupUsedCount <= groupCount,
              topK <= groupUsedCount * (numExperts / groupCount) else {
            throw bad("expert_group_used_count", "\(groupUsedCount) of \(groupCount) groups cannot hold \(topK) experts")
        }
    }
}

/// Pure routing function (no state, no allocation in `route(logits:...)`).
///
/// ```
/// logits [E] ──gating──▶ p [E] ──(+ bias, selection only)──▶ s [E]
///   groups: score each group (sigmoid+bias: sum of its top-2 s; otherwise: max s), keep the best `groupUsedCount`
///   top-k of s over the kept groups (ties → lower expert id)  ──▶ ids [k]
///   w_j = p[ids_j]; if normalize: w /= Σw; w *= weightScale          ──▶ weights [k]
/// ```
public enum Router {
    /// Routes one token. logits `[E]` (router output, pre-activation), bias `[E]` or nil (`exp_probs_b`),
    /// scratch `[config.scratchCount]`; writes `ids [k]` (descending selection score) and `weights [k]`.
    public static func route(logits: UnsafePointer<Float>, bias: UnsafePointer<Float>?, config c: RouterConfig,
                             scratch: UnsafeMutablePointer<Float>, ids: UnsafeMutablePointer<Int32>,
                             weights: UnsafeMutablePointer<Float>) {
        let e = c.numExperts
        let p = scratch, s = scratch + e, groupScore = scratch + 2 * e
        // Affinities.                                                         p [E]
        switch c.gating {
        case .softmax:
            var m = -Float.infinity
            for i in 0..<e { m = max(m, logits[i]) }
            var sum: Float = 0
            for i in 0..<e { let v = expf(logits[i] - m); p[i] = v; sum += v }
            for i in 0..<e { p[i] /= sum }
        case .sigmoid:
            for i in 0..<e { p[i] = 1 / (1 + expf(-logits[i])) }
        }
        // Selection scores.                                                   s [E]
        for i in 0..<e { s[i] = p[i] + (bias?[i] ?? 0) }
        // Group limit: mask the experts of all but the best `groupUsedCount` groups.
        if c.groupCount > 1 && c.groupUsedCount < c.groupCount {
            let size = e / c.groupCount
            let sumTop2 = bias != nil && c.gating == .sigmoid
            for g in 0..<c.groupCount {
                var best = -Float.infinity, second = -Float.infinity
                for i in (g * size)..<((g + 1) * size) {
                    let v = s[i]
                    if v > best { second = best; best = v } else if v > second { second = v }
                }
                groupScore[g] = sumTop2 ? (size > 1 ? best + second : best) : best
            }
            for _ in 0..<(c.groupCount - c.groupUsedCount) {   // drop the worst groups (ties: higher index first)
                var worst = -1
                for g in 0..<c.groupCount where groupScore[g] != .infinity {
                    if worst < 0 || groupScore[g] <= groupScore[worst] { worst = g }
                }
                groupScore[worst] = .infinity
                for i in (worst * size)..<((worst + 1) * size) { s[i] = -.infinity }
            }
        }
        // Top-k by repeated arg-max (k is small); a chosen expert is marked NaN.
        var total: Float = 0
        for j in 0..<c.topK {
            var best = -1
            for i in 0..<e where !s[i].isNaN {
                if best < 0 || s[i] > s[best] { best = i }
            }
            s[best] = .nan
            ids[j] = Int32(best)
            weights[j] = p[best]
            total += p[best]
        }
        let norm: Float = c.normalizeWeights ? c.weightScale / total : c.weightScale
        for j in 0..<c.topK { weights[j] *= norm }
    }

    /// Convenience wrapper of `route(logits:bias:config:scratch:ids:weights:)` for one token (allocates; for tests
    /// and tools). logits `[E]`, bias `[E]` or nil; returns ids and weights `[k]`.
    public static func route(logits: [Float], bias: [Float]?, config: RouterConfig) -> (ids: [Int], weights: [Float]) {
        precondition(logits.count == config.numExperts && (bias == nil || bias!.count == config.numExperts),
                     "logits/bias length must equal numExperts")
        var scratch = [Float](repeating: 0, count: config.scratchCount)
        var ids = [Int32](repeating: 0, count: config.topK)
        var weights = [Float](repeating: 0, count: config.topK)
        logits.withUnsafeBufferPointer { l in
            let run = { (b: UnsafePointer<Float>?) in
                route(logits: l.baseAddress!, bias: b, config: config, scratch: &scratch, ids: &ids, weights: &weights)
            }
            if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }
        return (ids.map(Int.init), weights)
    }
}
