import ArgumentParser
import Foundation
import Server

/// The `sputnik` command: `serve`, `chat` (a terminal REPL), and the model inspection commands `info`, `tokenize`, `detokenize` and
/// `template`. The developer tools (benchmarks, logits dumps, synthetic models) are in `sputnik-tools`.
@main
struct Sputnik: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sputnik",
        abstract: "OpenAI-compatible inference server for GGUF models on CPUs.",
        version: SputnikVersion.string,
        subcommands: [Serve.self, Chat.self, Info.self, Tokenize.self, Detokenize.self, Template.self])

    /// Parses and runs the command as `ParsableCommand.main()` does, except that a `serve` command line that does not
    /// parse, when it (or `SPUTNIK_LOG_FORMAT`) asks for JSON logs, is reported as one `critical` JSON line on standard
    /// error (it was argument-parser's plain text, which a log collector cannot read: helper-59), with the same exit
    /// status (64).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            if let refusal = ForeignFlags.refusal(arguments) { throw ValidationError(refusal) }
            command = try parseAsRoot(arguments)
        } catch {
            let code = exitCode(for: error)
            if code != .success, Self.asksForJSONLogs(arguments, environment: ProcessInfo.processInfo.environment) {
                JSONLogHandler.critical(message(for: error))
                Foundation.exit(code.rawValue)
            }
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    /// True when `arguments` run `serve` with `--log-format json` (or `--log-format=json`), or without the flag while
    /// `SPUTNIK_LOG_FORMAT` is `json`: the format the server would log in had the line parsed.
    static func asksForJSONLogs(_ arguments: [String], environment: [String: String]) -> Bool {
        guard arguments.first == "serve" else { return false }
        var flag: String?
        for (i, a) in arguments.enumerated() {
            if a == "--log-format", i + 1 < arguments.count { flag = arguments[i + 1] }
            if a.hasPrefix("--log-format=") { flag = String(a.dropFirst("--log-format=".count)) }
        }
        return (flag ?? environment[OptionLayers.environmentName("log-format")]) == "json"
    }
}
