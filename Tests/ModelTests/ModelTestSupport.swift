import Foundation
import GGUF
import Model
import TestSupport

/// Drives a `LanguageModel` over whole sequences with a paged KV cache, for tests.
final class SequenceRunner {
    let model: LanguageModel
    let cache: PagedKVCache
    let blockSize: Int
    private var nextBlock = 0
    private let blockOrder: [Int32]

    /// A cache of `numBlocks` blocks of `blockSize` tokens; blocks are handed out in a scrambled order so block
    /// tables are not the identity.
    init(model: LanguageModel, numBlocks: Int = 64, blockSize: Int = 4) {
        self.model = model
        self.blockSize = blockSize
        cache = model.makeKVCache(numBlocks: numBlocks, blockSize: blockSize)
        blockOrder = (0..<numBlocks).map { Int32(($0 * 37 + 11) % numBlocks) }
        precondition(Set(blockOrder).count == numBlocks)
    }

    /// Per-sequence state: its tokens so far and its block table.
    final class Sequence {
        var blockTable: [Int32] = []
        var length = 0
    }

    func newSequence() -> Sequence { Sequence() }

    private func ensureBlocks(_ s: Sequence, upTo length: Int) {
        while s.blockTable.count * blockSize < length {
            s.blockTable.append(blockOrder[nextBlock])
            nextBlock += 1
        }
    }

    /// One forward of several sequences' new tokens; returns logits `[totalTokens][vocab]` for every new token.
    func step(_ parts: [(Sequence, [Int32])]) -> [[Float]] {
        var tokens: [Int32] = [], positions: [Int32] = [], slots: [Int32] = []
        var seqs: [BatchSequence] = []
        for (s, toks) in parts {
            ensureBlocks(s, upTo: s.length + toks.count)
            let start = tokens.count
            for (i, t) in toks.enumerated() {
                let p = s.length + i
                tokens.append(t)
                positions.append(Int32(p))
                slots.append(s.blockTable[p / blockSize] * Int32(blockSize) + Int32(p % blockSize))
            }
            s.length += toks.count
            seqs.append(BatchSequence(tokenStart: start, tokenCount: toks.count, blockTable: s.blockTable, contextLength: s.length))
        }
        let vocab = model.hyperparameters.vocabSize
        let batch = ForwardBatch(tokens: tokens, positions: positions, slotMapping: slots, sequences: seqs,
                                 logitRows: Array(0..<tokens.count))
        var out = [Float](repeating: .nan, count: tokens.count * vocab)
        out.withUnsafeMutableBufferPointer { model.forward(batch, cache: cache, logits: $0.baseAddress!) }
        return (0..<tokens.count).map { Array(out[($0 * vocab)..<(($0 + 1) * vocab)]) }
    }

    /// Runs `tokens` as one new sequence in chunks of the given sizes; logits of every position.
    func run(_ tokens: [Int32], chunks: [Int]? = nil) -> [[Float]] {
        let s = newSequence()
        var result: [[Float]] = []
        var i = 0
        let sizes = chunks ?? [tokens.count]
        var c = 0
        while i < tokens.count {
            let size = min(sizes[min(c, sizes.count - 1)], tokens.count - i)
            result += step([(s, Array(tokens[i..<(i + size)]))])
            i += size
            c += 1
        }
        return result
    }

    /// Runs `tokens` as one sequence with the model's trace hook set and returns the hidden states as HF's
    /// `output_hidden_states` orders them: 0 the embeddings, `i + 1` layer i's output, `numLayers + 1` the output
    /// norm; each `[numTokens, embeddingLength]` flattened.
    func hiddenStates(_ tokens: [Int32]) -> [Int: [Float]] {
        let layers = model.hyperparameters.numLayers
        var captured: [Int: [Float]] = [:]
        model.trace = { name, layer, data, _ in
            switch name {
            case "embeddings": captured[0] = Array(data)
            case "layer_output": captured[layer + 1] = Array(data)
            case "output_norm": captured[layers + 1] = Array(data)
            default: break
            }
        }
        _ = run(tokens)
        model.trace = nil
        return captured
    }

    /// Runs `tokens` and `other` as two new sequences batched together, each step taking `(from tokens, from other)`
    /// tokens (fixed schedule (5, 9), (1, 0), (10, 0), (24, 0), then what is left); logits of every position of each.
    func runBatched(_ tokens: [Int32], with other: [Int32]) -> (tokens: [[Float]], other: [[Float]]) {
        let a = newSequence(), b = newSequence()
        var batched: [[Float]] = [], otherLogits: [[Float]] = []
        var ia = 0, ib = 0
        for sizes in [(5, 9), (1, 0), (10, 0), (24, 0)] + [(tokens.count, other.count)] {
            var parts: [(Sequence, [Int32])] = []
            let na = min(sizes.0, tokens.count - ia), nb = min(sizes.1, other.count - ib)
            if nb > 0 { parts.append((b, Array(other[ib..<(ib + nb)]))) }
            if na > 0 { parts.append((a, Array(tokens[ia..<(ia + na)]))) }
            if parts.isEmpty { break }
            let out = step(parts)
            otherLogits += out.prefix(nb)
            batched += out.dropFirst(nb)
            ia += na; ib += nb
        }
        return (batched, otherLogits)
    }
}

/// max |a - b| over two equally long arrays.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return a.contains(where: { $0.isNaN }) ? .infinity : m
}

func argmax(_ a: [Float]) -> Int {
    var best = 0
    for i in 1..<a.count where a[i] > a[best] { best = i }
    return best
}
