import ArgumentParser
import Atomics
import Foundation
import JSON
import Logging
import Server

/// `sputnik chat`: an interactive conversation in the terminal, on a local GGUF model (served in this process on a
/// loopback port) or against a running server (`--url`). Answers stream as they are generated; the conversation is
/// kept and sent whole each turn. Lines starting with `/` are commands: `/reset` forgets the conversation,
/// `/system TEXT` sets the system prompt (`/system` alone shows it, `/system -` clears it), `/exit` (or end of input)
/// quits, `/help` lists them. Ctrl-C stops the answer being streamed (the request is aborted), not the program.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat in the terminal with a local GGUF model or a running server (--url).")

    @Argument(help: "GGUF model file to load (or use --url).")
    var path: String?
    @Option(name: [.customShort("m"), .long], help: "GGUF model file (instead of the argument).")
    var model: String?
    @Option(help: "Base URL of a running OpenAI-compatible server, e.g. http://127.0.0.1:8080.")
    var url: String?
    @Option(name: .customLong("api-key"), help: "Bearer key for --url (default: env SPUTNIK_API_KEY, then OPENAI_API_KEY).")
    var apiKey: String?
    @Option(help: "System prompt to start with.")
    var system: String?
    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Most tokens per answer (default: up to the context).")
    var maxTokens: Int?
    @Option(parsing: .unconditional, help: "Sampling temperature (default: the server's).")
    var temperature: Double?
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past the end-of-sequence token (vLLM's ignore_eos).")
    var ignoreEOS = false
    @Option(name: [.customShort("t"), .long], parsing: .unconditional, help: "Compute threads for a local model (default: number of cores).")
    var threads: Int?
    @Option(name: [.customShort("c"), .customLong("ctx-size")], parsing: .unconditional, help: "Context size for a local model (default 4096).")
    var ctxSize: Int?
    @Option(name: .customLong("kv-cache-type"), help: "KV cache type for a local model: f16 (default), bf16, f32 or q8_0 (MLA models), as `serve`.")
    var kvCacheType: String?

    func validate() throws {
        let local = path ?? model
        if (local == nil) == (url == nil) { throw ValidationError("give a model file or --url (one of them)") }
        if path != nil && model != nil { throw ValidationError("give the model file once") }
        if let m = maxTokens, m < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let t = temperature, !(0...2).contains(t) { throw ValidationError("--temperature must be between 0 and 2") }
        if let k = kvCacheType, ServerOptions.kvCacheElementBytes(k) == nil {
            throw ValidationError("--kv-cache-type must be \(ServerOptions.kvCacheTypeChoices)")
        }
    }

    func run() throws {
        // Ctrl-C sets a flag that the streaming read checks; it never ends the program.
        signal(SIGINT, SIG_IGN)
        let interrupted = ManagedAtomic<Bool>(false)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { interrupted.store(true, ordering: .relaxed) }
        source.resume()
        defer { source.cancel() }

        let env = ProcessInfo.processInfo.environment
        var local: SputnikServer?
        let client: ChatClient
        if let url {
            client = try ChatClient(url: url, apiKey: apiKey ?? env["SPUTNIK_API_KEY"] ?? env["OPENAI_API_KEY"])
        } else {
            LogFormat.bootstrap(.text, level: .warning)
            var o = ServerOptions()
            o.modelPath = path ?? model!
            if path != nil { o.origins["model"] = "model file" }      // errors name the argument, not --model
            o.port = 0
            if let threads { o.threads = threads }
            o.contextSize = ctxSize
            if let k = kvCacheType { o.kvCacheType = k }
            o.maxNumSeqs = 1
            o.loadProgress = LoadProgressReporter.make(label: "loading \(URL(fileURLWithPath: o.modelPath).lastPathComponent)")
            let server = try SputnikServer(options: o, logger: Logger(label: "sputnik"))
            let port = try server.start()
            local = server
            client = try ChatClient(url: "http://127.0.0.1:\(port)", apiKey: nil)
        }
        defer { local?.stop() }
        let modelId = try client.getJSON("/v1/models")["data"]?.arrayValue?.first?["id"]?.stringValue
        var session = ChatSession(system: system)
        let interactive = isatty(0) == 1
        /// Answers go to stdout unbuffered, so each piece shows as it arrives; notes go to stderr.
        func out(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
        func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        if interactive {
            note("Chatting with \(modelId ?? "the server"). /help lists the commands; Ctrl-C stops an answer; /exit or Ctrl-D quits.")
        }

        while true {
            if interactive { out(">>> ") }
            interrupted.store(false, ordering: .relaxed)
            guard let line = readLine(strippingNewline: true) else { break }
            switch session.command(line) {
            case .exit: return
            case .say(let text): note(text); continue
            case .none: break
            }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            session.messages.append(.init(role: "user", content: line))
            var body: [(key: String, value: JSONValue)] = [
                (key: "messages", value: .array(session.wireMessages())),
                (key: "stream", value: .bool(true)),
            ]
            if let modelId { body.append((key: "model", value: .string(modelId))) }
            if let maxTokens { body.append((key: "max_tokens", value: .int(maxTokens))) }
            if let temperature { body.append((key: "temperature", value: .double(temperature))) }
            if ignoreEOS { body.append((key: "ignore_eos", value: .bool(true))) }
            var answer = ""
            do {
                let finished = try client.streamEvents("/v1/chat/completions", body: .object(body),
                                                       shouldStop: { interrupted.load(ordering: .relaxed) }) { event in
                    guard let piece = event["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue,
                          !piece.isEmpty else { return }
                    answer += piece
                    out(piece)
                }
                out("\n")
                if !finished { note("[interrupted]") }
                // A stopped answer stays in the conversation as far as it got.
                session.messages.append(.init(role: "assistant", content: answer))
            } catch {
                if !answer.isEmpty { out("\n") }
                note("error: \(error)")
                session.messages.removeLast()  // the question that failed is not part of the conversation
            }
        }
    }
}

/// The conversation and the slash commands that change it.
struct ChatSession {
    struct Message: Equatable {
        var role: String
        var content: String
    }

    enum Outcome: Equatable {
        /// Not a command: send the line.
        case none
        /// A command that answered with this text.
        case say(String)
        case exit
    }

    var system: String?
    var messages: [Message] = []

    init(system: String?) { self.system = system }

    /// Runs `line` when it is a command.
    mutating func command(_ line: String) -> Outcome {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("/") else { return .none }
        let name = t.split(separator: " ", maxSplits: 1).first.map(String.init) ?? t
        let arg = t.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        switch name {
        case "/exit", "/quit", "/bye": return .exit
        case "/reset", "/clear":
            messages.removeAll()
            return .say("[conversation cleared]")
        case "/system":
            if arg.isEmpty { return .say("[system prompt: \(system ?? "(none)")]") }
            system = arg == "-" ? nil : arg
            return .say(system == nil ? "[system prompt cleared]" : "[system prompt set]")
        case "/help":
            return .say("/reset forgets the conversation; /system TEXT sets the system prompt (/system shows it, /system - clears it); /exit quits. Ctrl-C stops an answer.")
        default:
            return .say("unknown command \(name); /help lists the commands")
        }
    }

    /// The messages to send: the system prompt first, then the conversation.
    func wireMessages() -> [JSONValue] {
        var all: [Message] = system.map { [Message(role: "system", content: $0)] } ?? []
        all += messages
        return all.map { .object([(key: "role", value: .string($0.role)), (key: "content", value: .string($0.content))]) }
    }
}
