// JSON numbers within decimal bounds (JSON Schema minimum / maximum / exclusiveMinimum / exclusiveMaximum, any of
// them fractional): an integer part, then a fraction whose digits are held between the bounds' own digits where the
// integer part is at a bound. Exact: the bounds are read as decimal text, never as binary floating point.
import Foundation

/// A non-negative decimal as digit strings: `int` without leading zeros ("0" for zero), `frac` without trailing
/// zeros (empty for an integer).
struct DecimalDigits: Equatable {
    var int: [UInt8]
    var frac: [UInt8]

    /// `text` (a JSON number, any sign or exponent) as its sign and magnitude; nil when it is not a number.
    static func parse(_ text: String) -> (negative: Bool, magnitude: DecimalDigits)? {
        guard let d = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), d.isFinite else { return nil }
        var s = Array((d.magnitude).description.utf8)   // plain decimal notation
        var frac: [UInt8] = []
        if let dot = s.firstIndex(of: 0x2E) {
            frac = Array(s[(dot + 1)...])
            s = Array(s[..<dot])
        }
        while frac.last == 0x30 { frac.removeLast() }
        while s.count > 1 && s.first == 0x30 { s.removeFirst() }
        if s.isEmpty { s = [0x30] }
        let zero = s == [0x30] && frac.isEmpty
        return (d < 0 && !zero, DecimalDigits(int: s, frac: frac))
    }

    var isZero: Bool { int == [0x30] && frac.isEmpty }
}

extension RuleSet {
    /// One bound of a range: its magnitude's digits and whether it is excluded.
    struct NumberBound {
        var value: DecimalDigits
        var exclusive: Bool
    }

    /// Non-negative JSON numbers y (no sign) with `lower` ≤ y (< when exclusive) and y ≤ `upper` (<), written as
    /// an integer part of at most `maxIntegerDigits` digits and an optional fraction of at most `maxFractionDigits`.
    /// Alternatives (none when the range is empty).
    mutating func nonNegativeRange(_ lower: NumberBound, _ upper: NumberBound) -> [[Symbol]] {
        let a = lower.value, b = upper.value
        guard let A = Int(String(decoding: a.int, as: UTF8.self)), let B = Int(String(decoding: b.int, as: UTF8.self)), A <= B else { return [] }
        let digits: (Int) -> [Symbol] = { String($0).utf8.map { .bytes(ByteSet($0)) } }
        let dot: Symbol = .bytes(ByteSet(0x2E))
        var out: [[Symbol]] = []
        // y = I, or I.F: the fraction's value 0.F bounded below by `lo` and above by `hi` (nil: no bound).
        func part(_ i: Int, lo: [UInt8]?, loStrict: Bool, hi: [UInt8]?, hiStrict: Bool) {
            // The integer alone: its fraction is 0.
            let zeroOK = (lo.map { $0.isEmpty && !loStrict } ?? true) && (hi.map { !($0.isEmpty && hiStrict) } ?? true)
            if zeroOK { out.append(digits(i)) }
            if let f = fractionRange(lo ?? [], loStrict: lo == nil ? false : loStrict, hi, hiStrict: hiStrict) {
                out.append(digits(i) + [dot, .rule(f)])
            }
        }
        if A == B {
            part(A, lo: a.frac, loStrict: lower.exclusive, hi: b.frac, hiStrict: upper.exclusive)
            return out
        }
        part(A, lo: a.frac, loStrict: lower.exclusive, hi: nil, hiStrict: false)
        if A + 1 <= B - 1 {
            let mid = add(RuleSet.naturalRange(A + 1, B - 1))
            out.append([.rule(mid)])
            out.append([.rule(mid)] + fraction())
        }
        part(B, lo: nil, loStrict: false, hi: b.frac, hiStrict: upper.exclusive)
        return out
    }

    /// Fraction digit strings F (1 to `maxFractionDigits` digits; value 0.F) with `lo` ≤ 0.F (< when `loStrict`)
    /// and 0.F ≤ `hi` (<); `lo` and `hi` are digit strings without trailing zeros, `hi` nil for no upper bound. A
    /// digit-by-digit automaton: state (digits read, still equal to lo's prefix, still equal to hi's prefix).
    /// Returns its start rule, or nil when no fraction fits.
    mutating func fractionRange(_ lo: [UInt8], loStrict: Bool, _ hi: [UInt8]?, hiStrict: Bool) -> Int? {
        let n = RuleSet.maxFractionDigits
        var memo: [Int: Int?] = [:]
        func digit(_ s: [UInt8], _ i: Int) -> UInt8 { i < s.count ? s[i] - 0x30 : 0 }
        /// Whether F may end after `k` digits in this state.
        func accepts(_ k: Int, _ onLo: Bool, _ onHi: Bool) -> Bool {
            if onLo && (k < lo.count || loStrict) { return false }      // F < lo, or F = lo excluded
            if onHi, let hi, k >= hi.count && hiStrict { return false }  // F = hi excluded
            return true
        }
        func state(_ i: Int, _ onLo: Bool, _ onHi: Bool) -> Int? {
            let key = i << 2 | (onLo ? 2 : 0) | (onHi ? 1 : 0)
            if let r = memo[key] { return r }
            memo[key] = .some(nil)   // no cycles: i grows
            var alts: [[Symbol]] = []
            var groups: [(set: ByteSet, lo: Bool, hi: Bool)] = []
            for d in UInt8(0)...9 {
                if onLo && d < digit(lo, i) { continue }
                if onHi, let hi, d > digit(hi, i) { continue }
                let nl = onLo && d == digit(lo, i), nh = onHi && hi != nil && d == digit(hi!, i)
                if let g = groups.firstIndex(where: { $0.lo == nl && $0.hi == nh }) {
                    groups[g].set.insert(0x30 + d)
                } else {
                    groups.append((ByteSet(0x30 + d), nl, nh))
                }
            }
            for g in groups {
                if accepts(i + 1, g.lo, g.hi) { alts.append([.bytes(g.set)]) }
                if i + 1 < n, let next = state(i + 1, g.lo, g.hi) { alts.append([.bytes(g.set), .rule(next)]) }
            }
            let r: Int? = alts.isEmpty ? nil : add(alts)
            memo[key] = .some(r)
            return r
        }
        return state(0, true, hi != nil)
    }
}
