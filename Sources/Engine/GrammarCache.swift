import Grammar
import Tokenizer

/// The token-level grammars of constrained requests, keyed by grammar, so requests with the same schema share
/// their mask caches. Built lazily (the vocabulary on the first constrained request); engine thread only.
/// Holds at most `capacity` grammars, and drops the least recently used ones while their caches exceed
/// `budgetBytes` (a schema with thousands of properties caches masks and stacks for every state it visits).
struct GrammarCache {
    private let tokenizer: Tokenizer
    private let vocabSize: Int
    private var vocabulary: TokenVocabulary?
    private var entries: [Grammar: (grammar: TokenGrammar, lastUse: Int)] = [:]
    private var clock = 0
    let capacity = 16
    let budgetBytes = 256 << 20

    /// - Parameters: `vocabSize` is the logits row length (the model's vocabulary).
    init(tokenizer: Tokenizer, vocabSize: Int) {
        self.tokenizer = tokenizer
        self.vocabSize = vocabSize
    }

    /// The token-level grammar of `g` (made on first use).
    mutating func tokenGrammar(_ g: Grammar) -> TokenGrammar {
        clock += 1
        if let e = entries[g] {
            entries[g] = (e.grammar, clock)
            return e.grammar
        }
        let v = vocabulary ?? TokenVocabulary(tokenizer: tokenizer, size: vocabSize)
        vocabulary = v
        // Sizes are summed once per miss (each walks a grammar's tables), then the oldest go first.
        var byAge = entries.map { (key: $0.key, lastUse: $0.value.lastUse, bytes: $0.value.grammar.cachedBytes) }
            .sorted { $0.lastUse < $1.lastUse }
        var total = byAge.reduce(0) { $0 + $1.bytes }
        while let oldest = byAge.first, entries.count >= capacity || total > budgetBytes {
            entries[oldest.key] = nil
            total -= oldest.bytes
            byAge.removeFirst()
        }
        let tg = TokenGrammar(grammar: g, vocabulary: v)
        entries[g] = (tg, clock)
        return tg
    }
}
