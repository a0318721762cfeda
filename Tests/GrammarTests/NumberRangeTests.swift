import Foundation
import Grammar
import JSON
import TestSupport
import XCTest

/// Number bounds (minimum / maximum / exclusiveMinimum / exclusiveMaximum, integral or fractional, either sign):
/// the grammar accepts a number text exactly when its decimal value is within them, checked on random bounds and
/// numbers against `Decimal` comparisons.
final class NumberRangeTests: XCTestCase {
    func testRandomBoundsAgainstDecimalComparison() throws {
        var rng = XorShift(state: 0x5EED)
        func decimalText() -> String {
            let neg = rng.next() % 3 == 0
            let int = Int(rng.next() % 40)
            let fracDigits = Int(rng.next() % 4)
            let frac = (0..<fracDigits).map { _ in String(rng.next() % 10) }.joined()
            return (neg ? "-" : "") + String(int) + (frac.isEmpty ? "" : "." + frac)
        }
        func value(_ t: String) -> Decimal { Decimal(string: t, locale: Locale(identifier: "en_US_POSIX"))! }
        var checked = 0, matched = 0
        for _ in 0..<150 {
            var members: [(String, JSONValue)] = [("type", .string("number"))]
            var lo: (Decimal, Bool)?, hi: (Decimal, Bool)?
            if rng.next() % 4 != 0 {
                let t = decimalText(), ex = rng.next() % 2 == 0
                members.append((ex ? "exclusiveMinimum" : "minimum", .number(t)))
                lo = (value(t), ex)
            }
            if rng.next() % 4 != 0 {
                let t = decimalText(), ex = rng.next() % 2 == 0
                members.append((ex ? "exclusiveMaximum" : "maximum", .number(t)))
                hi = (value(t), ex)
            }
            let g: Grammar
            do {
                g = try Grammar.jsonSchema(.object(members))
            } catch {
                // Only an empty range may be refused.
                guard let (l, le) = lo, let (h, he) = hi, l > h || (l == h && (le || he)) else {
                    return XCTFail("\(members): \(error)")
                }
                continue
            }
            for _ in 0..<60 {
                let t = decimalText()
                let v = value(t)
                var inside = true
                if let (l, ex) = lo { inside = inside && (ex ? v > l : v >= l) }
                if let (h, ex) = hi { inside = inside && (ex ? v < h : v <= h) }
                // Within bounds "-0" and "-0.0" are not written (zero is written "0"); unbounded, any JSON number is.
                let negativeZero = t.hasPrefix("-") && v == 0 && (lo != nil || hi != nil)
                XCTAssertEqual(g.matches(t), inside && !negativeZero, "\(t) against \(members)")
                checked += 1
                if inside { matched += 1 }
            }
        }
        XCTAssertGreaterThan(checked, 5000)
        XCTAssertGreaterThan(matched, 1000)
    }

    /// pydantic's common forms.
    func testPydanticBounds() throws {
        func g(_ text: String) throws -> Grammar { try Grammar.jsonSchema(JSONValue(parsing: text)) }
        let positive = try g(#"{"type":"number","exclusiveMinimum":0}"#)   // Field(gt=0)
        for t in ["0.5", "1", "12.25", "0.0001"] { XCTAssertTrue(positive.matches(t), t) }
        for t in ["0", "0.0", "-1", "-0.5"] { XCTAssertFalse(positive.matches(t), t) }
        let unit = try g(#"{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}"#)
        XCTAssertTrue(unit.matches("0.999"))
        XCTAssertFalse(unit.matches("1"))
        XCTAssertFalse(unit.matches("1.0"))
        let temperature = try g(#"{"type":"number","minimum":0.5,"maximum":2.5}"#)   // confloat(ge=0.5, le=2.5)
        for t in ["0.5", "0.50", "1", "2.5", "2.49"] { XCTAssertTrue(temperature.matches(t), t) }
        for t in ["0.49", "2.51", "3", "0"] { XCTAssertFalse(temperature.matches(t), t) }
        XCTAssertThrowsError(try g(#"{"type":"number","minimum":1.5,"exclusiveMaximum":1.5}"#))
    }

    /// Found by helper-39: values a client reading doubles rejects, bounds read as doubles, enum and const values
    /// outside the bounds.
    func testBoundsHoldForClientsThatReadDoubles() throws {
        func g(_ text: String) throws -> Grammar { try Grammar.jsonSchema(JSONValue(parsing: text)) }
        // 99.999999999999995 < 100 reads as the double 100.0: at most 15 significant digits are written.
        let below = try g(#"{"type":"number","minimum":99,"exclusiveMaximum":100}"#)
        XCTAssertTrue(below.matches("99.9999999999999"))
        XCTAssertFalse(below.matches("99.99999999999999"))
        XCTAssertFalse(below.matches("99.999999999999995"))
        XCTAssertTrue(try g(#"{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}"#).matches("0.123456789012345"))
        // A range that holds no 15-digit number is empty.
        XCTAssertThrowsError(try g(#"{"type":"number","exclusiveMinimum":55564639800631.655,"exclusiveMaximum":55564639800631.656}"#))
        // Integer bounds are exact decimals.
        let two = try g(#"{"type":"integer","minimum":2.0000000000000001,"maximum":5}"#)
        XCTAssertFalse(two.matches("2"))
        XCTAssertTrue(two.matches("3"))
        XCTAssertThrowsError(try g(#"{"type":"integer","minimum":2.0000000000000001,"maximum":2}"#))
        XCTAssertTrue(try g(#"{"type":"integer","exclusiveMinimum":2.5,"exclusiveMaximum":4}"#).matches("3"))
        XCTAssertFalse(try g(#"{"type":"integer","exclusiveMinimum":2.5,"exclusiveMaximum":4}"#).matches("4"))
        // enum and const values outside the bounds.
        let e = try g(#"{"type":"number","enum":[0.5,5,-3],"minimum":0,"maximum":1}"#)
        XCTAssertTrue(e.matches("0.5"))
        XCTAssertFalse(e.matches("5"))
        XCTAssertThrowsError(try g(#"{"type":"number","const":5,"maximum":1}"#))
        XCTAssertThrowsError(try g(#"{"enum":[0.5,5],"exclusiveMaximum":0.5}"#))
        // Beyond what a Decimal holds exactly.
        XCTAssertThrowsError(try g(#"{"type":"number","minimum":1.0000000000000000000000000000000000000000000000001}"#))
    }

    /// Token masks of a bounded number on the SmolLM2 vocabulary equal brute force.
    func testBoundedNumberMasksMatchBruteForce() throws {
        try TokenMaskTests.compare(schema: #"{"type":"object","properties":{"p":{"type":"number","exclusiveMinimum":0,"maximum":2.5},"q":{"type":"number","minimum":-1.25,"exclusiveMaximum":-0.75}},"required":["p","q"]}"#,
                                   text: #"{"p": 1.25, "q": -1.125}"#)
    }
}
