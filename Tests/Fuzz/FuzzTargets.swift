// libFuzzer targets (issue 16), built by scripts/fuzz.sh with `-sanitize=fuzzer,address` against instrumented
// builds of the modules (never part of the served binary). `SPUTNIK_FUZZ_TARGET` picks one:
//   http      bytes → HTTPParser + ConnectionStateMachine (split into reads at input-chosen points, with
//             100-continue answers, responses completing and timers firing)
//   json      bytes → the JSON parser, then chat-completion request validation
//   template  bytes → JSON messages (or raw text as one message's content) → every fixture chat template
//   gguf      bytes → a file → the GGUF header, metadata and tensor-info reader
// Any crash, ASan report, leak or timeout is a finding; a thrown error is a correct answer.

import ChatTemplate
import Foundation
import GGUF
@testable import HTTPServer
import JSON
import OpenAIAPI

/// The target chosen once from the environment.
private let target = ProcessInfo.processInfo.environment["SPUTNIK_FUZZ_TARGET"] ?? ""

/// Loads what the targets read from disk before the first input (so it is not counted as a per-input leak).
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    if target == "template" { _ = templateSources.count }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch target {
    case "http": fuzzHTTP(bytes)
    case "json": fuzzJSON(bytes)
    case "template": fuzzTemplate(bytes)
    case "gguf": fuzzGGUF(bytes)
    default: fatalError("set SPUTNIK_FUZZ_TARGET to http, json, template or gguf")
    }
    return 0
}

// MARK: http

private let httpConfig: HTTPServerConfiguration = {
    var c = HTTPServerConfiguration()
    c.maxHeaderBytes = 2048
    c.maxBodyBytes = 4096
    c.maxPipelinedBytes = 8192
    return c
}()

private func fuzzHTTP(_ bytes: [UInt8]) {
    guard let control = bytes.first else { return }
    let input = bytes.dropFirst()
    // The first byte chooses the read size (1...32 bytes, or everything at once) and the app's behaviour.
    let step = control & 0x1F == 0 ? max(1, input.count) : Int(control & 0x1F)
    let rejectExpectations = control & 0x20 != 0
    let closeAfterResponse = control & 0x40 != 0
    var m = ConnectionStateMachine(config: httpConfig, now: 0)
    var now = 0.0
    var pending = m.started(now: now)
    var offset = input.startIndex
    var delivered = 0
    var rounds = 0
    while rounds < 10_000 {
        rounds += 1
        var next: [ConnectionAction] = []
        for action in pending {
            switch action {
            case .deliver(let req):
                delivered += 1
                precondition(req.body.count <= httpConfig.maxBodyBytes, "a body over the cap was delivered")
                next += m.responseCompleted(close: closeAfterResponse, now: now)
            case .checkExpectation:
                next += m.expectationDecided(rejection: rejectExpectations ? Array("HTTP/1.1 401 X\r\n\r\n".utf8) : nil, now: now)
            case .admitEncoded(let raw):
                next += m.encodedDecided(raw, rejection: rejectExpectations ? Array("HTTP/1.1 401 X\r\n\r\n".utf8) : nil, now: now)
            case .abandoned(let req, let bodyBytes):
                precondition(req.map { $0.body.count == bodyBytes } ?? (bodyBytes == 0), "an abandoned request's body count differs")
            case .write, .pauseReading, .resumeReading, .setTimer, .close:
                break
            case .shutdownWrite:
                next += m.outputFlushed(now: now)
            }
        }
        if !next.isEmpty {
            pending = next
            continue
        }
        if m.phase == .closed { break }
        if offset < input.endIndex {
            let end = min(input.endIndex, offset + step)
            now += 0.001
            pending = m.received(input[offset..<end], now: now)
            offset = end
        } else {
            // Input exhausted: let the timers run out, then end the input.
            now += 100
            pending = m.timerFired(now: now, outputPending: false)
            if pending.isEmpty || rounds > 9_000 { pending = m.endOfInput(outputPending: false, now: now) }
        }
    }
    precondition(rounds < 10_000, "the connection state machine did not settle")
    // The parser alone, all at once.
    var p = HTTPParser(maxHeaderBytes: 2048, maxBodyBytes: 4096)
    p.append(input)
    for _ in 0..<64 {
        if case .needMoreData = p.next() { break }
    }
}

// MARK: json

private func fuzzJSON(_ bytes: [UInt8]) {
    if let value = try? JSONValue.parse(bytes) {
        // The writer's output parses back to the same value.
        let again = try? JSONValue.parse(value.encoded())
        precondition(again == value, "JSON round trip changed the value")
    }
    _ = ChatCompletionRequest.decode(bytes)
}

// MARK: template

/// The fixture templates' sources. They are parsed per input: a parsed template kept in a global is reported by
/// LeakSanitizer (it does not see Swift's tagged enum payload pointers), which would hide real leaks.
private let templateSources: [String] = {
    let dir = ProcessInfo.processInfo.environment["SPUTNIK_FUZZ_TEMPLATES"] ?? "Tests/Fixtures/templates"
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jinja") }.sorted()
    let sources = files.compactMap { try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }
    precondition(!sources.isEmpty, "no chat templates found in \(dir) (run from the repository root)")
    return sources
}()

private func fuzzTemplate(_ bytes: [UInt8]) {
    let messages: JinjaValue
    if let json = try? JSONValue.parse(bytes), case .array = json {
        messages = JinjaValue(json: json)
    } else {
        messages = [["role": "user", "content": .string(String(decoding: bytes, as: UTF8.self))]]
    }
    guard let t = try? ChatTemplate(source: templateSources[bytes.count % templateSources.count]) else {
        preconditionFailure("a fixture template no longer parses")
    }
    _ = try? t.render(messages: messages, tools: nil, addGenerationPrompt: bytes.count % 2 == 0,
                      bosToken: "<s>", eosToken: "</s>", now: Date(timeIntervalSince1970: 0))
}

// MARK: gguf

/// The reader maps a file: each input is written to this one (in memory when /dev/shm exists).
private let ggufPath = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
    + "/sputnik-fuzz-\(getpid()).gguf"

private func fuzzGGUF(_ bytes: [UInt8]) {
    let fd = open(ggufPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard written == bytes.count else { return }
    guard let f = try? GGUFFile(path: ggufPath) else { return }
    // Everything the reader accepted must be safe to use.
    for k in f.keys { _ = f.metadata[k]?.summary }
    for t in f.tensors {
        precondition(f.dataOffset + t.offset + t.byteCount <= f.fileSize, "tensor data outside the file")
        let p = f.data(for: t)
        if t.byteCount > 0 { _ = p.load(fromByteOffset: t.byteCount - 1, as: UInt8.self) }
    }
}
