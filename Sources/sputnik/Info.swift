import ArgumentParser
import Foundation
import GGUF
import Server

/// `sputnik info MODEL`: what a GGUF file holds and what serving it will take — architecture, parameters, the
/// mix of quantization types (with bits per weight), context length, chat template, and the memory `sputnik serve`
/// needs at the given `--ctx-size`, `--max-num-seqs` and `--kv-cache-type`: the weights plus the KV cache pool.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a GGUF model's architecture, parameters, quantization mix, context, template and memory need.")

    @Argument(help: "Path of the GGUF file.")
    var path: String?
    @Option(name: [.customShort("m"), .long], help: "Path of the GGUF file (instead of the argument).")
    var model: String?
    @Option(name: [.customShort("c"), .customLong("ctx-size")], parsing: .unconditional, help: "Context per request for the memory estimate (default: min(4096, the model's)).")
    var ctxSize: Int?
    @Option(name: .customLong("max-num-seqs"), parsing: .unconditional, help: "Requests decoded together, for the memory estimate (default 8).")
    var maxNumSeqs = 8
    @Option(name: .customLong("kv-cache-type"), help: "f16 (default), bf16, f32 or q8_0 (MLA models), for the memory estimate.")
    var kvCacheType = "f16"
    @Flag(help: "Also print every metadata key.")
    var metadata = false
    @Flag(help: "Also list every tensor.")
    var tensors = false

    func validate() throws {
        if path == nil && model == nil { throw ValidationError("no model: give the model file, sputnik info MODEL") }
        if path != nil && model != nil { throw ValidationError("give the model file once: sputnik info MODEL") }
        if ServerOptions.kvCacheElementBytes(kvCacheType) == nil {
            throw ValidationError("--kv-cache-type must be \(ServerOptions.kvCacheTypeChoices)")
        }
        if maxNumSeqs < 1 { throw ValidationError("--max-num-seqs must be at least 1") }
        if let c = ctxSize, c < 16 { throw ValidationError("--ctx-size must be at least 16") }
    }

    func run() throws {
        let f = try GGUFFile(path: path ?? model!)
        let summary = try ModelSummary(f)
        if kvCacheType == "q8_0" && !summary.hasLatentRows {   // as `serve` refuses it (helper-74)
            throw ValidationError("--kv-cache-type q8_0 holds MLA latent rows (DeepSeek-V2/V3/R1); this "
                                  + "\(summary.architecture) model's attention keeps K and V rows: use f16, bf16 or f32")
        }
        let ctx = min(ctxSize ?? min(4096, summary.contextLength), summary.contextLength)
        print(summary.render(contextSize: ctx, maxNumSeqs: maxNumSeqs, kvType: kvCacheType,
                             kvElementBytes: ServerOptions.kvCacheElementBytes(kvCacheType)!))
        if metadata {
            print("metadata (GGUF v\(f.version), \(f.metadata.count) keys):")
            for k in f.keys { print("  \(k) = \(f.metadata[k]!.summary)") }
        }
        if tensors {
            print("tensors:")
            for t in f.tensors { print("  \(t.name) \(t.dimensions) \(t.type)") }
        }
    }
}

/// The figures `sputnik info` prints, read from the GGUF header without loading weights.
struct ModelSummary {
    let name: String?
    let architecture: String
    let parameters: Int
    let weightBytes: Int
    /// Per GGML type: tensors, parameters, bytes; largest share first.
    let mix: [(type: GGMLType, tensors: Int, parameters: Int, bytes: Int)]
    let contextLength: Int
    let layers: Int
    /// KV cache elements of one token across all layers (K and V, or MLA's latent row).
    let kvElementsPerToken: Int
    /// Whether the cache holds MLA latent rows (`<arch>.attention.kv_lora_rank` present): the models a q8_0 cache
    /// serves.
    var hasLatentRows: Bool { latentRow != nil }
    /// An MLA cache row's latent width (kv_lora_rank) and RoPE part, nil for K/V caches.
    let latentRow: (rank: Int, rope: Int)?
    let template: String?

    /// - Throws: `GGUFError` when `general.architecture` or `<arch>.context_length` / `block_count` is missing.
    init(_ f: GGUFFile) throws {
        architecture = try f.architecture()
        name = try? f.optionalString("general.name")
        let arch = architecture
        func key(_ k: String) -> String { "\(arch).\(k)" }
        /// An integer key, or the largest entry of a per-layer array.
        func int(_ k: String) -> Int? {
            guard let v = f.metadata[key(k)] else { return nil }
            return v.intValue ?? v.arrayValue?.compactMap(\.intValue).max()
        }
        contextLength = try f.int(key("context_length"))
        layers = try f.int(key("block_count"))
        parameters = f.tensors.reduce(0) { $0 + $1.elementCount }
        weightBytes = f.tensors.reduce(0) { $0 + $1.byteCount }
        var byType: [GGMLType: (Int, Int, Int)] = [:]
        for t in f.tensors {
            let old = byType[t.type] ?? (0, 0, 0)
            byType[t.type] = (old.0 + 1, old.1 + t.elementCount, old.2 + t.byteCount)
        }
        mix = byType.map { (type: $0.key, tensors: $0.value.0, parameters: $0.value.1, bytes: $0.value.2) }
            .sorted { $0.parameters > $1.parameters }
        latentRow = int("attention.kv_lora_rank").map { (rank: $0, rope: int("rope.dimension_count") ?? 0) }
        if let row = latentRow {
            // MLA caches one compressed row per token and layer: the latent plus the shared RoPE key.
            kvElementsPerToken = layers * (row.rank + row.rope)
        } else {
            let heads = int("attention.head_count") ?? 1
            let kvHeads = int("attention.head_count_kv") ?? heads
            let headDim = int("attention.key_length") ?? (int("embedding_length") ?? 0) / max(heads, 1)
            kvElementsPerToken = layers * kvHeads * headDim * 2
        }
        template = try? f.optionalString("tokenizer.chat_template")
    }

    /// The report. `contextSize` × `maxNumSeqs` tokens size the KV pool, as `sputnik serve` does by default; `kvType`
    /// names the element type (`kvElementBytes` bytes each).
    func render(contextSize: Int, maxNumSeqs: Int, kvType: String, kvElementBytes: Int) -> String {
        var out: [String] = []
        out.append("model:        \(name.map { "\($0) " } ?? "")(\(architecture), \(layers) layers)")
        out.append("parameters:   \(Self.count(parameters)) (\(parameters))")
        let bpw = parameters > 0 ? Double(weightBytes) * 8 / Double(parameters) : 0
        out.append("weights:      \(Self.bytes(weightBytes)), \(String(format: "%.2f", bpw)) bits per weight")
        out.append("quant mix:")
        for m in mix {
            let share = parameters > 0 ? 100 * Double(m.parameters) / Double(parameters) : 0
            let b = m.parameters > 0 ? Double(m.bytes) * 8 / Double(m.parameters) : 0
            out.append("  \(String(describing: m.type).padding(toLength: 8, withPad: " ", startingAt: 0)) "
                       + "\(String(format: "%5.1f", share))% of weights, \(m.tensors) tensor\(m.tensors == 1 ? "" : "s"), \(Self.bytes(m.bytes)), "
                       + "\(String(format: "%.2f", b)) bpw")
        }
        out.append("context:      \(contextLength) tokens (trained)")
        if let t = template {
            let firstLine = t.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            let shown = firstLine.count > 60 ? String(firstLine.prefix(57)) + "..." : firstLine
            out.append("template:     \(t.count) characters, \(Self.templateFamily(t)): \(shown)")
        } else {
            out.append("template:     none in the file (serve uses ChatML unless --chat-template is given)")
        }
        // q8_0 rows are not elements × bytes: two int8 copies and their scales (helper-74: priced as f16).
        let q8Row = kvType == "q8_0" ? latentRow.flatMap { ServerOptions.q8LatentRowBytes(latentRank: $0.rank, rope: $0.rope) } : nil
        let kvPerToken = q8Row.map { layers * $0 } ?? kvElementsPerToken * kvElementBytes
        let pool = kvPerToken * contextSize * maxNumSeqs
        out.append("KV cache:     \(kvType), \(Self.bytes(kvPerToken)) per token; \(contextSize) ctx × \(maxNumSeqs) seqs = \(Self.bytes(pool))")
        out.append("memory need:  \(Self.bytes(weightBytes + pool)) (weights + KV cache pool, plus small per-step buffers)")
        return out.joined(separator: "\n")
    }

    /// The prompt format a template writes, recognised by its markers.
    static func templateFamily(_ t: String) -> String {
        if t.contains("<|im_start|>") { return "ChatML" }
        if t.contains("<|start_header_id|>") { return "Llama 3" }
        if t.contains("<start_of_turn>") { return "Gemma" }
        if t.contains("<｜Assistant｜>") || t.contains("<｜User｜>") { return "DeepSeek" }
        if t.contains("[INST]") { return "Mistral/Llama 2" }
        return "custom"
    }

    /// 134515008 → "134.5M".
    static func count(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2fB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1fM", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1fK", d / 1e3) }
        return String(n)
    }

    /// Bytes in binary units: "85.8 MiB".
    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if n >= 1 << 30 { return String(format: "%.2f GiB", d / Double(1 << 30)) }
        if n >= 1 << 20 { return String(format: "%.1f MiB", d / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", d / Double(1 << 10)) }
        return "\(n) B"
    }
}
