import ArgumentParser

/// The `sputnik-tools` command: the developer tools that the served binary does not carry — throughput
/// benchmarks and the memory-bandwidth probe (`bench`), logits dumps (`logits`), tokenizer speed
/// (`bench-tokenize`) and full-size synthetic models (`synth`, with `--verify` and `--bench`).
@main
struct SputnikTools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sputnik-tools",
        abstract: "Sputnik developer tools: benchmarks, logits dumps, synthetic models.",
        subcommands: [Bench.self, GrammarBench.self, Logits.self, TokenizeBench.self, Synth.self])
}
