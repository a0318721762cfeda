import XCTest
@testable import HTTPServer

final class HTTPParserTests: XCTestCase {
    /// Feeds `input` split at `split` (or byte by byte when nil) and collects every non-needMoreData action.
    func run(_ input: String, split: Int? = nil, maxHeader: Int = 16 * 1024, maxBody: Int = 1024) -> [HTTPParserAction] {
        run(Array(input.utf8), split: split, maxHeader: maxHeader, maxBody: maxBody)
    }

    func run(_ bytes: [UInt8], split: Int?, maxHeader: Int = 16 * 1024, maxBody: Int = 1024) -> [HTTPParserAction] {
        var p = HTTPParser(maxHeaderBytes: maxHeader, maxBodyBytes: maxBody)
        var actions: [HTTPParserAction] = []
        func drain() {
            for _ in 0..<100 {
                let a = p.next()
                if a == .needMoreData { return }
                actions.append(a)
                if case .error = a { return }
            }
        }
        if let split {
            p.append(bytes[0..<split]); drain()
            if case .error = actions.last { return actions }
            p.append(bytes[split...]); drain()
        } else {
            for b in bytes {
                p.append([b]); drain()
                if case .error = actions.last { return actions }
            }
        }
        return actions
    }

    func requests(_ actions: [HTTPParserAction]) -> [HTTPRequest] {
        actions.compactMap { if case .request(let r) = $0 { return r } else { return nil } }
    }

    func testSimpleGetAndHeaderLookup() {
        let a = run("GET /v1/models?x=1&y=a%20b+c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n", split: 0)
        XCTAssertEqual(a.count, 1)
        let r = requests(a)[0]
        XCTAssertEqual(r.method, "GET")
        XCTAssertEqual(r.target, "/v1/models?x=1&y=a%20b+c")
        XCTAssertEqual(r.path, "/v1/models")
        XCTAssertEqual(r.query, ["x": "1", "y": "a b c"])
        XCTAssertEqual(r.version, "HTTP/1.1")
        XCTAssertEqual(r.headers["HOST"], "h")
        XCTAssertEqual(r.headers["x-A"], "1")
        XCTAssertEqual(r.headers.values("X-a"), ["1", "2"])
        XCTAssertTrue(r.keepAlive)
        XCTAssertEqual(r.body, [])
    }

    func testEverySplitPointGivesSameRequests() {
        let bodyBytes = Array("{\"a\":\"héllo 世界\"}".utf8)
        var all = Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(bodyBytes.count)\r\n\r\n".utf8) + bodyBytes
        // Three chunks; the second boundary falls inside the two-byte "é".
        all += Array("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n".utf8) + bodyBytes[0..<5]
        all += Array("\r\n3\r\n".utf8) + bodyBytes[5..<8]
        all += Array("\r\n\(String(bodyBytes.count - 8, radix: 16))\r\n".utf8) + bodyBytes[8...]
        all += Array("\r\n0\r\nTrailer-X: 1\r\n\r\n".utf8)
        all += Array("GET /b HTTP/1.0\r\n\r\n".utf8)
        for split in 0...all.count {
            let reqs = requests(run(all, split: split))
            XCTAssertEqual(reqs.map(\.path), ["/a", "/c", "/b"], "split \(split)")
            guard reqs.count == 3 else { continue }
            XCTAssertEqual(reqs[0].body, bodyBytes)
            XCTAssertEqual(reqs[1].body, bodyBytes, "split \(split)")
            XCTAssertFalse(reqs[2].keepAlive)
        }
        XCTAssertEqual(requests(run(all, split: nil)).count, 3)
    }

    func testKeepAliveRules() {
        XCTAssertFalse(requests(run("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[0].keepAlive)
        XCTAssertTrue(requests(run("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))[0].keepAlive)
        XCTAssertFalse(requests(run("GET / HTTP/1.0\r\n\r\n"))[0].keepAlive)
        XCTAssertTrue(requests(run("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, foo\r\n\r\n"))[0].keepAlive)
    }

    func testExpectContinueAnnouncedOnceBeforeBody() {
        var p = HTTPParser(maxHeaderBytes: 1024, maxBodyBytes: 1024)
        p.append(Array("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n".utf8))
        guard case .expectContinue(let head) = p.next() else { return XCTFail("no expectContinue") }
        XCTAssertEqual(head.path, "/x")
        XCTAssertEqual(head.body, [])
        XCTAssertEqual(p.next(), .needMoreData)
        p.append(Array("abc".utf8))
        guard case .request(let r) = p.next() else { return XCTFail("no request") }
        XCTAssertEqual(r.body, Array("abc".utf8))
        XCTAssertEqual(p.next(), .needMoreData)
    }

    /// RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request (and §15.2: send no
    /// 1xx to it); any other expectation there is ignored too (Expect is an HTTP/1.1 field).
    func testHTTP10ExpectationsAreIgnored() {
        for expect in ["100-continue", "magic"] {
            var p = HTTPParser(maxHeaderBytes: 1024, maxBodyBytes: 1024)
            p.append(Array("POST /x HTTP/1.0\r\nContent-Length: 3\r\nExpect: \(expect)\r\n\r\nabc".utf8))
            guard case .request(let r) = p.next() else { return XCTFail("no request for Expect: \(expect)") }
            XCTAssertEqual(r.body, Array("abc".utf8))
        }
    }

    func testExpectWithOversizedBodyIs413WithoutContinue() {
        let a = run("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", split: 0)
        XCTAssertEqual(a, [.error(HTTPParseError(status: 413, message: "Request body exceeds the limit of 1024 bytes", code: "request_too_large"))])
    }

    func testUnknownExpectation417() {
        let a = run("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n", split: 0)
        guard case .error(let e) = a.first else { return XCTFail() }
        XCTAssertEqual(e.status, 417)
    }

    func testChunkedBodyOverLimitIs413() {
        let a = run("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n300\r\n" + String(repeating: "a", count: 768) + "\r\n300\r\n", split: 0)
        guard case .error(let e) = a.last else { return XCTFail("\(a)") }
        XCTAssertEqual(e.status, 413)
    }

    func testHeaderLimit431() {
        let big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n"
        for split in [nil, 0] as [Int?] {
            let a = run(big, split: split, maxHeader: 200)
            guard case .error(let e) = a.last else { return XCTFail() }
            XCTAssertEqual(e.status, 431)
        }
        XCTAssertEqual(requests(run(big, split: nil, maxHeader: 400)).count, 1)
        // A request line longer than the limit is a target too long: 414 (RFC 9112 §3), not a header problem.
        let longTarget = "GET /v1/models?q=" + String(repeating: "a", count: 300) + " HTTP/1.1\r\nHost: x\r\n\r\n"
        for split in [nil, 0] as [Int?] {
            guard case .error(let e) = run(longTarget, split: split, maxHeader: 200).last else { return XCTFail() }
            XCTAssertEqual(e.status, 414)
            XCTAssertEqual(e.code, "uri_too_long")
        }
    }

    func testMalformedRequestsAre400() {
        let bad = ["GARBAGE\r\n\r\n", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTX/1.1\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY",
                   "\u{01}\u{02}\u{03} x y\r\n\r\n"]
        for s in bad {
            let a = run(s, split: 0)
            guard case .error(let e) = a.last else { XCTFail("accepted: \(s.debugDescription)"); continue }
            XCTAssertEqual(e.status, 400, s.debugDescription)
            // Terminal: the parser keeps reporting the error.
        }
        guard case .error(let e) = run("GET / HTTP/2.0\r\n\r\n", split: 0).last else { return XCTFail() }
        XCTAssertEqual(e.status, 505)
        guard case .error(let g) = run("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", split: 0).last else { return XCTFail() }
        XCTAssertEqual(g.status, 501)
    }

    func testErrorIsTerminalAndLeftoversNeverParsed() {
        var p = HTTPParser()
        p.append(Array("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        guard case .error = p.next() else { return XCTFail() }
        guard case .error = p.next() else { return XCTFail("not terminal") }
    }

    func testPipelinedRequestsInOrderAfterLeadingEmptyLine() {
        let s = "\r\nGET /1 HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
        let r = requests(run(s, split: 0))
        XCTAssertEqual(r.map(\.path), ["/1", "/2", "/3"])
        XCTAssertEqual(r[0].headers["a"], "b")
        XCTAssertEqual(r[1].body, Array("hi".utf8))
    }

    func testAbsoluteFormTarget() {
        let r = requests(run("GET http://example.com/v1/models/a%2Fb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", split: 0))[0]
        XCTAssertEqual(r.path, "/v1/models/a%2Fb", "the path is raw; routers decode what they capture")
        XCTAssertEqual(r.query["q"], "1")
    }

    func testMidMessageFlags() {
        var p = HTTPParser()
        XCTAssertFalse(p.isMidMessage)
        p.append(Array("GET / HT".utf8))
        XCTAssertEqual(p.next(), .needMoreData)
        XCTAssertTrue(p.isReadingHead)
        p.append(Array("TP/1.1\r\nHost: x\r\n\r\n".utf8))
        guard case .request = p.next() else { return XCTFail() }
        XCTAssertFalse(p.isMidMessage)
        XCTAssertEqual(p.bufferedByteCount, 0)
    }

    func status(_ a: [HTTPParserAction]) -> Int? {
        if case .error(let e)? = a.last { return e.status }
        return nil
    }

    // MARK: issue 21 — overflow on client numbers

    func testChunkSizeNearIntMaxIs413NotATrap() {
        let head = "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        for split in [nil, 0] as [Int?] {
            XCTAssertEqual(status(run(head + "1\r\na\r\n7fffffffffffffff\r\n", split: split)), 413)
            XCTAssertEqual(status(run(head + "7fffffffffffffff\r\n", split: split)), 413)
            XCTAssertEqual(status(run(head + "1\r\na\r\n7ffffffffffffffe\r\n", split: split, maxBody: 8 * 1024 * 1024)), 413)
            XCTAssertEqual(status(run(head + "10000000000000000\r\n", split: split)), 400, "more than 63 bits")
        }
        var p = HTTPParser(maxHeaderBytes: 1024, maxBodyBytes: Int.max)
        p.append(Array((head + "1\r\na\r\n7ffffffffffffffe\r\n").utf8))
        XCTAssertEqual(p.next(), .needMoreData, "a limit of Int.max does not overflow either (1 + size = Int.max)")
        p.append(Array("b".utf8))
        XCTAssertEqual(p.next(), .needMoreData)
        XCTAssertEqual(p.bodyByteCount, 2)
    }

    func testHugeContentLengthIs413() {
        for v in ["9223372036854775807", "9223372036854775808", "99999999999999999999999999"] {
            XCTAssertEqual(status(run("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(v)\r\n\r\n", split: 0)), 413, v)
        }
    }

    func testTrailerSectionIsCapped() {
        let many = String(repeating: "T: v\r\n", count: 100)
        let s = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + many + "\r\n"
        XCTAssertEqual(status(run(s, split: 0, maxHeader: 200)), 431)
        XCTAssertEqual(status(run(s, split: nil, maxHeader: 200)), 431)
        XCTAssertEqual(requests(run(s, split: 0, maxHeader: 1024)).count, 1)
        XCTAssertEqual(status(run("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", split: 0)), 400)
    }

    // MARK: issue 21 — framing strictness (RFC 9112)

    func testBareLFIsRejectedEverywhere() {
        let chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let bad = [
            "GET / HTTP/1.1\nHost: x\r\n\r\n",                 // request line
            "GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n",         // header line
            "GET / HTTP/1.1\r\nHost: x\n\r\n",                 // last header line
            "GET / HTTP/1.1\r\nHost: x\r\n\n",                 // the blank line
            "GET / HTTP/1.1\nHost: x\n\n",                     // all of them
            "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",             // a leading empty line
            "\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",             // a bare CR before the request line
            chunked + "1\na\r\n0\r\n\r\n",                     // chunk-size line
            chunked + "1\r\na\n0\r\n\r\n",                     // after chunk data
            chunked + "1\r\na\r\n0\n\r\n",                     // last-chunk line
            chunked + "1\r\na\r\n0\r\nX: y\n\r\n",             // trailer field
            chunked + "1\r\na\r\n0\r\n\n",                     // end of trailers
        ]
        for s in bad {
            for split in [nil, 0] as [Int?] {
                let a = run(s, split: split)
                XCTAssertEqual(status(a), 400, "\(s.debugDescription) split \(String(describing: split))")
                XCTAssertTrue(requests(a).isEmpty, s.debugDescription)
            }
        }
        XCTAssertEqual(requests(run("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", split: nil)).count, 1, "CRLF empty lines are fine")
    }

    func testChunkExtensionGrammar() {
        let chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let good = ["1;a", "1;a=b", "1 ; a = b", "1;a=\"q\\\"x y\";b", "1;a=\"\"", "1;a;b=c;d=\"e\""]
        for ext in good {
            let r = requests(run(chunked + ext + "\r\nz\r\n0\r\n\r\n", split: 0))
            XCTAssertEqual(r.first?.body, [UInt8(ascii: "z")], ext)
        }
        let bad = ["1;", "1;=b", "1;a=", "1;a=\"open", "1;a b", "1 x", "1;a=b c", "1 ", "1;a=\"\u{01}\"", "1;a,b", "1=2"]
        for ext in bad {
            XCTAssertEqual(status(run(chunked + ext + "\r\nz\r\n0\r\n\r\n", split: 0)), 400, ext.debugDescription)
        }
    }

    func testTransferEncodingEmptyOrNextToContentLengthIs400() {
        let bad = [
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: , ,\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        ]
        for s in bad { XCTAssertEqual(status(run(s, split: 0)), 400, s.debugDescription) }
    }

    func testHostRequiredExactlyOnceInHTTP11() {
        XCTAssertEqual(status(run("GET / HTTP/1.1\r\n\r\n", split: 0)), 400)
        XCTAssertEqual(status(run("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", split: 0)), 400)
        XCTAssertEqual(status(run("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", split: 0)), 400)
        XCTAssertEqual(status(run("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", split: 0)), 400)
        XCTAssertEqual(requests(run("GET / HTTP/1.0\r\n\r\n", split: 0)).count, 1, "HTTP/1.0 may omit Host")
        XCTAssertEqual(requests(run("GET / HTTP/1.1\r\nHost:\r\n\r\n", split: 0)).count, 1, "an empty Host is allowed")
    }

    func testPathIsRawNotPercentDecoded() {
        let r = requests(run("POST /v1/%74okenize?q=a%20b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", split: 0))
        XCTAssertEqual(r.first?.path, "/v1/%74okenize")
        XCTAssertEqual(r.first?.query, ["q": "a b"])
        XCTAssertEqual(HTTPRequest(method: "GET", target: "/a%2Fb/%2e%2e/c").path, "/a%2Fb/%2e%2e/c")
    }
}
