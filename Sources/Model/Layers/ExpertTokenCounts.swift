// Per-layer, per-expert counts of routed tokens (`sputnik:moe_expert_tokens_total{layer,expert}`), written by the
// forward's thread in the MoE block and read by `/metrics` from any thread.
import Atomics

/// Tokens routed to each expert of each layer since load: `[numLayers, numExperts]` counters, one relaxed atomic
/// each in one allocation. One thread (the forward's, which is not re-entrant) writes, with a relaxed load and
/// store (plain moves: no lock, no read-modify-write, no allocation); any thread may read. A reader sees each
/// counter's latest or a recent value, never a torn one; counters only grow.
public final class ExpertTokenCounts: @unchecked Sendable {
    /// Decoder layers (all of them: dense layers' rows stay 0).
    public let numLayers: Int
    /// Routed experts per MoE layer.
    public let numExperts: Int
    private let storage: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>  // [numLayers, numExperts]

    /// Zeroed counters for `numLayers` × `numExperts`.
    public init(numLayers: Int, numExperts: Int) {
        self.numLayers = numLayers
        self.numExperts = numExperts
        storage = .allocate(capacity: numLayers * numExperts)
        for i in 0..<(numLayers * numExperts) { (storage + i).initialize(to: .init(0)) }
    }

    deinit {
        storage.deinitialize(count: numLayers * numExperts)
        storage.deallocate()
    }

    /// Adds one routed token to `expert` of `layer` (single writer: the forward's thread).
    @inline(__always)
    func increment(layer: Int, expert: Int) {
        let a = UnsafeAtomic<Int>(at: storage + layer * numExperts + expert)
        a.store(a.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Tokens routed to `expert` of `layer` so far (any thread).
    public func count(layer: Int, expert: Int) -> Int {
        precondition(layer >= 0 && layer < numLayers && expert >= 0 && expert < numExperts, "expert \(layer)/\(expert) out of range")
        return UnsafeAtomic<Int>(at: storage + layer * numExperts + expert).load(ordering: .relaxed)
    }
}
