import ArgumentParser
import Foundation
import GGUF
import Model

/// `sputnik-tools logits`: one forward over given token ids; writes every position's logits as little-endian float32
/// `[numTokens, vocabSize]` and/or prints the top-K ids per position (for comparisons with reference engines).
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute the logits of every position of a token sequence.")

    @Option(name: [.customShort("m"), .long], help: "GGUF model file.")
    var model: String
    @Option(help: "Comma-separated token ids, e.g. 1,2,3.")
    var tokens: String
    @Option(help: "Write logits [numTokens, vocabSize] as raw little-endian float32 to this file.")
    var out: String?
    @Option(help: "Print the top K ids and logits of each position.")
    var top: Int?
    @Option(name: [.customShort("t"), .long], help: "Compute threads (default: number of cores).")
    var threads: Int?
    @Option(name: .customLong("kv-cache-type"), help: "KV cache element type: f16 (default), bf16, f32 or q8_0 (MLA models).")
    var kvCacheType: String = "f16"

    func run() throws {
        let ids: [Int32] = try tokens.split(separator: ",").map {
            guard let v = Int32($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("bad token id '\($0)'") }
            return v
        }
        guard !ids.isEmpty else { throw ValidationError("--tokens is empty") }
        guard out != nil || top != nil else { throw ValidationError("pass --out FILE and/or --top K") }
        guard let kv = KVCacheType(rawValue: kvCacheType) else { throw ValidationError("--kv-cache-type must be \(KVCacheType.choices)") }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1") }
        let nThreads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard nThreads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let lm = try ModelLoader.load(try GGUFFile(path: model),
                                      options: ModelOptions(threads: nThreads, kvCacheType: kv, maxBatchTokens: min(512, ids.count)))
        let vocab = lm.hyperparameters.vocabSize
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw ValidationError("token id \(bad) outside the vocabulary 0..<\(vocab)")
        }
        let logits = SequenceLogits.compute(model: lm, tokens: ids)
        if let out {
            let data = logits.withUnsafeBufferPointer { Data(buffer: $0) }   // x86-64 / arm64: little-endian
            try data.write(to: URL(fileURLWithPath: out))
        }
        if let k = top {
            for t in 0..<ids.count {
                let row = logits[(t * vocab)..<((t + 1) * vocab)]
                let best = SequenceLogits.top(row, k: k).map { "\($0.id):\(String(format: "%.4f", $0.logit))" }
                print("\(t)\t\(ids[t])\t\(best.joined(separator: " "))")
            }
        }
    }
}
