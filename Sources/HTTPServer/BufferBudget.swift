// The server-wide budget for buffered bytes (request input held by parsers plus unsent response output), shared
// by every connection of one `HTTPServer`. See `HTTPServerConfiguration.maxBufferedBytesTotal`.

/// A locked counter of bytes buffered across all connections, checked against a limit.
final class BufferBudget: @unchecked Sendable {
    /// The limit in bytes.
    let limit: Int
    private let lock = Lock()
    private var used = 0

    /// A budget of `limit` bytes, none used.
    init(limit: Int) { self.limit = limit }

    /// Adds `delta` bytes (negative: releases them).
    @inline(__always) func add(_ delta: Int) {
        guard delta != 0 else { return }
        lock.withLock { used += delta }
    }

    /// Bytes currently counted.
    var usedBytes: Int { lock.withLock { used } }

    /// True when the counted bytes reached the limit: refuse new input.
    var isSpent: Bool { lock.withLock { used >= limit } }
}
