// JSON numbers within decimal bounds (JSON Schema minimum / maximum / exclusiveMinimum / exclusiveMaximum, any of
// them fractional): an integer part, then a fraction whose digits are held between the bounds' own digits where the
// integer part is at a bound. Exact: the bounds are read as decimal text, never as binary floating point.
import Foundation

/// A non-negative decimal as digit strings: `int` without leading zeros ("0" for zero), `frac` without trailing
/// zeros (empty for an integer).
struct DecimalDigits: Equatable {
    var int: [UInt8]
    var frac: [UInt8]

    /// The magnitude of `d` (any sign).
    init(magnitudeOf d: Decimal) {
        var s = Array(d.magnitude.description.utf8)   // plain decimal notation
        var frac: [UInt8] = []
        if let dot = s.firstIndex(of: 0x2E) {
            frac = Array(s[(dot + 1)...])
            s = Array(s[..<dot])
        }
        while frac.last == 0x30 { frac.removeLast() }
        while s.count > 1 && s.first == 0x30 { s.removeFirst() }
        int = s.isEmpty ? [0x30] : s
        self.frac = frac
    }
}

extension RuleSet {
    /// One bound of a range: its magnitude's digits and whether it is excluded.
    struct NumberBound {
        var value: DecimalDigits
        var exclusive: Bool
    }

    /// Most significant digits of a bounded number (integer part and fraction, a zero integer part not counted):
    /// a decimal of at most 15 digits reads back as a distinct double (DBL_DIG), so a client that reads numbers as
    /// doubles (pydantic, the openai SDK's `parse`, Python's `jsonschema`) sees the bound hold, exclusive ones too
    /// (with 17 digits, 99.999999999999999 < 100 reads as 100.0).
    static let maxBoundedDigits = 15

    /// Non-negative JSON numbers y (no sign) with `lower` ≤ y (< when exclusive) and y ≤ `upper` (<), written as
    /// an integer part and an optional fraction, `maxBoundedDigits` digits at most. Alternatives (none when no
    /// such number lies in the range).
    mutating func nonNegativeRange(_ lower: NumberBound, _ upper: NumberBound) -> [[Symbol]] {
        let a = lower.value, b = upper.value
        guard let A = Int(String(decoding: a.int, as: UTF8.self)), let B = Int(String(decoding: b.int, as: UTF8.self)), A <= B else { return [] }
        let digits: (Int) -> [Symbol] = { String($0).utf8.map { .bytes(ByteSet($0)) } }
        let dot: Symbol = .bytes(ByteSet(0x2E))
        /// Fraction digits left after an integer part `i`.
        let room: (Int) -> Int = { $0 == 0 ? Self.maxBoundedDigits : max(0, Self.maxBoundedDigits - String($0).count) }
        var out: [[Symbol]] = []
        // y = I, or I.F: the fraction's value 0.F bounded below by `lo` and above by `hi` (nil: no bound).
        func part(_ i: Int, lo: [UInt8]?, loStrict: Bool, hi: [UInt8]?, hiStrict: Bool) {
            // The integer alone: its fraction is 0.
            let zeroOK = (lo.map { $0.isEmpty && !loStrict } ?? true) && (hi.map { !($0.isEmpty && hiStrict) } ?? true)
            if zeroOK { out.append(digits(i)) }
            if let f = fractionRange(lo ?? [], loStrict: lo == nil ? false : loStrict, hi, hiStrict: hiStrict, maxDigits: room(i)) {
                out.append(digits(i) + [dot, .rule(f)])
            }
        }
        if A == B {
            part(A, lo: a.frac, loStrict: lower.exclusive, hi: b.frac, hiStrict: upper.exclusive)
            return out
        }
        part(A, lo: a.frac, loStrict: lower.exclusive, hi: nil, hiStrict: false)
        // The integer parts strictly between, by digit count (each count leaves its own room for a fraction).
        var p = 1
        for len in 1...16 {
            let from = max(A + 1, len == 1 ? 0 : p), to = min(B - 1, p * 10 - 1)
            p *= 10
            guard from <= to else { continue }
            let mid = add(RuleSet.naturalRange(from, to))
            out.append([.rule(mid)])
            if let f = fractionRange([], loStrict: false, nil, hiStrict: false, maxDigits: room(from)) {
                out.append([.rule(mid), dot, .rule(f)])
            }
        }
        part(B, lo: nil, loStrict: false, hi: b.frac, hiStrict: upper.exclusive)
        return out
    }

    /// Fraction digit strings F (1 to `n` digits; value 0.F) with `lo` ≤ 0.F (< when `loStrict`)
    /// and 0.F ≤ `hi` (<); `lo` and `hi` are digit strings without trailing zeros, `hi` nil for no upper bound. A
    /// digit-by-digit automaton: state (digits read, still equal to lo's prefix, still equal to hi's prefix).
    /// Returns its start rule, or nil when no fraction fits.
    mutating func fractionRange(_ lo: [UInt8], loStrict: Bool, _ hi: [UInt8]?, hiStrict: Bool, maxDigits n: Int) -> Int? {
        guard n > 0 else { return nil }
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
                let nl = onLo && d == digit(lo, i), nh = onHi && d == digit(hi ?? [], i)
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
