import Atomics
import CKernels
import Foundation

/// A persistent pool of compute threads driven by one thread (the engine), built for shared machines.
///
/// `parallelFor` splits `0..<count` into chunks that participants claim dynamically from an atomic counter; the
/// calling thread participates too and the call returns as soon as every chunk is done. A worker that is
/// descheduled (another process owns the core) therefore never stalls a job: the others take its chunks, and a
/// late worker finds nothing left. Workers spin briefly (`pause`) between jobs, then park on a condition
/// variable. The hot path allocates nothing and takes no lock unless a worker is parked. If the caller ever waits
/// more than a millisecond (and three of its own chunk times) for a worker's chunk (the worker lost its core to
/// another process) three times within 64 pooled jobs, the next few hundred jobs run on the calling thread alone
/// before the workers are tried again (longer after repeated stalls). A single stall — a worker that was woken
/// late or lost its core once — does not: running alone halves throughput for those hundreds of jobs, which on
/// a quiet machine cost far more than the occasional late chunk (decode of a 1.5B model went from ~16 to ~20
/// tokens/s with this rule).
///
/// NOTE: job life cycle (`generation` odd = a job is open):
/// ```
/// main: set job ─▶ gen+1 (open) ─▶ claim chunks ─▶ wait done == count ─▶ gen+1 (closed) ─▶ wait active == 0
/// worker: see gen odd ─▶ active+1 ─▶ gen unchanged? ─▶ claim chunks ─▶ active-1    (changed: active-1, skip)
/// ```
public final class ThreadPool: @unchecked Sendable {
    /// Participants (the calling thread included): an upper bound on concurrent `body` calls.
    public let threadCount: Int
    private let shared: PoolShared
    private let running = ManagedAtomic<Bool>(false)
    /// Jobs left to run on the calling thread alone after a worker stalled a job (see `parallelFor`).
    private var soloJobs = 0
    /// Stall threshold in nanoseconds and how many jobs to run alone after one.
    private let stallNanos: UInt64 = 1_000_000
    private let soloAfterStall: Int
    /// Solo jobs after the next stall: doubles with each stall that follows a solo period (up to 64×), resets
    /// after a pooled job without one.
    private var soloBackoff = 0
    /// Pooled jobs so far, and the job numbers of the two latest stalls (see `parallelFor`).
    private var pooledJobs = 0
    private var stallJobs = (Int.min / 2, Int.min / 2)
    /// Three stalls within this many pooled jobs switch to solo jobs.
    private let stallWindow = 64
    /// Jobs in which the caller waited for a stalled worker (for tests and diagnostics).
    public private(set) var stallCount = 0
    /// Jobs that ran on the calling thread alone because of stalls (for tests and diagnostics).
    public private(set) var soloJobsRun = 0

    /// Starts `threads - 1` workers (`threads` ≥ 1). `spinIterations` is how many `pause` hints a waiting thread
    /// spins before parking (workers) or yielding its core (the caller); `soloJobsAfterStall` how many jobs run
    /// on the calling thread alone after a worker stalled one (0 disables the fallback).
    public init(threads: Int, spinIterations: Int = 2_000, soloJobsAfterStall: Int = 300) {
        precondition(threads >= 1, "a thread pool needs at least one thread")
        threadCount = threads
        soloAfterStall = soloJobsAfterStall
        soloBackoff = soloJobsAfterStall
        shared = PoolShared(spinLimit: spinIterations)
        for index in 1..<threads {
            let s = shared
            let t = Thread { s.workerLoop(index: index) }
            t.name = "sputnik-compute-\(index)"
            t.stackSize = 1 << 20
            t.start()
        }
    }

    deinit {
        shared.stopping.store(true, ordering: .sequentiallyConsistent)
        shared.generation.wrappingIncrement(by: 2, ordering: .sequentiallyConsistent)
        shared.wakeParked()
    }

    /// A chunk of a job: `(context, start, end, participant)` for the range `start..<end`.
    public typealias ChunkFunction = @convention(c) (UnsafeMutableRawPointer?, Int, Int, Int) -> Void

    /// Calls `body(range, participant)` for disjoint ranges of at most `chunk` elements covering `0..<count`,
    /// concurrently on the pool, and returns when all have returned. `participant` is in `0..<threadCount` and
    /// unique among concurrent calls (use it to index per-thread scratch). Not re-entrant. Convenient but may
    /// allocate a closure context per call; hot paths use the `context:` variant.
    public func parallelFor(_ count: Int, chunk: Int, _ body: (Range<Int>, Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count <= max(1, chunk) { body(0..<count, 0); return }
        withoutActuallyEscaping(body) { escapable in
            var box = escapable
            withUnsafeMutablePointer(to: &box) { ptr in
                parallelFor(count, chunk: chunk, context: UnsafeMutableRawPointer(ptr)) { ctx, start, end, participant in
                    ctx!.assumingMemoryBound(to: ((Range<Int>, Int) -> Void).self).pointee(start..<end, participant)
                }
            }
        }
    }

    /// Allocation-free form: calls `function(context, start, end, participant)` for disjoint chunks of at most
    /// `chunk` elements covering `0..<count` (same contract as the closure form). `context` must stay valid
    /// until the call returns (e.g. a pointer to a job struct on the caller's stack).
    public func parallelFor(_ count: Int, chunk: Int, context: UnsafeMutableRawPointer, _ function: ChunkFunction) {
        if count <= 0 { return }
        let chunk = max(1, chunk)
        if threadCount == 1 || count <= chunk { function(context, 0, count, 0); return }
        // A worker that was descheduled while holding a chunk makes the caller wait for the core to come back.
        // When that happened recently, the next jobs run on the calling thread alone (the cores are busy anyway).
        if soloJobs > 0 { soloJobs -= 1; soloJobsRun += 1; function(context, 0, count, 0); return }
        let wasRunning = running.exchange(true, ordering: .acquiring)
        precondition(!wasRunning, "ThreadPool.parallelFor is not re-entrant")
        let s = shared
        s.function = function
        s.context = context
        s.count = count
        s.chunk = chunk
        s.nextChunk.store(0, ordering: .relaxed)
        s.done.store(0, ordering: .relaxed)
        s.generation.wrappingIncrement(ordering: .sequentiallyConsistent)      // open
        s.wakeParked()
        let workStart = DispatchTime.now().uptimeNanoseconds
        let chunksDone = s.work(participant: 0)
        let waitStart = DispatchTime.now().uptimeNanoseconds
        s.waitUntil { s.done.load(ordering: .acquiring) == count }
        s.generation.wrappingIncrement(ordering: .sequentiallyConsistent)      // closed
        s.waitUntil { s.active.load(ordering: .sequentiallyConsistent) == 0 }
        s.function = nil
        s.context = nil
        // A stall: the wait exceeded both the threshold and three of the caller's own chunk times.
        let waited = DispatchTime.now().uptimeNanoseconds - waitStart
        let perChunk = (waitStart - workStart) / UInt64(max(chunksDone, 1))
        pooledJobs &+= 1
        if waited > stallNanos && waited > 3 * perChunk {
            stallCount += 1
            if pooledJobs &- stallJobs.0 <= stallWindow {   // the third stall within the window
                soloJobs = soloBackoff
                soloBackoff = min(soloBackoff * 2, soloAfterStall * 64)
            }
            stallJobs = (stallJobs.1, pooledJobs)
        } else {
            soloBackoff = soloAfterStall
        }
        running.store(false, ordering: .releasing)
    }

    /// Calls `body(i)` for every `i` in `0..<count`, distributed over the pool in chunks of `chunk` indices.
    public func forEach(_ count: Int, chunk: Int = 1, _ body: (Int, Int) -> Void) {
        parallelFor(count, chunk: chunk) { range, participant in for i in range { body(i, participant) } }
    }

    /// The part `index` of `parts` of `0..<total`, with interior boundaries rounded down to multiples of `align`.
    public static func chunk(_ total: Int, parts: Int, index: Int, align: Int = 1) -> Range<Int> {
        func bound(_ i: Int) -> Int {
            if i >= parts { return total }
            let b = total * i / parts
            return min(total, b - b % align)
        }
        return bound(index)..<bound(index + 1)
    }
}

/// State shared by the pool and its workers (the workers keep it alive after the pool is released).
private final class PoolShared: @unchecked Sendable {
    let generation = ManagedAtomic<Int>(0)
    let active = ManagedAtomic<Int>(0)
    let nextChunk = ManagedAtomic<Int>(0)
    let done = ManagedAtomic<Int>(0)
    let sleepers = ManagedAtomic<Int>(0)
    let stopping = ManagedAtomic<Bool>(false)
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let cond: UnsafeMutablePointer<pthread_cond_t>
    let spinLimit: Int
    var function: ThreadPool.ChunkFunction?
    var context: UnsafeMutableRawPointer?
    var count = 0
    var chunk = 1

    init(spinLimit: Int) {
        self.spinLimit = spinLimit
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    func wakeParked() {
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
    }

    /// Spins, then yields the core, until `condition` holds.
    @inline(__always)
    func waitUntil(_ condition: () -> Bool) {
        var spins = 0
        while !condition() {
            if spins < spinLimit { ck_cpu_relax(); spins += 1 } else { sched_yield() }
        }
    }

    /// Claims and runs chunks of the open job until none is left; returns how many it ran.
    @discardableResult
    func work(participant: Int) -> Int {
        guard let function else { return 0 }
        let ctx = context
        var ran = 0
        while true {
            let c = nextChunk.loadThenWrappingIncrement(ordering: .relaxed)
            let start = c * chunk
            if start >= count { return ran }
            ran += 1
            let end = min(count, start + chunk)
            function(ctx, start, end, participant)
            done.wrappingIncrement(by: end - start, ordering: .releasing)
        }
    }

    func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                if spins < spinLimit { ck_cpu_relax(); spins += 1; continue }
                pthread_mutex_lock(mutex)
                sleepers.wrappingIncrement(ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(cond, mutex) }
                sleepers.wrappingDecrement(ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
            }
            if stopping.load(ordering: .acquiring) { return }
            let g = generation.load(ordering: .sequentiallyConsistent)
            seen = g
            if g & 1 == 0 { continue }                       // a job just closed
            active.wrappingIncrement(ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) == g { work(participant: index) }
            active.wrappingDecrement(ordering: .sequentiallyConsistent)
        }
    }
}
