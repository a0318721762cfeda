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
        while entries.count >= capacity
            || (!entries.isEmpty && entries.values.reduce(0, { $0 + $1.grammar.cachedBytes }) > budgetBytes),
            let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            entries[oldest] = nil
        }
        let tg = TokenGrammar(grammar: g, vocabulary: v)
        entries[g] = (tg, clock)
        return tg
    }
}
