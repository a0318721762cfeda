/// Where one request stands in its grammar: a value-type state machine fed one sampled token at a time. It gives
/// the sampler the allowed tokens (`mask`) and says what each token did (`accept`). Copies are independent states
/// over the same shared `TokenGrammar` caches.
public struct GrammarMatcher {
    public let grammar: TokenGrammar
    /// The sorted stack-node ids of the current state (0: the grammar may end here).
    public private(set) var state: [Int32]

    /// What one token did.
    public enum Action: Equatable, Sendable {
        /// Accepted; more may follow.
        case accepted
        /// Accepted, and the grammar is complete with nothing that could follow: the answer is finished. An
        /// end-of-generation token in a complete state also gives this.
        case completed
        /// Not allowed here; the state is unchanged.
        case rejected
    }

    public init(_ grammar: TokenGrammar) {
        self.grammar = grammar
        state = grammar.initialState
    }

    /// Whether the text so far is a whole sentence of the grammar (end-of-generation is allowed).
    public var isAccepting: Bool { state.first == 0 }

    /// Whether anything may follow: the grammar's constrained part is over (`TokenGrammar.isFree`).
    public var isFree: Bool { grammar.isFree(state) }

    /// Whether nothing but the end may follow.
    public var isComplete: Bool { state == [0] }

    /// Tokens allowed next (cached per state: a repeated state costs a dictionary lookup).
    public func mask() -> TokenMask { grammar.mask(state) }

    /// Feeds one token.
    public mutating func accept(_ token: Int32) -> Action {
        if grammar.vocabulary.endOfGeneration.contains(token) { return isAccepting ? .completed : .rejected }
        let bytes = grammar.vocabulary.bytes(of: token)
        guard !bytes.isEmpty else { return .rejected }
        let next = grammar.advance(state, bytes: bytes)
        guard !next.isEmpty else { return .rejected }
        state = next
        return isComplete ? .completed : .accepted
    }

    /// Feeds one byte; false, with the state unchanged, when it is not allowed.
    public mutating func accept(byte: UInt8) -> Bool {
        let next = grammar.advance(state, bytes: CollectionOfOne(byte))
        guard !next.isEmpty else { return false }
        state = next
        return true
    }

    /// Feeds raw bytes (no token boundaries); false, with the state unchanged, when they are not allowed.
    public mutating func accept(bytes: [UInt8]) -> Bool {
        let next = grammar.advance(state, bytes: bytes)
        guard !next.isEmpty else { return false }
        state = next
        return true
    }
}
