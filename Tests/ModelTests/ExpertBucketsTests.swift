import Model
import XCTest

/// `ExpertBuckets`: the step's (token, slot) assignments grouped by expert, against a dictionary-based reference.
final class ExpertBucketsTests: XCTestCase {
    /// Reference: expert → ascending assignments, experts ascending.
    private func reference(_ ids: [Int32]) -> [(Int32, [Int32])] {
        var byExpert: [Int32: [Int32]] = [:]
        for (a, e) in ids.enumerated() { byExpert[e, default: []].append(Int32(a)) }
        return byExpert.keys.sorted().map { ($0, byExpert[$0]!) }
    }

    private func bucketed(_ b: ExpertBuckets, _ ids: [Int32]) -> [(Int32, [Int32])] {
        ids.withUnsafeBufferPointer { b.bucket($0.baseAddress!, count: ids.count) }
        return (0..<b.activeCount).map { (b.experts[$0], Array(b.assignments(ofActive: $0))) }
    }

    func testHandWrittenStep() {
        // Three tokens, top-2 of 6 experts: token 0 → (4, 1), token 1 → (1, 5), token 2 → (4, 0).
        let b = ExpertBuckets(numExperts: 6, capacity: 8)
        let got = bucketed(b, [4, 1, 1, 5, 4, 0])
        XCTAssertEqual(got.map { $0.0 }, [0, 1, 4, 5])
        XCTAssertEqual(got.map { $0.1 }, [[5], [1, 2], [0, 4], [3]])
        XCTAssertEqual(b.starts[b.activeCount], 6)
    }

    func testRandomStepsMatchTheReference() {
        var rng = SystemRandomNumberGenerator()
        let b = ExpertBuckets(numExperts: 64, capacity: 64 * 6)
        for _ in 0..<200 {
            let n = Int.random(in: 0...64, using: &rng), k = 6
            var ids: [Int32] = []
            for _ in 0..<n {   // k distinct experts per token, as a router picks them
                var chosen = Set<Int32>()
                while chosen.count < k { chosen.insert(Int32.random(in: 0..<64, using: &rng)) }
                ids += chosen.shuffled(using: &rng)
            }
            let got = bucketed(b, ids), want = reference(ids)
            XCTAssertEqual(got.map { $0.0 }, want.map { $0.0 })
            XCTAssertEqual(got.map { $0.1 }, want.map { $0.1 })
            XCTAssertEqual(got.reduce(0) { $0 + $1.1.count }, ids.count)
        }
    }

    func testEmptyStepAndEveryExpert() {
        let b = ExpertBuckets(numExperts: 4, capacity: 16)
        XCTAssertTrue(bucketed(b, []).isEmpty)
        XCTAssertEqual(bucketed(b, [3, 2, 1, 0, 0, 1, 2, 3]).map { $0.1 }, [[3, 4], [2, 5], [1, 6], [0, 7]])
    }
}
