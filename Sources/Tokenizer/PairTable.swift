/// Open-addressing hash map from a merge pair `left << 32 | right` (symbol ids) to its merge, for the BPE hot loop
/// (a Swift `Dictionary` lookup hashes with SipHash; this uses one multiply).
struct PairTable: Sendable {
    /// Slot keys; `UInt64.max` marks an empty slot: [capacity].
    private var keys: [UInt64]
    /// Slot values: [capacity].
    private var ranks: [Int32]
    private var results: [Int32]
    private let shift: UInt64
    private let mask: Int

    init(minimumCapacity n: Int) {
        var cap = 16, bits: UInt64 = 4
        while cap < n * 2 { cap <<= 1; bits += 1 }
        keys = [UInt64](repeating: .max, count: cap)
        ranks = [Int32](repeating: 0, count: cap)
        results = [Int32](repeating: 0, count: cap)
        shift = 64 - bits
        mask = cap - 1
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Inserts unless `key` is present (the first, lowest-rank merge of a pair wins).
    mutating func insertIfAbsent(_ key: UInt64, rank: Int32, result: Int32) {
        var i = slot(key)
        while keys[i] != .max {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key; ranks[i] = rank; results[i] = result
    }

    /// The slot of `key`, or −1.
    @inline(__always) func find(_ key: UInt64) -> Int {
        keys.withUnsafeBufferPointer { k in
            var i = slot(key)
            while true {
                let v = k[i]
                if v == key { return i }
                if v == .max { return -1 }
                i = (i + 1) & mask
            }
        }
    }

    @inline(__always) func rank(at slot: Int) -> Int32 { ranks[slot] }
    @inline(__always) func result(at slot: Int) -> Int32 { results[slot] }
}
