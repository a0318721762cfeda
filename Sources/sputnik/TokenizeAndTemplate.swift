import ArgumentParser
import ChatTemplate
import Foundation
import GGUF
import Tokenizer

/// `sputnik tokenize`: prints the token ids of a text as a JSON array.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of a text as a JSON array.")

    @Option(name: [.customShort("m"), .long], help: "GGUF file whose tokenizer to use.")
    var model: String
    @Flag(help: "Recognise special-token text (e.g. <|im_start|>) as the special tokens.")
    var special = false
    @Flag(name: .customLong("add-special"), help: "Add BOS/EOS as the vocabulary says.")
    var addSpecial = false
    @Option(help: "The text.")
    var text: String?
    @Option(help: "A UTF-8 file holding the text (read byte for byte: a leading BOM is part of the text).")
    var file: String?

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give exactly one of --text or --file") }
    }

    func run() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: model))
        let input = try text ?? TextFile.read(file!)
        let ids = tok.encode(input, addSpecial: addSpecial, parseSpecial: special)
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
    }
}

/// `sputnik detokenize`: prints the text of token ids.
struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the text of a list of token ids.")

    @Option(name: [.customShort("m"), .long], help: "GGUF file whose tokenizer to use.")
    var model: String
    @Option(parsing: .unconditional, help: "Comma-separated token ids, e.g. 1,2,3.")
    var ids: String
    @Flag(help: "Render special tokens' text too.")
    var special = false

    func run() throws {
        let tok = try Tokenizer(gguf: GGUFFile(path: model))
        var parsed: [Int32] = []
        for part in ids.split(separator: ",") {
            guard let v = Int32(part.trimmingCharacters(in: .whitespaces)), v >= 0, Int(v) < tok.vocabSize else {
                throw ValidationError("'\(part)' is not a token id of this vocabulary (0..<\(tok.vocabSize))")
            }
            parsed.append(v)
        }
        FileHandle.standardOutput.write(Data(tok.detokenize(parsed, renderSpecial: special).utf8))
    }
}

/// `sputnik template`: renders a chat template over messages exactly, with no added newline.
struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a chat template over {\"messages\": [...], \"tools\": [...]} and print it exactly as jinja2 does (the template alone; the server's prompt for a request is POST /apply-template).")

    @Option(name: [.customShort("m"), .long], help: "GGUF file: its tokenizer.chat_template and BOS/EOS text.")
    var model: String?
    @Option(help: "A Jinja template file (instead of --model).")
    var template: String?
    @Option(name: .customLong("bos-token"), help: "BOS text for --template.")
    var bosToken: String?
    @Option(name: .customLong("eos-token"), help: "EOS text for --template.")
    var eosToken: String?
    @Option(help: "JSON file {\"messages\": [...], \"tools\": [...]}.")
    var messages: String
    @Flag(name: .customLong("no-generation-prompt"), help: "Render without add_generation_prompt.")
    var noGenerationPrompt = false
    @Option(help: "Pin strftime_now, e.g. 2025-01-15T10:30:00 (local time).")
    var now: String?

    func validate() throws {
        guard (model == nil) != (template == nil) else { throw ValidationError("give exactly one of --model or --template") }
    }

    func run() throws {
        var source: String
        var bos = bosToken, eos = eosToken
        if let model {
            let f = try GGUFFile(path: model)
            guard let t = try f.optionalString("tokenizer.chat_template") else {
                throw ValidationError("\(model) has no tokenizer.chat_template; pass --template FILE")
            }
            source = t
            let tok = try Tokenizer(gguf: f)
            bos = bos ?? tok.bosTokenId.map { tok.tokenText($0) }
            eos = eos ?? tok.eosTokenId.map { tok.tokenText($0) }
        } else {
            source = try TextFile.read(template!)
        }
        let doc = try JinjaValue.fromJSON(Data(contentsOf: URL(fileURLWithPath: messages)))
        guard case .object(let o) = doc, let msgs = o["messages"] else {
            throw ValidationError("\(messages): expected {\"messages\": [...]}")
        }
        var pinned: Date?
        if let now {
            let fmt = DateFormatter()
            fmt.locale = Locale(identifier: "en_US_POSIX")
            fmt.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
            guard let d = fmt.date(from: now) else { throw ValidationError("--now '\(now)' is not yyyy-MM-ddTHH:mm:ss") }
            pinned = d
        }
        let t = try ChatTemplate(source: source)
        let out = try t.render(messages: msgs, tools: o["tools"], addGenerationPrompt: !noGenerationPrompt,
                               bosToken: bos, eosToken: eos, now: pinned)
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
