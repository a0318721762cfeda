import Compute

/// Element type of the KV cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// IEEE half precision (llama.cpp's default).
    case f16
    /// bfloat16 (float32's top 16 bits; vLLM's default for bf16 models, llama.cpp's `-ctk bf16`). Queries and
    /// attention weights are rounded to bf16 too and multiplied in bf16 pairs (VDPBF16PS where the CPU has
    /// AVX512-BF16, about 1.4–1.8× the f16 cache's attention speed there). Needs head sizes that are multiples of 16.
    case bf16
    /// float32.
    case f32
    /// 8-bit integers with float scales, for MLA models' latent rows only (DeepSeek-V2/V3/R1; llama.cpp's
    /// `-ctk q8_0` names the same choice): each row kept twice, in the layouts of the VPDPBUSD scores and values
    /// kernels (`MLAQ8Kernels`, `ckernels.h` "8-bit MLA latent cache"), so about as many bytes as bf16 but 35–45 %
    /// less attention time at a 4k context where the CPU has AVX512-VNNI (BENCHMARKS.md, 2026-12-08); the scalar
    /// kernels elsewhere. Rows are rounded to 127 steps per 64 latent values (per token for the values' copy),
    /// queries and attention weights to 8 bits too. Needs block sizes that are multiples of 16.
    case q8_0

    /// Bytes per element (q8_0: about 2, the exact per-token size is `MLAQ8Kernels.slotBytes`).
    public var elementSize: Int { self == .f32 ? 4 : 2 }

    /// The type names, for messages: "f16, bf16, f32 or q8_0".
    public static var choices: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// The attention kernels' element type.
    public var kernelElement: PagedAttentionKernels.Element {
        switch self {
        case .f16: return .f16
        case .f32: return .f32
        case .bf16: return .bf16
        case .q8_0: preconditionFailure("a q8_0 cache is read by MLAQ8Kernels (models that load refuse it elsewhere)")
        }
    }

    /// `y[0..<count]` = `x[0..<count]` in this type's encoding (a KV row store).
    public func encode(_ x: UnsafePointer<Float>, to y: UnsafeMutableRawPointer, count: Int) {
        switch self {
        case .f16: Half.encode(x, to: y.assumingMemoryBound(to: UInt16.self), count: count)
        case .f32: y.copyMemory(from: x, byteCount: count * 4)
        case .bf16: BFloat16.encode(x, to: y.assumingMemoryBound(to: UInt16.self), count: count)
        case .q8_0: preconditionFailure("q8_0 rows are stored by MLAQ8Kernels.store")
        }
    }

    /// `y[0..<count]` = the float values of the encoded elements `x[0..<count]`.
    public func decode(_ x: UnsafeRawPointer, to y: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .f16: Half.decode(x.assumingMemoryBound(to: UInt16.self), to: y, count: count)
        case .f32: y.update(from: x.assumingMemoryBound(to: Float.self), count: count)
        case .bf16: BFloat16.decode(x.assumingMemoryBound(to: UInt16.self), to: y, count: count)
        case .q8_0: preconditionFailure("q8_0 rows are loaded by MLAQ8Kernels.loadRow")
        }
    }
}

/// Run-time options of a loaded model.
public struct ModelOptions: Sendable {
    /// Compute threads (the calling thread included).
    public var threads: Int
    /// KV cache element type.
    public var kvCacheType: KVCacheType = .f16
    /// Most tokens one internal step processes; larger batches are processed in chunks of this size. Sizes the
    /// per-step scratch allocated at load.
    public var maxBatchTokens: Int = 512
    /// Computes every matmul in float32 on dequantized weights without activation quantization (slow; the
    /// fixtures' `dequant_f32` reference behaviour, for verification).
    public var floatReference: Bool = false
    /// Copy (and for Q4_1/Q8_0 repack) the quantized weights into huge-page memory at load (`WeightRepacker`,
    /// default true). False keeps them in the file mapping: no copy at load, but decode is slower (4 KiB pages,
    /// plain Q4_1/Q8_0 layout). llama-server's `--no-repack`. MoE routed experts are never copied (`MoEWeights`).
    public var repackWeights: Bool = true
    /// Called as the weights load with `(bytesLooked, bytesTotal)`: the bytes of the tensors looked up so far and of
    /// every tensor in the file (the last call has the two equal, on the loading thread). nil: no reports.
    public var loadProgress: (@Sendable (_ done: Int, _ total: Int) -> Void)?

    /// Options with `threads` compute threads.
    public init(threads: Int, kvCacheType: KVCacheType = .f16, maxBatchTokens: Int = 512, floatReference: Bool = false,
                repackWeights: Bool = true) {
        self.threads = threads
        self.kvCacheType = kvCacheType
        self.maxBatchTokens = maxBatchTokens
        self.floatReference = floatReference
        self.repackWeights = repackWeights
    }
}
