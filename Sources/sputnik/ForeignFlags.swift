/// Options of llama-server and vLLM that `sputnik serve` does not have, found before argument-parser sees them: it
/// read `-hf` as `-h -f` (help, exit 0: a service manager saw a clean exit) and `-ctk` as `-c` with a value `tk`, and
/// the value of an unknown option given beside `-m` became a second model file ("give the model file once"), so the
/// message named neither the option nor what to use instead (helper-67).
enum ForeignFlags {
    /// Why this server has no such option, and what to use instead, per option name (llama-server's, then vLLM's).
    static let refusals: [(names: [String], why: String)] = [
        (["-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token", "-hfd", "-hfrd", "--hf-repo-draft",
          "-mu", "--model-url", "--docker-repo", "-dr"],
         "downloads a model; this server loads a local GGUF file: give it as the argument or with -m FILE "
            + "(scripts/fetch-models.sh fetches the default models)"),
        (["-ngl", "--gpu-layers", "--n-gpu-layers", "-sm", "--split-mode", "-ts", "--tensor-split", "-mg", "--main-gpu",
          "-dev", "--device", "--gpu-memory-utilization", "--tensor-parallel-size", "-tp", "--pipeline-parallel-size",
          "-pp", "--cpu-offload-gb", "--enforce-eager"],
         "places work on GPUs; this server runs on the CPU only: leave it out"),
        (["-np", "--parallel"], "sets the number of slots; here --max-num-seqs N sets how many requests are decoded together "
            + "(each with the whole --ctx-size, which llama-server divides among its slots)"),
        (["-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "--kv-cache-dtype"],
         "sets the KV cache type; here --kv-cache-type (f16, bf16, f32 or q8_0) sets it for keys and values together"),
        (["-n", "--n-predict", "--predict"], "sets a default generation length; here each request gives max_tokens"),
        (["--temp", "--temperature", "--top-k", "--top-p", "--min-p", "--seed", "-s", "--repeat-penalty"],
         "sets a default sampling parameter; here each request gives its own (temperature, top_p, seed, …)"),
        (["-fa", "--flash-attn", "-cb", "--cont-batching", "-nocb", "--no-cont-batching", "--enable-chunked-prefill",
          "--jinja", "--no-webui", "--webui", "--slots", "--metrics", "--embeddings", "--embedding", "--reranking"],
         "has no counterpart here: batching is always continuous, templates are always Jinja, /metrics is always served, "
            + "and there is no web UI, slots endpoint or embeddings endpoint; leave it out"),
        (["--served-model-name"], "names the model; here that is --alias NAME"),
        (["--max-model-len"], "sets the context length; here that is -c / --ctx-size N"),
        (["--api-key-file"], "reads keys from a file; here --api-key takes them (separated by commas) or SPUTNIK_API_KEY"),
        (["--ssl-key-file"], "is --ssl-keyfile here"),
        (["--ssl-cert-file"], "is --ssl-certfile here"),
        (["-to"], "sets the read timeout; here that is --timeout SECONDS"),
    ]

    /// The refusal for the first foreign option among `arguments` of `sputnik serve` (its value or `name=value`
    /// form included), or nil. A single dash followed by two or more letters is never one of this command's options
    /// (its short options are single letters), so any other such token is refused by name too, before it can be read
    /// as a cluster of short options.
    static func refusal(_ arguments: [String]) -> String? {
        guard arguments.first == "serve" else { return nil }
        var previous = ""
        for a in arguments.dropFirst() {
            if a == "--" { break }
            defer { previous = a }
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if let r = refusals.first(where: { $0.names.contains(name) }) {
                return "Unknown option '\(name)'. In llama-server or vLLM it \(r.why)"
            }
            // After an option that takes a value (`--api-key -secret`, `-m -file.gguf`), a dash word is its value.
            let afterOption = previous.hasPrefix("-") && !previous.contains("=") && previous.count > 1
            if !afterOption, name.count > 2, name.hasPrefix("-"), !name.hasPrefix("--"), name.dropFirst().allSatisfy(\.isLetter) {
                return "Unknown option '\(name)' (this server's short options are single letters: see sputnik serve --help)"
            }
        }
        return nil
    }
}
