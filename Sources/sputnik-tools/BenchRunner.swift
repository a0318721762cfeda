// Times prefill (pp) and decode (tg) of a loaded model exactly as llama.cpp's llama-bench does
// (tools/llama-bench/llama-bench.cpp: `test_prompt`, `test_gen` and the repetition loop in `main`):
// - pp<P>: one forward over P random token ids at positions 0..<P (BOS first when the model adds one),
//   logits of the last token only; t/s = P / time.
// - tg<N>: N single-token forwards at positions 0..<N, each attending to the K/V of the previous ones (the
//   cache starts empty, as llama-bench clears it before every repetition); t/s = N / time.
// - at depth D (`-d`, llama-bench's `n_depth`): the cache is first filled with D random tokens at positions
//   0..<D in untimed prefill chunks, and every run's timed pp/tg tokens follow at positions D... (a run writes
//   only positions ≥ D, so the filled context stays valid for the next; llama-bench refills it per run, with
//   the same timed work); the test is named "pp512 @ d4096" / "tg128 @ d4096".
// - one warm-up first (a full pp run; one decode step for tg), then `repetitions` timed runs.
import Foundation
import GGUF
import Model

/// One benchmark test of one model at one thread count (a row of the llama-bench table).
struct BenchTest {
    /// Prompt tokens (pp) — 0 for a tg test.
    var nPrompt: Int
    /// Generated tokens (tg) — 0 for a pp test.
    var nGen: Int
    /// Compute threads.
    var threads: Int
    /// Tokens already in the context when the timed tokens start (llama-bench `n_depth`).
    var depth: Int = 0
    /// Wall time of each timed repetition, nanoseconds `[repetitions]`.
    var samplesNs: [UInt64] = []
    /// Peak resident memory of the process (VmHWM) after the test, bytes.
    var peakRSSBytes: Int = 0

    /// "pp512" / "tg128", llama-bench's test name.
    var name: String { (nPrompt > 0 ? "pp\(nPrompt)" : "tg\(nGen)") + (depth > 0 ? " @ d\(depth)" : "") }
    /// Tokens processed per repetition.
    var tokens: Int { nPrompt + nGen }
    /// Tokens per second of each repetition `[repetitions]`.
    var samplesTs: [Double] { samplesNs.map { 1e9 * Double(tokens) / Double($0) } }
}

/// Runs pp/tg tests on one loaded model, reusing one KV cache and logits buffer.
final class BenchRunner {
    let model: LanguageModel
    let vocabSize: Int
    /// BOS id when the model's tokenizer prepends it (`tokenizer.ggml.add_bos_token`), else nil.
    let bos: Int32?
    private let cache: PagedKVCache
    private let blockSize = 16
    private let blockTable: [Int32]
    private let logits: UnsafeMutablePointer<Float>
    private var rng: BenchRandom

    /// - Parameters: `maxTokens` is the most positions any test needs (KV capacity); `seed` fixes the token ids.
    init(model: LanguageModel, gguf: GGUFFile, maxTokens: Int, seed: UInt64 = 1234) {
        self.model = model
        vocabSize = model.hyperparameters.vocabSize
        let addBOS = ((try? gguf.optionalBool("tokenizer.ggml.add_bos_token")) ?? nil) ?? false
        let bosId = (try? gguf.optionalInt("tokenizer.ggml.bos_token_id")) ?? nil
        bos = addBOS ? bosId.map { Int32($0) } : nil
        let numBlocks = max(1, (maxTokens + blockSize - 1) / blockSize)
        cache = model.makeKVCache(numBlocks: numBlocks, blockSize: blockSize)
        blockTable = (0..<numBlocks).map { Int32($0) }
        logits = .allocate(capacity: vocabSize)
        rng = BenchRandom(seed: seed)
    }

    deinit { logits.deallocate() }

    private func randomToken() -> Int32 { Int32(truncatingIfNeeded: rng.next() % UInt64(vocabSize)) }

    private func slot(_ p: Int) -> Int32 { blockTable[p / blockSize] * Int32(blockSize) + Int32(p % blockSize) }

    /// One prefill forward over `n` random tokens at positions start..<start + n (llama-bench `test_prompt`; BOS
    /// first when the model adds one and the context is empty).
    func runPrompt(_ n: Int, from start: Int = 0) {
        precondition(n > 0 && start + n <= cache.slotCount, "prompt of \(n) tokens does not fit the KV cache")
        var tokens = [Int32](repeating: 0, count: n)
        for i in 0..<n { tokens[i] = (start + i == 0 && bos != nil) ? bos! : randomToken() }
        let positions = (start..<(start + n)).map { Int32($0) }
        let slots = (start..<(start + n)).map { slot($0) }
        let batch = ForwardBatch(tokens: tokens, positions: positions, slotMapping: slots,
                                 sequences: [BatchSequence(tokenStart: 0, tokenCount: n, blockTable: blockTable,
                                                           contextLength: start + n)],
                                 logitRows: [n - 1])
        model.forward(batch, cache: cache, logits: logits)
    }

    /// Fills positions 0..<depth with random tokens in prefill chunks of at most `chunk` tokens (the context a
    /// depth test starts from; untimed).
    func fill(depth: Int, chunk: Int) {
        var p = 0
        while p < depth {
            let n = min(chunk, depth - p)
            runPrompt(n, from: p)
            p += n
        }
    }

    /// `n` decode steps, one token each at positions start..<start + n (llama-bench `test_gen`; the first token
    /// is BOS when the context is empty and the model adds one). The batch is built once and mutated in place:
    /// the loop allocates nothing.
    func runGen(_ n: Int, from start: Int = 0) {
        precondition(n > 0 && start + n <= cache.slotCount, "\(n) decode steps do not fit the KV cache")
        var batch = ForwardBatch(tokens: [start == 0 ? bos ?? randomToken() : randomToken()], positions: [0],
                                 slotMapping: [slot(0)],
                                 sequences: [BatchSequence(tokenStart: 0, tokenCount: 1, blockTable: blockTable,
                                                           contextLength: 1)],
                                 logitRows: [0])
        for p in start..<(start + n) {
            batch.positions[0] = Int32(p)
            batch.slotMapping[0] = slot(p)
            batch.sequences[0].contextLength = p + 1
            model.forward(batch, cache: cache, logits: logits)
            batch.tokens[0] = randomToken()
        }
    }

    /// tg tests of `nGen` tokens at each of `depths`, their repetitions interleaved (depth by depth within each
    /// repetition) over one context filled once to the deepest: a ratio between depths then compares runs made
    /// seconds apart. Decoding at a shallower depth writes positions that belong to the filled context; the deeper
    /// runs still attend to that many positions, and the time of a step does not depend on the values in them.
    /// Warm-up (unless `warmup` is false): one step at each depth. One test per depth, in the order of `depths`.
    func runInterleaved(nGen: Int, depths: [Int], chunk: Int = 512, threads: Int, repetitions: Int,
                        warmup: Bool = true) -> [BenchTest] {
        var tests = depths.map { BenchTest(nPrompt: 0, nGen: nGen, threads: threads, depth: $0) }
        fill(depth: depths.max() ?? 0, chunk: chunk)
        if warmup { for d in depths { runGen(1, from: d) } }
        for _ in 0..<repetitions {
            for (i, d) in depths.enumerated() {
                let start = monotonicNanoseconds()
                runGen(nGen, from: d)
                tests[i].samplesNs.append(monotonicNanoseconds() - start)
            }
        }
        let rss = SystemInfo.peakResidentBytes()
        for i in tests.indices { tests[i].peakRSSBytes = rss }
        return tests
    }

    /// Runs a test at `depth` tokens of context (filled once, in chunks of `chunk`, untimed): warm-up (unless
    /// `warmup` is false), then `repetitions` timed runs.
    func run(nPrompt: Int, nGen: Int, depth: Int = 0, chunk: Int = 512, threads: Int, repetitions: Int,
             warmup: Bool = true) -> BenchTest {
        precondition((nPrompt > 0) != (nGen > 0), "a test is either pp or tg")
        var test = BenchTest(nPrompt: nPrompt, nGen: nGen, threads: threads, depth: depth)
        fill(depth: depth, chunk: chunk)
        if warmup {
            if nPrompt > 0 { runPrompt(nPrompt, from: depth) } else { runGen(1, from: depth) }
        }
        for _ in 0..<repetitions {
            let start = monotonicNanoseconds()
            if nPrompt > 0 { runPrompt(nPrompt, from: depth) } else { runGen(nGen, from: depth) }
            test.samplesNs.append(monotonicNanoseconds() - start)
        }
        test.peakRSSBytes = SystemInfo.peakResidentBytes()
        return test
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// splitmix64: a small seeded generator so runs use the same token ids.
struct BenchRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Statistics as llama-bench computes them (`avg`, `stdev` with n − 1), plus the median.
enum BenchStats {
    static func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    static func stddev(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = mean(v)
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot()
    }

    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
