/// Byte-level BPE merge table and word encoder (llama.cpp `llm_tokenizer_bpe_session::tokenize`).
///
/// NOTE: merging works on symbol ids, not strings. A symbol is a vocabulary id, or — for a merge part or result
/// that is not in the vocabulary — a synthetic id ≥ vocabSize, so the merge order is exactly llama.cpp's
/// string-keyed one:
/// ```
/// bytes  "l o w e r"  →  ids of "l","o","w","e","r"  →  merge (lowest rank, leftmost) → ... → "low","er"
/// ```
struct BPEMerges: Sendable {
    /// Keyed by `left << 32 | right` symbol ids.
    let table: PairTable
    /// Initial symbol of each raw byte (the id of its mapped one-character string): [256].
    let byteSymbol: [Int32]
    /// Strings of synthetic symbols (id = vocabSize + index), used for llama.cpp's fallback of unknown words.
    let extra: [[UInt8]]
    let vocabSize: Int

    init(merges: [String], tokenToId: [ByteString: Int32], vocabSize: Int) {
        var extraIds: [ByteString: Int32] = [:]
        var extra: [[UInt8]] = []
        func symbol(_ bytes: [UInt8]) -> Int32 {
            let s = ByteString(bytes)
            if let id = tokenToId[s] { return id }
            if let id = extraIds[s] { return id }
            let id = Int32(vocabSize + extra.count)
            extra.append(bytes); extraIds[s] = id
            return id
        }
        var table = PairTable(minimumCapacity: merges.count)
        for (rank, m) in merges.enumerated() {
            let u = Array(m.utf8)
            // llama.cpp splits at the first space after the first byte.
            guard u.count > 1, let sp = u[1...].firstIndex(of: 0x20) else { continue }
            let first = Array(u[..<sp])
            let second = Array(u[(sp + 1)...])
            let l = symbol(first), r = symbol(second)
            let key = BPEMerges.key(l, r)
            if table.find(key) < 0 { table.insertIfAbsent(key, rank: Int32(rank), result: symbol(first + second)) }
        }
        var bs = [Int32](repeating: 0, count: 256)
        for b in 0..<256 { bs[b] = symbol(Array(String(Unicode.Scalar(ByteLevel.byteToScalar[b])!).utf8)) }
        self.table = table
        self.byteSymbol = bs
        self.extra = extra
        self.vocabSize = vocabSize
    }

    @inline(__always) static func key(_ l: Int32, _ r: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
    }
}

/// Reusable per-call buffers for encoding.
struct EncodeScratch {
    var cps: [UInt32] = []
    var offsets: [Int32] = []
    var flags: [UInt8] = []
    var chunks: [Int32] = []
    var tmp: [Int32] = []
    var sym: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap = BigramHeap()

    init(reserving n: Int) {
        cps.reserveCapacity(n); offsets.reserveCapacity(n + 1); flags.reserveCapacity(n)
        chunks.reserveCapacity(n / 2 + 2); tmp.reserveCapacity(n / 2 + 2)
        sym.reserveCapacity(64); prev.reserveCapacity(64); next.reserveCapacity(64)
    }
}

extension Tokenizer {
    /// Encodes one raw-text fragment (`bytes[range]`, no special tokens inside) with byte-level BPE.
    func encodeBPE(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ s: inout EncodeScratch, _ out: inout [Int32]) {
        guard let bpe else { preconditionFailure("encodeBPE on a non-BPE vocabulary") }
        UTF8Util.decode(bytes, range, cps: &s.cps, offsets: &s.offsets)
        s.flags.removeAll(keepingCapacity: true)
        for c in s.cps { s.flags.append(CharClass.flags(c)) }
        s.cps.withUnsafeBufferPointer { cp in
            s.flags.withUnsafeBufferPointer { fl in
                preTokenizer.split(cp, fl, out: &s.chunks, tmp: &s.tmp)
            }
        }
        var start = 0
        for endI in s.chunks {
            let end = Int(endI)
            let lo = Int(s.offsets[start]), hi = Int(s.offsets[end])
            start = end
            encodeWord(bytes, lo..<hi, bpe, &s, &out)
        }
    }

    private func encodeWord(_ bytes: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ bpe: BPEMerges,
                            _ s: inout EncodeScratch, _ out: inout [Int32]) {
        let n = r.count
        if n == 0 { return }
        if ignoreMerges, let raw = rawTable, let id = raw.find(bytes.baseAddress! + r.lowerBound, n) {
            out.append(id); return
        }
        if n == 1 {
            let id = bpe.byteSymbol[Int(bytes[r.lowerBound])]
            emitSymbol(id, bpe, &out); return
        }
        if n <= 48 { encodeShortWord(bytes, r, bpe, &s, &out); return }
        s.sym.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        for i in 0..<n {
            s.sym.append(bpe.byteSymbol[Int(bytes[r.lowerBound + i])])
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        s.heap.removeAll()
        @inline(__always) func add(_ l: Int32, _ rr: Int32, _ s: inout EncodeScratch) {
            if l < 0 || rr < 0 { return }
            let ls = s.sym[Int(l)], rs = s.sym[Int(rr)]
            let slot = bpe.table.find(BPEMerges.key(ls, rs))
            if slot >= 0 {
                s.heap.push(Bigram(key: Float(bpe.table.rank(at: slot)), left: l, right: rr, leftTag: ls, rightTag: rs))
            }
        }
        for i in 1..<n { add(Int32(i - 1), Int32(i), &s) }
        while !s.heap.isEmpty {
            let bg = s.heap.pop()
            let l = Int(bg.left), rr = Int(bg.right)
            guard s.sym[l] == bg.leftTag, s.sym[rr] == bg.rightTag else { continue }   // stale
            let slot = bpe.table.find(BPEMerges.key(bg.leftTag, bg.rightTag))
            if slot < 0 { continue }
            s.sym[l] = bpe.table.result(at: slot)
            s.sym[rr] = -1
            let nx = s.next[rr]
            s.next[l] = nx
            if nx >= 0 { s.prev[Int(nx)] = Int32(l) }
            add(s.prev[l], Int32(l), &s)
            add(Int32(l), s.next[l], &s)
        }
        var i: Int32 = 0
        while i >= 0 {
            emitSymbol(s.sym[Int(i)], bpe, &out)
            i = s.next[Int(i)]
        }
    }

    /// Short words: the same merge order (lowest rank, leftmost first) found by scanning a rank per adjacent pair,
    /// cheaper than the heap for a few dozen symbols.
    private func encodeShortWord(_ bytes: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ bpe: BPEMerges,
                                 _ s: inout EncodeScratch, _ out: inout [Int32]) {
        var n = r.count
        s.sym.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)   // rank of pair (i, i+1), Int32.max when none: [n - 1]
        s.next.removeAll(keepingCapacity: true)   // merge result of pair (i, i+1): [n - 1]
        for i in 0..<n { s.sym.append(bpe.byteSymbol[Int(bytes[r.lowerBound + i])]) }
        for _ in 0..<(n - 1) { s.prev.append(.max); s.next.append(0) }
        s.sym.withUnsafeMutableBufferPointer { sym in
            s.prev.withUnsafeMutableBufferPointer { rank in
                s.next.withUnsafeMutableBufferPointer { res in
                    @inline(__always) func pair(_ i: Int) {
                        let slot = bpe.table.find(BPEMerges.key(sym[i], sym[i + 1]))
                        if slot >= 0 { rank[i] = bpe.table.rank(at: slot); res[i] = bpe.table.result(at: slot) } else { rank[i] = .max }
                    }
                    for i in 0..<(n - 1) { pair(i) }
                    while n > 1 {
                        var best = 0
                        var bestRank = rank[0]
                        var i = 1
                        while i < n - 1 { if rank[i] < bestRank { bestRank = rank[i]; best = i }; i += 1 }
                        if bestRank == .max { break }
                        sym[best] = res[best]
                        var j = best + 1
                        while j < n - 1 { sym[j] = sym[j + 1]; j += 1 }
                        j = best + 1
                        while j < n - 2 { rank[j] = rank[j + 1]; res[j] = res[j + 1]; j += 1 }
                        n -= 1
                        if best > 0 { pair(best - 1) }
                        if best < n - 1 { pair(best) }
                    }
                }
            }
        }
        for i in 0..<n { emitSymbol(s.sym[i], bpe, &out) }
    }

    /// Emits a final symbol; a synthetic one falls back to the tokens of its single bytes, as llama.cpp does.
    @inline(__always)
    private func emitSymbol(_ id: Int32, _ bpe: BPEMerges, _ out: inout [Int32]) {
        if Int(id) < vocabSize { out.append(id); return }
        for b in bpe.extra[Int(id) - vocabSize] {
            if let t = tokenToId[ByteString([b])] { out.append(t) }
        }
    }
}
