import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// The pure routing function: hand-made cases (ties, groups, bias, normalisation) and HF's routing decisions for
/// every MoE fixture (router logits from the manifest → chosen sets and weights).
final class RouterTests: XCTestCase {
    func testSoftmaxTopKWithoutNormalisationReturnsProbabilities() {
        let cfg = RouterConfig(numExperts: 4, topK: 2, gating: .softmax)
        let (ids, w) = Router.route(logits: [0, 2, 1, -1], bias: nil, config: cfg)
        XCTAssertEqual(ids, [1, 2])
        let z = exp(0.0) + exp(2.0) + exp(1.0) + exp(-1.0)
        XCTAssertEqual(Double(w[0]), exp(2.0) / z, accuracy: 1e-6)
        XCTAssertEqual(Double(w[1]), exp(1.0) / z, accuracy: 1e-6)
    }

    func testNormalisationAndScale() {
        let cfg = RouterConfig(numExperts: 4, topK: 2, gating: .softmax, normalizeWeights: true, weightScale: 2.5)
        let (ids, w) = Router.route(logits: [0, 2, 1, -1], bias: nil, config: cfg)
        XCTAssertEqual(ids, [1, 2])
        XCTAssertEqual(Double(w[0]), 2.5 * exp(2.0) / (exp(2.0) + exp(1.0)), accuracy: 1e-5)
        XCTAssertEqual(Double(w[0] + w[1]), 2.5, accuracy: 1e-5)
    }

    func testTiesPickLowerExpertIdFirst() {
        let cfg = RouterConfig(numExperts: 6, topK: 3, gating: .softmax)
        XCTAssertEqual(Router.route(logits: [1, 3, 1, 3, 1, 0], bias: nil, config: cfg).ids, [1, 3, 0])
        let sig = RouterConfig(numExperts: 4, topK: 2, gating: .sigmoid)
        XCTAssertEqual(Router.route(logits: [0, 0, 0, 0], bias: nil, config: sig).ids, [0, 1])
    }

    func testBiasChangesSelectionButNotWeights() {
        let cfg = RouterConfig(numExperts: 4, topK: 1, gating: .sigmoid)
        let logits: [Float] = [1.0, 0.5, 0, -1]
        XCTAssertEqual(Router.route(logits: logits, bias: nil, config: cfg).ids, [0])
        let (ids, w) = Router.route(logits: logits, bias: [0, 0.3, 0, 0], config: cfg)
        XCTAssertEqual(ids, [1], "sigmoid(0.5)+0.3 > sigmoid(1)")
        XCTAssertEqual(Double(w[0]), 1 / (1 + exp(-0.5)), accuracy: 1e-6, "weight is the unbiased affinity")
    }

    func testGroupLimitExcludesExpertsOutsideTheBestGroups() {
        // 8 experts in 4 groups of 2; only 1 group may be used. Group scores (sum of top-2 sigmoid+bias):
        // group 0 has the single best expert, group 2 the best pair.
        let logits: [Float] = [3, -3, 0, 0, 1.5, 1.5, -2, -2]
        let cfg = RouterConfig(numExperts: 8, topK: 2, gating: .sigmoid, groupCount: 4, groupUsedCount: 1)
        XCTAssertEqual(Set(Router.route(logits: logits, bias: [0, 0, 0, 0, 0, 0, 0, 0], config: cfg).ids), [4, 5])
        // Without groups expert 0 wins.
        let flat = RouterConfig(numExperts: 8, topK: 2, gating: .sigmoid)
        XCTAssertEqual(Router.route(logits: logits, bias: nil, config: flat).ids.first, 0)
        // Softmax gating (DeepSeek-V2 group_limited_greedy) scores a group by its best expert → group 0.
        let v2 = RouterConfig(numExperts: 8, topK: 2, gating: .softmax, groupCount: 4, groupUsedCount: 1)
        XCTAssertEqual(Set(Router.route(logits: logits, bias: nil, config: v2).ids), [0, 1])
    }

    func testInvalidConfigurationsAreRejected() {
        XCTAssertThrowsError(try RouterConfig(numExperts: 8, topK: 9, gating: .softmax).validate(architecture: "x"))
        XCTAssertThrowsError(try RouterConfig(numExperts: 8, topK: 2, gating: .softmax, groupCount: 3).validate(architecture: "x"))
        XCTAssertThrowsError(try RouterConfig(numExperts: 8, topK: 6, gating: .sigmoid, groupCount: 4, groupUsedCount: 2)
            .validate(architecture: "x"))
        XCTAssertNoThrow(try RouterConfig(numExperts: 8, topK: 2, gating: .sigmoid, groupCount: 4, groupUsedCount: 2)
            .validate(architecture: "x"))
    }

    /// HF router logits → `Router.route` with each model's loaded routing config (and the GGUF's `exp_probs_b`)
    /// reproduce HF's chosen sets and weights (≤ 1e-5) wherever HF's margin is ≥ 1e-5.
    func testMatchesHFRoutingOfEveryFixture() throws {
        for name in ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "qwen2-moe-tiny", "qwen3-moe-tiny", "mixtral-tiny"] {
            let fx = MoEFixture(name: name)
            let gguf = try GGUFFile(path: fx.ggufPath("f32"))
            let model = try XCTUnwrap(try ModelLoader.load(gguf, options: ModelOptions(threads: 1, kvCacheType: .f32, maxBatchTokens: 8))
                                      as? DecoderModel)
            let cfg = try XCTUnwrap(model.routerConfig)
            var checked = 0, skipped = 0
            for (seq, _) in try fx.sequences() {
                for entry in try fx.routing(seq) {
                    let layer = Int((entry["module"] as! String).split(separator: ".")[2])!
                    var bias: [Float]?
                    if let info = gguf.tensorInfo(named: "blk.\(layer).exp_probs_b.bias") {
                        let p = gguf.data(for: info).assumingMemoryBound(to: Float.self)
                        bias = Array(UnsafeBufferPointer(start: p, count: cfg.numExperts))
                    }
                    let logits = entry["router_logits"] as! [[Double]]
                    let ids = entry["topk_ids"] as! [[Int]], weights = entry["topk_weights"] as! [[Double]]
                    let margin = entry["margin"] as! [Double]
                    for t in 0..<logits.count {
                        guard margin[t] >= 1e-5 else { skipped += 1; continue }
                        let got = Router.route(logits: logits[t].map(Float.init), bias: bias, config: cfg)
                        XCTAssertEqual(Set(got.ids), Set(ids[t]), "\(name) s\(seq) layer \(layer) t \(t)")
                        for (j, e) in got.ids.enumerated() {
                            guard let i = ids[t].firstIndex(of: e) else { continue }
                            XCTAssertEqual(Double(got.weights[j]), weights[t][i], accuracy: 1e-5, "\(name) s\(seq) layer \(layer) t \(t)")
                        }
                        checked += 1
                    }
                }
            }
            print("\(name): routing checked at \(checked) token-layers, \(skipped) skipped (margin < 1e-5)")
            XCTAssertGreaterThan(checked, 50, name)
        }
    }
}
