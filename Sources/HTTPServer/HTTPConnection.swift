// One accepted TCP connection: the I/O driver around `ConnectionStateMachine`. A non-blocking socket is served
// by Dispatch read/write sources and one timer on a private serial queue; every socket event goes through the
// state machine, and its actions are performed here in order.
//
// The socket is read at all times (also while the application computes an answer), so a client that goes
// away is noticed at once and reported through `HTTPResponder.onClose`.

import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class HTTPConnection: @unchecked Sendable {
    let fd: Int32
    let config: HTTPServerConfiguration
    private let budget: BufferBudget
    private let queue: DispatchQueue
    private let logger: Logger
    private let handler: @Sendable (HTTPRequest, HTTPResponder) -> Void
    private let expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)?

    /// The application's refusal of a request from its head alone (`expectation`), as response bytes that close
    /// the connection; nil when it may go on.
    private func earlyRejection(_ head: HTTPRequest) -> [UInt8]? {
        guard let early = expectation?(head) else { return nil }
        var fields = early.1.filter { $0.0.lowercased() != "content-length" && $0.0.lowercased() != "connection" }
        fields += [("Content-Length", String(early.2.count)), ("Connection", "close")]
        return HTTPResponseWriter.head(status: early.0, headers: fields) + early.2
    }
    private let onClosed: @Sendable (HTTPConnection) -> Void

    // Confined to `queue`.
    private var machine: ConnectionStateMachine
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var timer: DispatchSourceTimer?
    private var readSuspended = false
    private var writeActive = false
    private var liveSources = 0
    private var out: [UInt8] = []
    private var outIndex = 0
    private var current: HTTPResponder?
    /// Whether the last request delivered was light (`HTTPServerConfiguration.isLightRequest`); nil before the first.
    private var lastRequestLight: Bool?
    private var closed = false
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)
    /// Bytes of parser-held input currently counted in `budget`.
    private var inputCharged = 0
    /// Bytes handed to the kernel so far (ciphertext with TLS), and how many of them the client had taken
    /// (handed minus the kernel's send queue, TIOCOUTQ) at the last timer check: only the client taking bytes
    /// is write progress, not the kernel buffering them.
    private var plainBytesHanded: UInt64 = 0
    private var deliveredAtLastCheck: UInt64 = 0
    /// When the connection timer fires next (monotonic seconds; infinity: not armed).
    private var timerDeadline = Double.infinity
    /// When bytes were last handed to the kernel (monotonic seconds).
    private var lastHandedAt = 0.0
    /// The TLS session when the server speaks HTTPS (nil: plain TCP).
    private let tls: TLSSession?
    /// When the TLS handshake must be complete (`headerTimeout` after accept).
    private var handshakeDeadline = 0.0
    /// A TLS write asked for input first (rare: a key update); the next readable event retries the write.
    private var writeWantsRead = false

    // Guarded by `lock`.
    private let lock = Lock()
    /// Unsent output bytes (also counted in `budget`).
    private var buffered = 0
    /// Set when the connection closed: later output is neither counted nor queued.
    private var outputClosed = false
    private var stopping = false

    init(fd: Int32, config: HTTPServerConfiguration, budget: BufferBudget, logger: Logger,
         handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void,
         expectation: (@Sendable (HTTPRequest) -> (Int, [(String, String)], [UInt8])?)?,
         onClosed: @escaping @Sendable (HTTPConnection) -> Void) {
        self.fd = fd
        self.config = config
        self.budget = budget
        self.logger = logger
        self.handler = handler
        self.expectation = expectation
        self.onClosed = onClosed
        // A serial queue of libdispatch's default (overcommitting) target: reading and writing a connection never
        // waits for a worker of the global pool that slow handlers may all hold.
        self.queue = DispatchQueue(label: "sputnik.http.conn.\(fd)")
        self.machine = ConnectionStateMachine(config: config, now: HTTPConnection.now())
        self.tls = config.tls.flatMap { TLSSession(context: $0, fd: fd) }
    }

    /// Where requests `HTTPServerConfiguration.isLightRequest` picks are handled (serial, overcommitting: it runs
    /// even while slow handlers hold every worker of the global pool).
    static let lightQueue = DispatchQueue(label: "sputnik.http.light")

    /// Monotonic time in seconds.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Bytes queued but not yet written.
    var bufferedBytes: Int { lock.withLock { buffered } }

    /// True once the server is stopping (responses then close the connection).
    var isStopping: Bool { lock.withLock { stopping } }

    /// Starts serving. With a `reject` message, answers 503 + `Retry-After` at once and closes (connection limit,
    /// buffer budget). With a `lightOnly` message, serves one light request (`HTTPServerConfiguration.isLightRequest`)
    /// and closes; any other request gets that message in a 503 (a connection past the limit).
    func start(reject: String?, lightOnly: String? = nil) {
        if lightOnly != nil { markStopping() }   // its one response closes the connection
        queue.async { [self] in
            if let lightOnly { machine.restrictToLightRequests(refusal: lightOnly) }
            let rs = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            rs.setEventHandler { [weak self] in self?.handleReadable() }
            rs.setCancelHandler { [self] in sourceCancelled() }
            liveSources += 1
            readSource = rs
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.setEventHandler { [weak self] in self?.handleTimer() }
            timer = t
            t.resume()
            rs.resume()
            if config.tls != nil && tls == nil {
                closeNow(reason: "cannot create a TLS session")
                return
            }
            if let reject {
                perform(machine.rejected(now: HTTPConnection.now(), message: reject))
            } else {
                perform(machine.started(now: HTTPConnection.now()))
            }
            if tls != nil && !closed {
                // The handshake comes first, bounded like a request head (slowloris over TLS).
                handshakeDeadline = HTTPConnection.now() + config.headerTimeout
                timer?.schedule(deadline: .now() + config.headerTimeout)
            }
        }
    }

    // MARK: TLS

    /// Advances the TLS handshake; once it completes, serves whatever is already due. On `queue`.
    private func advanceHandshake() {
        guard let tls, !closed else { return }
        switch tls.handshake() {
        case .done:
            handleTimer()    // re-arms the machine's own timer in place of the handshake deadline
            if closed { return }
            if outIndex < out.count { flush() } else { suspendWriteSource() }
            if !closed { handleReadable() }
        case .wantRead:
            suspendWriteSource()
        case .wantWrite:
            armWriteSource()
        case .closed:
            closeNow(reason: "client closed during the TLS handshake")
        case .failed(let why):
            logger.debug("TLS handshake failed: \(why)")
            closeNow(reason: "TLS handshake failed")
        }
    }

    private func suspendWriteSource() {
        if writeActive, let ws = writeSource { ws.suspend(); writeActive = false }
    }

    /// One read from the socket (through TLS when on).
    private enum ReadResult { case data(Int), endOfInput, again, failed(String) }

    private func receive() -> ReadResult {
        if let tls {
            switch scratch.withUnsafeMutableBytes({ tls.read(into: $0) }) {
            case .done(let n): return .data(n)
            case .wantRead: return .again
            case .wantWrite:
                armWriteSource()
                return .again
            case .closed: return .endOfInput
            case .failed(let why): return .failed(why)
            }
        }
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .data(n) }
            if n == 0 { return .endOfInput }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .again }
            return .failed("recv errno \(e)")
        }
    }

    /// One write of queued output from `outIndex` (through TLS when on): bytes taken, nil to wait (the right
    /// source is armed), or a failure.
    private func transmit() -> Result<Int?, HTTPServerError> {
        if let tls {
            let outcome = out.withUnsafeBytes { raw in tls.write(UnsafeRawBufferPointer(rebasing: raw[outIndex...])) }
            switch outcome {
            case .done(let n): return .success(n)
            case .wantWrite:
                armWriteSource()
                return .success(nil)
            case .wantRead:
                writeWantsRead = true
                suspendWriteSource()
                return .success(nil)
            case .closed: return .failure(.tls("client closed the TLS session"))
            case .failed(let why): return .failure(.tls(why))
            }
        }
        while true {
            let n = out.withUnsafeBytes { raw -> Int in
                #if canImport(Glibc)
                return send(fd, raw.baseAddress! + outIndex, raw.count - outIndex, Int32(MSG_NOSIGNAL))
                #else
                return send(fd, raw.baseAddress! + outIndex, raw.count - outIndex, 0)
                #endif
            }
            if n > 0 { return .success(n) }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                armWriteSource()
                return .success(nil)
            }
            return .failure(.socket(call: "send", errno: e))
        }
    }

    /// Later responses close the connection (server draining).
    func markStopping() { lock.withLock { stopping = true } }

    /// The server began draining: responses from now on close the connection, and an idle one closes now
    /// (`ConnectionStateMachine.drainIfIdle`) unless its last request was a light one (`isLightRequest`: a probe's or
    /// a metrics scraper's keep-alive connection stays, so the drain can still be watched through it).
    func drainStarted() {
        markStopping()
        queue.async { [self] in
            guard !closed, tls?.established != false, lastRequestLight != true else { return }
            perform(machine.drainIfIdle(outputPending: outIndex < out.count || kernelQueueLength() > 0))
        }
    }

    /// Closes the connection (server stop). A pending response's `onClose` fires.
    func shutdownFromServer() {
        lock.withLock { stopping = true }
        queue.async { [self] in perform(machine.stop()) }
    }

    // MARK: actions

    /// Performs state-machine actions in order, then writes whatever is queued. On `queue`.
    private func perform(_ actions: [ConnectionAction]) {
        for action in actions {
            if closed { return }
            switch action {
            case .write(let bytes):
                lock.withLock {
                    buffered += bytes.count
                    budget.add(bytes.count)
                }
                appendOutput(bytes)
            case .deliver(let req):
                let responder = HTTPResponder(request: req, connection: self)
                current = responder
                let handler = self.handler
                lastRequestLight = config.isLightRequest(req)
                let handlerQueue = lastRequestLight == true ? HTTPConnection.lightQueue : DispatchQueue.global()
                handlerQueue.async { handler(req, responder) }
            case .checkExpectation(let head):
                perform(machine.expectationDecided(rejection: earlyRejection(head), now: HTTPConnection.now()))
            case .admitEncoded(let raw):
                perform(machine.encodedDecided(raw, rejection: earlyRejection(raw), now: HTTPConnection.now()))
            case .pauseReading:
                if !readSuspended, let rs = readSource { rs.suspend(); readSuspended = true }
            case .resumeReading:
                if readSuspended, let rs = readSource { rs.resume(); readSuspended = false }
                // Bytes OpenSSL already decrypted raise no socket event: read them now.
                if let tls, tls.pendingBytes > 0 { queue.async { [weak self] in self?.handleReadable() } }
            case .shutdownWrite:
                tls?.shutdown()
                shutdown(fd, Int32(SHUT_WR))
            case .setTimer(let deadline):
                timerDeadline = deadline ?? .infinity
                if let deadline {
                    let delta = max(0, deadline - HTTPConnection.now())
                    timer?.schedule(deadline: .now() + delta)
                } else {
                    timer?.schedule(deadline: .distantFuture)
                }
            case .abandoned(let request, let bodyBytes):
                config.abandonedRequest(request, bodyBytes)
            case .close(let reason):
                closeNow(reason: reason)
                return
            }
        }
        if !closed {
            syncInputCharge()
            flush()
        }
    }

    /// Counts the parser's held input in the server budget. On `queue`.
    private func syncInputCharge() {
        let held = machine.parser.heldByteCount
        if held != inputCharged {
            budget.add(held - inputCharged)
            inputCharged = held
        }
    }

    /// Appends response bytes to the socket queue; output becoming pending (nothing queued here or in the
    /// kernel before) starts the write-stall clock.
    private func appendOutput(_ bytes: [UInt8]) {
        if outIndex == out.count && !bytes.isEmpty && kernelQueueLength() == 0 {
            let now = HTTPConnection.now()
            machine.outputProgressed(now: now)
            // The client's progress is seen at timer checks: check within a quarter timeout of output becoming pending.
            // (The first check of a streamed response came a whole timeout after its request, and dated what the client
            // had taken before it at that check: a client that stopped reading at once was dropped after ~2× --timeout.)
            let check = now + config.idleTimeout / 4
            if check < timerDeadline {
                timerDeadline = check
                timer?.schedule(deadline: .now() + config.idleTimeout / 4)
            }
        }
        out.append(contentsOf: bytes)
    }

    /// Bytes in the kernel's send queue not yet acknowledged by the client (0 where TIOCOUTQ is unknown).
    private func kernelQueueLength() -> Int {
        #if canImport(Glibc)
        var queued: Int32 = 0
        if ioctl(fd, UInt(TIOCOUTQ), &queued) == 0 { return Int(queued) }
        #endif
        return 0
    }

    /// The connection timer fired: tells the machine whether output is still pending, here or in the kernel's
    /// send queue (bytes the client has not taken yet), and counts bytes the client took since the last check
    /// as progress (a client that stops reading makes none, however much the kernel buffers).
    private func handleTimer() {
        guard !closed else { return }
        timerDeadline = .infinity    // fired; the machine's answer below re-arms it
        let now = HTTPConnection.now()
        if let tls, !tls.established {
            if now >= handshakeDeadline { return closeNow(reason: "TLS handshake not completed in time") }
            timer?.schedule(deadline: .now() + (handshakeDeadline - now))
            return
        }
        var pending = outIndex < out.count
        let queued = UInt64(kernelQueueLength())
        if queued > 0 { pending = true }
        let handed = tls?.bytesWrittenToSocket ?? plainBytesHanded
        let delivered = handed >= queued ? handed - queued : 0
        if delivered > deliveredAtLastCheck {
            deliveredAtLastCheck = delivered
            // All handed bytes taken: the client had them by the time the last were handed (the closest time known;
            // counting from this check instead let an idle keep-alive connection live up to twice the timeout).
            // Otherwise it took some since the last check.
            machine.outputProgressed(now: queued == 0 ? lastHandedAt : now)
        }
        perform(machine.timerFired(now: now, outputPending: pending))
    }

    // MARK: reading

    private func handleReadable() {
        guard !closed else { return }
        if let tls, !tls.established { return advanceHandshake() }
        if writeWantsRead {
            writeWantsRead = false
            flush()
            if closed { return }
        }
        for _ in 0..<16 {
            if machine.readsInput && budget.isSpent {
                // Out of buffer memory server-wide: do not take in more (the machine pauses or answers 503).
                perform(machine.inputOverBudget(now: HTTPConnection.now()))
                return
            }
            switch receive() {
            case .data(let n):
                perform(machine.received(scratch[0..<n], now: HTTPConnection.now()))
                if closed || readSuspended { return }
            case .endOfInput:
                let light = current.map { config.isLightRequest($0.request) } ?? false
                perform(machine.endOfInput(outputPending: outIndex < out.count, now: HTTPConnection.now(), answerInFlight: light))
                return
            case .again:
                return
            case .failed(let why):
                perform(machine.socketFailed(why))
                return
            }
        }
        // Still more to read: a plain socket stays readable, but bytes OpenSSL holds raise no event.
        if let tls, tls.pendingBytes > 0 { queue.async { [weak self] in self?.handleReadable() } }
    }

    // MARK: writing

    /// Queues bytes of `responder`'s response. Called from any thread.
    /// - Returns: false when the client is gone or the buffer bound was exceeded.
    @discardableResult
    func enqueue(_ bytes: [UInt8], from responder: HTTPResponder, final: Bool, close: Bool) -> Bool {
        let over: Bool = lock.withLock {
            if outputClosed { return false }    // dropped below; never counted
            buffered += bytes.count
            budget.add(bytes.count)
            return buffered > config.maxBufferedWriteBytes
        }
        queue.async { [self] in
            guard !closed, current === responder else {
                // A closed connection released its whole count when it closed (under `lock`).
                if !closed {
                    lock.withLock {
                        buffered -= bytes.count
                        budget.add(-bytes.count)
                    }
                }
                return
            }
            if over {
                logger.warning("HTTP client is not reading; over \(config.maxBufferedWriteBytes) bytes queued, closing")
                closeNow(reason: "write buffer overflow")
                return
            }
            appendOutput(bytes)
            if final {
                current = nil
                flush()
                if closed { return }
                perform(machine.responseCompleted(close: close, now: HTTPConnection.now(),
                                                  outputBacklogged: out.count - outIndex > config.writeHighWaterBytes))
            } else {
                flush()
            }
        }
        return !over && !responder.isClosed
    }

    /// Writes as much queued output as the socket takes. On `queue`.
    private func flush() {
        if let tls, !tls.established { return advanceHandshake() }
        while outIndex < out.count {
            switch transmit() {
            case .success(let taken?):
                outIndex += taken
                plainBytesHanded &+= UInt64(taken)
                lastHandedAt = HTTPConnection.now()
                lock.withLock {
                    buffered -= taken
                    budget.add(-taken)
                }
            case .success(nil):
                return    // the socket is full: the write source (or, for TLS, the next read) resumes
            case .failure(let e):
                perform(machine.socketFailed("\(e)"))
                return
            }
        }
        out.removeAll(keepingCapacity: out.count <= 256 * 1024)
        outIndex = 0
        suspendWriteSource()
        current?.drained()
        let next = machine.outputFlushed(now: HTTPConnection.now())
        if !next.isEmpty { perform(next) }
    }

    private func armWriteSource() {
        if writeSource == nil {
            let ws = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            ws.setEventHandler { [weak self] in
                guard let self, !self.closed else { return }
                self.flush()
            }
            ws.setCancelHandler { [self] in sourceCancelled() }
            liveSources += 1
            writeSource = ws
            ws.resume()
            writeActive = true
        } else if !writeActive, let ws = writeSource {
            ws.resume()
            writeActive = true
        }
    }

    // MARK: closing

    private func closeNow(reason: String) {
        guard !closed else { return }
        logger.trace("HTTP connection \(fd) closed: \(reason)")
        closed = true
        _ = machine.socketFailed(reason)   // keep the machine's phase in step when the driver closes on its own
        if let r = current { r.clientGone() }
        current = nil
        out = []
        outIndex = 0
        lock.withLock {
            outputClosed = true
            budget.add(-buffered)
            buffered = 0
        }
        budget.add(-inputCharged)
        inputCharged = 0
        timer?.cancel()
        timer = nil
        if let ws = writeSource {
            if !writeActive { ws.resume() }
            ws.cancel()
        }
        if let rs = readSource {
            if readSuspended { rs.resume() }
            rs.cancel()
        }
        readSuspended = false
        writeActive = false
        if liveSources == 0 { _ = sysClose(fd) }
        onClosed(self)
    }

    /// Closes the descriptor once every Dispatch source on it is cancelled. On `queue`.
    private func sourceCancelled() {
        liveSources -= 1
        if liveSources == 0 {
            readSource = nil
            writeSource = nil
            _ = sysClose(fd)
        }
    }
}
