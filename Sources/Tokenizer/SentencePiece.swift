/// SentencePiece-style (`tokenizer.ggml.model = llama`) encoder: llama.cpp `llm_tokenizer_spm_session`.
///
/// Spaces become `▁` (U+2581), a leading `▁` is added after BOS or a special token when `add_space_prefix`, then
/// adjacent symbols are merged greedily by the vocabulary score of their concatenation (highest first, leftmost on
/// ties); a final symbol that is not a token is written as byte tokens `<0xNN>`.
extension Tokenizer {
    func encodeSPM(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, prefixSpace: Bool, _ out: inout [Int32]) {
        // Escaped text: [numBytes].
        var text: [UInt8] = []
        text.reserveCapacity(range.count * 3 / 2 + 3)
        if prefixSpace { text.append(contentsOf: [0xE2, 0x96, 0x81]) }
        for i in range {
            if bytes[i] == 0x20 { text.append(contentsOf: [0xE2, 0x96, 0x81]) } else { text.append(bytes[i]) }
        }
        if text.isEmpty { return }
        // Symbols: start byte, byte length, prev, next (index chains).
        var start: [Int32] = [], len: [Int32] = [], prev: [Int32] = [], next: [Int32] = []
        var o = 0
        while o < text.count {
            let b = text[o]
            let l = b < 0xC0 ? 1 : (b < 0xE0 ? 2 : (b < 0xF0 ? 3 : 4))
            let n = min(l, text.count - o)
            prev.append(Int32(start.count - 1))
            start.append(Int32(o)); len.append(Int32(n))
            o += n
            next.append(o == text.count ? -1 : Int32(start.count))
        }
        var heap = BigramHeap()
        func lookup(_ a: Int, _ n: Int) -> Int32? {
            text.withUnsafeBufferPointer { textTable.find($0.baseAddress! + a, n) }
        }
        func add(_ l: Int32, _ r: Int32) {
            if l < 0 || r < 0 { return }
            let a = Int(start[Int(l)]), n = Int(len[Int(l)] + len[Int(r)])
            guard let id = lookup(a, n) else { return }
            heap.push(Bigram(key: -scores[Int(id)], left: l, right: r, leftTag: Int32(n), rightTag: 0))
        }
        for i in 1..<start.count { add(Int32(i - 1), Int32(i)) }
        while !heap.isEmpty {
            let bg = heap.pop()
            let l = Int(bg.left), r = Int(bg.right)
            if len[l] == 0 || len[r] == 0 || len[l] + len[r] != bg.leftTag { continue }
            len[l] += len[r]; len[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
            add(prev[l], Int32(l))
            add(Int32(l), next[l])
        }
        var i: Int32 = 0
        while i >= 0 {
            let a = Int(start[Int(i)]), n = Int(len[Int(i)])
            if let id = lookup(a, n) {
                out.append(id)
            } else {
                for k in a..<(a + n) { if let id = byteToken(text[k]) { out.append(id) } }
            }
            i = next[Int(i)]
        }
    }

    /// The token of one byte: `<0xNN>`, else the one-character token (llama.cpp `byte_to_token`).
    func byteToken(_ b: UInt8) -> Int32? {
        let hex = Array("0123456789ABCDEF".utf8)
        if let id = tokenToId[ByteString([0x3C, 0x30, 0x78, hex[Int(b >> 4)], hex[Int(b & 15)], 0x3E])] { return id }
        return tokenToId[ByteString([b])]
    }
}
