import ArgumentParser
import CQuantize
import Foundation
import GGUF
import Model

/// `sputnik-tools synth --verify` and `--bench`: checks a synthetic GGUF against its generator and times a model.
enum SynthCheck {
    /// Largest relative RMS error (‖dequant − original‖ / ‖original‖ over the sampled rows) accepted per type for
    /// N(0, σ²)-like rows: q8_0 ≈ 0.5 %, q6_K ≈ 1.7 %, q5_0 ≈ 3.7 %, q4_K ≈ 7 % measured; bounds leave a margin.
    static let relErrorBound: [GGMLType: Double] = [.f32: 0, .q8_0: 0.01, .q6_K: 0.025, .q5_0: 0.06, .q4_K: 0.11,
                                                    .iq4_nl: 0.13, .iq4_xs: 0.13, .q3_K: 0.25, .q2_K: 0.40,
        // Nearest-grid-point i-quants (CQuantize quantize_iq.c), measured on N(0, σ²) rows: q4_0 8 %, iq2_xs 31 %,
        // iq2_xxs 36 %, iq1_m 43 %, iq1_s 48 %.
        .q4_0: 0.12, .iq2_xs: 0.36, .iq2_xxs: 0.42, .iq1_m: 0.5, .iq1_s: 0.55]

    /// Rebuilds the plan recorded in `path` (seed, variant, layer count), checks every tensor's name, shape and
    /// type, and dequantizes four rows of each (first, last, two in between) against the regenerated floats.
    /// - Throws: `GGUFError` for unreadable files, `ValidationError` naming the first mismatch or error bound.
    static func verify(path: String) throws {
        let f = try GGUFFile(path: path)
        guard let seedValue = f.metadata["sputnik.synth.seed"]?.intValue,
              let variant = (try f.optionalString("sputnik.synth.variant")).flatMap(SynthPlan.Variant.init(rawValue:)) else {
            throw ValidationError("\(path) was not written by sputnik-tools synth (no sputnik.synth.* keys)")
        }
        var shape = SynthPlan.DeepseekV2Shape()
        shape.layers = try f.int("deepseek2.block_count")
        shape.leadingDense = try f.int("deepseek2.leading_dense_block_count")
        let plan = SynthPlan.deepseekV2(shape, variant: variant, seed: UInt64(seedValue))
        guard plan.tensors.count == f.tensors.count else {
            throw ValidationError("\(path): \(f.tensors.count) tensors, the plan has \(plan.tensors.count)")
        }
        var worst: [GGMLType: Double] = [:]
        let maxCols = plan.tensors.map(\.cols).max() ?? 0
        var want = [Float](repeating: 0, count: maxCols), got = [Float](repeating: 0, count: maxCols)
        for (t, info) in zip(plan.tensors, f.tensors) {
            guard t.name == info.name, t.dims == info.dimensions, t.type == info.type else {
                throw ValidationError("\(path): tensor \(info.name) \(info.dimensions) \(info.type) ≠ plan \(t.name) \(t.dims) \(t.type)")
            }
            let rowBytes = t.type.byteCount(elements: t.cols)
            let base = f.data(for: info)
            var errSq = 0.0, refSq = 0.0
            for row in Set([0, t.rows - 1, t.rows / 3, (t.rows * 7) / 11]) {
                want.withUnsafeMutableBufferPointer { SynthPlan.fillRow(t, row: row, seed: UInt64(seedValue), into: $0.baseAddress!) }
                got.withUnsafeMutableBufferPointer { g in
                    if t.type == .f32 {
                        memcpy(g.baseAddress!, base + row * rowBytes, rowBytes)
                    } else {
                        let rc = ckq_dequantize_row(Int32(t.type.rawValue), base + row * rowBytes, g.baseAddress!, Int64(t.cols))
                        precondition(rc == 0, "no dequantizer for \(t.type)")
                    }
                }
                for i in 0..<t.cols {
                    let w = Double(want[i]), g = Double(got[i])
                    errSq += (g - w) * (g - w)
                    refSq += (w - Double(t.mean)) * (w - Double(t.mean))
                }
            }
            let rel = (errSq / max(refSq, 1e-30)).squareRoot()
            worst[t.type] = max(worst[t.type] ?? 0, rel)
            if rel > relErrorBound[t.type] ?? 0 {
                throw ValidationError("\(path): \(t.name) (\(t.type)) relative RMS error \(rel) above \(relErrorBound[t.type] ?? 0)")
            }
        }
        for (type, e) in worst.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print(String(format: "%-5@ max relative RMS error %.5f (bound %.3f)", type.description as NSString, e,
                         relErrorBound[type] ?? 0))
        }
        print("\(path): \(f.tensors.count) tensors match the plan (seed \(seedValue), \(variant.rawValue))")
    }

    /// Loads `path` with `ModelLoader.load`, prefills `prompt` tokens as one batch, then greedily decodes `decode`
    /// tokens one step at a time; prints load time, tokens/s of both phases and the peak resident memory (VmHWM).
    /// - Throws: `GGUFError` / `ModelLoadError` from loading, `ValidationError` when logits are not finite.
    static func bench(path: String, threads: Int, prompt: Int, decode: Int) throws {
        var t0 = Date()
        let model = try ModelLoader.load(try GGUFFile(path: path), options: ModelOptions(threads: threads))
        let load = Date().timeIntervalSince(t0)
        let vocab = model.hyperparameters.vocabSize, blockSize = 16
        let total = prompt + decode
        let cache = model.makeKVCache(numBlocks: (total + blockSize - 1) / blockSize, blockSize: blockSize)
        let table = (0..<Int32((total + blockSize - 1) / blockSize)).map { $0 }
        var logits = [Float](repeating: 0, count: vocab)
        func step(_ tokens: [Int32], at pos: Int) throws {
            let positions = (0..<tokens.count).map { Int32(pos + $0) }
            let batch = ForwardBatch(tokens: tokens, positions: positions, slotMapping: positions,
                                     sequences: [BatchSequence(tokenStart: 0, tokenCount: tokens.count, blockTable: table,
                                                               contextLength: pos + tokens.count)],
                                     logitRows: [tokens.count - 1])
            logits.withUnsafeMutableBufferPointer { model.forward(batch, cache: cache, logits: $0.baseAddress!) }
            guard logits.allSatisfy(\.isFinite) else { throw ValidationError("non-finite logits at position \(pos)") }
        }
        func argmax() -> Int32 { Int32(logits.indices.max { logits[$0] < logits[$1] }!) }
        let promptIds = (0..<prompt).map { Int32(($0 * 7919) % 30_000 + 100) }
        t0 = Date()
        try step(promptIds, at: 0)
        let prefill = Date().timeIntervalSince(t0)
        var next = argmax(), generated: [Int32] = []
        t0 = Date()
        for i in 0..<decode {
            generated.append(next)
            try step([next], at: prompt + i)
            next = argmax()
        }
        let dec = Date().timeIntervalSince(t0)
        let lo = logits.min() ?? 0, hi = logits.max() ?? 0
        print(String(format: "load %.2f s; prefill %d tokens %.2f s = %.2f tok/s; decode %d tokens %.2f s = %.2f tok/s; %d threads",
                     load, prompt, prefill, Double(prompt) / prefill, decode, dec, Double(decode) / dec, threads))
        print(String(format: "last logits finite, range [%.3f, %.3f]; greedy ids %@", lo, hi,
                     generated.prefix(16).map(String.init).joined(separator: ",")))
        print("VmHWM \(SystemInfo.peakResidentBytes() / 1024) kB")
    }
}
