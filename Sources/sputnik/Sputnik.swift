import ArgumentParser

/// The `sputnik` command: `serve`, `chat` (a terminal REPL), and the model inspection commands `info`, `tokenize`, `detokenize` and
/// `template`. The developer tools (benchmarks, logits dumps, synthetic models) are in `sputnik-tools`.
@main
struct Sputnik: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sputnik",
        abstract: "OpenAI-compatible inference server for GGUF models on CPUs.",
        subcommands: [Serve.self, Chat.self, Info.self, Tokenize.self, Detokenize.self, Template.self])
}
