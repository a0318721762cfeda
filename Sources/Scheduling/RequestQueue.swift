/// The order in which requests are served (vLLM's `--scheduling-policy`).
public enum SchedulingPolicy: String, Sendable, CaseIterable {
    /// First come, first served: `priority` is ignored.
    case fcfs
    /// Lower `priority` first, then arrival (vLLM convention).
    case priority
}

/// Request ids kept in service order: the ordering policy, apart from the scheduler's state (vLLM v1
/// `RequestQueue`). The scheduler keeps one for waiting and one for running requests; the last id of the running
/// queue is the one served last, so it is the preemption victim.
public struct RequestQueue: Sendable {
    /// How ids are ordered.
    public let policy: SchedulingPolicy
    /// `(id, sort key)` in service order.
    private var entries: [(id: Int, key: (Int, Int))] = []

    /// An empty queue ordered by `policy`.
    public init(policy: SchedulingPolicy) { self.policy = policy }

    /// Ids in service order.
    public var ids: [Int] { entries.map(\.id) }
    /// Number of queued ids.
    public var count: Int { entries.count }
    /// Whether no id is queued.
    public var isEmpty: Bool { entries.isEmpty }
    /// The id served first, if any.
    public var first: Int? { entries.first?.id }
    /// The id served last (the preemption victim among running requests), if any.
    public var last: Int? { entries.last?.id }
    /// The id at position `i` of the service order.
    public subscript(i: Int) -> Int { entries[i].id }

    /// Inserts `id` after every id that is served before it: lower `priority` (under `.priority`), then earlier
    /// `arrival`. O(n).
    public mutating func insert(_ id: Int, priority: Int, arrival: Int) {
        let key = (policy == .priority ? priority : 0, arrival)
        let at = entries.firstIndex { key < $0.key } ?? entries.endIndex
        entries.insert((id, key), at: at)
    }

    /// Removes and returns the first id. The queue must not be empty.
    @discardableResult
    public mutating func removeFirst() -> Int { entries.removeFirst().id }

    /// Removes `id` wherever it is. - Returns: whether it was queued.
    @discardableResult
    public mutating func remove(_ id: Int) -> Bool {
        guard let i = entries.firstIndex(where: { $0.id == id }) else { return false }
        entries.remove(at: i)
        return true
    }
}
