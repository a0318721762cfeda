import Atomics
import CKernels
import Foundation

/// A persistent pool of compute threads for one driving thread (the engine).
///
/// `run` hands one job to all `threadCount` participants (the caller is participant 0, the pool owns
/// `threadCount - 1` worker threads) and returns when all have finished it. Workers spin briefly (a few hundred
/// microseconds of `pause`) waiting for the next job, then park on a condition variable, so an idle pool costs
/// nothing on a shared machine and a preempted worker never makes the others burn CPU for long. The hot path
/// (`run`) allocates nothing and takes no lock unless a worker is parked.
public final class ThreadPool: @unchecked Sendable {
    /// Participants in every job, including the calling thread.
    public let threadCount: Int
    private let shared: PoolShared
    private let running = ManagedAtomic<Bool>(false)

    /// Starts `threads - 1` workers (`threads` ≥ 1). `spinIterations` is how many `pause` hints a waiting thread
    /// spins before parking (workers) or yielding (the caller).
    public init(threads: Int, spinIterations: Int = 20_000) {
        precondition(threads >= 1, "a thread pool needs at least one thread")
        threadCount = threads
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
        shared.wake()
    }

    /// Runs `body(i)` for every participant `i` in `0..<threadCount` concurrently (the caller runs `i = 0`) and
    /// returns when all calls have returned. Not re-entrant: call from one thread at a time.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        let wasRunning = running.exchange(true, ordering: .acquiring)
        precondition(!wasRunning, "ThreadPool.run is not re-entrant")
        let s = shared
        withoutActuallyEscaping(body) { escapable in
            s.job = escapable
            s.pending.store(threadCount - 1, ordering: .relaxed)
            s.wake()
            escapable(0)
            var spins = 0
            while s.pending.load(ordering: .acquiring) != 0 {
                if spins < s.spinLimit { ck_cpu_relax(); spins += 1 } else { sched_yield() }
            }
            s.job = nil
        }
        running.store(false, ordering: .releasing)
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
    let pending = ManagedAtomic<Int>(0)
    let sleepers = ManagedAtomic<Int>(0)
    let stopping = ManagedAtomic<Bool>(false)
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let cond: UnsafeMutablePointer<pthread_cond_t>
    let spinLimit: Int
    var job: ((Int) -> Void)?

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

    /// Publishes a new generation (a job or the stop flag) and wakes parked workers.
    func wake() {
        generation.wrappingIncrement(ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
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
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            job?(index)
            pending.wrappingDecrement(ordering: .releasing)
        }
    }
}
