/// A tiny seeded generator (xorshift64, Marsaglia 2003) for fuzz tests: the same seed gives the same inputs on
/// every machine. `state` must not be 0.
public struct XorShift: RandomNumberGenerator {
    public var state: UInt64
    /// A generator starting from `state` (non-zero).
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
