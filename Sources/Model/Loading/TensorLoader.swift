// The shape-checked tensor loader: every weight is looked up by its GGUF name and checked against the shape the
// hyper-parameters imply before any kernel sees it (shapes here in GGUF `ne` order, fastest first).
import Compute
import GGUF

/// Looks tensors up by their GGUF name, checks their shapes and types, and prepares matrices for the kernels
/// (`WeightRepacker.prepare`). Keeps the float copies of non-f32 vectors and the repacked weights alive.
struct TensorLoader {
    let gguf: GGUFFile
    let options: ModelOptions
    /// Load-time copies of the matrices (huge pages, Q4_1/Q8_0 repacked); kept by the model.
    let repacker: WeightRepacker
    /// Float copies of small vectors: those stored in a non-f32 type, and every one when matrices are copied.
    private(set) var owned: [ScratchBuffer] = []
    /// Bytes of the tensors looked up so far, for `ModelOptions.loadProgress`.
    private let progress: LoadProgress?

    init(gguf: GGUFFile, options: ModelOptions) {
        self.gguf = gguf
        self.options = options
        // Releasing a copied matrix's source pages is only safe from the file mapping (they fault back in from the
        // page cache when read again, as a tied embedding is); from --no-mmap's anonymous copy it would zero them.
        repacker = WeightRepacker(releasesSources: gguf.isMapped)
        progress = options.loadProgress.map { LoadProgress(total: gguf.tensors.reduce(0) { $0 + $1.byteCount }, report: $0) }
    }

    /// Reports the whole file as loaded (tensors the architecture does not read count too).
    func finishProgress() { progress?.finish() }

    /// The tensor `name` with shape `shape` (ne order).
    /// - Throws: `ModelLoadError.missingTensor`, `.tensorShapeMismatch`.
    func info(_ name: String, shape: [Int]) throws -> GGUFTensorInfo {
        guard let info = gguf.tensorInfo(named: name) else { throw ModelLoadError.missingTensor(name) }
        guard info.dimensions == shape else {
            throw ModelLoadError.tensorShapeMismatch(name: name, expected: shape, actual: info.dimensions)
        }
        progress?.add(name: name, bytes: info.byteCount)
        return info
    }

    /// Whether the file has a tensor `name`.
    func has(_ name: String) -> Bool { gguf.tensorInfo(named: name) != nil }

    /// A `[rows, cols]` matrix (GGUF ne `[cols, rows]`) viewed in the file mapping, as stored (for row lookups:
    /// the token embedding, or matrices the float path reads row by row).
    /// - Throws: `ModelLoadError` (missing, wrong shape, type without a kernel).
    func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let info = try info(name, shape: [cols, rows])
        return WeightMatrix(type: try kernelType(info), data: gguf.data(for: info), rows: rows, cols: cols)
    }

    /// `matrix(name, rows:, cols:)` prepared for matmuls under the options (copied/repacked unless
    /// `floatReference` or `--no-repack`).
    func weight(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        prepare(try matrix(name, rows: rows, cols: cols))
    }

    /// `w` as the kernels will read it: `WeightRepacker.prepare` under the options.
    func prepare(_ w: WeightMatrix) -> WeightMatrix { repacker.prepare(w, options) }

    /// The `count` matrices `[rows, cols]` of a 3-D tensor with ne `[cols, rows, count]` (experts, or MLA's
    /// per-head `attn_k_b` / `attn_v_b`); slice e starts at byte `e * rows * rowBytes(cols)`. Not prepared.
    func slices(_ name: String, count: Int, rows: Int, cols: Int) throws -> [WeightMatrix] {
        let info = try info(name, shape: [cols, rows, count])
        let type = try kernelType(info)
        let base = gguf.data(for: info)
        let stride = rows * type.rowBytes(cols)
        return (0..<count).map { WeightMatrix(type: type, data: base + $0 * stride, rows: rows, cols: cols) }
    }

    /// A float32 vector `[count]` (converted once when stored as another type; copied when the matrices are).
    mutating func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
        let info = try info(name, shape: [count])
        let source = gguf.data(for: info)
        // An f32 vector is read in place, unless the matrices around it are copied and their file pages released:
        // reading a norm there would map its whole 2 MiB page-cache page (the released weights with it) back into
        // the process, so it is copied too.
        let copiesMatrices = repacker.releasesSources && repacker.copiesWeights(options)
        if info.type == .f32 && !copiesMatrices { return source.assumingMemoryBound(to: Float.self) }
        let values = ScratchBuffer(count: count)
        if info.type == .f32 {
            values.pointer.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        } else {
            WeightMatrix(type: try kernelType(info), data: source, rows: 1, cols: count).dequantizeRow(0, into: values.pointer)
        }
        owned.append(values)
        return UnsafePointer(values.pointer)
    }

    /// `vector(name, count:)` when `present`, else nil (optional tensors an architecture switches on).
    mutating func vector(_ name: String, count: Int, if present: Bool) throws -> UnsafePointer<Float>? {
        present ? try vector(name, count: count) : nil
    }

    /// The kernel type of a tensor whose rows fit its blocks.
    /// - Throws: `ModelLoadError.unsupportedTensorType`.
    private func kernelType(_ info: GGUFTensorInfo) throws -> WeightType {
        guard let type = WeightType(ggml: info.type), info.dimensions[0] % type.blockSize == 0 else {
            throw ModelLoadError.unsupportedTensorType(name: info.name, type: "\(info.type)")
        }
        return type
    }
}

extension WeightType {
    /// The kernel type for a GGUF tensor type, nil when unsupported.
    init?(ggml: GGMLType) {
        switch ggml {
        case .f32: self = .f32
        case .f16: self = .f16
        case .q4_0: self = .q4_0
        case .q4_1: self = .q4_1
        case .q8_0: self = .q8_0
        case .q5_0: self = .q5_0
        case .q5_1: self = .q5_1
        case .q4_K: self = .q4_K
        case .q5_K: self = .q5_K
        case .q6_K: self = .q6_K
        case .bf16: self = .bf16
        case .q2_K: self = .q2_K
        case .q3_K: self = .q3_K
        case .iq4_nl: self = .iq4_nl
        case .iq4_xs: self = .iq4_xs
        case .iq2_xxs: self = .iq2_xxs
        case .iq2_xs: self = .iq2_xs
        case .iq2_s: self = .iq2_s
        case .iq3_xxs: self = .iq3_xxs
        case .iq3_s: self = .iq3_s
        case .iq1_s: self = .iq1_s
        case .iq1_m: self = .iq1_m
        default: return nil
        }
    }
}

extension WeightRepacker {
    /// `w` as the kernels will read it under `options`: copied into huge-page memory (Q4_1/Q8_0 repacked) by
    /// `repack`, or the file mapping's own view when `options.floatReference` (the float path dequantizes rows)
    /// or `!options.repackWeights` (`--no-repack`).
    func prepare(_ w: WeightMatrix, _ options: ModelOptions) -> WeightMatrix {
        copiesWeights(options) ? repack(w) : w
    }

    /// Whether `prepare` copies (or repacks) quantized matrices under `options`: unless `floatReference` or
    /// `--no-repack`.
    func copiesWeights(_ options: ModelOptions) -> Bool { !options.floatReference && options.repackWeights }
}

/// Counts the bytes of distinct tensors looked up and reports them at most once per percent.
final class LoadProgress {
    private let total: Int
    private let report: @Sendable (Int, Int) -> Void
    private var done = 0
    private var seen: Set<String> = []
    private var lastPercent = -1

    init(total: Int, report: @escaping @Sendable (Int, Int) -> Void) {
        self.total = max(total, 1)
        self.report = report
    }

    func add(name: String, bytes: Int) {
        guard seen.insert(name).inserted else { return }
        done = min(total, done + bytes)
        let percent = done * 100 / total
        if percent != lastPercent {
            lastPercent = percent
            report(done, total)
        }
    }

    func finish() {
        done = total
        lastPercent = 100
        report(total, total)
    }
}
