import Glibc

/// Wall-clock time per phase of engine steps, bucketed by batch size: the number of sequences of a decode step (each
/// computes one token), or bucket 0 (`prefill` in reports) for a step that computes prompt tokens, for finding where a step's time goes (`sputnik serve` with `SPUTNIK_PROFILE_STEPS=1`; see BENCHMARKS.md).
///
/// Off by default: every probe is then one load and branch. When on, probes read `CLOCK_MONOTONIC` and add to fixed
/// counters allocated once (no allocation per step). All probes run on the engine thread (the matmul and attention
/// probes time a whole pool job from the calling thread), so the counters need no synchronisation; a `report`
/// from another thread may read a step in progress.
public enum StepProfile {
    /// The timed phases of one engine step.
    public enum Phase: Int, CaseIterable, Sendable {
        /// The whole step: schedule → forward → sample → update → events.
        case step
        /// `Scheduler.schedule` and `Scheduler.update` (ids and counts only).
        case scheduler
        /// `ModelRunner.execute`: building the batch and the model forward (which contains the next three).
        case forward
        /// Quantized / float matmuls of the forward (activation quantization included), logits head included.
        case matmul
        /// Paged attention (scores, softmax, weighted sum) of the forward, all layers.
        case attention
        /// Sampling: logits processing, grammar masks, the sampler, log-probabilities.
        case sampler
        /// `OutputProcessor.append`: incremental detokenization, stop strings, reasoning and tool-call parsing.
        case detokenize
        /// Event callbacks: handing text to the HTTP side (its socket writes run on Dispatch queues).
        case events

        /// Name in reports.
        public var name: String {
            switch self {
            case .step: return "step"
            case .scheduler: return "scheduler"
            case .forward: return "forward"
            case .matmul: return "matmul"
            case .attention: return "attention"
            case .sampler: return "sampler"
            case .detokenize: return "detokenize+stop"
            case .events: return "events"
            }
        }
    }

    /// Largest batch size with its own bucket; larger steps share the last one.
    public static let maxBatch = 64
    nonisolated(unsafe) private static var on = false
    /// Batch size of the step in progress (0: not in a step).
    nonisolated(unsafe) private static var batch = 0
    /// Nanoseconds `[maxBatch + 1, phases]`, then step counts `[maxBatch + 1]`.
    nonisolated(unsafe) private static let nanos = UnsafeMutablePointer<UInt64>.allocate(capacity: (maxBatch + 1) * Phase.allCases.count)
    nonisolated(unsafe) private static let steps = UnsafeMutablePointer<UInt64>.allocate(capacity: maxBatch + 1)

    /// Whether probes record (set once at start-up, before the engine thread runs).
    public static var enabled: Bool { on }

    /// Turns recording on or off and clears the counters.
    public static func enable(_ value: Bool) {
        on = value
        reset()
    }

    /// Clears the counters.
    public static func reset() {
        nanos.initialize(repeating: 0, count: (maxBatch + 1) * Phase.allCases.count)
        steps.initialize(repeating: 0, count: maxBatch + 1)
    }

    /// Monotonic clock, nanoseconds (0 when recording is off).
    @inline(__always)
    public static func now() -> UInt64 {
        guard on else { return 0 }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Starts a step: a decode step of `batchSize` sequences, or 0 for a step with prompt tokens (phases recorded
    /// until `endStep` count for it).
    @inline(__always)
    public static func beginStep(batchSize: Int) {
        guard on else { return }
        batch = min(max(batchSize, 0), maxBatch)
    }

    /// Ends the step begun at `start` (a `now()` value).
    @inline(__always)
    public static func endStep(since start: UInt64) {
        guard on else { return }
        add(.step, since: start)
        steps[batch] &+= 1
    }

    /// Adds the time since `start` (a `now()` value) to `phase` of the current step.
    @inline(__always)
    public static func add(_ phase: Phase, since start: UInt64) {
        guard on, start != 0 else { return }
        nanos[batch * Phase.allCases.count + phase.rawValue] &+= now() &- start
    }

    /// Mean milliseconds per step of each phase, by batch size (only sizes with steps; 0 = steps with prompt tokens).
    public static func snapshot() -> [(batch: Int, steps: Int, msPerStep: [Phase: Double])] {
        var out: [(batch: Int, steps: Int, msPerStep: [Phase: Double])] = []
        for b in 0...maxBatch where steps[b] > 0 {
            var ms: [Phase: Double] = [:]
            for p in Phase.allCases {
                ms[p] = Double(nanos[b * Phase.allCases.count + p.rawValue]) / Double(steps[b]) / 1e6
            }
            out.append((b, Int(steps[b]), ms))
        }
        return out
    }

    /// One line per batch size: `profile batch=B steps=N step=… scheduler=… …` (ms per step, 3 decimals; B is
    /// `prefill` for the steps with prompt tokens).
    public static func report() -> String {
        snapshot().map { row in
            "profile batch=\(row.batch == 0 ? "prefill" : String(row.batch)) steps=\(row.steps) " + Phase.allCases.map { p in
                let v = (row.msPerStep[p] ?? 0) * 1000
                return "\(p.name)=\(Double(Int(v.rounded())) / 1000)"
            }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}
