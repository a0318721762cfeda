import Foundation

/// Where `sputnik serve` reads an option that is not on its command line: first the environment variable
/// `SPUTNIK_<NAME>` (`--ctx-size` → `SPUTNIK_CTX_SIZE`), then the key `<name>` of the YAML `--config` file.
/// Flags win over both; the caller applies them (`flag ?? layers.int("ctx-size")`).
///
/// The config file arrives already parsed (a flat mapping of option names to scalars: `String`, `Int`, `Bool`,
/// `Double`); an unknown file key is an error. `SPUTNIK_*` variables that name no option are reported by
/// `unknownEnvironment` (the caller warns, `unknownVariableWarning`; they are not errors, since the project's tests
/// and tools share the prefix).
public struct OptionLayers {
    /// Every option name that the environment and the config file may set (`sputnik serve --<name>`).
    public static let keys: [String] = [
        "config", "model", "alias", "host", "port", "threads", "ctx-size", "max-num-seqs", "max-num-batched-tokens",
        "block-size", "kv-cache-type", "max-queued-requests", "scheduling-policy", "api-key", "chat-template",
        "log-level", "log-format", "kv-cache-memory", "enable-prefix-caching", "repack", "mmap", "mlock", "allowed-origins",
        "metrics-no-auth", "ssl-keyfile", "ssl-certfile", "shutdown-timeout", "sse-keepalive", "max-connections", "timeout", "max-n",
        "reasoning-format", "disable-access-log-for-endpoints",
    ]

    /// `SPUTNIK_` + the name in upper case with `-` as `_`: `max-num-seqs` → `SPUTNIK_MAX_NUM_SEQS`.
    public static func environmentName(_ key: String) -> String {
        "SPUTNIK_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The process environment (only `SPUTNIK_*` entries matter).
    public let environment: [String: String]
    /// The config file's mapping; empty without a file.
    public let file: [String: Any]
    /// The config file's path, for messages.
    public let filePath: String?

    /// - Throws: `ServerError.invalidOption` naming the file and key when the file has a key that is no option
    ///   (`config` itself is not allowed in a file).
    public init(environment: [String: String], file: [String: Any] = [:], filePath: String? = nil) throws {
        self.environment = environment
        self.file = file
        self.filePath = filePath
        let known = Set(Self.keys).subtracting(["config"])
        if let bad = file.keys.sorted().first(where: { !known.contains($0) }) {
            throw ServerError.invalidOption("config file \(filePath ?? ""): unknown key '\(bad)'")
        }
    }

    /// `SPUTNIK_*` variables that name no option, sorted.
    public var unknownEnvironment: [String] {
        let known = Set(Self.keys.map(Self.environmentName))
        return environment.keys.filter { $0.hasPrefix("SPUTNIK_") && !known.contains($0) }.sorted()
    }

    /// The project's own `SPUTNIK_*` variables that are not `serve` options: read by the server for diagnostics
    /// (`SPUTNIK_KERNELS`, `SPUTNIK_PROFILE_STEPS`) or by its tools, tests and scripts (set in the environment
    /// the server inherits). Not reported as unknown.
    public static let otherVariables: Set<String> = [
        "SPUTNIK_KERNELS", "SPUTNIK_PROFILE_STEPS", "SPUTNIK_BIN", "SPUTNIK_TOOLS_BIN", "SPUTNIK_QWEN_MODEL",
        "SPUTNIK_MODELS_DIR", "SPUTNIK_BUILD_COMMIT", "SPUTNIK_FUZZ_TARGET", "SPUTNIK_FUZZ_TEMPLATES", "SPUTNIK_BENCH",
        "SPUTNIK_RECORD_GREEDY",
    ]

    /// What to say about an unknown variable `name` (an element of `unknownEnvironment`): nil for one of
    /// `otherVariables`, else a warning naming the closest option variable when one is a likely misspelling
    /// (`SPUTNIK_MAX_NUM_SEQ` → `SPUTNIK_MAX_NUM_SEQS`; at most 2 edits, or the same name without `_`).
    public static func unknownVariableWarning(_ name: String) -> String? {
        guard !otherVariables.contains(name) else { return nil }
        let variables = keys.map(environmentName)
        if variables.contains(name.uppercased()) {
            return "ignoring \(name): it names no option (did you mean \(name.uppercased())? the names are upper case)"
        }
        if name.hasPrefix("SPUTNIK_NO_"), variables.contains("SPUTNIK_" + name.dropFirst("SPUTNIK_NO_".count)) {
            return "ignoring \(name): it names no option (did you mean SPUTNIK_\(name.dropFirst("SPUTNIK_NO_".count))=false?)"
        }
        let squash = { (s: String) in s.replacingOccurrences(of: "_", with: "") }
        let close = variables.min { editDistance($0, name) < editDistance($1, name) }
        if let close, editDistance(close, name) <= 2 || squash(close) == squash(name) {
            return "ignoring \(name): it names no option (did you mean \(close)?)"
        }
        return "ignoring \(name): it names no option (`sputnik serve --help` lists them; SPUTNIK_ + the flag)"
    }

    /// `--disable-access-log-for-endpoints`: comma-separated paths, blanks dropped; `""` or `none` is none (`none`
    /// for the environment, where an empty variable counts as unset).
    public static func pathList(_ text: String) -> [String] {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "none" { return [] }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Levenshtein distance of `a` and `b` (characters).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var row = Array(0...y.count)
        for i in 1...x.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...y.count {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (x[i - 1] == y[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[y.count]
    }

    /// The raw value of `key` and where it came from ("SPUTNIK_X" or "config key 'x'"); an empty variable counts
    /// as unset.
    private func lookup(_ key: String) -> (value: Any, origin: String)? {
        let name = Self.environmentName(key)
        if let v = environment[name], !v.isEmpty { return (v, name) }
        if let v = file[key] { return (v, "config key '\(key)'") }
        return nil
    }

    /// Where `key`'s value comes from — `SPUTNIK_X` or `config key 'x'` — or nil when neither layer sets it. Error
    /// messages about a value name this instead of the flag (`ServerOptions.origins`).
    public func origin(_ key: String) -> String? { lookup(key)?.origin }

    /// A string option. Scalars of the file are written as text (`port: 80` → "80").
    public func string(_ key: String) throws -> String? {
        guard let (v, origin) = lookup(key) else { return nil }
        if let s = v as? String { return s }
        // YAML scalars that are not strings (`port`-like numbers, yes/no) read as written; a list, a mapping or
        // an empty value (null) is not a string.
        if v is Int || v is Double || v is Bool { return "\(v)" }
        let got = v is NSNull ? "no value" : v is [Any] ? "a list" : v is [AnyHashable: Any] ? "a mapping" : "'\(v)'"
        throw ServerError.invalidOption("\(origin) must be a string, got \(got)")
    }

    /// An integer option. - Throws: `ServerError.invalidOption` naming the variable or key when it is not an integer.
    public func int(_ key: String) throws -> Int? {
        guard let (v, origin) = lookup(key) else { return nil }
        if let i = v as? Int { return i }
        if let s = v as? String, let i = Int(s.trimmingCharacters(in: .whitespaces)) { return i }
        throw ServerError.invalidOption("\(origin) must be an integer, got '\(v)'")
    }

    /// A boolean option: true/false (also 1/0, yes/no, on/off in the environment).
    /// - Throws: `ServerError.invalidOption` naming the variable or key for anything else.
    public func bool(_ key: String) throws -> Bool? {
        guard let (v, origin) = lookup(key) else { return nil }
        if let b = v as? Bool { return b }
        if let s = v as? String {
            switch s.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: break
            }
        }
        throw ServerError.invalidOption("\(origin) must be true or false, got '\(v)'")
    }

    /// A number option (an integer is accepted as well).
    /// - Throws: `ServerError.invalidOption` naming the variable or key when it is not a number.
    public func double(_ key: String) throws -> Double? {
        guard let (v, origin) = lookup(key) else { return nil }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let s = v as? String, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return d }
        throw ServerError.invalidOption("\(origin) must be a number, got '\(v)'")
    }

    /// A list option: a YAML list of scalars in the file, or one text value (environment or file) that `parse`
    /// splits (e.g. a JSON list or comma-separated values).
    /// - Throws: `ServerError.invalidOption` for other values, or what `parse` throws.
    public func stringList(_ key: String, parse: (String) throws -> [String]) throws -> [String]? {
        guard let (v, origin) = lookup(key) else { return nil }
        if let list = v as? [Any] { return list.map { "\($0)" } }
        if let s = v as? String { return try parse(s) }
        throw ServerError.invalidOption("\(origin) must be a list of strings, got '\(v)'")
    }
}
