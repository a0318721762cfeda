import CKernels
import Glibc

/// Weight element formats the matmul kernels handle; raw values are ggml type ids (ggml.h `enum ggml_type`).
public enum WeightType: Int32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30
    case q2_K = 10, q3_K = 11, iq4_nl = 20, iq4_xs = 23
    /// The i-quants (CKernels include/ck_iquants.h): 256-element super-blocks, q8_K activations.
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq3_s = 21, iq2_s = 22, iq1_m = 29

    /// Elements per quantization block (1 for float types, 256 for K-quants and i-quants, else 32).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_K, .q5_K, .q6_K, .q2_K, .q3_K, .iq4_xs: return 256
        case .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m: return 256
        default: return 32
        }
    }

    /// Bytes of a row of `n` elements (`n` a multiple of `blockSize`).
    public func rowBytes(_ n: Int) -> Int { ck_row_size(rawValue, Int64(n)) }

    /// The ggml type id activations are converted to before a dot product with this weight type
    /// (q4_0/q5_0/q8_0/iq4_nl→q8_0, q4_1/q5_1→q8_1, q2_K...q6_K/iq4_xs and the i-quants→q8_K, f16/bf16/f32→f32).
    public var activationTypeID: Int32 { ck_activation_type(rawValue) }
}

/// A row-major weight matrix `[rows, cols]` (GGUF `ne = [cols, rows]`) viewed in place (e.g. in a GGUF mmap).
/// The memory must outlive this value.
public struct WeightMatrix: @unchecked Sendable {
    /// Element format.
    public let type: WeightType
    /// First byte of row 0.
    public let data: UnsafeRawPointer
    /// Output features (outermost dimension).
    public let rows: Int
    /// Input features per row.
    public let cols: Int
    /// Bytes between consecutive rows.
    public let rowBytes: Int
    /// The same weights repacked for the interleaved kernels (q4_1 / q8_0 in groups of 8 rows, see `WeightRepacker`),
    /// or nil. `data` stays valid for row access.
    public private(set) var packed: UnsafeRawPointer?

    /// A view of `rows` rows of `cols` elements of `type` at `data`. `cols` must be a multiple of the block size.
    public init(type: WeightType, data: UnsafeRawPointer, rows: Int, cols: Int) {
        precondition(cols % type.blockSize == 0, "row length \(cols) is not a multiple of the \(type) block size")
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
        self.rowBytes = type.rowBytes(cols)
        self.packed = nil
    }

    /// This matrix with a repacked copy attached (made by `WeightRepacker`).
    func withPacked(_ p: UnsafeRawPointer) -> WeightMatrix {
        var m = self
        m.packed = p
        return m
    }

    /// Writes row `r` as float32 into `out[0..<cols]` (embedding lookup).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "row \(r) out of range 0..<\(rows)")
        ck_dequantize_row(type.rawValue, data + r * rowBytes, out, Int64(cols))
    }
}

/// Matrix multiplication `y[numTokens, W.rows] = x[numTokens, W.cols] · Wᵀ` on the thread pool.
///
/// Each activation row is converted once per call to the weight type's partner format (q8_0 / q8_1 / f32) in
/// scratch sized at init; then the output rows of up to three weights that share the input (e.g. Q, K, V or
/// gate, up) are split into chunks of rows claimed dynamically by the pool threads, so one job computes all of
/// them and a descheduled thread never stalls it. Each chunk
/// calls the C kernel once for its row range and all tokens (weights streamed once).
public final class Matmul: @unchecked Sendable {
    /// The pool the work runs on.
    public let pool: ThreadPool
    /// Largest `numTokens` one call accepts.
    public let maxTokens: Int
    /// Largest input width one call accepts.
    public let maxInDim: Int
    /// Quantized activations `[maxTokens, rowBytes(q8_0, maxInDim)]`.
    private let q80: UnsafeMutableRawPointer
    /// Quantized activations `[maxTokens, rowBytes(q8_1, maxInDim)]`.
    private let q81: UnsafeMutableRawPointer
    /// Quantized activations `[maxTokens, rowBytes(q8_K, maxInDim rounded up to 256)]`.
    private let q8K: UnsafeMutableRawPointer

    /// When true every product is computed in float32 on dequantized weights with unquantized activations (a
    /// slow reference path for verification, like gguf-py dequantize + float matmul); default false.
    public let floatReference: Bool

    /// When true, weight types with both a per-row kernel and a tiled GEMM (K-quants, 32-element blocks) take the GEMM
    /// whatever the token count (`ck_matmul_rows_gemm`), so a token's result does not depend on how many tokens
    /// share the call. Set per forward pass (`ForwardBatch.computesPrompt`); default false: fewer than 8 tokens
    /// take the faster per-row kernel (decode).
    public var gemmForAnyTokenCount = false

    /// Allocates activation scratch for up to `maxTokens` rows of up to `maxInDim` inputs.
    public init(pool: ThreadPool, maxTokens: Int, maxInDim: Int, floatReference: Bool = false) {
        self.pool = pool
        self.floatReference = floatReference
        self.maxTokens = maxTokens
        self.maxInDim = maxInDim
        let padded = (maxInDim + 31) / 32 * 32
        q80 = .allocate(byteCount: max(64, maxTokens * Int(ck_row_size(ckQ8_0, Int64(padded)))), alignment: 64)
        q81 = .allocate(byteCount: max(64, maxTokens * Int(ck_row_size(ckQ8_1, Int64(padded)))), alignment: 64)
        let paddedK = (maxInDim + 255) / 256 * 256
        q8K = .allocate(byteCount: max(64, maxTokens * Int(ck_row_size(ckQ8_K, Int64(paddedK)))), alignment: 64)
    }

    deinit {
        q80.deallocate()
        q81.deallocate()
        q8K.deallocate()
    }

    /// `y[numTokens, w.rows] = x[numTokens, w.cols] · wᵀ`. Row stride of x is `w.cols`, of y `w.rows`.
    public func callAsFunction(_ x: UnsafePointer<Float>, numTokens: Int, _ w: WeightMatrix,
                               _ y: UnsafeMutablePointer<Float>) {
        run(x, numTokens: numTokens, w, y, nil, nil, nil, nil)
    }

    /// Two or three weights with the same input: `y_i[numTokens, w_i.rows] = x · w_iᵀ` in one pool job.
    public func callAsFunction(_ x: UnsafePointer<Float>, numTokens: Int,
                               _ w0: WeightMatrix, _ y0: UnsafeMutablePointer<Float>,
                               _ w1: WeightMatrix, _ y1: UnsafeMutablePointer<Float>,
                               _ w2: WeightMatrix? = nil, _ y2: UnsafeMutablePointer<Float>? = nil) {
        run(x, numTokens: numTokens, w0, y0, w1, y1, w2, y2)
    }

    /// Activation rows from row `row0` on for `type` (the converted scratch, or x itself) and their stride in bytes.
    private func activation(for type: WeightType, x: UnsafePointer<Float>, cols: Int, row0: Int = 0) -> (UnsafeRawPointer, Int) {
        let (base, rb): (UnsafeRawPointer, Int)
        switch type.activationTypeID {
        case ckQ8_0: (base, rb) = (UnsafeRawPointer(q80), Int(ck_row_size(ckQ8_0, Int64(cols))))
        case ckQ8_1: (base, rb) = (UnsafeRawPointer(q81), Int(ck_row_size(ckQ8_1, Int64(cols))))
        case ckQ8_K: (base, rb) = (UnsafeRawPointer(q8K), Int(ck_row_size(ckQ8_K, Int64(cols))))
        default: (base, rb) = (UnsafeRawPointer(x), cols * 4)
        }
        return (base + row0 * rb, rb)
    }

    /// `y_i[numTokens, rows] = x_i[numTokens, cols] · ws[i]ᵀ` for every matrix of `ws` in one pool job (MLA's per-head
    /// W^UK / W^UV: one wake-up and barrier instead of one per head). x is `[ws.count, numTokens, cols]`, y
    /// `[ws.count, numTokens, rows]`; every matrix has the same type and shape. Each matrix's result equals a separate
    /// call's (the same conversion of each activation row and the same kernels per row). Needs
    /// `ws.count * numTokens ≤ maxTokens` and, when `floatReference` is off, is for quantized or f32 weights (f16
    /// weights go through `RoundingMatmul` one call each).
    public func batched(_ x: UnsafePointer<Float>, numTokens: Int, _ ws: [WeightMatrix], _ y: UnsafeMutablePointer<Float>) {
        let started = StepProfile.now()
        defer { StepProfile.add(.matmul, since: started) }
        guard let w0 = ws.first else { return }
        let rows = w0.rows, cols = w0.cols, total = ws.count * numTokens
        precondition(total <= maxTokens, "\(ws.count) matrices × \(numTokens) tokens exceed \(maxTokens) activation rows")
        precondition(cols <= maxInDim, "input width \(cols) exceeds \(maxInDim)")
        precondition(!floatReference, "batched matmul is for the quantized path")
        precondition(ws.allSatisfy { $0.type == w0.type && $0.rows == rows && $0.cols == cols }, "batched matrices differ")
        let a = w0.type.activationTypeID
        var job = MatmulJob(matmul: Unmanaged.passUnretained(self), x: x, numTokens: total, cols: cols,
                            w0: w0, y0: y, w1: nil, y1: nil, w2: nil, y2: nil,
                            q80: a == ckQ8_0, q81: a == ckQ8_1, q8K: a == ckQ8_K)
        if job.q80 || job.q81 || job.q8K {
            pool.parallelFor(total, chunk: max(1, 4096 / max(cols, 1)), context: &job) { ctx, start, end, _ in
                let job = ctx!.assumingMemoryBound(to: MatmulJob.self)
                job.pointee.matmul.takeUnretainedValue().quantize(job, start..<end)
            }
        }
        let chunk = max(16, (ws.count * rows / (pool.threadCount * 8) + 15) / 16 * 16)   // pairs of 8-row groups, as in run
        ws.withUnsafeBufferPointer { wb in
            var batch = BatchedJob(matmul: Unmanaged.passUnretained(self), x: x, numTokens: numTokens, ws: wb, y: y)
            pool.parallelFor(ws.count * rows, chunk: chunk, context: &batch) { ctx, start, end, _ in
                let b = ctx!.assumingMemoryBound(to: BatchedJob.self).pointee
                let me = b.matmul.takeUnretainedValue()
                let rows = b.ws[0].rows
                var r = start
                while r < end {                                        // the part of [start, end) in each matrix
                    let i = r / rows, lo = r - i * rows, hi = min(rows, end - i * rows)
                    me.segment(b.ws[i], b.y + i * b.numTokens * rows, offset: 0, range: lo..<hi, x: b.x, numTokens: b.numTokens,
                               row0: i * b.numTokens)
                    r = i * rows + hi
                }
            }
        }
    }

    private func run(_ x: UnsafePointer<Float>, numTokens: Int,
                     _ w0: WeightMatrix, _ y0: UnsafeMutablePointer<Float>,
                     _ w1: WeightMatrix?, _ y1: UnsafeMutablePointer<Float>?,
                     _ w2: WeightMatrix?, _ y2: UnsafeMutablePointer<Float>?) {
        let started = StepProfile.now()
        defer { StepProfile.add(.matmul, since: started) }
        let cols = w0.cols
        precondition(numTokens >= 1 && numTokens <= maxTokens, "numTokens \(numTokens) outside 1...\(maxTokens)")
        precondition(cols <= maxInDim, "input width \(cols) exceeds \(maxInDim)")
        precondition(w1 == nil || w1!.cols == cols, "grouped weights must share the input width")
        precondition(w2 == nil || w2!.cols == cols, "grouped weights must share the input width")
        var job = MatmulJob(matmul: Unmanaged.passUnretained(self), x: x, numTokens: numTokens, cols: cols,
                            w0: w0, y0: y0, w1: w1, y1: y1, w2: w2, y2: y2, q80: false, q81: false, q8K: false)
        let total = w0.rows + (w1?.rows ?? 0) + (w2?.rows ?? 0)
        if floatReference {
            pool.parallelFor(total, chunk: 16, context: &job) { ctx, start, end, _ in
                let job = ctx!.assumingMemoryBound(to: MatmulJob.self)
                job.pointee.matmul.takeUnretainedValue().rows(job, start..<end, float: true)
            }
            return
        }
        let a0 = w0.type.activationTypeID, a1 = w1?.type.activationTypeID ?? -1, a2 = w2?.type.activationTypeID ?? -1
        let need80 = a0 == ckQ8_0 || a1 == ckQ8_0 || a2 == ckQ8_0
        let need81 = a0 == ckQ8_1 || a1 == ckQ8_1 || a2 == ckQ8_1
        let need8K = a0 == ckQ8_K || a1 == ckQ8_K || a2 == ckQ8_K
        job.q80 = need80   // convert the activations once per partner format present in the group
        job.q81 = need81
        job.q8K = need8K
        if need80 || need81 || need8K {
            pool.parallelFor(numTokens, chunk: max(1, 4096 / max(cols, 1)), context: &job) { ctx, start, end, _ in
                let job = ctx!.assumingMemoryBound(to: MatmulJob.self)
                job.pointee.matmul.takeUnretainedValue().quantize(job, start..<end)
            }
        }
        // Chunks of whole pairs of 8-row groups (from 8 tokens on the AVX512-VNNI kernels take two groups at a time and
        // a lone group at half speed), about 8 per thread, so a descheduled thread's share is picked up by others.
        let chunk = max(16, (total / (pool.threadCount * 8) + 15) / 16 * 16)
        pool.parallelFor(total, chunk: chunk, context: &job) { ctx, start, end, _ in
            let job = ctx!.assumingMemoryBound(to: MatmulJob.self)
            job.pointee.matmul.takeUnretainedValue().rows(job, start..<end, float: false)
        }
    }

    /// Output rows `range` of the concatenated group of a job.
    fileprivate func rows(_ job: UnsafeMutablePointer<MatmulJob>, _ range: Range<Int>, float: Bool) {
        let j = job.pointee
        let rows0 = j.w0.rows, rows1 = j.w1?.rows ?? 0
        if float {
            floatSegment(j.w0, j.y0, offset: 0, range: range, x: j.x, numTokens: j.numTokens)
            if let w1 = j.w1, let y1 = j.y1 { floatSegment(w1, y1, offset: rows0, range: range, x: j.x, numTokens: j.numTokens) }
            if let w2 = j.w2, let y2 = j.y2 { floatSegment(w2, y2, offset: rows0 + rows1, range: range, x: j.x, numTokens: j.numTokens) }
        } else {
            segment(j.w0, j.y0, offset: 0, range: range, x: j.x, numTokens: j.numTokens)
            if let w1 = j.w1, let y1 = j.y1 { segment(w1, y1, offset: rows0, range: range, x: j.x, numTokens: j.numTokens) }
            if let w2 = j.w2, let y2 = j.y2 { segment(w2, y2, offset: rows0 + rows1, range: range, x: j.x, numTokens: j.numTokens) }
        }
    }

    fileprivate func quantize(_ job: UnsafeMutablePointer<MatmulJob>, _ tokens: Range<Int>) {
        let j = job.pointee
        let cols = j.cols, x = j.x
        let rb80 = Int(ck_row_size(ckQ8_0, Int64(cols)))
        let rb81 = Int(ck_row_size(ckQ8_1, Int64(cols)))
        let rb8K = Int(ck_row_size(ckQ8_K, Int64(cols)))
        for t in tokens {
            if j.q80 { ck_quantize_row_q8_0(x + t * cols, q80 + t * rb80, Int64(cols)) }
            if j.q81 { ck_quantize_row_q8_1(x + t * cols, q81 + t * rb81, Int64(cols)) }
            if j.q8K { ck_quantize_row_q8_K(x + t * cols, q8K + t * rb8K, Int64(cols)) }
        }
    }

    private func floatSegment(_ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>, offset: Int, range: Range<Int>,
                              x: UnsafePointer<Float>, numTokens: Int) {
        let lo = max(range.lowerBound, offset) - offset
        let hi = min(range.upperBound, offset + w.rows) - offset
        if lo >= hi { return }
        ck_matmul_rows_dequant(w.type.rawValue, w.data, w.rowBytes, Int64(w.cols), Int64(lo), Int64(hi),
                               x, w.cols * 4, Int64(numTokens), y, Int64(w.rows))
    }

    /// Rows `range` (shifted by `offset`) of `w` against `numTokens` activation rows: the converted scratch from row
    /// `row0` on, or the float rows of `x`.
    @inline(__always)
    private func segment(_ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>, offset: Int, range: Range<Int>,
                         x: UnsafePointer<Float>, numTokens: Int, row0: Int = 0) {
        let lo = max(range.lowerBound, offset) - offset
        let hi = min(range.upperBound, offset + w.rows) - offset
        if lo >= hi { return }
        let (xa, xrb) = activation(for: w.type, x: x, cols: w.cols, row0: row0)
        w.multiply(rows: lo, hi, xa, xrb, numTokens, y, w.rows, gemmForAnyTokenCount: gemmForAnyTokenCount)
    }
}

extension WeightMatrix {
    /// `y[c * ys + r] = row r · activation row c` for r in `r0..<r1`, c in `0..<m`, activations `a` already converted
    /// (`arb` bytes apart): the repacked eight-row kernels when the matrix has them and the range is 8-aligned, else
    /// `ck_matmul_rows` (`ck_matmul_rows_gemm` when `gemmForAnyTokenCount`, see `Matmul.gemmForAnyTokenCount`).
    @inline(__always)
    func multiply(rows r0: Int, _ r1: Int, _ a: UnsafeRawPointer, _ arb: Int, _ m: Int, _ y: UnsafeMutablePointer<Float>,
              _ ys: Int, gemmForAnyTokenCount: Bool) {
        if let p = packed, r0 % 8 == 0, r1 % 8 == 0 {
            if type == .q4_1 {
                ck_matmul_q4_1_x8(p, Int64(cols), Int64(r0), Int64(r1), a, arb, Int64(m), y, Int64(ys))
            } else {
                ck_matmul_q8_0_x8(p, Int64(cols), Int64(r0), Int64(r1), a, arb, Int64(m), y, Int64(ys))
            }
        } else if gemmForAnyTokenCount {
            ck_matmul_rows_gemm(type.rawValue, data, rowBytes, Int64(cols), Int64(r0), Int64(r1), a, arb, Int64(m), y, Int64(ys))
        } else {
            ck_matmul_rows(type.rawValue, data, rowBytes, Int64(cols), Int64(r0), Int64(r1), a, arb, Int64(m), y, Int64(ys))
        }
    }
}

/// ggml type id of q8_0 activations.
let ckQ8_0 = Int32(CK_Q8_0.rawValue)
/// ggml type id of q8_1 activations.
let ckQ8_1 = Int32(CK_Q8_1.rawValue)
/// ggml type id of q8_K activations.
let ckQ8_K = Int32(CK_Q8_K.rawValue)

/// Arguments of one `Matmul.batched` call (passed by pointer, no closure context).
private struct BatchedJob {
    let matmul: Unmanaged<Matmul>
    let x: UnsafePointer<Float>
    let numTokens: Int
    let ws: UnsafeBufferPointer<WeightMatrix>
    let y: UnsafeMutablePointer<Float>
}

/// Arguments of one `Matmul` call, passed to the pool's chunk function by pointer (no closure context).
private struct MatmulJob {
    let matmul: Unmanaged<Matmul>
    let x: UnsafePointer<Float>
    let numTokens: Int
    let cols: Int
    let w0: WeightMatrix
    let y0: UnsafeMutablePointer<Float>
    let w1: WeightMatrix?
    let y1: UnsafeMutablePointer<Float>?
    let w2: WeightMatrix?
    let y2: UnsafeMutablePointer<Float>?
    var q80: Bool
    var q81: Bool
    var q8K: Bool
}

/// Owns the load-time copies of weight matrices: q4_1 / q8_0 matrices repacked for the interleaved kernels
/// (llama.cpp does the same at load time with its "repack" buffers) and every other quantized matrix copied as is,
/// all in anonymous memory advised for transparent huge pages (`MADV_HUGEPAGE`, 2 MiB pages). Decode streams every
/// weight byte once per token: with the 4 KiB pages of the file mapping that is a TLB miss every 4 KiB and the
/// hardware prefetchers stop at each page boundary. After a copy the source pages of the file mapping are
/// released from the process (`MADV_DONTNEED`; they stay in the page cache and fault back in if read again), so
/// resident memory holds one copy of the weights. Keep the repacker alive as long as the matrices it returns.
public final class WeightRepacker: @unchecked Sendable {
    /// Anonymous regions (base, bytes) the copies are bump-allocated from.
    private var regions: [(UnsafeMutableRawPointer, Int)] = []
    /// Bytes handed out from each region (`regions` order): what `lockInMemory` locks.
    private var used: [Int] = []
    /// Next free byte and bytes left in the newest region.
    private var cursor: UnsafeMutableRawPointer?
    private var left = 0
    /// Size of a new region unless one matrix needs more (a multiple of the 2 MiB huge page).
    private static let regionBytes = 64 << 20

    /// Whether `repack` drops the source pages after copying (`MADV_DONTNEED`): only for sources in a read-only
    /// file mapping, where a later read faults them back in. Sources in anonymous memory (`--no-mmap`) are kept
    /// (the tied embedding, for one, is read from them after its repack).
    public let releasesSources: Bool

    /// The page ranges `[start, end)` of the file mapping released after their copy (addresses), in copy order.
    public private(set) var releasedRanges: [(start: UInt, end: UInt)] = []

    /// Creates an empty store; `releasesSources` as the property (true for weights in a file mapping).
    public init(releasesSources: Bool = true) { self.releasesSources = releasesSources }

    deinit { for (p, n) in regions { HugePageMemory.free(p, n) } }

    /// Total bytes of repacked and copied matrices.
    public private(set) var bytes = 0

    /// `w` repacked (q4_1 / q8_0 with a multiple of 8 rows: `packed` set, `data` still the source) or copied
    /// (other quantized and f16/bf16 types: `data` is the copy), or `w` itself (f32, or no memory for a copy).
    public func repack(_ w: WeightMatrix) -> WeightMatrix {
        let size = w.rows * w.rowBytes
        guard w.rows > 0, w.type != .f32, let buf = allocate(size) else { return w }
        bytes += size
        let out: WeightMatrix
        if (w.type == .q4_1 || w.type == .q8_0) && w.rows % 8 == 0 {
            if w.type == .q4_1 {
                ck_repack_q4_1_x8(w.data, w.rowBytes, Int64(w.rows), Int64(w.cols), buf)
            } else {
                ck_repack_q8_0_x8(w.data, w.rowBytes, Int64(w.rows), Int64(w.cols), buf)
            }
            out = w.withPacked(UnsafeRawPointer(buf))
        } else {
            buf.copyMemory(from: w.data, byteCount: size)
            out = WeightMatrix(type: w.type, data: UnsafeRawPointer(buf), rows: w.rows, cols: w.cols)
        }
        if releasesSources, let r = Self.release(w.data, size) { releasedRanges.append(r) }
        return out
    }

    /// 64-byte aligned memory for `size` bytes from the newest region, or a new one; nil when mmap fails.
    private func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let need = (size + 63) & ~63
        if need > left {
            let regionSize = max(Self.regionBytes, HugePageMemory.roundUp(need))
            guard let base = HugePageMemory.allocate(regionSize) else { return nil }
            regions.append((base, regionSize))
            used.append(0)
            cursor = base
            left = regionSize
        }
        let p = cursor!
        cursor = p + need
        left -= need
        used[used.count - 1] += need
        return p
    }

    /// Drops the whole pages inside `[p, p + size)` of a read-only file mapping from the process.
    /// - Returns: the page range dropped, nil when `size` covers no whole page.
    private static func release(_ p: UnsafeRawPointer, _ size: Int) -> (start: UInt, end: UInt)? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (UInt(bitPattern: p) + UInt(page) - 1) / UInt(page) * UInt(page)
        let end = (UInt(bitPattern: p) + UInt(size)) / UInt(page) * UInt(page)
        guard end > start else { return nil }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_DONTNEED)
        return (start, end)
    }

    /// Locks every copy in RAM (`mlock` on the used bytes of each region, not the untouched rest; `--mlock`).
    /// - Returns: nil on success, else the error text.
    public func lockInMemory() -> String? {
        for ((p, _), n) in zip(regions, used) where n > 0 && mlock(p, n) != 0 { return String(cString: strerror(errno)) }
        return nil
    }
}

/// Anonymous memory that starts on a 2 MiB boundary and is advised for transparent huge pages (`MADV_HUGEPAGE`),
/// for data streamed once per token (weights) and for the bandwidth probe that measures that streaming.
public enum HugePageMemory {
    /// Bytes of one huge page (x86-64 PMD size).
    public static let pageBytes = 2 << 20

    /// `bytes` rounded up to a multiple of `pageBytes`.
    public static func roundUp(_ bytes: Int) -> Int { (bytes + pageBytes - 1) / pageBytes * pageBytes }

    /// Zero-filled, readable and writable memory of `bytes` (a multiple of `pageBytes`), or nil when mmap fails.
    /// Release it with `free(_:_:)` and the same size.
    public static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        precondition(bytes > 0 && bytes % pageBytes == 0, "size must be a positive multiple of 2 MiB")
        // Over-allocate by one huge page and trim both ends, so the block starts on a 2 MiB boundary.
        let raw = mmap(nil, bytes + pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let raw, raw != MAP_FAILED else { return nil }
        let addr = UInt(bitPattern: raw)
        let aligned = (addr + UInt(pageBytes) - 1) / UInt(pageBytes) * UInt(pageBytes)
        let head = Int(aligned - addr)
        if head > 0 { munmap(raw, head) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        if pageBytes - head > 0 { munmap(base + bytes, pageBytes - head) }
        _ = madvise(base, bytes, MADV_HUGEPAGE)
        return base
    }

    /// Returns memory from `allocate` of `bytes`.
    public static func free(_ p: UnsafeMutableRawPointer, _ bytes: Int) { munmap(p, bytes) }
}
