import ArgumentParser

/// The `sputnik` command: `serve`, `info`, and the model tools (`synth` writes synthetic models).
@main
struct Sputnik: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sputnik",
        abstract: "OpenAI-compatible inference server for GGUF models on CPUs.",
        subcommands: [Serve.self, Info.self, Tokenize.self, Detokenize.self, Template.self, Bench.self, Logits.self,
                      TokenizeBench.self, Synth.self])
}
