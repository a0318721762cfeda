import ArgumentParser
import Compute
import Foundation
import GGUF
import Model

/// `sputnik-tools bench`: prefill/decode throughput in llama-bench's terms (same flags, test definitions, statistics
/// and output fields; see BenchRunner.swift), a memory read-bandwidth probe and the decode roofline.
///
/// Example: `sputnik-tools bench -m models/SmolLM2-135M-Instruct.Q4_1.gguf -p 512 -n 128 -t 1,2 -r 5 --bandwidth`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark prefill (pp) and decode (tg) like llama-bench; optionally probe memory bandwidth.")

    @Option(name: [.customShort("m"), .long], help: "GGUF model file (repeatable, or a comma list).")
    var model: [String] = []

    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens per pp test (comma list; 0 = none).")
    var nPrompt: [String] = ["512"]

    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Generated tokens per tg test (comma list; 0 = none).")
    var nGen: [String] = ["128"]

    @Option(name: [.customShort("d"), .customLong("n-depth")],
            help: "Tokens already in the context before each pp/tg test (comma list, llama-bench's -d).")
    var nDepth: [String] = ["0"]

    @Option(name: [.customShort("t"), .customLong("threads")], help: "Compute threads (comma list, e.g. 1,2).")
    var threads: [String] = []

    @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Timed repetitions per test.")
    var repetitions: Int = 5

    @Option(name: [.customShort("o"), .customLong("output")], help: "Output format: md or json.")
    var output: String = "md"

    @Flag(help: "Skip the warm-up run before each test.")
    var noWarmup = false

    @Flag(name: .customLong("interleave-depths"),
          help: "tg tests only: fill the context once to the deepest -d and alternate the depths repetition by repetition, so that a ratio between depths shares the machine's state (the shallower runs overwrite early positions of the context, which decode speed does not depend on).")
    var interleaveDepths = false

    @Flag(name: .customLong("no-repack"), help: "Keep quantized weights in the file mapping (as `serve --no-repack`).")
    var noRepack = false

    @Option(name: [.customLong("kv-type"), .customLong("kv-cache-type"), .customLong("cache-type-k"),
                   .customLong("ctk", withSingleDash: true)],
            help: "KV cache element type: f16, bf16, f32 or q8_0 (MLA models) (also --kv-cache-type, as `serve`; llama-bench's -ctk).")
    var kvType: String = "f16"

    @Flag(help: "Probe memory read bandwidth (1 thread, each -t count and every CPU) and report the decode roofline.")
    var bandwidth = false

    @Option(name: .customLong("bandwidth-mib"), help: "Bandwidth probe buffer size, MiB (≫ L3).")
    var bandwidthMiB: Int = 512

    @Option(name: .customLong("bandwidth-passes"), help: "Timed passes per bandwidth measurement (best is reported).")
    var bandwidthPasses: Int = 7

    /// Splits repeated and comma-separated values.
    private static func list(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    private static func ints(_ values: [String], flag: String) throws -> [Int] {
        try list(values).map {
            guard let v = Int($0), v >= 0 else { throw ValidationError("\(flag): '\($0)' is not a non-negative integer") }
            return v
        }
    }

    /// The flags' values, checked: test sizes (zeros dropped), depths, thread counts and the KV cache type.
    /// - Throws: `ValidationError` naming the flag.
    private func options() throws -> (prompts: [Int], gens: [Int], depths: [Int], threads: [Int], kv: KVCacheType) {
        let prompts = try Self.ints(nPrompt, flag: "-p").filter { $0 > 0 }
        let gens = try Self.ints(nGen, flag: "-n").filter { $0 > 0 }
        var depths = try Self.ints(nDepth, flag: "-d")
        if depths.isEmpty { depths = [0] }
        var threadCounts = try Self.ints(threads, flag: "-t")
        if threadCounts.isEmpty { threadCounts = [ProcessInfo.processInfo.activeProcessorCount] }
        guard threadCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("-t: thread counts must be ≥ 1") }
        guard output == "md" || output == "json" else { throw ValidationError("-o: expected md or json") }
        guard let kv = KVCacheType(rawValue: kvType) else { throw ValidationError("--kv-type: expected \(KVCacheType.choices)") }
        guard repetitions >= 1 else { throw ValidationError("-r: at least 1 repetition") }
        guard !interleaveDepths || prompts.isEmpty else {
            throw ValidationError("--interleave-depths: tg tests only (give -p 0)")
        }
        guard !Self.list(model).isEmpty || bandwidth else { throw ValidationError("give -m FILE and/or --bandwidth") }
        guard Self.list(model).isEmpty || !prompts.isEmpty || !gens.isEmpty else {
            throw ValidationError("-p and -n are both 0: nothing to benchmark (give -p N or -n N greater than 0)")
        }
        return (prompts, gens, depths, threadCounts, kv)
    }

    /// Flag errors are reported before anything runs, with this subcommand's usage (not the tool's).
    func validate() throws { _ = try options() }

    func run() throws {
        let models = Self.list(model)
        let (prompts, gens, depths, threadCounts, kv) = try options()
        // Every file opened and checked against the longest test first, so a bad path or a test that does not fit
        // fails before any model is loaded and benchmarked (whose results would then be lost).
        let longestTest = max(prompts.max() ?? 0, gens.max() ?? 0, 1), deepest = depths.max() ?? 0
        func exceeds(_ path: String, context: Int) -> ValidationError {
            ValidationError("\(path): a test of \(longestTest) tokens (-p/-n) after \(deepest) tokens of depth (-d) "
                            + "needs \(longestTest + deepest) tokens, more than the model's context of \(context)")
        }
        let files = try models.map { try GGUFFile(path: $0) }
        for (path, gguf) in zip(models, files) {
            if let arch = try? gguf.architecture(), let context = try? gguf.int("\(arch).context_length"),
               longestTest + deepest > context {
                throw exceeds(path, context: context)
            }
        }

        let commit = SystemInfo.buildCommit()
        let cpu = SystemInfo.cpuModel()
        if let warning = KernelSet.unknownCapWarning { log("warning: " + warning) }
        log("kernels: \(KernelSet.active)")

        var rows: [BenchRow] = []
        for (path, gguf) in zip(models, files) {
            // Every page resident before the first test, as bench_compare.py does for both engines: otherwise the
            // first test pays for the disk reads of every weight its warm-up did not touch (an MoE's unrouted
            // experts: 1.6 t/s instead of ~14 on a file evicted from the page cache).
            // A file cached in 4 KiB pages is read again into 2 MiB ones first, as `serve` does.
            let touchStart = DispatchTime.now().uptimeNanoseconds
            let settled = gguf.settleInHugePages()
            let wasResident = gguf.residentPages()
            gguf.touchAllPages()
            log("\(path): file read into the page cache in "
                + String(format: "%.1f s", Double(DispatchTime.now().uptimeNanoseconds - touchStart) / 1e9)
                + (wasResident.map { " (\($0.resident) of \($0.total) pages were resident)" } ?? "")
                + (settled?.dropped == true ? " after dropping its 4 KiB page-cache pages" : "")
                + (gguf.hugePageMappedBytes().map { "; \($0 >> 20) of \(gguf.fileSize >> 20) MiB mapped in 2 MiB pages" } ?? ""))
            let facts = ModelFacts(gguf: gguf, filename: path)
            let maxTokens = longestTest + deepest
            for t in threadCounts {
                log("\(path): loading with \(t) thread(s)")
                let lm: LanguageModel
                do {
                    lm = try ModelLoader.load(gguf, options: ModelOptions(threads: t, kvCacheType: kv,
                                                                          maxBatchTokens: 512, repackWeights: !noRepack))
                } catch {
                    throw BenchError.cannotLoad(path: path, reason: "\(error)")
                }
                let context = lm.hyperparameters.contextLength
                // The loaded context (a file without the metadata key gets the loader's default).
                guard maxTokens <= context else { throw exceeds(path, context: context) }
                let runner = BenchRunner(model: lm, gguf: gguf, maxTokens: maxTokens)
                func record(_ test: BenchTest) {
                    rows.append(BenchRow(model: facts, test: test, testTime: SystemInfo.isoTime(), kvType: kv.rawValue))
                    log("  \(test.name) t=\(t): " + String(format: "%.2f t/s", rows.last!.avgTs))
                }
                if interleaveDepths {
                    for n in gens {
                        runner.runInterleaved(nGen: n, depths: depths, threads: t, repetitions: repetitions,
                                              warmup: !noWarmup).forEach(record)
                    }
                    continue
                }
                for d in depths {
                    for (p, n) in prompts.map({ ($0, 0) }) + gens.map({ (0, $0) }) {
                        record(runner.run(nPrompt: p, nGen: n, depth: d, threads: t, repetitions: repetitions,
                                          warmup: !noWarmup))
                    }
                }
            }
        }

        // Bandwidth after the models, so that its buffer does not inflate the tests' peak RSS.
        let peakRSS = rows.map(\.test.peakRSSBytes).max() ?? SystemInfo.peakResidentBytes()
        var bw: [Int: BandwidthResult] = [:]
        if bandwidth {
            log("bandwidth probe: \(bandwidthMiB) MiB buffer, \(bandwidthPasses) passes")
            let probe = try BandwidthProbe(bytes: bandwidthMiB << 20)
            // 1 thread (what one core can pull) up to every CPU (what the machine can do).
            let cpus = ProcessInfo.processInfo.activeProcessorCount
            for t in Array(Set([1, cpus] + threadCounts)).sorted() {
                bw[t] = try probe.measure(threads: t, passes: max(1, bandwidthPasses))
            }
            for i in rows.indices { rows[i].bandwidthGBps = bw[rows[i].test.threads]?.bestGBps }
        }

        if output == "json" {
            if rows.isEmpty {
                print(bandwidthJSON(bw.values.sorted { $0.threads < $1.threads }, cpu: cpu, commit: commit))
            } else {
                print(BenchPrinter.json(rows, cpuInfo: cpu, commit: commit))
            }
            return
        }
        if !rows.isEmpty {
            print(BenchPrinter.markdown(rows))
            print("")
            print("build: \(commit), CPU: \(cpu), kernels: \(KernelSet.active), peak RSS (VmHWM): "
                  + String(format: "%.1f MiB", Double(peakRSS) / 1_048_576))
        }
        if !bw.isEmpty {
            print("")
            print("| read bandwidth | threads | buffer | best GB/s | median GB/s |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for r in bw.values.sorted(by: { $0.threads < $1.threads }) {
                print(String(format: "| STREAM-style read | %d | %d MiB | %.2f | %.2f |", r.threads, r.bytes >> 20,
                             r.bestGBps, r.medianGBps))
            }
            if let roof = BenchPrinter.rooflineMarkdown(rows) {
                print("")
                print("Decode roofline (ideal tg = read bandwidth ÷ weight bytes read per token; KV reads excluded):")
                print("")
                print(roof)
            }
        }
    }

    private func bandwidthJSON(_ results: [BandwidthResult], cpu: String, commit: String) -> String {
        let items = results.map { r in
            String(format: "  { \"test\": \"read_bandwidth\", \"n_threads\": %d, \"buffer_bytes\": %d, "
                   + "\"best_gbps\": %.4f, \"median_gbps\": %.4f, ", r.threads, r.bytes, r.bestGBps, r.medianGBps)
                + "\"cpu_info\": \"\(cpu)\", \"build_commit\": \"\(commit)\" }"
        }
        return "[\n" + items.joined(separator: ",\n") + "\n]"
    }

    private func log(_ s: String) {
        FileHandle.standardError.write(Data(("sputnik-tools bench: " + s + "\n").utf8))
    }
}

/// Errors of `sputnik-tools bench`.
enum BenchError: Error, CustomStringConvertible {
    /// The model file could not be loaded by Sputnik (unsupported architecture or tensor type, …).
    case cannotLoad(path: String, reason: String)

    var description: String {
        switch self {
        case .cannotLoad(let p, let r): return "cannot load \(p): \(r)"
        }
    }
}
