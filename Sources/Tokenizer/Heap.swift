/// A candidate merge of two adjacent symbols, ordered for a min-heap.
///
/// BPE: `key` = merge rank (lower first). SentencePiece: `key` = −score (higher score first). Ties go to the
/// leftmost pair, as llama.cpp's `llm_bigram_bpe::comparator` / `llm_bigram_spm::comparator`.
struct Bigram {
    var key: Float
    var left: Int32
    var right: Int32
    /// Symbol ids (BPE) or byte lengths (SentencePiece) of the two sides when the bigram was made; a popped
    /// bigram whose sides changed since is stale and skipped.
    var leftTag: Int32
    var rightTag: Int32

    @inline(__always) static func before(_ x: Bigram, _ y: Bigram) -> Bool {
        x.key < y.key || (x.key == y.key && x.left < y.left)
    }
}

/// A binary min-heap of bigrams whose storage is reused across words.
struct BigramHeap {
    private(set) var items: [Bigram] = []

    var isEmpty: Bool { items.isEmpty }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ x: Bigram) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Bigram.before(items[i], items[parent]) { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> Bigram {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && Bigram.before(items[l], items[m]) { m = l }
                if r < n && Bigram.before(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
