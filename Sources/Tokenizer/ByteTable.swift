/// Open-addressing hash map from byte strings to token ids, looked up with a pointer and a length so the hot
/// paths (SentencePiece bigrams, Llama-3 whole-word lookups) allocate nothing.
struct ByteTable: Sendable {
    /// All keys back to back: [totalKeyBytes].
    private let storage: [UInt8]
    /// Start of each id's key in `storage`, and its length (−1 when the id has no key): [vocabSize] each.
    private let start: [Int32]
    private let length: [Int32]
    /// Slot → id, −1 when empty: [capacity].
    private let slots: [Int32]
    private let mask: Int

    /// `keys[id]` is the byte string of `id`, or nil to leave `id` out. Duplicate keys keep the lowest id.
    init(keys: [[UInt8]?]) {
        var storage: [UInt8] = [], start: [Int32] = [], length: [Int32] = []
        var count = 0
        for k in keys {
            start.append(Int32(storage.count))
            if let k { storage.append(contentsOf: k); length.append(Int32(k.count)); count += 1 } else { length.append(-1) }
        }
        var cap = 16
        while cap < count * 2 { cap <<= 1 }
        var slots = [Int32](repeating: -1, count: cap)
        let mask = cap - 1
        storage.withUnsafeBufferPointer { st in
            for id in 0..<keys.count where length[id] >= 0 {
                let p = st.baseAddress.map { $0 + Int(start[id]) }
                var i = ByteTable.hash(p, Int(length[id])) & mask
                var dup = false
                while slots[i] >= 0 {
                    let o = Int(slots[i])
                    if length[o] == length[id] && (0..<Int(length[id])).allSatisfy({ st[Int(start[o]) + $0] == st[Int(start[id]) + $0] }) {
                        dup = true; break
                    }
                    i = (i + 1) & mask
                }
                if !dup { slots[i] = Int32(id) }
            }
        }
        self.storage = storage; self.start = start; self.length = length; self.slots = slots; self.mask = mask
    }

    /// FNV-1a over the bytes, then a final mix.
    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>?, _ n: Int) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        if let p { for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x100_0000_01B3 } }
        h ^= h >> 29
        return Int(truncatingIfNeeded: h &* 0x9E37_79B9_7F4A_7C15 >> 20)
    }

    /// The id whose key equals `p[0..<n]`, or nil.
    @inline(__always) func find(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        storage.withUnsafeBufferPointer { st -> Int32? in
            slots.withUnsafeBufferPointer { sl -> Int32? in
                var i = ByteTable.hash(p, n) & mask
                while true {
                    let id = sl[i]
                    if id < 0 { return nil }
                    if Int(length[Int(id)]) == n && (n == 0 || memcmp(st.baseAddress! + Int(start[Int(id)]), p, n) == 0) {
                        return id
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
