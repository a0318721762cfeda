import Compute
import Glibc
import XCTest

final class StepProfileTests: XCTestCase {
    func testPhasesAreBucketedByBatchSizeAndOffRecordsNothing() {
        StepProfile.enable(false)
        XCTAssertEqual(StepProfile.now(), 0, "off: probes do not read the clock")
        StepProfile.beginStep(batchSize: 2)
        StepProfile.endStep(since: 1)
        XCTAssertTrue(StepProfile.snapshot().isEmpty)

        StepProfile.enable(true)
        defer { StepProfile.enable(false) }
        for batch in [3, 3, 100, 0] {
            let start = StepProfile.now()
            StepProfile.beginStep(batchSize: batch)
            let m = StepProfile.now()
            usleep(2_000)
            StepProfile.add(.matmul, since: m)
            StepProfile.endStep(since: start)
        }
        let rows = StepProfile.snapshot()
        XCTAssertEqual(rows.map(\.batch), [0, 3, StepProfile.maxBatch], "larger batches share the last bucket")
        XCTAssertEqual(rows.map(\.steps), [1, 2, 1])
        let three = rows[1].msPerStep
        XCTAssertGreaterThanOrEqual(three[.matmul]!, 2.0)
        XCTAssertGreaterThanOrEqual(three[.step]!, three[.matmul]!)
        XCTAssertEqual(three[.sampler], 0)
        let report = StepProfile.report()
        XCTAssertTrue(report.hasPrefix("profile batch=prefill steps=1 step="), report)
        XCTAssertTrue(report.contains("\nprofile batch=3 steps=2 step="), report)
        XCTAssertTrue(report.contains(" matmul="), report)
        StepProfile.reset()
        XCTAssertTrue(StepProfile.snapshot().isEmpty)
    }
}
