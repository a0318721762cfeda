// Output of `sputnik-tools bench` in llama-bench's two formats (tools/llama-bench/llama-bench.cpp: `json_printer`,
// `markdown_printer`), with the same field names, plus Sputnik's extras (median, peak RSS, roofline).
import Compute
import Foundation
import GGUF
import JSON

/// Facts about a GGUF model file that llama-bench reports, and the bytes one decode step reads.
struct ModelFacts {
    /// Path as given on the command line.
    let filename: String
    /// `general.architecture`.
    let architecture: String
    /// Sum of all tensor bytes (llama.cpp `llama_model_size`).
    let sizeBytes: Int
    /// Sum of all tensor elements (llama.cpp `llama_model_n_params`).
    let nParams: Int
    /// File type name from `general.file_type` ("Q4_1", "Q4_K_M", …).
    let fileType: String
    /// Weight bytes one decoded token reads: every tensor except the token embedding, one embedding row, and
    /// the whole embedding again when it doubles as the LM head (tied, no `output.weight`). Expert tensors
    /// (`*_exps`) count `expert_used_count / expert_count` of their bytes. KV cache reads are not included.
    let decodeBytesPerToken: Int

    /// "llama 135M Q4_1", in the spirit of llama.cpp's `llama_model_desc`.
    var typeDescription: String { "\(architecture) \(Self.humanCount(nParams)) \(fileType)" }

    init(gguf: GGUFFile, filename: String) {
        self.filename = filename
        architecture = (try? gguf.architecture()) ?? "?"
        sizeBytes = gguf.tensors.reduce(0) { $0 + $1.byteCount }
        nParams = gguf.tensors.reduce(0) { $0 + $1.elementCount }
        let ft = ((try? gguf.optionalInt("general.file_type")) ?? nil) ?? -1
        fileType = Self.fileTypeNames[ft] ?? "ftype \(ft)"
        let arch = architecture
        let used = ((try? gguf.optionalInt("\(arch).expert_used_count")) ?? nil) ?? 0
        let experts = ((try? gguf.optionalInt("\(arch).expert_count")) ?? nil) ?? 0
        var bytes = 0
        let tied = gguf.tensorInfo(named: "output.weight") == nil
        for t in gguf.tensors {
            if t.name == "token_embd.weight" {
                let rows = t.dimensions.count > 1 ? t.dimensions[1...].reduce(1, *) : 1
                bytes += t.byteCount / max(1, rows)
                if tied { bytes += t.byteCount }
            } else if t.name.contains("_exps"), experts > 0, used > 0 {
                bytes += t.byteCount / experts * used
            } else {
                bytes += t.byteCount
            }
        }
        decodeBytesPerToken = bytes
    }

    /// 134_515_008 → "135M", 1_543_714_304 → "1.5B".
    static func humanCount(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: d >= 1e10 ? "%.0fB" : "%.1fB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.0fM", d / 1e6) }
        return String(format: "%.0fK", d / 1e3)
    }

    /// `general.file_type` (llama.cpp `llama_ftype`) → name.
    static let fileTypeNames: [Int: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
        12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
        32: "BF16", 38: "MXFP4",
    ]
}

/// Process and machine facts for the report.
enum SystemInfo {
    /// Peak resident set size of this process (`VmHWM` of /proc/self/status), bytes; 0 when unavailable.
    static func peakResidentBytes() -> Int { statusField("VmHWM") }

    /// A `kB` field of /proc/self/status, in bytes.
    static func statusField(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.dropFirst(name.count + 1).filter { $0.isNumber }
            return (Int(String(digits)) ?? 0) * 1024
        }
        return 0
    }

    /// `model name` of /proc/cpuinfo ("AMD EPYC 7B13"), "unknown" when absent.
    static func cpuModel() -> String {
        guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in s.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    /// Short git commit: `SPUTNIK_BUILD_COMMIT` when set, else `git rev-parse --short HEAD` in the current
    /// directory, else "unknown".
    static func buildCommit() -> String {
        if let c = ProcessInfo.processInfo.environment["SPUTNIK_BUILD_COMMIT"], !c.isEmpty { return c }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "rev-parse", "--short", "HEAD"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return "unknown" }
        p.waitUntilExit()
        let s = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 && !s.isEmpty ? s : "unknown"
    }

    /// UTC time as llama-bench writes `test_time` ("2026-11-30T03:50:00Z").
    static func isoTime(_ date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: date)
    }
}

/// One finished test with its model, for printing.
struct BenchRow {
    let model: ModelFacts
    let test: BenchTest
    let testTime: String
    /// KV cache element type of the run (`f16`, `bf16`, `f32`), llama-bench's `type_k` / `type_v`.
    var kvType = "f16"
    /// Read bandwidth measured with `test.threads` threads, GB/s (10^9 bytes), when probed.
    var bandwidthGBps: Double?

    var avgTs: Double { BenchStats.mean(test.samplesTs) }
    var stddevTs: Double { BenchStats.stddev(test.samplesTs) }
    var medianTs: Double { BenchStats.median(test.samplesTs) }
    /// Decode ceiling: bandwidth ÷ weight bytes per token, tokens/s (tg tests at depth 0 with a bandwidth only: at
    /// depth the KV cache is read too, which this ceiling does not count).
    var rooflineTs: Double? {
        guard test.nGen > 0, test.depth == 0, let bw = bandwidthGBps else { return nil }
        return bw * 1e9 / Double(model.decodeBytesPerToken)
    }
}

/// Renders rows in llama-bench's formats.
enum BenchPrinter {
    /// llama-bench's JSON array (same field names; extras: `kernels` (the SIMD kernel set, `KernelSet.active`), `median_ts`, `peak_rss_bytes`,
    /// `decode_bytes_per_token`, `mem_bw_gbps`, `roofline_ts`, `roofline_fraction`).
    static func json(_ rows: [BenchRow], cpuInfo: String, commit: String) -> String {
        func num(_ d: Double) -> String { d.isFinite ? String(format: "%.6f", d) : "null" }
        func str(_ s: String) -> String {
            var o = ""
            JSONValue.writeString(s, to: &o)
            return o
        }
        var items: [String] = []
        for r in rows {
            let ns = r.test.samplesNs.map { Double($0) }
            var f: [(String, String)] = [
                ("build_commit", str(commit)), ("cpu_info", str(cpuInfo)), ("gpu_info", str("")),
                ("backends", str("CPU")), ("kernels", str(KernelSet.active)),
                ("model_filename", str(r.model.filename)), ("model_type", str(r.model.typeDescription)),
                ("model_size", "\(r.model.sizeBytes)"), ("model_n_params", "\(r.model.nParams)"),
                ("n_batch", "512"), ("n_ubatch", "512"),
                ("n_threads", "\(r.test.threads)"), ("type_k", str(r.kvType)), ("type_v", str(r.kvType)),
                ("n_prompt", "\(r.test.nPrompt)"), ("n_gen", "\(r.test.nGen)"), ("n_depth", "\(r.test.depth)"),
                ("test_time", str(r.testTime)),
                ("avg_ns", "\(UInt64(BenchStats.mean(ns)))"), ("stddev_ns", "\(UInt64(BenchStats.stddev(ns)))"),
                ("avg_ts", num(r.avgTs)), ("stddev_ts", num(r.stddevTs)), ("median_ts", num(r.medianTs)),
                ("peak_rss_bytes", "\(r.test.peakRSSBytes)"),
                ("decode_bytes_per_token", "\(r.model.decodeBytesPerToken)"),
            ]
            if let bw = r.bandwidthGBps { f.append(("mem_bw_gbps", num(bw))) }
            if let roof = r.rooflineTs {
                f.append(("roofline_ts", num(roof)))
                f.append(("roofline_fraction", num(r.avgTs / roof)))
            }
            f.append(("samples_ns", "[ " + r.test.samplesNs.map { "\($0)" }.joined(separator: ", ") + " ]"))
            f.append(("samples_ts", "[ " + r.test.samplesTs.map(num).joined(separator: ", ") + " ]"))
            items.append("  {\n" + f.map { "    \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n  }")
        }
        return "[\n" + items.joined(separator: ",\n") + "\n]"
    }

    /// llama-bench's markdown table plus `median t/s` and `peak RSS` columns.
    static func markdown(_ rows: [BenchRow]) -> String {
        // A type_k column after threads when a row's KV cache is not f16 (as llama-bench shows non-default fields).
        let showKV = rows.contains { $0.kvType != "f16" }
        var header = ["model", "size", "params", "backend", "threads", "test", "t/s", "median t/s", "peak RSS"]
        var widths = [30, 10, 10, 10, 7, 15, 20, 10, 10]
        var rightAligned: Set<Int> = [1, 2, 4, 5, 6, 7, 8]
        if showKV {
            header.insert("type_k", at: 5)
            widths.insert(6, at: 5)
            rightAligned = [1, 2, 4, 6, 7, 8, 9]
        }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: " | ") + " |"
        }
        var out = [line(header)]
        out.append("| " + widths.enumerated().map { i, w in
            rightAligned.contains(i) ? String(repeating: "-", count: w - 1) + ":" : String(repeating: "-", count: w)
        }.joined(separator: " | ") + " |")
        for r in rows {
            var cells = [
                r.model.typeDescription,
                String(format: "%.2f MiB", Double(r.model.sizeBytes) / 1_048_576),
                String(format: "%.2f M", Double(r.model.nParams) / 1e6),
                "CPU", "\(r.test.threads)", r.test.name,
                String(format: "%.2f ± %.2f", r.avgTs, r.stddevTs),
                String(format: "%.2f", r.medianTs),
                String(format: "%.0f MiB", Double(r.test.peakRSSBytes) / 1_048_576),
            ]
            if showKV { cells.insert(r.kvType, at: 5) }
            out.append(line(cells))
        }
        return out.joined(separator: "\n")
    }

    /// The decode roofline table: per tg row, weight bytes per token, bandwidth, ideal and achieved t/s.
    static func rooflineMarkdown(_ rows: [BenchRow]) -> String? {
        let tg = rows.filter { $0.rooflineTs != nil }
        guard !tg.isEmpty else { return nil }
        var out = ["| model | threads | test | weight MiB read / token | read GB/s | ideal t/s | achieved t/s | achieved / ideal |",
                   "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in tg {
            let roof = r.rooflineTs!
            let nums = String(format: "%.2f | %.2f | %.1f | %.2f | %.1f%%",
                              Double(r.model.decodeBytesPerToken) / 1_048_576, r.bandwidthGBps!, roof, r.avgTs,
                              100 * r.avgTs / roof)
            out.append("| \(r.model.typeDescription) | \(r.test.threads) | \(r.test.name) | \(nums) |")
        }
        return out.joined(separator: "\n")
    }
}
