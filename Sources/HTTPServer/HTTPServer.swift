// The listening socket: accepts connections on a Dispatch read source and hands each to an `HTTPConnection`.

import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `close(2)` under a name that does not clash with members called `close`.
@inline(__always) func sysClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}

/// A hand-rolled HTTP/1.1 server on POSIX sockets and Dispatch (no NIO).
///
/// Each request is handed to `handler` on a global Dispatch queue (a light one, see
/// `HTTPServerConfiguration.isLightRequest`, on a serial queue of its own) together with an `HTTPResponder`; the
/// handler may answer later from any thread. Protocol errors (400, 408, 413, 414, 417, 431, 501, 505), the connection
/// limit and the buffer budget (503) are answered here, with the body `HTTPServerConfiguration.errorBody` renders
/// (plain text unless the application sets its own shape), and never reach the handler.
public final class HTTPServer: @unchecked Sendable {
    /// The settings this server was created with.
    public let configuration: HTTPServerConfiguration
    private let logger: Logger
    private let handler: @Sendable (HTTPRequest, HTTPResponder) -> Void
    private let expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)?
    private let lock = Lock()
    private let budget: BufferBudget
    private var listenFD: Int32 = -1
    private var acceptSource: DispatchSourceRead?
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var rejecting = 0
    /// Connections past the limit that may make one light request (`HTTPServerConfiguration.lightOnlyConnections`).
    private var lightOnlyCount = 0
    private var acceptPaused = false
    private var stopped = false
    private let acceptQueue = DispatchQueue(label: "sputnik.http.accept")

    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - logger: receives connection-level diagnostics (debug/trace) and warnings.
    ///   - expectation: optional check of a request head, run before the body is read when it carries
    ///     `Expect: 100-continue` (body empty), and before a content-encoded body is inflated; returning
    ///     `(status, headers, body)` answers with that final response and closes the connection instead of
    ///     sending `100 Continue` / inflating (e.g. 401 for a bad API key).
    ///   - handler: called once per complete request, on a global Dispatch queue (light requests: a serial queue).
    public init(configuration: HTTPServerConfiguration, logger: Logger,
                expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)? = nil,
                handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        self.expectation = expectation
        self.budget = BufferBudget(limit: configuration.maxBufferedBytesTotal)
    }

    deinit { stop() }

    /// Binds, listens and starts accepting.
    /// - Returns: the bound TCP port (the ephemeral one when `configuration.port` is 0).
    /// - Throws: `HTTPServerError.invalidAddress`, `.socket(call:errno:)` (bind in use, …), `.alreadyStarted`.
    public func start() throws -> Int {
        try lock.withLock {
            if listenFD >= 0 || stopped { throw HTTPServerError.alreadyStarted }
        }
        let host = configuration.host == "localhost" ? "127.0.0.1" : configuration.host
        var storage = sockaddr_storage()
        let family: Int32
        var len: socklen_t
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(truncatingIfNeeded: configuration.port).bigEndian)
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { throw HTTPServerError.invalidAddress(configuration.host) }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            family = AF_INET6
            len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(truncatingIfNeeded: configuration.port).bigEndian)
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { throw HTTPServerError.invalidAddress(configuration.host) }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            family = AF_INET
            len = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        #if canImport(Glibc)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(family, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw HTTPServerError.socket(call: "socket", errno: errno) }
        // A peer that resets while OpenSSL writes (it uses write(2), not send with MSG_NOSIGNAL) must give EPIPE,
        // not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0 else {
            let e = errno
            _ = sysClose(fd)
            throw HTTPServerError.socket(call: "bind", errno: e)
        }
        guard listen(fd, 4096) == 0 else {
            let e = errno
            _ = sysClose(fd)
            throw HTTPServerError.socket(call: "listen", errno: e)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var actual = sockaddr_storage()
        len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port: Int = withUnsafeBytes(of: actual) { raw in
            family == AF_INET6 ? Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
                               : Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
        let src = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
        src.setEventHandler { [weak self] in self?.acceptAll() }
        src.setCancelHandler { _ = sysClose(fd) }
        lock.withLock {
            listenFD = fd
            acceptSource = src
        }
        src.resume()
        logger.info("HTTP server listening on \(configuration.host):\(port)")
        return port
    }

    /// Stops accepting new connections (the listening socket closes) while the open ones keep being served;
    /// their responses from now on carry `Connection: close`, and idle keep-alive ones close at once. Used to drain
    /// before `stop()`. Idempotent.
    public func stopAccepting() {
        let (src, conns) = lock.withLock { detachListener() }
        src?.cancel()
        for c in conns { c.drainStarted() }
    }

    /// Stops accepting and closes every connection (pending responders see `onClose`). Idempotent.
    public func stop() {
        let (src, conns) = lock.withLock {
            stopped = true
            return detachListener()
        }
        src?.cancel()
        for c in conns { c.shutdownFromServer() }
    }

    /// Takes the accept source out of service (resumed first if paused, so it can be cancelled) and returns it with
    /// the open connections. Called with `lock` held.
    private func detachListener() -> (DispatchSourceRead?, [HTTPConnection]) {
        let s = acceptSource
        if acceptPaused { s?.resume() }
        acceptPaused = false
        acceptSource = nil
        listenFD = -1
        return (s, Array(connections.values))
    }

    /// Number of open connections (rejected ones excluded).
    public var connectionCount: Int { lock.withLock { connections.count } }

    /// Bytes buffered over all connections (parser-held input plus unsent output), counted against
    /// `HTTPServerConfiguration.maxBufferedBytesTotal`.
    public var bufferedBytes: Int { budget.usedBytes }

    private func acceptAll() {
        guard let fd = lock.withLock({ listenFD >= 0 ? listenFD : nil }) else { return }
        for _ in 0..<256 {
            let client = accept(fd, nil, nil)
            if client < 0 {
                let e = errno
                if e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // Out of descriptors: pause accepting briefly instead of spinning on a readable listener.
                    logger.warning("accept failed: \(HTTPServerError.socket(call: "accept", errno: e)); pausing 100 ms")
                    let paused: Bool = lock.withLock {
                        guard let src = acceptSource, !acceptPaused else { return false }
                        src.suspend()
                        acceptPaused = true
                        return true
                    }
                    if paused { acceptQueue.asyncAfter(deadline: .now() + 0.1) { [weak self] in self?.resumeAccepting() } }
                } else if e != EAGAIN && e != EWOULDBLOCK {
                    logger.warning("accept failed: \(HTTPServerError.socket(call: "accept", errno: e))")
                }
                return
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            // Past the limit, a few connections may still make a light request (a liveness probe); the rest are
            // refused unread.
            let (atLimit, lightOnly): (Bool, Bool) = lock.withLock {
                guard connections.count >= configuration.maxConnections else { return (false, false) }
                return (true, lightOnlyCount < configuration.lightOnlyConnections)
            }
            let limited = "Server is at its connection limit; retry later"
            let rejection: String? = atLimit && !lightOnly ? limited
                : budget.isSpent ? "Server is out of buffer memory; retry later" : nil
            let kind: ConnectionKind = rejection != nil ? .rejected : lightOnly ? .lightOnly : .served
            let conn = HTTPConnection(fd: client, config: configuration, budget: budget, logger: logger, handler: handler,
                                      expectation: expectation,
                                      onClosed: { [weak self] c in self?.connectionClosed(c, kind: kind) })
            lock.withLock {
                switch kind {
                case .rejected: rejecting += 1
                case .lightOnly: lightOnlyCount += 1
                case .served: connections[ObjectIdentifier(conn)] = conn
                }
            }
            if let rejection { logger.debug("\(rejection); answering 503") }
            conn.start(reject: rejection, lightOnly: kind == .lightOnly ? limited : nil)
        }
    }

    private func resumeAccepting() {
        lock.withLock {
            if acceptPaused, let src = acceptSource { src.resume() }
            acceptPaused = false
        }
    }

    /// How a connection was taken in (`acceptAll`).
    private enum ConnectionKind { case served, lightOnly, rejected }

    private func connectionClosed(_ c: HTTPConnection, kind: ConnectionKind) {
        lock.withLock {
            switch kind {
            case .rejected: rejecting -= 1
            case .lightOnly: lightOnlyCount -= 1
            case .served: connections[ObjectIdentifier(c)] = nil
            }
        }
    }
}
