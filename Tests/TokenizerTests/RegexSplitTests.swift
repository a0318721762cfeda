import Foundation
import TestSupport
import XCTest
@testable import Tokenizer

/// Pre-tokenizer splits against `Tests/Fixtures/tokenizer/regex-splits.json` (an emulation of llama.cpp's
/// std::regex splitting; see regex-splits.md there). The only reference for the `deepseek-v3` pre-tokenizer.
final class RegexSplitTests: XCTestCase {
    func testSplitsMatchRegexEmulation() throws {
        let url = URL(fileURLWithPath: Fixtures.path("tokenizer/regex-splits.json"))
        let ref = try JSONDecoder().decode([String: [[Int]]].self, from: Data(contentsOf: url))
        let corpus = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/corpus.jsonl")))
        struct Line: Decodable { let text: String }
        let texts = try corpus.split(separator: 0x0A).map { try JSONDecoder().decode(Line.self, from: Data($0)).text }
        let kinds: [(String, PreTokenizerKind)] = [
            ("qwen2", .qwen2), ("deepseekV3", .deepseekV3), ("deepseekCoder", .deepseekCoder), ("gpt2", .gpt2),
            ("smollm", .smollm), ("llama3", .llama3), ("bpeDefault", .bpeDefault),
        ]
        for (name, kind) in kinds {
            let want = try XCTUnwrap(ref[name])
            XCTAssertEqual(want.count, texts.count)
            var ok = 0
            for (i, t) in texts.enumerated() {
                let cps = t.unicodeScalars.map { $0.value }
                let flags = cps.map { CharClass.flags($0) }
                var out: [Int32] = [], tmp: [Int32] = []
                cps.withUnsafeBufferPointer { c in
                    flags.withUnsafeBufferPointer { f in PreTokenizer(stages: kind.stages).split(c, f, out: &out, tmp: &tmp) }
                }
                var lens: [Int] = [], s = 0
                for e in out { lens.append(Int(e) - s); s = Int(e) }
                if lens == want[i] { ok += 1 } else { print("  FAIL \(name) #\(i) \(t.debugDescription.prefix(60)): \(lens) != \(want[i])") }
            }
            print("[\(name) splits] strings checked: \(texts.count), passed: \(ok)")
            XCTAssertEqual(ok, texts.count, name)
        }
    }
}
