import Foundation
import GGUF
import Model
import TestSupport
import XCTest

/// `qwen3moe` MoE (qwen3-moe-tiny: per-head q/k RMSNorm, NEOX RoPE, renormalised top-k) against HF and llama.cpp.
final class Qwen3MoETests: XCTestCase {
    static let fx = MoEFixture(name: "qwen3-moe-tiny")

    func testLoadsAsMoEModelWithFilledHyperparameters() throws {
        let model = try XCTUnwrap(try Self.fx.load("f32") as? MoEDecoderModel)
        Self.fx.checkHyperparameters(model, arch: "qwen3moe")
        XCTAssertEqual(model.routerConfig.numExperts, 8)
        XCTAssertEqual(model.routerConfig.topK, 2)
    }

    func testF32MatchesHFLogitsAtEveryPosition() throws {
        try Self.fx.checkF32VersusHF(try Self.fx.load("f32"))
    }

    func testHiddenStatesMatchHF() throws {
        try Self.fx.checkHiddenStates(try Self.fx.load("f32"))
    }

    func testForwardRoutingMatchesHF() throws {
        try Self.fx.checkForwardRouting(try Self.fx.load("f32"))
    }

    func testPrefillDecodeBatchingAndMoEPathsAgree() throws {
        try Self.fx.checkExecutionPathsAgree()
    }

    func testF16MatchesLlamaCpp() throws {
        try Self.fx.checkF16()
    }

    func testQ8_0ArgmaxMatchesLlamaCpp() throws {
        try Self.fx.checkQ8_0()
    }

    func testQ4KMArgmaxMatchesLlamaCpp() throws {
        try Self.fx.checkQ4KM()
    }
}
