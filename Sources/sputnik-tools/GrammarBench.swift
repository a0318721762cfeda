import ArgumentParser
import Foundation
import GGUF
import Grammar
import JSON
import Model
import Tokenizer

/// `sputnik-tools bench-grammar`: the cost of constrained decoding. Times greedy decode steps (forward + sample)
/// without and with a JSON-schema grammar (mask applied to the logits row, then the matcher fed the token), in
/// alternating rounds over the same positions, and prints the per-step times and their ratio.
///
/// Example: `sputnik-tools bench-grammar -m models/SmolLM2-135M-Instruct.Q4_1.gguf -n 128 -r 5`.
struct GrammarBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-grammar",
        abstract: "Constrained (JSON schema) vs unconstrained decode: time per step and the ratio.")

    @Option(name: [.customShort("m"), .long], help: "GGUF model file (repeatable).")
    var model: [String] = []

    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Decode steps per round.")
    var nGen: Int = 128

    @Option(name: [.customShort("r"), .customLong("rounds")], help: "Timed rounds of each kind (alternating).")
    var rounds: Int = 5

    @Option(name: [.customShort("t"), .customLong("threads")], help: "Compute threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// The constrained answer's schema: strings (free and bounded), integers in a range, an enum, a date, an array.
    static let schema = #"""
    {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},
     "role":{"enum":["engineer","artist","teacher","doctor"]},"born":{"type":"string","format":"date"},
     "skills":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":4},"bio":{"type":"string"}},
     "required":["name","age","role","born","skills","bio"],"additionalProperties":false}
    """#

    func run() throws {
        guard !model.isEmpty else { throw ValidationError("give -m FILE") }
        guard nGen >= 1, rounds >= 1, threads >= 1 else { throw ValidationError("-n, -r and -t must be ≥ 1") }
        let grammar = try Grammar.jsonSchema(JSONValue(parsing: Self.schema))
        print("| model | threads | steps | unconstrained ms/step | constrained ms/step | ratio | mask+accept ms/step | mask+accept / unconstrained step | first constrained round ms/step (cold caches) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for path in model {
            let gguf = try GGUFFile(path: path)
            let tokenizer = try Tokenizer(gguf: gguf)
            let lm = try ModelLoader.load(gguf, options: ModelOptions(threads: threads))
            let runner = ConstrainedDecode(model: lm, tokenizer: tokenizer, steps: nGen)
            let tg = TokenGrammar(grammar: grammar, vocabulary: TokenVocabulary(tokenizer: tokenizer, size: lm.hyperparameters.vocabSize))
            let prompt = tokenizer.encode("A person, as JSON: ", addSpecial: true, parseSpecial: false)
            _ = runner.run(prompt: prompt, grammar: nil)            // warm-up
            let cold = runner.run(prompt: prompt, grammar: tg)      // fills the grammar's caches
            var free: [Double] = [], constrained: [Double] = [], overhead: [Double] = []
            for _ in 0..<rounds {
                free.append(runner.run(prompt: prompt, grammar: nil).total)
                let c = runner.run(prompt: prompt, grammar: tg)
                constrained.append(c.total)
                overhead.append(c.grammar)
            }
            // Best of the rounds: on a shared machine the minimum is the least disturbed measurement.
            let med = { (v: [Double]) in v.min()! / Double(nGen) * 1e3 }
            let name = (path as NSString).lastPathComponent
            print(String(format: "| %@ | %d | %d | %.3f | %.3f | %.3f | %.3f | %.2f%% | %.3f |", name, threads, nGen, med(free),
                         med(constrained), med(constrained) / med(free), med(overhead), 100 * med(overhead) / med(free),
                         cold.total / Double(nGen) * 1e3))
        }
        print("")
        print("Best of \(rounds) alternating rounds each; greedy decode after a short prompt; the grammar restarts when an answer "
              + "completes. mask+accept: applying the cached mask to the logits row and feeding the token to the matcher "
              + "(the cost constrained decoding adds; the whole-step ratio also carries the machine's load noise).")
    }
}

/// Greedy decode of `steps` tokens after a prompt, optionally constrained; one KV cache reused.
final class ConstrainedDecode {
    let model: LanguageModel
    let tokenizer: Tokenizer
    let steps: Int
    private let cache: PagedKVCache
    private let blockTable: [Int32]
    private let logits: UnsafeMutablePointer<Float>
    private let vocabSize: Int

    init(model: LanguageModel, tokenizer: Tokenizer, steps: Int) {
        self.model = model
        self.tokenizer = tokenizer
        self.steps = steps
        vocabSize = model.hyperparameters.vocabSize
        let blocks = (steps + 64 + 15) / 16
        cache = model.makeKVCache(numBlocks: blocks, blockSize: 16)
        blockTable = (0..<blocks).map { Int32($0) }
        logits = .allocate(capacity: vocabSize)
    }

    deinit { logits.deallocate() }

    /// Seconds: the whole decode loop, and the part spent on the grammar (mask, apply, accept).
    func run(prompt: [Int32], grammar: TokenGrammar?) -> (total: Double, grammar: Double) {
        let p = Array(prompt.prefix(64))
        let slots = (0..<p.count).map { Int32($0) }
        model.forward(ForwardBatch(tokens: p, positions: slots, slotMapping: slots,
                                   sequences: [BatchSequence(tokenStart: 0, tokenCount: p.count, blockTable: blockTable,
                                                             contextLength: p.count)], logitRows: [p.count - 1]),
                      cache: cache, logits: logits)
        var matcher = grammar.map { GrammarMatcher($0) }
        var batch = ForwardBatch(tokens: [0], positions: [0], slotMapping: [0],
                                 sequences: [BatchSequence(tokenStart: 0, tokenCount: 1, blockTable: blockTable, contextLength: 1)],
                                 logitRows: [0])
        var grammarNs: UInt64 = 0
        let start = monotonicNanoseconds()
        let row = UnsafeMutableBufferPointer(start: logits, count: vocabSize)
        for i in 0..<steps {
            let g0 = monotonicNanoseconds()
            if let m = matcher { m.mask().apply(to: row) }
            let g1 = monotonicNanoseconds()
            var token = Int32(0)
            var best = -Float.infinity
            for k in 0..<vocabSize where row[k] > best { best = row[k]; token = Int32(k) }
            let g2 = monotonicNanoseconds()
            if matcher != nil {
                switch matcher!.accept(token) {
                case .accepted: break
                case .completed, .rejected: matcher = GrammarMatcher(grammar!)   // next answer
                }
            }
            grammarNs += (g1 - g0) + (monotonicNanoseconds() - g2)
            let pos = p.count + i
            batch.tokens[0] = token
            batch.positions[0] = Int32(pos)
            batch.slotMapping[0] = Int32(pos)
            batch.sequences[0].contextLength = pos + 1
            model.forward(batch, cache: cache, logits: logits)
        }
        return (Double(monotonicNanoseconds() - start) * 1e-9, Double(grammarNs) * 1e-9)
    }
}
