import ArgumentParser
import CQuantize
import Dispatch
import Foundation
import GGUF
import GGUFWriting

/// `sputnik-tools synth`: writes a full-size synthetic model (real shapes, random weights) as GGUF, checks one against
/// its generator (`--verify`), or times prefill/decode on one (`--bench`).
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a full-size random-weight GGUF model (deepseek2 / DeepSeek-V2-Lite shape), verify or benchmark one.")

    @Option(help: "GGUF architecture (only deepseek2).")
    var arch = "deepseek2"
    @Option(help: "Shape preset (only v2-lite: DeepSeek-V2-Lite, 27 layers, 64 experts).")
    var preset = "v2-lite"
    @Option(help: "Weight format: q4_k (llama.cpp Q4_K_M mix), q8_0, or routed experts in q2_k_dyn (the R1 dynamic low-bit mix: routed experts Q2_K), or routed experts in iq1_s, iq1_m, iq2_xxs or iq2_xs (the rest as q4_k).")
    var type = "q8_0"
    @Option(help: "Output GGUF path.")
    var out: String?
    @Option(help: "GGUF whose tokenizer.* metadata is copied (its vocabulary must have the preset's size).")
    var vocab = "Tests/Fixtures/tokenizer/ggml-vocab-deepseek-llm.gguf"
    @Option(help: "Random seed.")
    var seed: UInt64 = 1
    @Option(help: "Number of layers (default: the preset's).")
    var layers: Int?
    @Option(help: "Quantization threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Check FILE against its generator: dequantize sampled rows, report errors.")
    var verify: String?
    @Option(help: "Time prefill and decode of FILE (load with ModelLoader, finite-logit check).")
    var bench: String?
    @Option(name: .customLong("bench-threads"), help: "Compute threads for --bench.")
    var benchThreads = 2
    @Option(name: .customLong("bench-prompt"), help: "Prompt tokens for --bench.")
    var benchPrompt = 128
    @Option(name: .customLong("bench-decode"), help: "Decode steps for --bench.")
    var benchDecode = 32

    func validate() throws {
        if verify != nil || bench != nil { return }
        guard arch == "deepseek2" else { throw ValidationError("--arch \(arch): only deepseek2 is supported") }
        guard preset == "v2-lite" else { throw ValidationError("--preset \(preset): only v2-lite is supported") }
        guard SynthPlan.Variant(rawValue: type) != nil else {
            throw ValidationError("--type must be one of \(SynthPlan.Variant.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard out != nil else { throw ValidationError("--out FILE.gguf is required") }
        if let layers, layers < 1 { throw ValidationError("--layers must be ≥ 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
    }

    func run() throws {
        if let verify { return try SynthCheck.verify(path: verify) }
        if let bench {
            return try SynthCheck.bench(path: bench, threads: benchThreads, prompt: benchPrompt, decode: benchDecode)
        }
        var shape = SynthPlan.DeepseekV2Shape()
        if let layers { shape.layers = layers; shape.leadingDense = min(shape.leadingDense, layers) }
        let variant = SynthPlan.Variant(rawValue: type)!
        let plan = SynthPlan.deepseekV2(shape, variant: variant, seed: seed)
        let start = Date()
        let bytes = try SynthWriter.write(plan: plan, tokenizerFrom: vocab, vocabSize: shape.vocab, fileType: variant.fileType,
                                          seed: seed, threads: threads, to: out!) { line in print(line) }
        let secs = Date().timeIntervalSince(start)
        print(String(format: "wrote %@: %d tensors, %.2f GB in %.1f s", out!, plan.tensors.count, Double(bytes) / 1e9, secs))
    }
}

/// Streams a `SynthPlan` to a GGUF file: rows are generated and quantized by `threads` workers in chunks of a
/// few MB, then appended with `GGUFStreamWriter`; memory use stays at one chunk plus one f32 row per worker.
enum SynthWriter {
    /// The worker-shared buffers: each worker touches only its own scratch row and its own output rows.
    private struct SharedBuffers: @unchecked Sendable {
        let scratch: UnsafeMutablePointer<Float>   // [threads, maxCols]
        let output: UnsafeMutableRawPointer        // [chunkRows, rowBytes]
    }

    /// Target bytes of quantized output per chunk.
    static let chunkBytes = 32 << 20

    /// Writes the file; returns its size in bytes. `progress` receives one line per tensor.
    /// - Throws: `GGUFError` (vocabulary file unreadable, write failures), `ValidationError` when the vocabulary
    ///   size differs from `vocabSize`.
    static func write(plan: SynthPlan, tokenizerFrom vocabPath: String, vocabSize: Int, fileType: UInt32, seed: UInt64,
                      threads: Int, to path: String, progress: (String) -> Void) throws -> Int {
        let vocab = try GGUFFile(path: vocabPath)
        var md = plan.metadata
        for k in vocab.keys where k.hasPrefix("tokenizer.") { md.append((k, vocab.metadata[k]!)) }
        let n = try vocab.array("tokenizer.ggml.tokens").count
        guard n == vocabSize else {
            throw ValidationError("\(vocabPath) has \(n) tokens; the preset needs \(vocabSize)")
        }
        md.append(("general.quantization_version", .uint32(2)))
        md.append(("general.file_type", .uint32(fileType)))
        let decls = plan.tensors.map { GGUFStreamWriter.TensorDecl(name: $0.name, dims: $0.dims, type: $0.type) }
        let writer = try GGUFStreamWriter(path: path, metadata: md, tensors: decls)
        let maxCols = plan.tensors.map(\.cols).max() ?? 0
        let rowScratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * maxCols)  // [threads, maxCols]
        defer { rowScratch.deallocate() }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkBytes + 64 * 1024, alignment: 64)
        defer { buffer.deallocate() }
        for t in plan.tensors {
            let began = Date()
            try writer.beginTensor(t.name)
            let rowBytes = t.type.byteCount(elements: t.cols)
            let chunkRows = max(1, chunkBytes / rowBytes)
            var r0 = 0
            while r0 < t.rows {
                let nrows = min(chunkRows, t.rows - r0)
                let workers = min(threads, nrows)
                let first = r0, shared = SharedBuffers(scratch: rowScratch, output: buffer)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let scratch = shared.scratch + w * maxCols, buffer = shared.output
                    var r = w
                    while r < nrows {
                        SynthPlan.fillRow(t, row: first + r, seed: seed, into: scratch)
                        let done = ckq_quantize_rows(Int32(t.type.rawValue), scratch, buffer + r * rowBytes, 1, Int64(t.cols))
                        precondition(done == Int64(rowBytes), "no quantizer for \(t.type) rows of \(t.cols)")
                        r += workers
                    }
                }
                try writer.write(UnsafeRawBufferPointer(start: buffer, count: nrows * rowBytes))
                r0 += nrows
            }
            try writer.endTensor()
            progress(String(format: "%-28@ %-22@ %-5@ %8.1f MB %6.2f s", t.name as NSString,
                            t.dims.description as NSString, t.type.description as NSString,
                            Double(t.rows * rowBytes) / 1e6, Date().timeIntervalSince(began)))
        }
        try writer.finish()
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return (attrs[.size] as? NSNumber)?.intValue ?? 0
    }
}
