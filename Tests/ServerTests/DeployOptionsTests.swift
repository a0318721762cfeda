import Foundation
import JSON
import Logging
import XCTest
@testable import Server

/// `SPUTNIK_*` variables and the config file (`OptionLayers`), the JSON log format, and request ids.
final class DeployOptionsTests: XCTestCase {
    func testBaseURLBracketsAnIPv6Host() {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        XCTAssertEqual(o.baseURL(port: 8080), "http://127.0.0.1:8080")
        o.host = "::1"
        XCTAssertEqual(o.baseURL(port: 8080), "http://[::1]:8080")
        o.sslKeyFile = "k.pem"
        o.host = "fe80::1"
        XCTAssertEqual(o.baseURL(port: 443), "https://[fe80::1]:443")
    }

    func testEnvironmentNames() {
        XCTAssertEqual(OptionLayers.environmentName("ctx-size"), "SPUTNIK_CTX_SIZE")
        XCTAssertEqual(OptionLayers.environmentName("max-num-batched-tokens"), "SPUTNIK_MAX_NUM_BATCHED_TOKENS")
        XCTAssertEqual(OptionLayers.environmentName("model"), "SPUTNIK_MODEL")
    }

    func testEnvironmentWinsOverFile() throws {
        let l = try OptionLayers(environment: ["SPUTNIK_PORT": "9001", "SPUTNIK_ALIAS": "env"],
                                 file: ["port": 8000, "alias": "file", "threads": 3], filePath: "c.yaml")
        XCTAssertEqual(try l.int("port"), 9001)
        XCTAssertEqual(try l.string("alias"), "env")
        XCTAssertEqual(try l.int("threads"), 3)  // only in the file
        XCTAssertNil(try l.int("max-num-seqs"))  // in neither
    }

    func testEmptyVariableCountsAsUnset() throws {
        let l = try OptionLayers(environment: ["SPUTNIK_ALIAS": ""], file: ["alias": "file"])
        XCTAssertEqual(try l.string("alias"), "file")
    }

    func testTypedEnvironmentValues() throws {
        let l = try OptionLayers(environment: ["SPUTNIK_REPACK": "no", "SPUTNIK_ENABLE_PREFIX_CACHING": "1",
                                               "SPUTNIK_THREADS": " 4 "])
        XCTAssertEqual(try l.bool("repack"), false)
        XCTAssertEqual(try l.bool("enable-prefix-caching"), true)
        XCTAssertEqual(try l.int("threads"), 4)
    }

    func testBadValuesNameTheirSource() throws {
        let l = try OptionLayers(environment: ["SPUTNIK_PORT": "eighty", "SPUTNIK_REPACK": "maybe"],
                                 file: ["threads": "many"])
        XCTAssertThrowsError(try l.int("port")) { XCTAssertTrue("\($0)".contains("SPUTNIK_PORT"), "\($0)") }
        XCTAssertThrowsError(try l.bool("repack")) { XCTAssertTrue("\($0)".contains("SPUTNIK_REPACK"), "\($0)") }
        XCTAssertThrowsError(try l.int("threads")) { XCTAssertTrue("\($0)".contains("config key 'threads'"), "\($0)") }
    }

    /// `validate` names the variable or config key a bad value came from (`origins`), else the flag.
    func testValidationNamesTheValuesSource() throws {
        var o = ServerOptions()
        o.modelPath = "m.gguf"
        o.kvCacheType = "q4"
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--kv-cache-type must be"), "\($0)") }
        let l = try OptionLayers(environment: ["SPUTNIK_KV_CACHE_TYPE": "q4"], file: ["max-num-seqs": 0])
        o.origins = ["kv-cache-type": try XCTUnwrap(l.origin("kv-cache-type"))]
        XCTAssertThrowsError(try o.validate()) {
            XCTAssertTrue("\($0)".contains("SPUTNIK_KV_CACHE_TYPE must be f16, bf16, f32 or q8_0"), "\($0)")
        }
        o.kvCacheType = "f16"
        o.maxNumSeqs = 0
        o.origins["max-num-seqs"] = l.origin("max-num-seqs")
        XCTAssertThrowsError(try o.validate()) {
            XCTAssertTrue("\($0)".contains("config key 'max-num-seqs' must be 1...1024"), "\($0)")
        }
        XCTAssertNil(l.origin("threads"))
    }

    func testUnknownFileKeyIsAnErrorUnknownVariableIsReported() throws {
        XCTAssertThrowsError(try OptionLayers(environment: [:], file: ["ctxsize": 1], filePath: "c.yaml")) {
            XCTAssertTrue("\($0)".contains("ctxsize"), "\($0)")
        }
        let l = try OptionLayers(environment: ["SPUTNIK_CTXSIZE": "1", "SPUTNIK_CTX_SIZE": "64", "HOME": "/"])
        XCTAssertEqual(l.unknownEnvironment, ["SPUTNIK_CTXSIZE"])
    }

    /// helper-70 / helper-72: what the warning for an unknown variable suggests.
    func testUnknownVariableWarningsSuggestTheOptionMeant() {
        let w = OptionLayers.unknownVariableWarning
        XCTAssertEqual(w("SPUTNIK_MAX_NUM_SEQ"), "ignoring SPUTNIK_MAX_NUM_SEQ: it names no option (did you mean SPUTNIK_MAX_NUM_SEQS?)")
        XCTAssertEqual(w("SPUTNIK_CTXSIZE"), "ignoring SPUTNIK_CTXSIZE: it names no option (did you mean SPUTNIK_CTX_SIZE?)")
        XCTAssertEqual(w("SPUTNIK_port"), "ignoring SPUTNIK_port: it names no option (did you mean SPUTNIK_PORT? the names are upper case)")
        XCTAssertEqual(w("SPUTNIK_NO_MMAP"), "ignoring SPUTNIK_NO_MMAP: it names no option (did you mean SPUTNIK_MMAP=false?)")
        XCTAssertEqual(w("SPUTNIK_FROBNICATE"),
                       "ignoring SPUTNIK_FROBNICATE: it names no option (`sputnik serve --help` lists them; SPUTNIK_ + the flag)")
        XCTAssertNil(w("SPUTNIK_KERNELS"))
        XCTAssertEqual(OptionLayers.editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(OptionLayers.editDistance("", "abc"), 3)
    }

    /// `--disable-access-log-for-endpoints`: `none` is the empty list (an empty variable counts as unset).
    func testAccessLogPathList() {
        XCTAssertEqual(OptionLayers.pathList("/health, /metrics,,"), ["/health", "/metrics"])
        XCTAssertEqual(OptionLayers.pathList(""), [])
        XCTAssertEqual(OptionLayers.pathList(" None "), [])
    }

    func testJSONLogLineKeepsMetadataTypes() throws {
        let lines = LockedLines()
        var h = JSONLogHandler(label: "sputnik", write: { lines.append($0) })
        h.logLevel = .info
        var logger = Logger(label: "sputnik", factory: { _ in h })
        logger[metadataKey: "pod"] = "a\"b"
        logger.info("request", metadata: ["status": .stringConvertible(200), "ttft_ms": .stringConvertible(12.5),
                                          "ok": .stringConvertible(true), "route": "/v1/models"])
        let all = lines.all
        XCTAssertEqual(all.count, 1)
        XCTAssertTrue(all[0].hasSuffix("\n"))
        XCTAssertEqual(all[0].filter { $0 == "\n" }.count, 1)
        let v = try JSONValue(parsing: String(all[0].dropLast()))
        XCTAssertEqual(v["msg"]?.stringValue, "request")
        XCTAssertEqual(v["level"]?.stringValue, "info")
        XCTAssertEqual(v["label"]?.stringValue, "sputnik")
        XCTAssertEqual(v["status"]?.intValue, 200)
        XCTAssertEqual(v["ttft_ms"]?.doubleValue, 12.5)
        XCTAssertEqual(v["ok"]?.boolValue, true)
        XCTAssertEqual(v["route"]?.stringValue, "/v1/models")
        XCTAssertEqual(v["pod"]?.stringValue, "a\"b")
        XCTAssertNotNil(v["ts"]?.stringValue?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression))
    }

    func testRequestIdAcceptance() {
        XCTAssertEqual(Exchange.acceptableId("abc-123_x.y:z"), "abc-123_x.y:z")
        XCTAssertNil(Exchange.acceptableId(""))
        XCTAssertNil(Exchange.acceptableId(String(repeating: "a", count: 129)))
        XCTAssertNil(Exchange.acceptableId("has space"))
        XCTAssertNil(Exchange.acceptableId("quote\"d"))
        XCTAssertNil(Exchange.acceptableId(nil))
    }
}

/// Lines written by a log handler under test.
private final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}
