import GGUF

/// Text ↔ token ids for a GGUF vocabulary, matching llama.cpp's `llama_tokenize` / `llama_detokenize`
/// (reference: llama.cpp src/llama-vocab.cpp and src/unicode.cpp).
///
/// Supports byte-level BPE (`tokenizer.ggml.model = gpt2`) with the pre-tokenizers of `PreTokenizerTable`, and
/// SentencePiece (`llama`). Immutable after `init`; safe to share between threads (each call uses its own scratch).
public final class Tokenizer: @unchecked Sendable {
    enum Model { case bpe, spm }

    let model: Model
    /// Token text as stored in the vocabulary: [vocabSize].
    let texts: [String]
    /// UTF-8 bytes of each token text: [vocabSize].
    let textBytes: [[UInt8]]
    let attrs: [TokenAttr]
    /// SentencePiece scores: [vocabSize] (zeros when absent).
    let scores: [Float]
    /// Token bytes → id. Keyed by bytes: Swift `String` equality is canonical equivalence, which would merge
    /// distinct tokens such as U+1F77 and U+03AF.
    let tokenToId: [ByteString: Int32]
    /// Token text bytes → id, allocation-free lookups (SentencePiece merges).
    let textTable: ByteTable
    /// Raw (byte-level-decoded) bytes → id for tokens whose text lies wholly in the byte mapping; the same as
    /// looking up the mapped word text (`ignore_merges` of Llama-3 vocabularies).
    let rawTable: ByteTable?
    /// Control, user-defined and unknown tokens, longest text first (llama.cpp `cache_special_tokens`).
    let specialsByLength: [Int32]
    /// Partition prefilter data (see `partition`): [vocabSize] each.
    let specialProbe: [Int16]
    let specialLength: [Int32]
    /// What each token contributes when detokenized, without / with special text: [vocabSize].
    let pieces: [[UInt8]]
    let specialPieces: [[UInt8]]

    let preTokenizer: PreTokenizer
    let cleanSpaces: Bool
    let ignoreMerges: Bool
    let addSpacePrefix: Bool
    let bpe: BPEMerges?

    /// The most input bytes one token can stand for (its decoded piece, a control token's text; 4 for an unknown
    /// character): a text of B bytes is at least B / maxTokenBytes tokens, known without tokenizing it.
    public let maxTokenBytes: Int

    /// A lower bound of the tokens in a text of `bytes` bytes when it is more than `limit` tokens whatever its
    /// content (bytes over `maxTokenBytes`, rounded up); nil when it might fit. Known without tokenizing it.
    public func tokensAtLeast(bytes: Int, over limit: Int) -> Int? {
        bytes > limit * maxTokenBytes ? (bytes + maxTokenBytes - 1) / maxTokenBytes : nil
    }
    /// Number of tokens in the vocabulary (`tokenizer.ggml.tokens`); valid ids are 0..<vocabSize.
    public let vocabSize: Int
    /// Beginning-of-sequence id (`tokenizer.ggml.bos_token_id`, else the model type's default), or nil.
    public let bosTokenId: Int32?
    /// End-of-sequence id (`tokenizer.ggml.eos_token_id`, else the model type's default), or nil.
    public let eosTokenId: Int32?
    let unkTokenId: Int32?
    /// Whether `encode(addSpecial: true)` prepends BOS (`tokenizer.ggml.add_bos_token`, default per model type as
    /// llama.cpp: true for SentencePiece and Llama-3-style BPE, false for other BPE).
    public let addBOS: Bool
    /// Whether `encode(addSpecial: true)` appends EOS (`tokenizer.ggml.add_eos_token`, default false).
    public let addEOS: Bool
    /// Ids that end generation: EOS, EOT, EOM, FIM pad/repo/sep and every token whose text llama.cpp treats as
    /// end-of-generation (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, `<|eom_id|>`, `<｜end▁of▁sentence｜>`, ...).
    public let endOfGenerationIds: Set<Int32>

    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
    /// - Throws: `TokenizerError` for an unknown `tokenizer.ggml.model` or `tokenizer.ggml.pre`, a missing
    ///   token list or merges, a duplicate token, or `add_bos_token` without a BOS id.
    public init(gguf f: GGUFFile) throws {
        let modelName: String
        do { modelName = try f.string("tokenizer.ggml.model") } catch { throw TokenizerError.missingKey("tokenizer.ggml.model") }
        let pre = (try? f.optionalString("tokenizer.ggml.pre")) ?? nil
        switch modelName {
        case "gpt2": model = .bpe
        case "llama": model = .spm
        default: throw TokenizerError.unknownModel(modelName)
        }
        var entry = PreTokenizerTable.Entry(kind: .gpt2, cleanSpaces: false, ignoreMerges: false, addBOS: true)
        if model == .bpe {
            guard let pre, !pre.isEmpty else { throw TokenizerError.missingPreTokenizer }
            guard let e = PreTokenizerTable.entries[pre] else { throw TokenizerError.unknownPreTokenizer(pre) }
            entry = e
        }
        preTokenizer = PreTokenizer(stages: model == .bpe ? entry.kind.stages : [])
        cleanSpaces = model == .bpe ? entry.cleanSpaces : false
        ignoreMerges = entry.ignoreMerges
        addSpacePrefix = ((try? f.optionalBool("tokenizer.ggml.add_space_prefix")) ?? nil) ?? (model == .spm)

        // Token list, types, scores.
        guard let tokArr = try? f.array("tokenizer.ggml.tokens") else { throw TokenizerError.missingKey("tokenizer.ggml.tokens") }
        let n = tokArr.count
        var texts = [String](); texts.reserveCapacity(n)
        var map = [ByteString: Int32](minimumCapacity: n)
        for (i, v) in tokArr.enumerated() {
            guard var s = v.stringValue else { throw TokenizerError.invalid(key: "tokenizer.ggml.tokens", reason: "element \(i) is not a string") }
            if s.isEmpty { s = "[EMPTY_\(i)]" }
            if let prev = map.updateValue(Int32(i), forKey: ByteString(s)) {
                throw TokenizerError.invalid(key: "tokenizer.ggml.tokens", reason: "duplicate token '\(s)' has ids \(prev) and \(i)")
            }
            texts.append(s)
        }
        var attrs = [TokenAttr](repeating: .normal, count: n)
        if let types = (try? f.optionalArray("tokenizer.ggml.token_type")) ?? nil {
            guard types.count >= n else { throw TokenizerError.invalid(key: "tokenizer.ggml.token_type", reason: "\(types.count) entries for \(n) tokens") }
            for i in 0..<n { attrs[i] = TokenAttr(tokenType: types[i].intValue ?? 0) }
        }
        var scores = [Float](repeating: 0, count: n)
        if let sc = (try? f.optionalArray("tokenizer.ggml.scores")) ?? nil {
            guard sc.count >= n else { throw TokenizerError.invalid(key: "tokenizer.ggml.scores", reason: "\(sc.count) entries for \(n) tokens") }
            for i in 0..<n { scores[i] = Float(sc[i].doubleValue ?? 0) }
        }

        // Special ids: defaults per model type, then the GGUF keys (out-of-range values keep the default).
        func special(_ key: String, _ def: Int32?) -> Int32? {
            var id = def
            if let d = id, d >= n { id = nil }
            if let v = (try? f.optionalInt("tokenizer.ggml." + key)) ?? nil, v >= 0, v < n { id = Int32(v) }
            return id
        }
        let bos = special("bos_token_id", model == .spm ? 1 : 11)
        let eos = special("eos_token_id", model == .spm ? 2 : 11)
        var eot = special("eot_token_id", nil)
        var eom = special("eom_token_id", nil)
        unkTokenId = special("unknown_token_id", model == .spm ? 0 : nil)
        var fimPad = special("fim_pad_token_id", nil)
        var fimRep = special("fim_rep_token_id", nil)
        var fimSep = special("fim_sep_token_id", nil)
        var fimPre = special("fim_pre_token_id", special("prefix_token_id", nil))
        var fimSuf = special("fim_suf_token_id", special("suffix_token_id", nil))
        var fimMid = special("fim_mid_token_id", special("middle_token_id", nil))
        bosTokenId = bos; eosTokenId = eos
        addBOS = ((try? f.optionalBool("tokenizer.ggml.add_bos_token")) ?? nil) ?? entry.addBOS
        addEOS = ((try? f.optionalBool("tokenizer.ggml.add_eos_token")) ?? nil) ?? false
        if addBOS && bos == nil { throw TokenizerError.invalid(key: "tokenizer.ggml.add_bos_token", reason: "true, but no BOS id") }
        if addEOS && eos == nil { throw TokenizerError.invalid(key: "tokenizer.ggml.add_eos_token", reason: "true, but no EOS id") }

        // Text-based detection of end-of-turn and FIM tokens; each found token is forced to control type.
        func detect(_ id: inout Int32?, _ candidates: [String]) {
            guard id == nil else { return }
            for c in candidates { if let t = map[ByteString(c)] { id = t; attrs[Int(t)].insert(.control); return } }
        }
        detect(&eot, ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                      "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"])
        detect(&eom, ["<|eom_id|>"])
        detect(&fimPre, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"])
        detect(&fimSuf, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"])
        detect(&fimMid, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"])
        detect(&fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"])
        detect(&fimRep, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"])
        detect(&fimSep, ["<|file_sep|>"])

        var eog = Set<Int32>()
        for id in [fimPad, fimRep, fimSep] { if let id { eog.insert(id) } }
        for t in ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                  "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                  "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                  "<｜end▁of▁sentence｜>", "[e~["] {
            if let id = map[ByteString(t)] { eog.insert(id); attrs[Int(id)].insert(.control) }
        }
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = map[ByteString(t)] { attrs[Int(id)] = .userDefined }
        }
        for id in [eos, eot, eom] { if let id { eog.insert(id) } }
        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation when "<|return|>"+"<|call|>" exist.
        let eogTexts = Set(eog.map { texts[Int($0)] })
        if let end = map[ByteString("<|end|>")], eog.contains(end),
           (eogTexts.contains("<|return|>") && eogTexts.contains("<|call|>"))
            || ((eogTexts.contains("<|call|>") || eogTexts.contains("<|calls|>")) && eogTexts.contains("<|flush|>")) {
            eog.remove(end); attrs[Int(end)] = .userDefined
        }
        if let s = map[ByteString("</s>")], eog.contains(s), eogTexts.contains("<|tool_response>") {
            eog.remove(s); attrs[Int(s)] = .normal
        }
        endOfGenerationIds = eog

        var specials = (0..<n).filter { !attrs[$0].isDisjoint(with: [.control, .userDefined, .unknown]) }.map { Int32($0) }
        let bytes = texts.map { Array($0.utf8) }
        specials.sort { bytes[Int($0)].count > bytes[Int($1)].count || (bytes[Int($0)].count == bytes[Int($1)].count && $0 < $1) }
        // Phi-3: special tokens strip the whitespace that follows them (llama.cpp per-model attributes).
        let name = ((try? f.optionalString("general.name")) ?? nil)?.lowercased() ?? ""
        if name.contains("phi-3") || name.contains("phi3") {
            for id in specials { attrs[Int(id)].insert(.rstrip) }
            if let id = map[ByteString("</s>")] { attrs[Int(id)].insert(.rstrip) }
            for t in ["<unk>", "<s>", "<|endoftext|>"] { if let id = map[ByteString(t)] { attrs[Int(id)].remove(.rstrip) } }
        }

        self.texts = texts
        self.textBytes = bytes
        self.attrs = attrs
        self.scores = scores
        self.tokenToId = map
        self.specialsByLength = specials
        self.specialProbe = Self.probes(bytes)
        self.textTable = ByteTable(keys: bytes)
        self.rawTable = model == .bpe && entry.ignoreMerges ? ByteTable(keys: texts.map { t -> [UInt8]? in
            var raw: [UInt8] = []
            for s in t.unicodeScalars { guard let b = ByteLevel.byte(for: s.value) else { return nil }; raw.append(b) }
            return raw
        }) : nil
        self.specialLength = bytes.map { Int32($0.count) }
        self.vocabSize = n
        if model == .bpe {
            guard let merges = (try? f.optionalArray("tokenizer.ggml.merges")) ?? nil else {
                throw TokenizerError.missingKey("tokenizer.ggml.merges")
            }
            bpe = BPEMerges(merges: merges.compactMap { $0.stringValue }, tokenToId: map, vocabSize: n)
        } else {
            bpe = nil
        }
        var plain = [[UInt8]](), withSpecial = [[UInt8]]()
        plain.reserveCapacity(n); withSpecial.reserveCapacity(n)
        for i in 0..<n {
            let full = Self.piece(model: model, text: texts[i], bytes: bytes[i], attr: attrs[i])
            withSpecial.append(full)
            plain.append(attrs[i].isDisjoint(with: [.control, .unknown]) ? full : [])
        }
        pieces = plain
        specialPieces = withSpecial
        maxTokenBytes = max(4, withSpecial.map(\.count).max() ?? 0)
    }

    /// llama.cpp `token_to_piece(special: true)` without lstrip: the bytes one token stands for.
    static func piece(model: Model, text: String, bytes: [UInt8], attr: TokenAttr) -> [UInt8] {
        if !attr.isDisjoint(with: [.control, .unknown, .userDefined]) { return bytes }
        if attr.contains(.normal) {
            if model == .spm {   // "▁" (E2 96 81) → space
                var out = [UInt8]()
                var i = 0
                while i < bytes.count {
                    if i + 2 < bytes.count && bytes[i] == 0xE2 && bytes[i + 1] == 0x96 && bytes[i + 2] == 0x81 {
                        out.append(0x20); i += 3
                    } else { out.append(bytes[i]); i += 1 }
                }
                return out
            }
            var out = [UInt8]()
            out.reserveCapacity(bytes.count)
            for s in text.unicodeScalars {
                if let b = ByteLevel.byte(for: s.value) { out.append(b) } else {
                    // llama.cpp `llama_decode_text` writes this marker for a codepoint outside the byte mapping.
                    out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                    for u in String(s).utf8 { out.append(contentsOf: Array(hex2(u).utf8)) }
                    out.append(contentsOf: Array((text + "]").utf8))
                }
            }
            return out
        }
        if attr.contains(.byte), bytes.count >= 5, let v = UInt8(String(decoding: bytes[3..<5], as: UTF8.self), radix: 16) {
            return [v]
        }
        return []
    }

    static func hex2(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef".utf8)
        return String(decoding: [d[Int(b >> 4)], d[Int(b & 15)]], as: UTF8.self)
    }

    /// The raw vocabulary string of `id` (byte-level BPE text is still in its mapped form, e.g. `Ġthe`).
    public func tokenText(_ id: Int32) -> String {
        precondition(id >= 0 && Int(id) < vocabSize, "token id \(id) out of range 0..<\(vocabSize)")
        return texts[Int(id)]
    }

    /// Whether `id` is a control, user-defined or unknown token (llama.cpp's special-token cache).
    public func isSpecial(_ id: Int32) -> Bool {
        precondition(id >= 0 && Int(id) < vocabSize, "token id \(id) out of range 0..<\(vocabSize)")
        return !attrs[Int(id)].isDisjoint(with: [.control, .userDefined, .unknown])
    }

    /// Whether `id` is a control token (its text is dropped by `detokenize(renderSpecial: false)`).
    public func isControl(_ id: Int32) -> Bool {
        precondition(id >= 0 && Int(id) < vocabSize, "token id \(id) out of range 0..<\(vocabSize)")
        return attrs[Int(id)].contains(.control)
    }
}
