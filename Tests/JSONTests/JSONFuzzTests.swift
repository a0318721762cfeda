import Foundation
import TestSupport
import XCTest
import JSON

final class JSONFuzzTests: XCTestCase {
    func randomValue(_ depth: Int, _ rng: inout XorShift) -> JSONValue {
        let pick = Int.random(in: 0...(depth > 3 ? 4 : 6), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return Bool.random(using: &rng) ? .int(Int.random(in: -1_000_000...1_000_000, using: &rng))
                                                : .double(Double.random(in: -1e6...1e6, using: &rng))
        case 3, 4:
            let scalars: [Unicode.Scalar] = ["a", "\"", "\\", "\n", "\u{01}", "é", "世", "😀", "\u{2028}", "/"]
            return .string(String(String.UnicodeScalarView((0..<Int.random(in: 0...8, using: &rng)).map { _ in scalars.randomElement(using: &rng)! })))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth + 1, &rng) })
        default:
            return .object((0..<Int.random(in: 0...4, using: &rng)).map { k in ("k\(k)\(Int.random(in: 0...9, using: &rng))", randomValue(depth + 1, &rng)) })
        }
    }

    func testSerializeParseRoundTripInEveryFormat() throws {
        var rng = XorShift(state: 77)
        for _ in 0..<500 {
            let v = randomValue(0, &rng)
            XCTAssertEqual(try JSONValue(parsing: v.encoded()), v)
            XCTAssertEqual(try JSONValue(parsing: v.serialized(.python())), v)
            XCTAssertEqual(try JSONValue(parsing: v.serialized(.python(indent: "\t"))), v)
        }
    }

    func testRandomBytesNeverTrapAndMatchFoundation() {
        var rng = XorShift(state: 99)
        let alphabet = Array("{}[],:\"\\ntrue false null 0123456789.eE+- \u{e9}abc".utf8)
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0...24, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let ours = (try? JSONValue(parsing: bytes)) != nil
            let foundation = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            if !bytes.isEmpty && ours != foundation {
                XCTFail("disagreement on \(String(decoding: bytes, as: UTF8.self).debugDescription): ours \(ours), Foundation \(foundation)")
            }
        }
    }
}
