// swift-tools-version:6.0
// Sputnik: an OpenAI-compatible inference server for quantized MoE and dense GGUF models on CPUs.
// Target layout and import rules: README.md ("How it is built"); `make lint` (scripts/lint-imports.py) checks them.
import PackageDescription

/// Every Swift target: an import a file uses must be declared here and written in that file.
let strict: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

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
                swiftSettings: strict),
        .target(name: "JSON", swiftSettings: strict),
        .target(name: "GGUF", swiftSettings: strict),
        // GGUF writers (in memory and streamed): fixtures and synthetic models, for sputnik-tools and tests only.
        .target(name: "GGUFWriting", dependencies: ["GGUF"], swiftSettings: strict),
        .target(name: "Tokenizer", dependencies: ["GGUF"], swiftSettings: strict),
        .target(name: "ChatTemplate", dependencies: ["JSON"], swiftSettings: strict),
        .target(name: "Grammar", dependencies: ["JSON", "Tokenizer"], swiftSettings: strict),
        .target(name: "Model", dependencies: ["Compute", "GGUF", .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: strict),
        .target(name: "Scheduling", swiftSettings: strict),
        .target(name: "Engine", dependencies: ["Model", "Compute", "GGUF", "Scheduling", "Tokenizer", "ChatTemplate", "Grammar", "JSON",
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: strict),
        .target(name: "OpenAIAPI", dependencies: ["JSON"], swiftSettings: strict),
        // zlib (gzip bodies) and OpenSSL (TLS) for the HTTP server, from the system (scripts/install-deps.sh).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "HTTPServer", dependencies: ["CZlib", "COpenSSL", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "Server", dependencies: ["HTTPServer", "OpenAIAPI", "JSON", "Engine", "Model", "Compute", "Scheduling", "ChatTemplate", "Tokenizer", "Grammar",
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "Metrics", package: "swift-metrics"),
                                              .product(name: "Prometheus", package: "swift-prometheus"),
                                              .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: strict),
        // The served binary: the product CLI only (serve, chat, info, tokenize, detokenize, template).
        .executableTarget(name: "sputnik", dependencies: [
            "Server", "GGUF", "Tokenizer", "ChatTemplate", "JSON",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: strict),
        // Developer tools, never linked into `sputnik`: bench and the bandwidth probe, logits dumps,
        // bench-tokenize, synthetic models.
        .executableTarget(name: "sputnik-tools", dependencies: [
            "Model", "Compute", "CKernels", "GGUF", "GGUFWriting", "Tokenizer", "CQuantize", "JSON", "Grammar",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict),
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "GGUFWriting", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUF", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "JSON", "Tokenizer", "GGUF", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "JSON", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ComputeTests", dependencies: ["Compute", "CKernels", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Compute", "GGUF", "GGUFWriting", "CQuantize", "CKernels", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "CQuantizeTests", dependencies: ["CQuantize", "GGUF", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling"], swiftSettings: strict),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Model", "GGUF", "Scheduling", "Tokenizer", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "OpenAIAPITests", dependencies: ["OpenAIAPI", "JSON"], swiftSettings: strict),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ServerTests", dependencies: ["Server", "Engine", "OpenAIAPI", "Tokenizer", "ChatTemplate", "Grammar", "JSON", "TestSupport",
                                                   .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
    ]
)
