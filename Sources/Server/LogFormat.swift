import Foundation
import JSON
import Logging

/// How `sputnik` writes its log lines to stderr (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's text lines: `<time> <level> <label>: [key=value …] message`.
    case text
    /// One JSON object per line (`JSONLogHandler`).
    case json

    /// Installs the process-wide log handler (once, before the first `Logger` is made) at `level`.
    public static func bootstrap(_ format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            case .json:
                var h = JSONLogHandler(label: label, write: JSONLogHandler.standardError)
                h.logLevel = level
                return h
            }
        }
    }
}

/// A metadata string from a client (the request's `user`, its path): swift-log's text lines print it in double
/// quotes, `"` and `\\` escaped, when it holds a space, `=`, `"` or `\\`, so that it cannot add `key=value` fields
/// to an access-log line (`user=bob status=500` read as a second status); JSON lines keep the string as it is.
public struct LogText: CustomStringConvertible, Sendable {
    /// The string itself.
    public let value: String

    /// A metadata value for `value`.
    public static func metadata(_ value: String) -> Logger.Metadata.Value { .stringConvertible(LogText(value: value)) }

    /// `value`, quoted when it must be.
    public var description: String {
        guard value.isEmpty || value.unicodeScalars.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" })
        else { return value }
        var out = "\""
        for c in value.unicodeScalars {
            if c == "\"" || c == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }
}

/// A swift-log handler that writes each event as one JSON object on one line:
/// `{"ts":"2026-12-05T00:00:00.000Z","level":"info","label":"sputnik","source":"Server","msg":"…", <metadata keys>…}`
/// (`source`: the module that wrote it, as the text format's `[Server]`).
/// Metadata values keep their JSON type: integers, floating-point numbers and booleans given as
/// `.stringConvertible` are written as numbers and booleans; dictionaries and arrays nest.
public struct JSONLogHandler: LogHandler {
    /// Events below this level are dropped (by `Logger`).
    public var logLevel: Logger.Level = .info
    /// Fields written on every line of this handler (the event's own fields win on a clash).
    public var metadata: Logger.Metadata = [:]
    /// Fields added at log time (swift-log's task-local metadata).
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameters: `label` the logger's label; `write` receives each line, newline included.
    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    /// Writes `message` as one `critical` JSON line to stderr, before (or without) `LogFormat.bootstrap`: a refusal
    /// to start under `--log-format json` (a command line that does not parse, an option value that does not).
    public static func critical(_ message: String) {
        Logger(label: "sputnik") { JSONLogHandler(label: $0, write: JSONLogHandler.standardError) }.critical("\(message)")
    }

    /// Writes one line to stderr with a single `write(2)`, so concurrent lines never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { p in
            var off = 0
            while off < p.count {
                let n = Foundation.write(2, p.baseAddress! + off, p.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }

    /// One field of `metadata`.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `event` as one line: `ts`, `level`, `label`, `source`, `msg`, then the merged fields sorted by key
    /// (fields named like the first five are left out).
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let m = event.metadata { merged.merge(m) { _, new in new } }
        var fields: [(key: String, value: JSONValue)] = [
            ("ts", .string(Self.timestamp())),
            ("level", .string(event.level.rawValue)),
            ("label", .string(label)),
            ("source", .string(event.source)),   // helper-70: JSON lines did not say which part wrote them
            ("msg", .string(event.message.description)),
        ]
        let reserved: Set<String> = ["ts", "level", "label", "source", "msg"]
        for key in merged.keys.sorted() where !reserved.contains(key) {
            fields.append((key: key, value: Self.json(merged[key]!)))
        }
        write(JSONValue.object(fields).serialized() + "\n")
    }

    /// A metadata value as JSON.
    static func json(_ v: Logger.Metadata.Value) -> JSONValue {
        switch v {
        case .string(let s): return .string(s)
        case .stringConvertible(let c):
            switch c {
            case let t as LogText: return .string(t.value)
            case let i as Int: return .int(i)
            case let d as Double: return .double(d)
            case let b as Bool: return .bool(b)
            default: return .string(c.description)
            }
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.keys.sorted().map { (key: $0, value: json(d[$0]!)) })
        }
    }

    /// UTC time with milliseconds, ISO 8601.
    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(tv.tv_usec / 1000))
    }
}
