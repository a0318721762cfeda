// A step's routing assignments grouped by expert: the counting sort behind batched MoE execution (llama.cpp's
// `mul_mat_id` row mapping in ggml-cpu.c, ktransformers' `forward_many`). Both MoE paths that batch tokens (the
// fused expert jobs and the one-matmul-per-expert path) read their expert order and token lists from here.

/// Groups the assignments `a = token * k + slot` of a step by the expert each one chose. Scratch is sized at init;
/// `bucket` allocates nothing. Not thread-safe (one caller: the forward's thread).
public final class ExpertBuckets {
    /// Routed experts per layer (ids are `0..<numExperts`).
    public let numExperts: Int
    /// Most assignments one `bucket` call takes (tokens × top-k).
    public let capacity: Int
    /// Distinct experts of the last `bucket` call, ascending: the first `activeCount` entries `[numExperts]`.
    public let experts: UnsafeMutablePointer<Int32>
    /// Assignments grouped by expert (ascending expert, then ascending assignment) `[capacity]`; active expert i
    /// owns `order[starts[i] ..< starts[i + 1]]`.
    public let order: UnsafeMutablePointer<Int32>
    /// Start of each active expert's run in `order`, then the total `[numExperts + 1]`.
    public let starts: UnsafeMutablePointer<Int32>
    /// Distinct experts of the last `bucket` call.
    public private(set) var activeCount = 0
    private let counts: UnsafeMutablePointer<Int32>    // [numExperts + 1]

    /// Scratch for up to `capacity` assignments over `numExperts` experts.
    public init(numExperts: Int, capacity: Int) {
        precondition(numExperts > 0 && capacity > 0, "ExpertBuckets needs experts and capacity")
        self.numExperts = numExperts
        self.capacity = capacity
        experts = .allocate(capacity: numExperts)
        order = .allocate(capacity: capacity)
        starts = .allocate(capacity: numExperts + 1)
        counts = .allocate(capacity: numExperts + 1)
    }

    deinit {
        experts.deallocate()
        order.deallocate()
        starts.deallocate()
        counts.deallocate()
    }

    /// Buckets `ids[count]` (the expert of each assignment, `token * k + slot` order; every id in
    /// `0..<numExperts`, which the router guarantees). Stable: within an expert, assignments keep their order.
    public func bucket(_ ids: UnsafePointer<Int32>, count: Int) {
        precondition(count >= 0 && count <= capacity, "\(count) assignments exceed the capacity \(capacity)")
        let e = numExperts
        counts.update(repeating: 0, count: e + 1)
        for a in 0..<count {
            let ex = Int(ids[a])
            precondition(ex >= 0 && ex < e, "expert id \(ex) outside 0..<\(e)")
            counts[ex + 1] += 1
        }
        activeCount = 0
        for ex in 0..<e {
            if counts[ex + 1] > 0 {
                experts[activeCount] = Int32(ex)
                starts[activeCount] = counts[ex]
                activeCount += 1
            }
            counts[ex + 1] += counts[ex]                  // counts[ex] = first slot of expert ex in `order`
        }
        starts[activeCount] = Int32(count)
        for a in 0..<count {
            let ex = Int(ids[a])
            order[Int(counts[ex])] = Int32(a)
            counts[ex] += 1
        }
    }

    /// The assignments of active expert `i` (`0..<activeCount`), ascending.
    public func assignments(ofActive i: Int) -> UnsafeBufferPointer<Int32> {
        precondition(i >= 0 && i < activeCount, "active expert \(i) outside 0..<\(activeCount)")
        return UnsafeBufferPointer(start: order + Int(starts[i]), count: Int(starts[i + 1] - starts[i]))
    }
}
