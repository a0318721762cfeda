// Method + path-pattern routing: the application answers 404 / 405 itself from `match`.

/// Maps `(method, path)` to handlers. Patterns are `/`-separated literal segments, `{name}` (one segment) and,
/// as the last segment only, `{name...}` (the rest of the path, slashes included — model ids such as
/// `Qwen/Qwen2.5-0.5B` contain them). Literal segments match the raw (not percent-decoded) path; captured values
/// are percent-decoded. The first matching route in registration order wins; `HEAD` falls back to `GET` routes.
public struct HTTPRouter: Sendable {
    /// A route handler: the request, its captured path parameters (`["id": "…"]`) and the responder.
    public typealias Handler = @Sendable (HTTPRequest, [String: String], HTTPResponder) -> Void

    /// Result of matching a request.
    public enum Match: Sendable {
        case found(Handler, parameters: [String: String])
        /// The path exists but not for this method; `allowed` lists the methods that do match.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        case rest(String)
    }

    struct Route: Sendable {
        let method: String
        let pattern: String
        let segments: [Segment]
        let handler: Handler
    }

    private var table: [Route] = []

    /// Defaults as documented on each property.
    public init() {}

    /// Registered `(method, pattern)` pairs in order (e.g. to check every route for authentication in tests).
    public var routes: [(method: String, pattern: String)] { table.map { ($0.method, $0.pattern) } }

    /// Adds a route. A pattern must start with `/`, and `{name...}` may only be the last segment (preconditions).
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        precondition(pattern.hasPrefix("/"), "route pattern must start with '/': \(pattern)")
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var segments: [Segment] = []
        for (i, p) in parts.enumerated() {
            if p.hasPrefix("{") && p.hasSuffix("...}") {
                precondition(i == parts.count - 1, "'{name...}' must be the last segment: \(pattern)")
                segments.append(.rest(String(p.dropFirst().dropLast(4))))
            } else if p.hasPrefix("{") && p.hasSuffix("}") {
                segments.append(.parameter(String(p.dropFirst().dropLast())))
            } else {
                segments.append(.literal(String(p)))
            }
        }
        table.append(Route(method: method.uppercased(), pattern: pattern, segments: segments, handler: handler))
    }

    /// Finds the handler for `method` and a raw `path` (`HTTPRequest.path`).
    public func match(method: String, path: String) -> Match {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        var allowed: [String] = []
        var fallback: (Handler, [String: String])?
        for route in table {
            guard let params = HTTPRouter.bind(route.segments, parts) else { continue }
            if route.method == method { return .found(route.handler, parameters: params) }
            if method == "HEAD" && route.method == "GET" && fallback == nil { fallback = (route.handler, params) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let fallback { return .found(fallback.0, parameters: fallback.1) }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    static func bind(_ segments: [Segment], _ parts: [String]) -> [String: String]? {
        var params: [String: String] = [:]
        for (i, seg) in segments.enumerated() {
            switch seg {
            case .rest(let name):
                guard i < parts.count else { return nil }
                let rest = parts[i...].joined(separator: "/")
                guard !rest.isEmpty else { return nil }
                params[name] = HTTPRequest.percentDecode(Substring(rest), plusIsSpace: false)
                return params
            case .literal(let l):
                guard i < parts.count, parts[i] == l else { return nil }
            case .parameter(let name):
                guard i < parts.count, !parts[i].isEmpty else { return nil }
                params[name] = HTTPRequest.percentDecode(Substring(parts[i]), plusIsSpace: false)
            }
        }
        return segments.count == parts.count ? params : nil
    }

}
