import Foundation
import Logging
import TestSupport
import XCTest
@testable import Engine

/// The start-up memory check: a model larger than the memory available is refused at once, saying what it needs.
final class MemoryBudgetTests: XCTestCase {
    func testRefusalStatesNeedAndAvailability() throws {
        let b = MemoryBudget(weightBytes: 10 << 30, runtimeBytes: 1 << 29)
        XCTAssertNil(b.refusal(availableBytes: 11 << 30))
        XCTAssertNil(b.refusal(availableBytes: nil), "unknown availability does not refuse")
        let msg = try XCTUnwrap(b.refusal(availableBytes: 4 << 30))
        XCTAssertTrue(msg.contains("needs 10.5 GiB"), msg)
        XCTAssertTrue(msg.contains("10.0 GiB of weights"), msg)
        XCTAssertTrue(msg.contains("only 4.0 GiB is available"), msg)
    }

    func testMeminfoAvailableLine() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\nBuffers: 1 kB\n"
        XCTAssertEqual(MemoryBudget.meminfoAvailable(text), 20_000_000 * 1024)
        XCTAssertNil(MemoryBudget.meminfoAvailable("MemTotal: 1 kB\n"))
        XCTAssertNotNil(MemoryBudget.systemAvailableBytes(), "this Linux machine reports MemAvailable")
    }

    func testServingModelRefusesAModelLargerThanAvailableMemoryBeforeLoading() throws {
        let path = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")
        var o = ServingModel.Options(modelPath: path, threads: 1)
        o.availableMemory = { 64 << 20 }                      // 64 MiB: less than the 256 MiB runtime share
        var progressCalls = 0
        let calls = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        calls.initialize(to: 0)
        defer { calls.deallocate() }
        let counter = UncheckedBox(calls)
        o.loadProgress = { _, _ in counter.value.pointee += 1 }
        XCTAssertThrowsError(try ServingModel(options: o, logger: Logger(label: "test"))) { error in
            guard case EngineError.modelLoad(let msg) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(msg.contains(path) && msg.contains("needs") && msg.contains("available"), msg)
        }
        progressCalls = calls.pointee
        XCTAssertEqual(progressCalls, 0, "no weight was loaded before the refusal")
        o.availableMemory = { nil }
        XCTAssertNoThrow(try ServingModel(options: o, logger: Logger(label: "test")))
    }
}

extension MemoryBudgetTests {
    /// A KV pool sized by default (ctx × max-num-seqs) counts too (it counted as 0: helper-59's `--max-num-seqs 512`
    /// died allocating 45 GiB), refused with what to lower, before the pool is allocated.
    func testTheDefaultKVPoolCountsAgainstAvailableMemory() throws {
        let path = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")
        let file = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        var o = ServingModel.Options(modelPath: path, threads: 1)
        o.availableMemory = { file + (256 << 20) + (1 << 20) }   // weights + runtime + 1 MiB
        o.maxNumSeqs = 1024
        XCTAssertThrowsError(try ServingModel(options: o, logger: Logger(label: "test"))) { error in
            guard case EngineError.modelLoad(let msg) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(msg.contains("--max-num-seqs 1024") && msg.contains("lower --max-num-seqs or --ctx-size"), msg)
        }
        o.maxNumSeqs = 1
        o.contextSize = 16
        XCTAssertNoThrow(try ServingModel(options: o, logger: Logger(label: "test")))
    }

    /// The container's limit: cgroup v2 and v1 texts; an unset limit ("max", v1's huge number) is no limit.
    func testCgroupHeadroom() {
        XCTAssertEqual(MemoryBudget.cgroupHeadroom(limit: "2147483648\n", usage: "1073741824\n"), 1 << 30)
        XCTAssertEqual(MemoryBudget.cgroupHeadroom(limit: "100", usage: "200"), 0)
        XCTAssertNil(MemoryBudget.cgroupHeadroom(limit: "max\n", usage: "5"))
        XCTAssertNil(MemoryBudget.cgroupHeadroom(limit: "9223372036854771712\n", usage: "5"))
        XCTAssertNil(MemoryBudget.cgroupHeadroom(limit: nil, usage: "5"))
    }
}

/// A pointer passed into a `@Sendable` closure in a single-threaded test.
private struct UncheckedBox: @unchecked Sendable {
    let value: UnsafeMutablePointer<Int>
    init(_ v: UnsafeMutablePointer<Int>) { value = v }
}
