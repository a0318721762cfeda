import Compute
import Foundation
import XCTest

final class GELUTests: XCTestCase {
    func testGeluTanhMulMatchesReferenceAndKnownValues() {
        var rng = TestRNG(state: 3)
        let n = 203
        let g = rng.floats(n, 6), u = rng.floats(n, 2)
        var a = [Float](repeating: 0, count: n), b = a
        Ops.geluTanhMul(gate: g, up: u, n: n, out: &a)
        Ops.geluTanhMulRef(gate: g, up: u, n: n, out: &b)
        for i in 0..<n { XCTAssertEqual(a[i], b[i], accuracy: 1e-5 * max(1, abs(b[i])), "element \(i)") }
        // gelu_tanh(1) = 0.841192, gelu_tanh(-1) = -0.158808, gelu_tanh(0) = 0 (PyTorch gelu(approximate="tanh")).
        var out = [Float](repeating: 0, count: 3)
        Ops.geluTanhMulRef(gate: [1, -1, 0], up: [1, 1, 1], n: 3, out: &out)
        XCTAssertEqual(out[0], 0.841192, accuracy: 1e-5)
        XCTAssertEqual(out[1], -0.158808, accuracy: 1e-5)
        XCTAssertEqual(out[2], 0)
    }
}
