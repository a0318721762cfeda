import ArgumentParser
import Foundation
import GGUF
import Tokenizer

/// `sputnik-tools bench-tokenize`: encode throughput (MB/s) of a model's tokenizer on a ~1 MB mixed corpus.
struct TokenizeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-tokenize",
        abstract: "Measure tokenizer encode speed (MB/s) on a ~1 MB mixed corpus.")

    @Option(name: [.customShort("m"), .long], help: "GGUF file(s) whose tokenizer to measure (repeatable).")
    var model: [String]
    @Option(help: "JSONL corpus with a \"text\" field per line (default: Tests/Fixtures/tokenizer/corpus.jsonl).")
    var corpus = "Tests/Fixtures/tokenizer/corpus.jsonl"
    @Option(help: "Corpus size in bytes, built by repeating the corpus texts.")
    var bytes = 1 << 20
    @Option(name: [.customShort("r"), .long], help: "Timed repetitions.")
    var repetitions = 3

    func run() throws {
        var texts: [String] = []
        for line in try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n") {
            if let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
               let t = obj["text"] as? String, !t.isEmpty { texts.append(t) }
        }
        guard !texts.isEmpty else { throw ValidationError("\(corpus): no texts") }
        // Documents of ~4 KiB: corpus strings joined by newlines, as a mixed-language/code/number stream.
        var docs: [String] = []
        var total = 0, doc = "", i = 0
        while total < bytes {
            doc += texts[i % texts.count] + "\n"
            i += 1
            if doc.utf8.count >= 4096 { docs.append(doc); total += doc.utf8.count; doc = "" }
        }
        print("| model | vocab | load s | corpus MiB | encode MB/s (median of \(repetitions)) | tokens |")
        print("|---|---:|---:|---:|---:|---:|")
        for path in model {
            let t0 = Date()
            let tok = try Tokenizer(gguf: GGUFFile(path: path))
            let load = Date().timeIntervalSince(t0)
            var rates: [Double] = []
            var count = 0
            for _ in 0..<repetitions {
                let start = DispatchTime.now().uptimeNanoseconds
                count = 0
                for d in docs { count += tok.encode(d, addSpecial: false, parseSpecial: false).count }
                let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rates.append(Double(total) / 1e6 / s)
            }
            rates.sort()
            let name = URL(fileURLWithPath: path).lastPathComponent
            print("| \(name) | \(tok.vocabSize) | \(String(format: "%.2f", load)) | \(String(format: "%.2f", Double(total) / 1_048_576)) | \(String(format: "%.2f", rates[rates.count / 2])) | \(count) |")
        }
    }
}
