import ChatTemplate
import JSON
import Foundation

/// Finds tool calls in streamed model text, in one of the `ToolCallFormat` markups (vLLM's tool parsers, llama.cpp's
/// `common/chat.cpp`, written as one streaming state machine).
///
/// Text outside calls is content. Markup is held back while it may still be the start of a tag (tags split across
/// tokens), and a call's body is buffered until it is complete; then the call is emitted as `toolCallBegin` (index,
/// name) followed by `toolCallArguments` (the arguments as JSON text, Python `json.dumps` spacing as vLLM returns
/// them). Nothing of the markup reaches content, unless a block turns out not to hold a parsable call: then its text
/// is given back as content. With `streamArguments` (streamed requests), a call whose name comes before its
/// arguments object (`{"name": …, "arguments": {` in Hermes and Llama 3 JSON, DeepSeek's `name<｜tool▁sep｜>{`,
/// Mistral's `name[ARGS]{`) is begun as soon as that much is generated and its arguments follow in pieces as they are
/// generated (`StreamingArguments`: the pieces concatenate to the same text), as OpenAI, vLLM and llama-server stream
/// them (helper-66: an agent writing a file got minutes of silence, then the whole call); such a call is a call even
/// if its block ends malformed or is cut. A value type returning what to emit; unit-tested without a model.
public struct ToolCallParser: Sendable {
    private enum State: Sendable, Equatable {
        /// Ordinary content; looking for the opening tag.
        case text
        /// Inside a call block, buffering.
        case call
        /// Llama 3 JSON: nothing decided yet (leading whitespace, or a prefix of `<|python_tag|>`).
        case llamaStart
        /// Hermes with `bareCallNames`: at the start of the reply (or after a bare call), where a call may come as a
        /// bare JSON object, optionally in a ```json fence, without `<tool_call>`.
        case bareStart
        /// The allowed number of calls was reached: later text is dropped (the engine ends the request).
        case done
    }

    /// The markup parsed.
    public let format: ToolCallFormat
    private let maxCalls: Int
    private var state: State
    private var buf: [Unicode.Scalar] = []
    /// Opening tag of the current block (given back with the body if it holds no call).
    private var opened: [Unicode.Scalar] = []
    private var skipSpace = false
    /// Calls emitted so far.
    public private(set) var callCount = 0
    /// Hermes: tools a bare JSON call at the start of the reply may name (llama.cpp's Hermes 2 Pro parser reads
    /// `{"name": …, "arguments": …}` with or without `<tool_call>`; Qwen2.5-Coder writes it bare). Empty: tags only.
    private let bareCallNames: Set<String>
    /// A bare call was in a ```` ``` ```` fence: its closing fence is markup too.
    private var bareFenced = false
    /// The held text has reached a bare call's `{"name":` (so far it may be a call to a declared tool).
    private var bareNamed = false
    /// Calls are begun, and their arguments emitted in pieces, while they are generated (see the type's doc).
    private let streamArguments: Bool
    /// The call being streamed: its index, the arguments re-written so far, where they start in `buf`, how much of
    /// `buf` was fed, and the text emitted.
    private struct OpenCall: Sendable {
        var index: Int
        var args = StreamingArguments()
        var start: Int
        var fed: Int
        var emitted = ""
    }
    private var openCall: OpenCall?
    /// The open block does not start as a streamable call: it is parsed whole at its end.
    private var blockBuffered = false

    private static func s(_ t: String) -> [Unicode.Scalar] { Array(t.unicodeScalars) }
    private static let hermesOpen = s("<tool_call>"), hermesClose = s("</tool_call>")
    private static let mistralOpen = s("[TOOL_CALLS]"), mistralArgs = s("[ARGS]"), mistralCallId = s("[CALL_ID]")
    private static let dsCallsBegin = s("<｜tool▁calls▁begin｜>"), dsCallsEnd = s("<｜tool▁calls▁end｜>")
    private static let dsCallBegin = s("<｜tool▁call▁begin｜>"), dsCallEnd = s("<｜tool▁call▁end｜>")
    private static let dsSep = s("<｜tool▁sep｜>")
    private static let pythonTag = s("<|python_tag|>")

    /// - Parameters:
    ///   - format: the markup to look for.
    ///   - maxCalls: most calls to emit (`parallel_tool_calls: false` → 1); nil: no limit. After the last one the
    ///     parser is `isDone`.
    ///   - bareCallNames: Hermes only: declared tool names a bare JSON call at the start of the reply may name
    ///     (`OutputParsing.bareCallNames`).
    ///   - streamArguments: begin calls and emit their arguments in pieces as they are generated (see the type's doc).
    public init(format: ToolCallFormat, maxCalls: Int? = nil, bareCallNames: Set<String> = [], streamArguments: Bool = false) {
        self.format = format
        self.streamArguments = streamArguments
        self.maxCalls = maxCalls ?? Int.max
        self.bareCallNames = format == .hermes ? bareCallNames : []
        state = format == .llama3JSON ? .llamaStart : format == .hermes && !bareCallNames.isEmpty ? .bareStart : .text
    }

    /// True once `maxCalls` calls were emitted: generation should end.
    public var isDone: Bool { state == .done }

    /// True while a call block is open (a cut here leaves an incomplete call).
    public var isInsideCall: Bool { state == .call }

    /// The text held back so far (a partial tag, or an open block with its tag), which a later `append` or
    /// `finish` may still give back as content.
    public var heldText: String { ReasoningParser.string(state == .call ? opened + buf : buf) }

    /// The opening tags this format starts a block with.
    private var openTags: [[Unicode.Scalar]] {
        switch format {
        case .hermes: return [Self.hermesOpen]
        case .mistral: return [Self.mistralOpen]
        case .deepSeekV3, .deepSeekV31: return [Self.dsCallsBegin, Self.dsCallBegin]
        case .llama3JSON: return []
        }
    }

    /// The closing tag dropped from content when no block is open (Hermes' `</tool_call>`); nil for the others.
    private var strayCloseTag: [Unicode.Scalar]? { format == .hermes ? Self.hermesClose : nil }

    /// Feeds newly generated content text; returns what can be emitted now, in order.
    public mutating func append(_ text: String) -> [GenerationDelta] {
        if state == .done { return [] }
        buf.append(contentsOf: text.unicodeScalars)
        var out: [GenerationDelta] = []
        while step(&out) {}
        return out
    }

    /// The end of generation. `truncated`: cut by the token limit — an unfinished call, or the unfinished start of its
    /// markup, is dropped (the finish reason says the reply is incomplete); otherwise an unfinished block is parsed as
    /// far as it goes, or given back as text — except after a stop string (`stopped`): a call it cut that does not
    /// parse is dropped, never shown as text (the client asked to stop there, not for half a call as content).
    public mutating func finish(truncated: Bool, stopped: Bool = false) -> [GenerationDelta] {
        defer { buf.removeAll() }
        var out: [GenerationDelta] = []
        switch state {
        case .done: return []
        case .text where truncated:
            // What is still held back in text state is the start of call markup the token limit cut (e.g. "<tool_c"):
            // it is not content, and no call can follow.
            return []
        case .bareStart where (truncated || stopped) && bareNamed:
            // Held from `{"name":` on, it may still be a call to a declared tool: cut by the token limit or a stop
            // string, it is dropped as a tagged call's start is (helper-42: `{"name": "` came back as content).
            // Before that (a fence, `{`), the text is kept (helper-43: a fenced JSON answer cut early was lost).
            return []
        case .text, .llamaStart, .bareStart:
            emitContent(buf[...], into: &out)
        case .call where openCall != nil, .bareStart where openCall != nil:
            // A streamed call ends with the generation: what is left of its arguments (nothing when cut short).
            finishOpenCall(end: nil, into: &out)
        case .call:
            if truncated { return [] }
            let before = callCount
            // The model ended without the closing tag: the outermost braces hold the call, if anything does.
            let text = ReasoningParser.string(buf)
            switch format {
            case .hermes: if let json = Self.outermostObject(text) { emitCall(json: json.unicodeScalars, into: &out) }
            case .mistral, .llama3JSON: emitJSONCalls(buf[...], into: &out)
            case .deepSeekV3, .deepSeekV31:
                let lead = buf.prefix { $0.properties.isWhitespace }.count
                if buf[lead...].starts(with: Self.dsCallBegin),
                   let (name, args) = parseDeepSeekCall(Array(buf[(lead + Self.dsCallBegin.count)...])) {
                    emit(name: name, arguments: args, into: &out)
                }
            }
            if callCount == before && !stopped { emitContent(opened + buf, into: &out) }
        }
        return out
    }

    /// One parsing step; false when more text is needed.
    private mutating func step(_ out: inout [GenerationDelta]) -> Bool {
        switch state {
        case .done: buf.removeAll(); return false
        case .llamaStart:
            let lead = buf.prefix { $0.properties.isWhitespace }.count
            let rest = buf[lead...]
            if rest.starts(with: Self.pythonTag) {
                opened = Array(buf[..<(lead + Self.pythonTag.count)])
                buf.removeFirst(lead + Self.pythonTag.count)
                state = .call
                return true
            }
            if rest.first == "{" {
                opened = []
                state = .call
                return true
            }
            if rest.count < Self.pythonTag.count && Self.pythonTag.starts(with: rest) { return false }
            state = .text  // plain content: a Llama reply holds a call only when it starts with one
            return true
        case .bareStart:
            return bareStep(&out)
        case .text:
            if format == .llama3JSON {
                emitContent(buf[...], into: &out)
                buf.removeAll()
                return false
            }
            var first: (at: Int, tag: [Unicode.Scalar])?
            for tag in openTags {
                if let at = ReasoningParser.find(tag, in: buf), at < (first?.at ?? Int.max) { first = (at, tag) }
            }
            // A closing tag with no block open (a model that closes its call twice) is markup too: dropped.
            if let stray = strayCloseTag, let at = ReasoningParser.find(stray, in: buf), at < (first?.at ?? Int.max) {
                emitContent(buf[..<at], into: &out)
                buf.removeFirst(at + stray.count)
                return true
            }
            if let (at, tag) = first {
                emitContent(buf[..<at], into: &out)
                // A DeepSeek call without the outer `calls▁begin` keeps its tag: the block parser reads it.
                let keep = tag == Self.dsCallBegin
                opened = keep ? [] : tag
                buf.removeFirst(keep ? at : at + tag.count)
                state = .call
                return true
            }
            let hold = (openTags + [strayCloseTag].compactMap { $0 }).map { ReasoningParser.heldSuffix(buf, $0) }.max() ?? 0
            emitContent(buf[..<(buf.count - hold)], into: &out)
            buf.removeFirst(buf.count - hold)
            return false
        case .call:
            switch format {
            case .hermes: return hermesStep(&out)
            case .mistral: return mistralStep(&out)
            case .llama3JSON: return llamaStep(&out)
            case .deepSeekV3, .deepSeekV31: return deepSeekStep(&out)
            }
        }
    }

    private mutating func hermesStep(_ out: inout [GenerationDelta]) -> Bool {
        streamStep(&out) { p in Self.callObjectStart(p.buf, from: 0) }
        guard let end = ReasoningParser.find(Self.hermesClose, in: buf) else { return false }
        if openCall != nil {
            finishOpenCall(end: end, into: &out)
            buf.removeFirst(end + Self.hermesClose.count)
            afterBlock()
            return true
        }
        let before = callCount
        emitCall(json: buf[..<end], into: &out)
        if callCount == before { emitContent(opened + buf[..<end] + Self.hermesClose, into: &out) }
        buf.removeFirst(end + Self.hermesClose.count)
        afterBlock()
        return true
    }

    private static let fence = s("```"), fenceJSON = s("json"), nameKey = s("\"name\""), argumentsKey = s("\"arguments\"")

    /// A bare Hermes call at the start, in the form the start-only trigger enforces (`EngineMapping.lazyToolCalls`):
    /// whitespace (and, after a call, an optional comma), an optional ```` ``` ```` or ```` ```json ```` then
    /// whitespace, `{`, `"name"`, `:`, a declared tool's name spelled as JSON serializes it, `,`, `"arguments"`, `:`,
    /// an object, `}` (whitespace between).
    /// Decided as early as it can be: anything else, or another name, makes the reply content at once.
    private mutating func bareStep(_ out: inout [GenerationDelta]) -> Bool {
        func ws(_ k: Int) -> Int { k + buf[min(k, buf.count)...].prefix { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }.count }
        /// `lit` at `k`: its end; nil when the text so far is a proper prefix of it (wait); -1 when it is not there.
        func expect(_ lit: [Unicode.Scalar], at k: Int) -> Int? {
            let r = buf[min(k, buf.count)...]
            if r.starts(with: lit) { return k + lit.count }
            return lit.starts(with: r) ? nil : -1
        }
        bareNamed = false
        var i = ws(0)
        if bareFenced {   // the fence that closes a fenced call (after one or more calls)
            guard let e = expect(Self.fence, at: i) else { return false }
            if e >= 0 {
                buf.removeFirst(e)
                bareFenced = false
                return true
            }
        }
        // Calls after the first may be separated by a comma, as in a JSON list written without its brackets
        // (Qwen2.5-Coder: `{…},\n{…}`; helper-58: the second call reached `content`).
        if callCount > 0, i < buf.count, buf[i] == "," { i = ws(i + 1) }
        if i == buf.count { return false }
        var fenced = false
        if !bareFenced, buf[i] == "`" {
            guard let e = expect(Self.fence, at: i) else { return false }
            if e < 0 { state = .text; return true }
            i = e
            if i == buf.count { return false }
            if buf[i] == "j" {
                guard let e2 = expect(Self.fenceJSON, at: i) else { return false }
                if e2 < 0 { state = .text; return true }
                i = e2
            }
            i = ws(i)
            fenced = true
        }
        /// Takes each literal in turn (whitespace after each): false when the text so far is too short to tell, nil
        /// when it is not there.
        func take(_ lits: [[Unicode.Scalar]]) -> Bool? {
            for lit in lits {
                guard let e = expect(lit, at: i) else { return false }
                if e < 0 { return nil }
                i = ws(e)
            }
            return true
        }
        switch take([["{"], Self.nameKey, [":"]]) {
        case false?: return false
        case nil: state = .text; return true
        default: bareNamed = true
        }
        // The name as JSON spells it: one declared name must be this text, or may still become it.
        let nameText = buf[min(i, buf.count)...]
        var matched: (name: String, spelled: [Unicode.Scalar])?, possible = false
        for name in bareCallNames {
            let spelled = Array(JSONValue.string(name).serialized().unicodeScalars)
            if nameText.starts(with: spelled) { matched = (name, spelled); break }
            if spelled.starts(with: nameText) { possible = true }
        }
        guard let (name, spelled) = matched else {
            if possible { return false }
            state = .text
            return true
        }
        switch take([spelled, [","], Self.argumentsKey, [":"]]) {
        case false?: return false
        case nil: state = .text; return true
        default: break
        }
        let argsStart = i
        if i == buf.count { return false }
        guard buf[i] == "{" else { state = .text; return true }
        if streamArguments {   // streamed: the call begins here and its arguments follow as they come
            if openCall == nil {
                guard callCount < maxCalls else { state = .done; buf.removeAll(); return false }
                out.append(.toolCallBegin(index: callCount, name: name))
                openCall = OpenCall(index: callCount, start: argsStart, fed: argsStart)
            }
            feedOpenCall(&out)
        }
        guard let argsEnd = Self.jsonEnd(buf, from: i) else { return false }
        i = ws(argsEnd)
        guard let close = expect(["}"], at: i) else { return false }
        if openCall != nil {
            finishOpenCall(end: argsEnd, into: &out)
            if fenced { bareFenced = true }
            buf.removeFirst(close >= 0 ? close : argsEnd)
            opened = []
            skipSpace = true
            if callCount >= maxCalls { state = .done; buf.removeAll(); return false }
            return true
        }
        guard close >= 0, let args = Self.argumentsText(ReasoningParser.string(buf[argsStart..<argsEnd])) else {
            state = .text
            return true
        }
        emit(name: name, arguments: args, into: &out)
        if fenced { bareFenced = true }
        buf.removeFirst(close)
        opened = []
        skipSpace = true
        if callCount >= maxCalls { state = .done; buf.removeAll(); return false }
        return true
    }

    private mutating func mistralStep(_ out: inout [GenerationDelta]) -> Bool {
        streamStep(&out) { p in Self.mistralCallStart(p.buf) }
        if let call = openCall {
            // `name[ARGS]{…}`: the call ends with its arguments object.
            guard call.args.isComplete || call.args.failed, let end = Self.jsonEnd(buf, from: call.start) else { return false }
            finishOpenCall(end: end, into: &out)
            buf.removeFirst(end)
            afterBlock()
            return true
        }
        let lead = buf.prefix { $0.properties.isWhitespace }.count
        guard lead < buf.count else { return false }
        if buf[lead] == "[" || buf[lead] == "{" {
            guard let end = Self.jsonEnd(buf, from: lead) else { return false }
            let before = callCount
            emitJSONCalls(buf[lead..<end], into: &out)
            if callCount == before { emitContent(opened + buf[..<end], into: &out) }
            buf.removeFirst(end)
            afterBlock()
            return true
        }
        // name[ARGS]{…} or name[CALL_ID]id[ARGS]{…}
        guard let argsAt = ReasoningParser.find(Self.mistralArgs, in: buf) else { return false }
        let objStart = argsAt + Self.mistralArgs.count
        let lead2 = buf[objStart...].prefix { $0.properties.isWhitespace }.count
        guard objStart + lead2 < buf.count else { return false }
        let end = buf[objStart + lead2] == "{" ? Self.jsonEnd(buf, from: objStart + lead2) : nil
        if end == nil && buf[objStart + lead2] == "{" { return false }
        var nameEnd = argsAt
        if let idAt = ReasoningParser.find(Self.mistralCallId, in: Array(buf[..<argsAt])) { nameEnd = idAt }
        let name = ReasoningParser.string(buf[..<nameEnd]).trimmingCharacters(in: .whitespacesAndNewlines)
        let consumed = end ?? objStart
        if let end, !name.isEmpty, let args = Self.argumentsText(ReasoningParser.string(buf[(objStart + lead2)..<end])) {
            emit(name: name, arguments: args, into: &out)
        } else {
            emitContent(opened + buf[..<consumed], into: &out)
        }
        buf.removeFirst(consumed)
        afterBlock()
        return true
    }

    private mutating func llamaStep(_ out: inout [GenerationDelta]) -> Bool {
        let lead = buf.prefix { $0.properties.isWhitespace || $0 == ";" }.count
        guard lead < buf.count else { return false }
        guard buf[lead] == "{" else {
            // Text after the calls: content, and no more calls are looked for.
            buf.removeFirst(lead)
            state = .text
            return true
        }
        streamStep(&out) { p in Self.callObjectStart(p.buf, from: lead) }
        guard let end = Self.jsonEnd(buf, from: lead) else { return false }
        if openCall != nil {
            finishOpenCall(end: end, into: &out)
            opened = []
            blockBuffered = false
            buf.removeFirst(end)
            if callCount >= maxCalls { state = .done }
            return true
        }
        let before = callCount
        emitCall(json: buf[lead..<end], into: &out)
        if callCount == before {
            emitContent(opened + buf, into: &out)
            buf.removeAll()
            state = .text
            return false
        }
        opened = []
        blockBuffered = false
        buf.removeFirst(end)
        if callCount >= maxCalls { state = .done }
        return true
    }

    private mutating func deepSeekStep(_ out: inout [GenerationDelta]) -> Bool {
        let lead = buf.prefix { $0.properties.isWhitespace }.count
        let rest = Array(buf[lead...])
        if rest.starts(with: Self.dsCallsEnd) {
            buf.removeFirst(lead + Self.dsCallsEnd.count)
            afterBlock()
            return true
        }
        if rest.starts(with: Self.dsCallBegin) {
            streamStep(&out) { p in Self.deepSeekCallStart(p.buf, from: lead + Self.dsCallBegin.count) }
            guard let end = ReasoningParser.find(Self.dsCallEnd, in: rest) else { return false }
            if openCall != nil {
                finishOpenCall(end: lead + end, into: &out)
                buf.removeFirst(lead + end + Self.dsCallEnd.count)
                if callCount >= maxCalls { state = .done; buf.removeAll(); return false }
                return true
            }
            let body = Array(rest[Self.dsCallBegin.count..<end])
            if let (name, args) = parseDeepSeekCall(body) {
                emit(name: name, arguments: args, into: &out)
            } else {
                emitContent(Self.dsCallBegin + body + Self.dsCallEnd, into: &out)
            }
            blockBuffered = false
            buf.removeFirst(lead + end + Self.dsCallEnd.count)
            if callCount >= maxCalls { state = .done; buf.removeAll(); return false }
            return true
        }
        if rest.isEmpty || (rest.count < Self.dsCallsEnd.count && Self.dsCallsEnd.starts(with: rest))
            || (rest.count < Self.dsCallBegin.count && Self.dsCallBegin.starts(with: rest)) {
            return false
        }
        // The block holds something else (the model left out the end tag): back to content.
        afterBlock()
        return true
    }

    /// `function<｜tool▁sep｜>name\n```json\n{…}\n```` (V3/R1) or `name<｜tool▁sep｜>{…}` (V3.1).
    private func parseDeepSeekCall(_ body: [Unicode.Scalar]) -> (String, String)? {
        guard let sep = ReasoningParser.find(Self.dsSep, in: body) else { return nil }
        let left = ReasoningParser.string(body[..<sep]).trimmingCharacters(in: .whitespacesAndNewlines)
        var right = ReasoningParser.string(body[(sep + Self.dsSep.count)...])
        var name = left
        if let nl = right.firstIndex(of: "\n"), right[right.startIndex..<nl].trimmingCharacters(in: .whitespaces)
            .allSatisfy({ $0 != "{" }) && right.contains("```") {
            name = right[..<nl].trimmingCharacters(in: .whitespaces)
            right = String(right[right.index(after: nl)...])
        }
        guard !name.isEmpty, let json = Self.outermostObject(right), let args = Self.argumentsText(json) else { return nil }
        return (name, args)
    }

    /// After a block: whitespace before more text is dropped; the limit may end parsing.
    private mutating func afterBlock() {
        opened = []
        blockBuffered = false
        skipSpace = true
        state = callCount >= maxCalls ? .done : .text
        if state == .done { buf.removeAll() }
    }

    /// Where a streamable call's arguments start, if the block's text says so yet.
    enum CallStart: Equatable {
        /// More text is needed to tell.
        case wait
        /// The block does not start as a streamable call.
        case no
        /// The call's name, and the index in the text of its arguments object's `{`.
        case found(name: String, arguments: Int)
    }

    /// With `streamArguments`, inside an open block: begins the call once `start` finds its name and arguments, then
    /// feeds the arguments' new characters and emits what they settle.
    private mutating func streamStep(_ out: inout [GenerationDelta], start: (Self) -> CallStart) {
        guard streamArguments, !blockBuffered else { return }
        if openCall == nil {
            switch start(self) {
            case .wait: return
            case .no: blockBuffered = true; return
            case .found(let name, let at):
                guard callCount < maxCalls, !name.isEmpty else { blockBuffered = true; return }
                out.append(.toolCallBegin(index: callCount, name: name))
                openCall = OpenCall(index: callCount, start: at, fed: at)
            }
        }
        feedOpenCall(&out)
    }

    /// Feeds the streamed call's arguments the characters generated since, and emits what they settle.
    private mutating func feedOpenCall(_ out: inout [GenerationDelta]) {
        guard var call = openCall else { return }
        var piece = ""
        while call.fed < buf.count && !call.args.isComplete && !call.args.failed {
            piece += call.args.feed(buf[call.fed])
            call.fed += 1
        }
        if !piece.isEmpty {
            call.emitted += piece
            out.append(.toolCallArguments(index: call.index, piece))
        }
        openCall = call
    }

    /// Ends the streamed call: the rest of its arguments' whole-object text when the pieces so far are its start
    /// (a repeated key or malformed JSON leaves what was sent), from its arguments object in `buf[start..<end]`
    /// (`end` nil: to the end of `buf`).
    private mutating func finishOpenCall(end: Int?, into out: inout [GenerationDelta]) {
        guard let call = openCall else { return }
        openCall = nil
        let upTo = min(end ?? buf.count, buf.count)
        if call.start < upTo, let whole = Self.jsonEnd(buf, from: call.start).flatMap({ $0 <= upTo ? $0 : nil }),
           let text = Self.argumentsText(ReasoningParser.string(buf[call.start..<whole])),
           text.unicodeScalars.starts(with: call.emitted.unicodeScalars),
           text.unicodeScalars.count > call.emitted.unicodeScalars.count {
            // By scalars, as the pieces were cut (a Character may span the pieces' seam).
            out.append(.toolCallArguments(index: call.index, ReasoningParser.string(Array(text.unicodeScalars.dropFirst(call.emitted.unicodeScalars.count)))))
        }
        callCount += 1
    }

    /// `{"name": <string>, "arguments"|"parameters": {` at `from` (whitespace anywhere between): the start of a JSON
    /// call object whose name comes first (Hermes, Llama 3 JSON).
    static func callObjectStart(_ s: [Unicode.Scalar], from: Int) -> CallStart {
        var i = from
        func ws() { while i < s.count, s[i] == " " || s[i] == "\n" || s[i] == "\t" || s[i] == "\r" { i += 1 } }
        /// `lit` at i: true (taken), false (not there), nil (the text ends inside it).
        func take(_ lit: String) -> Bool? {
            for c in lit.unicodeScalars {
                guard i < s.count else { return nil }
                guard s[i] == c else { return false }
                i += 1
            }
            return true
        }
        /// Takes `lits` in turn, whitespace after each: nil when all are there, else `.wait` or `.no`.
        func expect(_ lits: String...) -> CallStart? {
            for lit in lits {
                guard let ok = take(lit) else { return .wait }
                if !ok { return .no }
                ws()
            }
            return nil
        }
        ws()
        if let r = expect("{", "\"name\"", ":") { return r }
        guard i < s.count else { return .wait }
        guard s[i] == "\"" else { return .no }
        guard let nameEnd = jsonStringEnd(s, from: i) else { return .wait }
        guard case .string(let name)? = parse(ReasoningParser.string(s[i..<nameEnd])) else { return .no }
        i = nameEnd
        ws()
        if let r = expect(",") { return r }
        let keyStart = i
        var key: Bool? = false   // true: taken; nil: the text so far may still become one
        for lit in ["\"arguments\"", "\"parameters\""] {
            i = keyStart
            let r = take(lit)
            if r == true { key = true; break }
            if r == nil { key = nil }
        }
        guard let taken = key else { return .wait }
        if !taken { return .no }
        ws()
        if let r = expect(":") { return r }
        guard i < s.count else { return .wait }
        return s[i] == "{" ? .found(name: name, arguments: i) : .no
    }

    /// DeepSeek's call body at `from` (after `<｜tool▁call▁begin｜>`): `name<｜tool▁sep｜>{` (V3.1) or
    /// `function<｜tool▁sep｜>name\n```json\n{` (V3 / R1).
    static func deepSeekCallStart(_ s: [Unicode.Scalar], from: Int) -> CallStart {
        guard from <= s.count else { return .wait }
        let body = Array(s[from...])
        guard let sep = ReasoningParser.find(dsSep, in: body) else {
            return ReasoningParser.find(dsCallEnd, in: body) == nil ? .wait : .no
        }
        let left = ReasoningParser.string(body[..<sep]).trimmingCharacters(in: .whitespacesAndNewlines)
        var i = sep + dsSep.count
        while i < body.count, body[i] == " " { i += 1 }
        guard i < body.count else { return .wait }
        if body[i] == "{" { return .found(name: left, arguments: from + i) }
        guard let nl = body[i...].firstIndex(of: "\n") else { return body[i...].count > 256 ? .no : .wait }
        let name = ReasoningParser.string(body[i..<nl]).trimmingCharacters(in: .whitespaces)
        var j = nl + 1
        let f = body[min(j, body.count)...]
        if f.count < fence.count { return fence.starts(with: f) ? .wait : .no }
        guard f.starts(with: fence) else { return .no }
        j += fence.count
        let r = body[min(j, body.count)...]
        if r.first == "j" {
            if r.count < fenceJSON.count { return fenceJSON.starts(with: r) ? .wait : .no }
            guard r.starts(with: fenceJSON) else { return .no }
            j += fenceJSON.count
        }
        while j < body.count, body[j] == " " || body[j] == "\n" || body[j] == "\r" { j += 1 }
        guard j < body.count else { return .wait }
        return body[j] == "{" && !name.isEmpty ? .found(name: name, arguments: from + j) : .no
    }

    /// Mistral's `name[ARGS]{` or `name[CALL_ID]id[ARGS]{` (its JSON list form is parsed whole).
    static func mistralCallStart(_ s: [Unicode.Scalar]) -> CallStart {
        let lead = s.prefix { $0.properties.isWhitespace }.count
        guard lead < s.count else { return .wait }
        if s[lead] == "[" || s[lead] == "{" { return .no }
        guard let argsAt = ReasoningParser.find(mistralArgs, in: s) else { return s.count - lead > 256 ? .no : .wait }
        var nameEnd = argsAt
        if let idAt = ReasoningParser.find(mistralCallId, in: Array(s[..<argsAt])) { nameEnd = idAt }
        let name = ReasoningParser.string(s[lead..<nameEnd]).trimmingCharacters(in: .whitespacesAndNewlines)
        var i = argsAt + mistralArgs.count
        while i < s.count, s[i].properties.isWhitespace { i += 1 }
        guard i < s.count else { return .wait }
        return s[i] == "{" && !name.isEmpty ? .found(name: name, arguments: i) : .no
    }

    /// End (exclusive) of the JSON string starting with the `"` at `start`, or nil while it is incomplete.
    static func jsonStringEnd(_ s: [Unicode.Scalar], from start: Int) -> Int? {
        var i = start + 1, escaped = false
        while i < s.count {
            if escaped { escaped = false } else if s[i] == "\\" { escaped = true } else if s[i] == "\"" { return i + 1 }
            i += 1
        }
        return nil
    }

    private mutating func emitContent<C: Collection>(_ scalars: C, into out: inout [GenerationDelta])
    where C.Element == Unicode.Scalar {
        var text = scalars[...]
        if skipSpace {
            text = text.drop { $0.properties.isWhitespace }
            if !text.isEmpty { skipSpace = false }
        }
        guard !text.isEmpty else { return }
        let s = ReasoningParser.string(text)
        if case .content(let prev)? = out.last {
            out[out.count - 1] = .content(prev + s)
        } else {
            out.append(.content(s))
        }
    }

    /// `{"name": …, "arguments"|"parameters": …}` → one call.
    private mutating func emitCall<C: Collection>(json: C, into out: inout [GenerationDelta]) where C.Element == Unicode.Scalar {
        guard let v = Self.parse(ReasoningParser.string(json)) else { return }
        emitCall(value: v, into: &out)
    }

    private mutating func emitCall(value v: JinjaValue, into out: inout [GenerationDelta]) {
        guard callCount < maxCalls, case .object(let o) = v, case .string(let name)? = o["name"], !name.isEmpty else { return }
        let args: String
        switch o["arguments"] ?? o["parameters"] {
        case nil, .null?: args = "{}"
        case .string(let s)?:
            guard Self.parse(s) != nil else { return }
            args = s
        case let other?:
            guard let text = Self.written(other) else { return }
            args = text
        }
        emit(name: name, arguments: args, into: &out)
    }

    /// An object or an array of call objects.
    private mutating func emitJSONCalls<C: Collection>(_ json: C, into out: inout [GenerationDelta]) where C.Element == Unicode.Scalar {
        switch Self.parse(ReasoningParser.string(json)) {
        case .array(let items)?: for item in items { emitCall(value: item, into: &out) }
        case let v?: emitCall(value: v, into: &out)
        case nil: break
        }
    }

    private mutating func emit(name: String, arguments: String, into out: inout [GenerationDelta]) {
        guard callCount < maxCalls else { return }
        out.append(.toolCallBegin(index: callCount, name: name))
        out.append(.toolCallArguments(index: callCount, arguments))
        callCount += 1
    }

    /// Arguments JSON text as vLLM returns it (`json.dumps` spacing); nil when it is not a JSON object, or holds a
    /// number no JSON number can write (`1e400` would come out as `Infinity`).
    static func argumentsText(_ json: String) -> String? {
        guard let v = parse(json), case .object = v else { return nil }
        return written(v)
    }

    /// `v` as JSON text (`json.dumps` spacing), or nil when it holds a number no JSON number can write (it would come
    /// out as `Infinity`, which no JSON parser reads).
    static func written(_ v: JinjaValue) -> String? {
        let text = v.jsonString()
        return (text.contains("Infinity") || text.contains("NaN")) && parse(text) == nil ? nil : text
    }

    /// From the first `{` to the last `}` (a fenced or loosely wrapped object), or nil.
    static func outermostObject(_ text: String) -> String? {
        guard let a = text.firstIndex(of: "{"), let b = text.lastIndex(of: "}"), a < b else { return nil }
        return String(text[a...b])
    }

    static func parse(_ json: String) -> JinjaValue? {
        try? JinjaValue.fromJSON(Data(json.utf8))
    }

    /// End (exclusive) of the JSON object or array starting at `start`, or nil while it is incomplete.
    static func jsonEnd(_ s: [Unicode.Scalar], from start: Int) -> Int? {
        var depth = 0, inString = false, escaped = false
        var i = start
        while i < s.count {
            let c = s[i]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "{" || c == "[" {
                depth += 1
            } else if c == "}" || c == "]" {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
            i += 1
        }
        return nil
    }
}
