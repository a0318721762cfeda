/// Element type of the KV cache.
public enum KVCacheType: String, Sendable {
    /// IEEE half precision (llama.cpp's default).
    case f16
    /// float32.
    case f32

    /// Bytes per element.
    public var elementSize: Int { self == .f16 ? 2 : 4 }
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
