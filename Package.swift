// swift-tools-version:6.0
// Sputnik: an OpenAI-compatible inference server for quantized MoE and dense GGUF models on CPUs.
// Target layout and import rules: see the design notes in README.md ("Layout").
import PackageDescription

let optimize: [SwiftSetting] = []

let package = Package(
    name: "Sputnik",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sputnik", targets: ["sputnik"]),
        .executable(name: "sputnik-tools", targets: ["sputnik-tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // The offline weight quantizer (synthetic models): for sputnik-tools and tests only, never the runtime.
        .target(name: "CQuantize", dependencies: ["CKernels"], cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Compute", dependencies: ["CKernels",
                                               .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: optimize),
        .target(name: "JSON"),
        .target(name: "GGUF"),
        .target(name: "Tokenizer", dependencies: ["GGUF"]),
        .target(name: "ChatTemplate", dependencies: ["JSON"]),
        .target(name: "Model", dependencies: ["Compute", "GGUF"], swiftSettings: optimize),
        .target(name: "Scheduling"),
        .target(name: "Engine", dependencies: ["Model", "GGUF", "Scheduling", "Tokenizer", "ChatTemplate",
                                              .product(name: "Logging", package: "swift-log")],
                swiftSettings: optimize),
        .target(name: "OpenAIAPI", dependencies: ["JSON"]),
        .target(name: "HTTPServer", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "Server", dependencies: ["HTTPServer", "OpenAIAPI", "Engine", "Scheduling", "ChatTemplate", "Tokenizer",
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "Metrics", package: "swift-metrics"),
                                              .product(name: "Prometheus", package: "swift-prometheus")]),
        // The served binary: the product CLI only (serve, info, tokenize, detokenize, template).
        .executableTarget(name: "sputnik", dependencies: [
            "Server", "GGUF", "Tokenizer", "ChatTemplate",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Developer tools, never linked into `sputnik`: bench and the bandwidth probe, logits dumps,
        // bench-tokenize, synthetic models.
        .executableTarget(name: "sputnik-tools", dependencies: [
            "Model", "Compute", "GGUF", "Tokenizer", "CQuantize",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"]),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "JSON", "TestSupport"]),
        .testTarget(name: "ComputeTests", dependencies: ["Compute", "CKernels", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "TestSupport"]),
        .testTarget(name: "CQuantizeTests", dependencies: ["CQuantize", "GGUF", "TestSupport"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TestSupport"]),
        .testTarget(name: "OpenAIAPITests", dependencies: ["OpenAIAPI"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "TestSupport"]),
    ]
)
