import TestSupport
import XCTest
@testable import HTTPServer

/// Deterministic xorshift generator so failures reproduce.
final class HTTPParserFuzzTests: XCTestCase {
    /// Random valid requests (mixed framing) fed in random pieces parse to the same requests as one big feed.
    func testRandomSplitsOfValidStreams() {
        var rng = XorShift(state: 0x9E3779B97F4A7C15)
        for _ in 0..<200 {
            var stream: [UInt8] = []
            var expected: [(String, [UInt8])] = []
            for k in 0..<Int.random(in: 1...4, using: &rng) {
                let body = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let path = "/r\(k)"
                if Bool.random(using: &rng) || body.isEmpty {
                    stream += Array("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
                } else {
                    stream += Array("POST \(path) HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n".utf8)
                    var rest = body[...]
                    while !rest.isEmpty {
                        let n = Int.random(in: 1...rest.count, using: &rng)
                        stream += Array("\(String(n, radix: 16))\r\n".utf8) + rest.prefix(n) + [13, 10]
                        rest = rest.dropFirst(n)
                    }
                    stream += Array("0\r\n\r\n".utf8)
                }
                expected.append((path, body))
            }
            var p = HTTPParser(maxHeaderBytes: 1024, maxBodyBytes: 1024)
            var got: [(String, [UInt8])] = []
            var i = 0
            while i < stream.count {
                let n = Int.random(in: 1...8, using: &rng)
                p.append(stream[i..<min(stream.count, i + n)])
                i += n
                loop: while true {
                    switch p.next() {
                    case .needMoreData: break loop
                    case .request(let r): got.append((r.path, r.body))
                    case .expectContinue: XCTFail("unexpected expectContinue")
                    case .error(let e): XCTFail("\(e)"); return
                    }
                }
            }
            XCTAssertEqual(got.map(\.0), expected.map(\.0))
            XCTAssertEqual(got.map(\.1), expected.map(\.1))
        }
    }

    /// Random bytes never trap and always end in needMoreData, a request, or an error.
    func testRandomGarbageNeverTraps() {
        var rng = XorShift(state: 12345)
        let alphabet = Array("GET POST / HTTP/1.1\r\n:;chunked Content-Length Transfer-Encoding 0123456789abcdef\u{0}\u{7f}".utf8)
        for _ in 0..<2000 {
            var p = HTTPParser(maxHeaderBytes: 256, maxBodyBytes: 256)
            let n = Int.random(in: 0...300, using: &rng)
            let input = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            p.append(input)
            for _ in 0..<50 {
                let a = p.next()
                if a == .needMoreData { break }
                if case .error = a { break }
            }
        }
    }
}
