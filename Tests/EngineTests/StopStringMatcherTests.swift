import XCTest
@testable import Engine

final class StopStringMatcherTests: XCTestCase {
    private struct Outcome: Equatable {
        let text: String
        let stopped: Bool
        init(_ text: String, _ stopped: Bool) { self.text = text; self.stopped = stopped }
    }

    /// Feeds pieces; returns what would be emitted and whether a stop was hit.
    private func run(_ pieces: [String], stops: [String]) -> Outcome {
        var m = StopStringMatcher(stops: stops)
        var out = ""
        for p in pieces {
            switch m.append(p) {
            case .text(let t): out += t
            case .stopped(let before): return Outcome(out + before, true)
            }
        }
        return Outcome(out + m.flush(), false)
    }

    func testStopSpanningPiecesNeverLeaks() {
        var m = StopStringMatcher(stops: ["</answer>"])
        XCTAssertEqual(m.append("The answer is 4</"), .text("The answer is 4"))
        XCTAssertEqual(m.append("ans"), .text(""))
        XCTAssertEqual(m.append("wer> trailing"), .stopped(before: ""))
    }

    func testHeldPrefixIsReleasedWhenItDiverges() {
        var m = StopStringMatcher(stops: ["STOP"])
        XCTAssertEqual(m.append("ab ST"), .text("ab "))
        XCTAssertEqual(m.append("ART"), .text("START"))
        XCTAssertEqual(m.flush(), "")
    }

    func testEarliestOfSeveralStops() {
        XCTAssertEqual(run(["x = 1; y", " = 2\n\nz"], stops: ["\n\n", "; "]).text, "x = 1")
        XCTAssertEqual(run(["abc"], stops: []).text, "abc")
        XCTAssertEqual(run(["ab", "c"], stops: ["abcd"]), Outcome("abc", false), "an unfinished prefix is text at the end")
    }

    func testUnicodeStops() {
        XCTAssertEqual(run(["日本", "語です"], stops: ["語"]), Outcome("日本", true))
        XCTAssertEqual(run(["🙂", "🙃x"], stops: ["🙃"]), Outcome("🙂", true))
    }

    /// Property: for every split of a text into two pieces, output == text up to the first stop.
    func testEverySplitPoint() {
        let text = "one two <|stop|> three"
        let scalars = Array(text.unicodeScalars)
        for i in 0...scalars.count {
            let a = String(String.UnicodeScalarView(scalars[0..<i])), b = String(String.UnicodeScalarView(scalars[i...]))
            XCTAssertEqual(run([a, b], stops: ["<|stop|>"]), Outcome("one two ", true), "split at \(i)")
        }
    }
}

/// The matcher names the stop string that matched (Anthropic's `stop_sequence`), and the histogram counts.
final class StopReportAndHistogramTests: XCTestCase {
    func testMatchedStopIsTheEarliest() {
        var m = StopStringMatcher(stops: ["zz", "b c"])
        XCTAssertNil(m.matched)
        XCTAssertEqual(m.append("a b"), .text("a "))
        XCTAssertNil(m.matched)
        XCTAssertEqual(m.append(" c zz"), .stopped(before: ""))
        XCTAssertEqual(m.matched, "b c")
    }

    func testLatencyHistogramBuckets() {
        let h = LatencyHistogram(upperBounds: [0.01, 0.1, 1])
        for ns: UInt64 in [5_000_000, 10_000_000, 50_000_000, 2_000_000_000] { h.observe(nanoseconds: ns) }
        let (counts, sum) = h.snapshot()
        XCTAssertEqual(counts, [2, 1, 0, 1])  // le is inclusive: 0.01 s falls in the first bucket
        XCTAssertEqual(sum, 2.065, accuracy: 1e-9)
    }
}

import GGUF
import TestSupport
import Tokenizer

/// The ids OutputProcessor reports when a stop string ends generation: those whose text starts before the stop
/// string, so that the reported tokens (and their log-probabilities) cover the returned text and not the stop
/// string's own tokens.
final class OutputProcessorStopIdsTests: XCTestCase {
    private func stoppedIds(_ tok: Tokenizer, _ ids: [Int32], stop: String) -> (text: String, ids: [Int32])? {
        var p = OutputProcessor(tokenizer: tok, stop: [stop])
        var text = "", reported: [Int32] = []
        for id in ids {
            switch p.append(id) {
            case .emit(let parts, let got):
                for case .content(let t) in parts { text += t }
                reported += got
            case .stopped(let parts, let got):
                for case .content(let t) in parts { text += t }
                return (text, reported + got)
            }
        }
        return nil
    }

    func testStopStringTokensAreNotReported() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        let ids = tok.encode("Paris is the capital of France. It is big.", addSpecial: false, parseSpecial: false)
        let pieces = ids.map { tok.detokenize([$0]) }
        let at = try XCTUnwrap(pieces.firstIndex(of: " capital"))
        XCTAssertEqual(pieces[at + 1], " of")
        // A stop string that starts where a token starts: that token and the next are the stop's.
        var got = try XCTUnwrap(stoppedIds(tok, ids, stop: " capital of"))
        XCTAssertEqual(got.text, pieces[..<at].joined())
        XCTAssertEqual(got.ids, Array(ids[..<at]))
        // One that starts inside a token (after its space): the token starts before it and stays.
        got = try XCTUnwrap(stoppedIds(tok, ids, stop: "capital of"))
        XCTAssertEqual(got.text, pieces[..<at].joined() + " ")
        XCTAssertEqual(got.ids, Array(ids[...at]))
        // A stop at the very first token: nothing is reported.
        got = try XCTUnwrap(stoppedIds(tok, ids, stop: "Paris"))
        XCTAssertEqual(got.text, "")
        XCTAssertEqual(got.ids, [])
    }

    /// A token whose text the stop matcher holds back (it may start the stop string) is not reported with the text
    /// released in the same step (helper's report: tokens `["\n", "\n"]` for the text `"\n"`, the second the stop's).
    func testHeldBackTokensWaitForTheirText() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        let enc = { (s: String) in tok.encode(s, addSpecial: false, parseSpecial: false) }
        let newline = enc("\n")
        XCTAssertEqual(newline.count, 1)
        let ids = enc(" Paris.") + newline + newline + enc("The") + enc(" capital")
        let got = try XCTUnwrap(stoppedIds(tok, ids, stop: "\nThe"))
        XCTAssertEqual(got.text, " Paris.\n")
        XCTAssertEqual(got.ids, enc(" Paris.") + newline)
        XCTAssertEqual(tok.detokenize(got.ids), got.text)
    }

    /// A stop string that matches inside a tool call ends generation without the half-written call as content
    /// (helper-40: `stop: ["Oslo"]` returned ```` ```json {"name": "get_weather", "arguments": {"city": " ```` as text); a
    /// call complete before the stop is still a call, and text before a cut call stays.
    func testStopInsideAToolCallDropsTheCutCall() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        func run(_ text: String, stop: String, bare: Bool = false) -> [GenerationDelta] {
            var parsing = OutputParsing(toolCalls: .hermes)
            if bare { parsing.bareCallNames = ["get_weather"] }
            var p = OutputProcessor(tokenizer: tok, stop: [stop], parsing: parsing)
            var parts: [GenerationDelta] = []
            for id in tok.encode(text, addSpecial: false, parseSpecial: false) {
                switch p.append(id) {
                case .emit(let got, _): parts += got
                case .stopped(let got, _): return merged(parts + got)
                }
            }
            return merged(parts + (p.finish()?.parts ?? []))
        }
        /// Adjacent content parts as one (the pieces follow the tokens).
        func merged(_ parts: [GenerationDelta]) -> [GenerationDelta] {
            parts.reduce(into: []) { out, p in
                if case .content(let b) = p, case .content(let a)? = out.last { out[out.count - 1] = .content(a + b) } else { out.append(p) }
            }
        }
        let tagged = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"
        XCTAssertEqual(run(tagged, stop: "Oslo"), [])
        XCTAssertEqual(run("Sure. " + tagged, stop: "Oslo"), [.content("Sure. ")])
        let fenced = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n```"
        XCTAssertEqual(run(fenced, stop: "Oslo", bare: true), [])
        // Cut before its arguments (helper-42: `{"name": "` came back as content).
        XCTAssertEqual(run(fenced, stop: "get_weather", bare: true), [])
        XCTAssertEqual(run(fenced, stop: "arguments", bare: true), [])
        // Stopped after the call's JSON is whole (the closing tag is the stop): the call stands.
        XCTAssertEqual(run(tagged, stop: "</tool_call>"),
                       [.toolCallBegin(index: 0, name: "get_weather"), .toolCallArguments(index: 0, "{\"city\": \"Oslo\"}")])
        // Plain text cut by a stop string is unchanged.
        XCTAssertEqual(run("The weather in Oslo is mild.", stop: "Oslo"), [.content("The weather in ")])
    }

    func testMatcherReportsWhereTheStopStarts() {
        var m = StopStringMatcher(stops: ["STOP"])
        XCTAssertEqual(m.append("abc ST"), .text("abc "))
        XCTAssertNil(m.stopOffset)
        XCTAssertEqual(m.append("OP!"), .stopped(before: ""))
        XCTAssertEqual(m.stopOffset, 4)
        XCTAssertEqual(m.fed, 9)
    }
}

/// A `continue_final_message` prefill that opens tool-call markup: the parser holds that text, and if the reply
/// gives it back as content (no call completed), it is the client's own text and stays out of the reply (helper's
/// report: the reply's content was "<tool_call>\n" when the model ended at once).
final class OutputProcessorPrefillTests: XCTestCase {
    private func reply(_ prefix: String, _ output: String) throws -> (content: String, calls: Int) {
        let tok = try Tokenizer(gguf: GGUFFile(path: Fixtures.path("tokenizer/smollm2.vocab.gguf")))
        var parsing = OutputParsing()
        parsing.toolCalls = .hermes
        parsing.prefix = prefix
        var p = OutputProcessor(tokenizer: tok, stop: [], parsing: parsing)
        var parts: [GenerationDelta] = []
        for id in tok.encode(output, addSpecial: false, parseSpecial: false) {
            if case .emit(let got, _) = p.append(id) { parts += got }
        }
        parts += p.finish()?.parts ?? []
        var content = "", calls = 0
        for part in parts {
            if case .content(let t) = part { content += t }
            if case .toolCallBegin = part { calls += 1 }
        }
        return (content, calls)
    }

    func testPrefillMarkupIsNotReplyContent() throws {
        XCTAssertEqual(try reply("<tool_call>\n", "").content, "")                        // ended at once
        XCTAssertEqual(try reply("<tool_call>\n", "not a call").content, "not a call")    // gave up on the call
        XCTAssertEqual(try reply("<tool", "ing is fun").content, "ing is fun")            // not markup after all
        let call = try reply("<tool_call>\n", #"{"name": "f", "arguments": {}}</tool_call>"#)
        XCTAssertEqual(call.calls, 1)
        XCTAssertEqual(call.content, "")
        XCTAssertEqual(try reply("Sure. ", "Done.").content, "Done.")                     // plain prefill
    }
}
