import Model
import Scheduling

/// Turns a `SchedulerOutput` into one `ForwardBatch` (tokens, positions, slot mapping, block tables), runs the
/// model and returns the logits rows of the sequences that sample this step.
///
/// NOTE: slot mapping. A token at position `p` of a sequence with block table `T` writes its K/V to slot
/// `T[p / blockSize] * blockSize + p % blockSize` of the pool:
///
///     block table [5, 2]   blockSize 4
///     positions   0 1 2 3 | 4 5 6
///     slots      20 21 22 23 | 8 9 10
public final class ModelRunner {
    public let model: LanguageModel
    public let cache: PagedKVCache
    public let blockSize: Int
    public let vocabSize: Int
    /// `[maxNumSeqs + SchedulerConfig.promptLogitsRows, vocabSize]` logits of the sampled rows, then of the prompt
    /// positions whose logits are all wanted (pages are touched only when used).
    private let logits: UnsafeMutablePointer<Float>
    private let maxRows: Int
    /// Prompt-logits rows of the last `execute`: the request, the position of its first row, the first row index
    /// and the count.
    public private(set) var promptRows: [(requestId: Int, startPosition: Int, row: Int, count: Int)] = []
    private var batch = ForwardBatch(tokens: [], positions: [], slotMapping: [], sequences: [], logitRows: [])

    /// - Parameters: `numBlocks`/`blockSize` size the KV pool; `maxNumSeqs` bounds sampled rows per step.
    public init(model: LanguageModel, numBlocks: Int, blockSize: Int, maxNumSeqs: Int) {
        self.model = model
        self.blockSize = blockSize
        vocabSize = model.hyperparameters.vocabSize
        cache = model.makeKVCache(numBlocks: numBlocks, blockSize: blockSize)
        maxRows = maxNumSeqs + SchedulerConfig.promptLogitsRows
        logits = .allocate(capacity: maxRows * vocabSize)
    }

    deinit { logits.deallocate() }

    /// Runs one step. Returns, for each sequence with `samplesToken`, its request id and logits row index.
    /// The rows stay valid until the next call. `rows(i)` gives row i as `[vocabSize]`.
    public func execute(_ output: SchedulerOutput) -> [(requestId: Int, row: Int)] {
        batch.tokens.removeAll(keepingCapacity: true)
        batch.positions.removeAll(keepingCapacity: true)
        batch.slotMapping.removeAll(keepingCapacity: true)
        batch.sequences.removeAll(keepingCapacity: true)
        batch.logitRows.removeAll(keepingCapacity: true)
        batch.computesPrompt = output.scheduled.contains { $0.computesPrompt }
        var sampling: [(Int, Int)] = []
        promptRows.removeAll(keepingCapacity: true)
        for s in output.scheduled {
            let start = batch.tokens.count
            for (i, t) in s.tokenIds.enumerated() {
                let p = s.startPosition + i
                batch.tokens.append(t)
                batch.positions.append(Int32(p))
                batch.slotMapping.append(s.blockTable[p / blockSize] * Int32(blockSize) + Int32(p % blockSize))
            }
            batch.sequences.append(BatchSequence(tokenStart: start, tokenCount: s.tokenIds.count,
                                                 blockTable: s.blockTable,
                                                 contextLength: s.startPosition + s.tokenIds.count))
            if s.allLogits {
                // Every position's row; the last one doubles as the sampling row when the chunk ends the prompt.
                promptRows.append((s.requestId, s.startPosition, batch.logitRows.count, s.tokenIds.count))
                for i in 0..<s.tokenIds.count { batch.logitRows.append(start + i) }
                if s.samplesToken { sampling.append((s.requestId, batch.logitRows.count - 1)) }
            } else if s.samplesToken {
                sampling.append((s.requestId, batch.logitRows.count))
                batch.logitRows.append(batch.tokens.count - 1)
            }
        }
        precondition(batch.logitRows.count <= maxRows)
        if !batch.tokens.isEmpty { model.forward(batch, cache: cache, logits: logits) }
        return sampling.map { (requestId: $0.0, row: $0.1) }
    }

    /// Copies the K/V of one block into another (the scheduler's copy-on-write of a forked block table).
    public func copyBlock(from: Int32, to: Int32) { cache.copyBlock(from: from, to: to) }

    /// Logits row `i` of the last `execute`, writable (the sampler's logits processing adjusts it in place).
    /// `[vocabSize]`
    public func mutableRow(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: logits + i * vocabSize, count: vocabSize)
    }

    /// Logits row `i` of the last `execute`. `[vocabSize]`
    public func row(_ i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits + i * vocabSize, count: vocabSize)
    }
}
