// JSON schema → grammar rules. Supported (draft 2020-12 names): type (all seven, or a list), enum, const,
// properties / required / additionalProperties (true, false or a schema), items / prefixItems / minItems /
// maxItems, anyOf / oneOf (oneOf only when its branches are disjoint, see checkDisjoint), allOf with one branch,
// $ref / $defs / definitions (recursive; JSON pointers into this document), string minLength / maxLength /
// pattern (a regex subset, see RegexCompiler) / format (date, time, date-time, uuid, email), integer and number
// minimum / maximum / exclusiveMinimum / exclusiveMaximum (number bounds exact decimals, see NumberRange.swift). Annotations
// (title, description, default, examples, ...) are ignored. Any other keyword is refused (fail closed).
//
// Object properties come out in the schema's order; only declared properties are generated (additional ones are
// allowed, never required) — with `properties: {}` that is `{}` (a pydantic model without fields, an OpenAI tool
// without parameters); an object schema that declares no `properties` at all is a free map. A single space may
// follow `:` and `,`; nothing else.
import Foundation
import JSON

struct JSONSchemaCompiler {
    let root: JSONValue
    /// Rules of `$ref` targets by pointer (made once, so recursion closes).
    private var refRules: [String: Int] = [:]
    /// Current schema nesting (bounded: the compiler recurses once per level).
    private var depth = 0
    static let maxDepth = 64

    init(root: JSONValue) { self.root = root }

    static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
                                           "deprecated", "readOnly", "writeOnly", "discriminator", "$defs",
                                           "definitions", "$anchor"]
    static let constraints: Set<String> = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties",
                                           "required", "additionalProperties", "items", "prefixItems", "minItems",
                                           "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format",
                                           "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
    static let types = ["object", "array", "string", "integer", "number", "boolean", "null"]
    /// Largest bounded repetition (maxLength, maxItems) unrolled into rules.
    static let maxUnrolled = 2048
    /// Integer bounds beyond this magnitude are refused (numbers have at most 16 digits here).
    static let maxBound = 999_999_999_999_999
    /// Most object properties in one schema (OpenAI's structured-output limit). Each optional property is one more
    /// stack in the matcher's states, so mask time grows with their number.
    static let maxProperties = 5000
    /// Most enum values and anyOf/oneOf branches in one schema, for the same reason (alternatives are stacks).
    static let maxAlternatives = 10_000
    /// Most bytes of literal text (enum and const values, property names) in one schema: every byte is a grammar
    /// element (~40 bytes of rules), and an 8 MB body of enum strings made a grammar of ~300 MB.
    static let maxLiteralBytes = 1 << 20
    private var properties = 0
    private var alternatives = 0
    private var literalBytes = 0
    /// Characters of distinct bounded-string chains (`RuleSet.string(minLength:maxLength:)` unrolls one rule per
    /// character; equal bounds share a chain).
    static let maxBoundedChars = 16_384
    private var boundedChars = 0

    mutating func compile(into rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        try value(root, "", &rs)
    }

    private func unsupported(_ k: String, _ p: String, _ why: String) -> GrammarError {
        .unsupported(keyword: k, path: p, reason: why)
    }

    /// The symbols of one value valid against `schema` (at JSON pointer `path`).
    private mutating func value(_ schema: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth {
            throw GrammarError.invalidSchema(path: path, reason: "nested deeper than \(Self.maxDepth) levels (not supported)")
        }
        if schema.boolValue == true { return rs.anyValue() }
        if schema.boolValue == false { throw GrammarError.invalidSchema(path: path, reason: "the schema `false` matches nothing") }
        guard let members = schema.objectValue else {
            throw GrammarError.invalidSchema(path: path, reason: "a schema must be an object or a boolean, not \(schema.typeName)")
        }
        var present = Set<String>()
        for (k, _) in members {
            if Self.annotations.contains(k) { continue }
            guard Self.constraints.contains(k) else { throw unsupported(k, path, "this keyword cannot be enforced") }
            present.insert(k)
        }
        if schema["uniqueItems"]?.boolValue == true { throw unsupported("uniqueItems", path, "unique array items cannot be enforced") }
        present.remove("uniqueItems")

        if let ref = schema["$ref"] {
            if let other = present.subtracting(["$ref"]).sorted().first {
                throw unsupported(other, path, "keywords beside $ref are not supported")
            }
            guard let pointer = ref.stringValue else { throw GrammarError.invalidSchema(path: path + "/$ref", reason: "must be a string") }
            return [.rule(try refRule(pointer, path, &rs))]
        }
        for combinator in ["anyOf", "oneOf", "allOf"] where schema[combinator] != nil {
            if let other = present.subtracting([combinator]).sorted().first {
                throw unsupported(other, path, "keywords beside \(combinator) are not supported")
            }
            guard let subs = schema[combinator]?.arrayValue, !subs.isEmpty else {
                throw GrammarError.invalidSchema(path: path + "/" + combinator, reason: "must be a non-empty array")
            }
            if combinator == "allOf" && subs.count > 1 {
                throw unsupported("allOf", path, "allOf with more than one schema is not supported")
            }
            try count(subs.count, \.alternatives, combinator, path)
            if combinator == "oneOf" { try checkDisjoint(subs, path) }
            var alts: [[Symbol]] = []
            for (i, s) in subs.enumerated() { alts.append(try value(s, "\(path)/\(combinator)/\(i)", &rs)) }
            return alts.count == 1 ? alts[0] : [.rule(rs.add(alts))]
        }
        let types = try typeList(schema, path)
        let bounds = try numericBounds(schema, path)
        if let c = schema["const"] {
            guard Self.within(c, bounds) else { throw GrammarError.invalidSchema(path: path + "/const", reason: "the value is outside the schema's bounds") }
            let text = Self.literalText(c)
            try count(text.utf8.count, \.literalBytes, "const", path)
            return RuleSet.literal(text)
        }
        if let e = schema["enum"] {
            guard let values = e.arrayValue, !values.isEmpty else {
                throw GrammarError.invalidSchema(path: path + "/enum", reason: "must be a non-empty array")
            }
            let kept = values.filter { v in (types == nil || types!.contains { Self.valueHasType(v, $0) }) && Self.within(v, bounds) }
            guard !kept.isEmpty else { throw GrammarError.invalidSchema(path: path + "/enum", reason: "no value has the schema's type and lies within its bounds") }
            try count(kept.count, \.alternatives, "enum", path)
            let texts = kept.map(Self.literalText)
            for t in texts { try count(t.utf8.count, \.literalBytes, "enum", path) }
            return rs.literalAlternatives(texts)
        }
        let chosen = types ?? Self.impliedTypes(present)
        var alts: [[Symbol]] = []
        for t in chosen { alts.append(try typed(t, schema, path, &rs)) }
        return alts.count == 1 ? alts[0] : [.rule(rs.add(alts))]
    }

    /// Adds `n` to one of the schema-wide counts and refuses `keyword` once it passes its limit.
    private mutating func count(_ n: Int, _ counter: WritableKeyPath<JSONSchemaCompiler, Int>, _ keyword: String, _ path: String)
        throws(GrammarError) {
        self[keyPath: counter] += n
        let (limit, what): (Int, String) = switch counter {
        case \.properties: (Self.maxProperties, "object properties")
        case \.alternatives: (Self.maxAlternatives, "enum values and anyOf/oneOf branches")
        case \.boundedChars: (Self.maxBoundedChars, "characters of distinct minLength/maxLength bounds (strings with equal bounds count once)")
        default: (Self.maxLiteralBytes, "bytes of enum and const values and property names")
        }
        if self[keyPath: counter] > limit { throw unsupported(keyword, path, "a schema may have at most \(limit) \(what) in all") }
    }

    /// `type` as a list (nil when absent).
    private func typeList(_ schema: JSONValue, _ path: String) throws(GrammarError) -> [String]? {
        guard let t = schema["type"] else { return nil }
        let names: [String]
        if let s = t.stringValue { names = [s] } else if let a = t.arrayValue, !a.isEmpty, a.allSatisfy({ $0.stringValue != nil }) {
            names = a.map { $0.stringValue! }
        } else {
            throw GrammarError.invalidSchema(path: path + "/type", reason: "must be a type name or a non-empty list of them")
        }
        for n in names where !Self.types.contains(n) {
            throw GrammarError.invalidSchema(path: path + "/type", reason: "unknown type '\(n)'")
        }
        return names
    }

    /// The types a schema without `type` constrains: those its keywords speak of, or all of them.
    private static func impliedTypes(_ present: Set<String>) -> [String] {
        var out: [String] = []
        if !present.isDisjoint(with: ["properties", "required", "additionalProperties"]) { out.append("object") }
        if !present.isDisjoint(with: ["items", "prefixItems", "minItems", "maxItems"]) { out.append("array") }
        if !present.isDisjoint(with: ["minLength", "maxLength", "pattern", "format"]) { out.append("string") }
        if !present.isDisjoint(with: ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]) { out.append("number") }
        return out.isEmpty ? types : out
    }

    static func valueHasType(_ v: JSONValue, _ t: String) -> Bool {
        switch (v, t) {
        case (.object, "object"), (.array, "array"), (.string, "string"), (.bool, "boolean"), (.null, "null"),
             (.number, "number"): return true
        case (.number, "integer"): return v.intValue != nil
        default: return false
        }
    }

    // MARK: oneOf

    /// What a schema can match, as far as the oneOf check needs: the JSON types of its values (nil: any; "integer"
    /// counts as "number"), the values it is limited to (nil: not limited), and, for an object, its required
    /// properties that are limited to values (a discriminator such as pydantic's `{"const": "cat"}`).
    private struct Shape {
        var types: Set<String>?
        var values: Set<String>?
        var tags: [String: Set<String>] = [:]
        /// For an object with declared `properties` (the only ones generated): those names and the required ones;
        /// nil otherwise (a free map, or not only objects).
        var declared: Set<String>?, required: Set<String> = []
    }

    /// A value as a key of `Shape.values`, equal for equal JSON values: numbers by value (1, 1.0, -0.0 and 0 are
    /// two numbers), object members in key order, recursively.
    private static func valueKey(_ v: JSONValue) -> String {
        switch v {
        case .number:
            guard let d = v.doubleValue else { return literalText(v) }
            return "#\(d == 0 ? 0 : d)"
        case .array(let items): return "[" + items.map(valueKey).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.sorted { $0.0 < $1.0 }.map { literalText(.string($0.0)) + ":" + valueKey($0.1) }.joined(separator: ",") + "}"
        default: return literalText(v)
        }
    }

    private func shape(_ s: JSONValue, hops: Int = 0) -> Shape {
        let anything = Shape(types: nil, values: nil)
        guard hops < 16, let members = s.objectValue else { return anything }   // `true`, or too deep to tell
        if let p = s["$ref"]?.stringValue { return resolve(p).map { shape($0.schema, hops: hops + 1) } ?? anything }
        if let subs = (s["anyOf"] ?? s["oneOf"] ?? s["allOf"])?.arrayValue, !subs.isEmpty {
            // Any branch's: types and values united; a tag only when every branch has it (a nested discriminated
            // union whose branches all carry the outer discriminator).
            let xs = subs.map { shape($0, hops: hops + 1) }
            if xs.count == 1 { return xs[0] }
            var out = Shape(types: [], values: [])
            for x in xs {
                out.types = x.types.flatMap { t in out.types.map { $0.union(t) } }
                out.values = x.values.flatMap { v in out.values.map { $0.union(v) } }
            }
            for (k, v) in xs[0].tags where xs.allSatisfy({ $0.tags[k] != nil }) {
                out.tags[k] = xs.dropFirst().reduce(v) { $0.union($1.tags[k]!) }
            }
            return out
        }
        func norm(_ t: String) -> String { t == "integer" ? "number" : t }
        if let c = s["const"] { return Shape(types: [norm(c.typeName)], values: [Self.valueKey(c)]) }
        if let e = s["enum"]?.arrayValue { return Shape(types: Set(e.map { norm($0.typeName) }), values: Set(e.map(Self.valueKey))) }
        let listed = (try? typeList(s, "")) ?? nil
        let types = Set((listed ?? Self.impliedTypes(Set(members.map(\.0)))).map(norm))
        var out = Shape(types: types, values: nil)
        if types == ["object"], let props = s["properties"]?.objectValue {
            out.declared = Set(props.map(\.0))
            out.required = Set(s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            for name in out.required {
                guard let p = s["properties"]?[name], let v = shape(p, hops: hops + 1).values else { continue }
                out.tags[name] = v
            }
        }
        return out
    }

    /// Whether no value can match both: different types, different values, or objects with a required property
    /// limited to different values.
    private static func disjoint(_ a: Shape, _ b: Shape) -> Bool {
        guard let ta = a.types, let tb = b.types else { return false }
        let common = ta.intersection(tb)
        if common.isEmpty { return true }
        if let va = a.values, let vb = b.values, va.isDisjoint(with: vb) { return true }
        if common == ["object"] {
            for (k, va) in a.tags { if let vb = b.tags[k], va.isDisjoint(with: vb) { return true } }
            // Only declared properties are generated: each branch requires one the other cannot write, so what one
            // writes fails the other (pydantic's discriminator with a default is not required, but its other fields
            // usually tell the branches apart so).
            if let da = a.declared, let db = b.declared, !b.required.isSubset(of: da), !a.required.isSubset(of: db) { return true }
        }
        return false
    }

    /// oneOf is enforced as a choice of branches, which is oneOf only when no value matches two of them: refuses
    /// branches it cannot show to be disjoint (a value could match both, and the schema would reject it).
    private func checkDisjoint(_ subs: [JSONValue], _ path: String) throws(GrammarError) {
        let shapes = subs.map { shape($0) }
        let why = "a value could match both, and oneOf needs exactly one; only branches of different types, with different const/enum values, or objects told apart by a required const property or by required properties the other does not declare are supported (anyOf allows overlap)"
        if shapes.count > 256 {
            // Pairwise is quadratic: a wide oneOf must be a list of distinct values.
            var seen = Set<String>(), total = 0
            for s in shapes { guard let v = s.values else { throw unsupported("oneOf", path, "branches may overlap: \(why)") }; seen.formUnion(v); total += v.count }
            if seen.count != total { throw unsupported("oneOf", path, "two branches share a value: \(why)") }
            return
        }
        for i in shapes.indices {
            for j in shapes.indices where j > i && !Self.disjoint(shapes[i], shapes[j]) {
                throw unsupported("oneOf", path, "branches \(i) and \(j) may overlap: \(why)")
            }
        }
    }

    /// A value's compact JSON text (enum and const are matched literally).
    static func literalText(_ v: JSONValue) -> String { v.serialized() }

    /// The schema a `#/...` pointer names, and its path; nil when it does not resolve.
    private func resolve(_ pointer: String) -> (schema: JSONValue, path: String)? {
        var target = root
        var targetPath = ""
        if pointer != "#" {
            let keys = JSONValue.pointerTokens(pointer.dropFirst())   // "#/a/b" → "/a/b"
            guard let t = root.value(at: keys) else { return nil }
            target = t
            targetPath = keys.map { "/" + $0 }.joined()
        }
        return (target, targetPath)
    }

    private mutating func refRule(_ pointer: String, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> Int {
        if let r = refRules[pointer] { return r }
        guard pointer == "#" || pointer.hasPrefix("#/") else {
            throw unsupported("$ref", path, "only references inside this schema ('#/...') are supported, not '\(pointer)'")
        }
        guard let (target, targetPath) = resolve(pointer) else {
            throw GrammarError.invalidSchema(path: path + "/$ref", reason: "'\(pointer)' does not resolve")
        }
        let r = rs.reserve()
        refRules[pointer] = r
        rs.define(r, [try value(target, targetPath, &rs)])
        return r
    }

    private mutating func typed(_ t: String, _ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        switch t {
        case "null": return RuleSet.literal("null")
        case "boolean": return [.rule(rs.shared("boolean") { _ in [RuleSet.literal("true"), RuleSet.literal("false")] })]
        case "string": return try string(s, path, &rs)
        case "integer": return try integer(s, path, &rs)
        case "number": return try number(s, path, &rs)
        case "array": return try array(s, path, &rs)
        default: return try object(s, path, &rs)
        }
    }

    private func count(_ s: JSONValue, _ key: String, _ path: String) throws(GrammarError) -> Int? {
        guard let v = s[key] else { return nil }
        guard let n = v.intValue, n >= 0 else { throw GrammarError.invalidSchema(path: path + "/" + key, reason: "must be a non-negative integer") }
        return n
    }

    private mutating func string(_ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        let lo = try count(s, "minLength", path) ?? 0
        let hi = try count(s, "maxLength", path)
        if let hi, hi < lo { throw GrammarError.invalidSchema(path: path + "/maxLength", reason: "maxLength is below minLength") }
        if let hi, hi > Self.maxUnrolled { throw unsupported("maxLength", path, "at most \(Self.maxUnrolled) is supported") }
        if lo > Self.maxUnrolled { throw unsupported("minLength", path, "at most \(Self.maxUnrolled) is supported") }
        let pattern = s["pattern"], format = s["format"]
        if pattern != nil && format != nil { throw unsupported("pattern", path, "pattern together with format is not supported") }
        if let regex = pattern ?? format.flatMap({ f in f.stringValue.flatMap { Self.formats[$0] }.map { JSONValue.string($0) } }) {
            let key = pattern != nil ? "pattern" : "format"
            if s["minLength"] != nil || s["maxLength"] != nil {
                throw unsupported(s["minLength"] != nil ? "minLength" : "maxLength", path, "length limits together with \(key) are not supported")
            }
            guard let text = regex.stringValue else { throw GrammarError.invalidSchema(path: path + "/pattern", reason: "must be a string") }
            do throws(RegexCompiler.Failure) {
                var rc = RegexCompiler(pattern: text)
                return try rc.compileJSONString(into: &rs)
            } catch {
                throw unsupported(key, path, error.message)
            }
        }
        if let f = format {
            throw unsupported("format", path, "format '\(f.stringValue ?? f.serialized())' is not supported (date, time, date-time, uuid, email are)")
        }
        if !rs.hasStringChain(minLength: lo, maxLength: hi) {
            try count(hi ?? lo, \.boundedChars, s["maxLength"] != nil ? "maxLength" : "minLength", path)
        }
        return rs.string(minLength: lo, maxLength: hi)
    }

    /// The supported formats as anchored patterns (RFC 3339 full-date / full-time / date-time, RFC 4122 uuid, a
    /// conservative email address with bounded parts). Days never pass a month's length;
    /// 29 February only in leap years (divisible by 4, centuries only by 400).
    static let formats: [String: String] = {
        // Years 0001-9999 (RFC 3339 has no year 0: Python's datetime, so pydantic, refuses it).
        let leap = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"   // Gregorian leap years
        let date = "(([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|" + leap + "-02-29)"
        let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?"
        let time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
        return ["date": "^" + date + "$", "time": "^" + time + "$", "date-time": "^" + date + "T" + time + "$",
                "uuid": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                // Bounded parts, so a model cannot spin in an address: at most 4 dotted labels each side. Domain labels
                // neither start nor end with a hyphen (RFC 1035 §2.3.1; email-validator, so pydantic's EmailStr,
                // refuses them).
                "email": "^[A-Za-z0-9_+-]{1,20}(\\.[A-Za-z0-9_+-]{1,20}){0,3}@" + label + "(\\." + label + "){0,2}\\.[A-Za-z]{2,6}$"]
    }()

    /// A bound's value (nil when absent).
    private func bound(_ s: JSONValue, _ key: String, _ path: String) throws(GrammarError) -> Double? {
        guard let v = s[key] else { return nil }
        guard let d = v.doubleValue, d.isFinite else { throw GrammarError.invalidSchema(path: path + "/" + key, reason: "must be a number") }
        guard abs(d) <= Double(Self.maxBound) else { throw unsupported(key, path, "bounds beyond ±\(Self.maxBound) are not supported") }
        return d
    }

    /// The schema's numeric bounds as exact decimals, the tighter of two on one side (an exclusive one wins a tie).
    /// - Throws: `invalidSchema` for a bound that is not a number; `unsupported` past ±`maxBound` or with more than
    ///   38 significant digits (what `Decimal` holds exactly).
    private func numericBounds(_ s: JSONValue, _ path: String) throws(GrammarError)
        -> (lower: (value: Decimal, exclusive: Bool)?, upper: (value: Decimal, exclusive: Bool)?) {
        var lower: (value: Decimal, exclusive: Bool)?, upper: (value: Decimal, exclusive: Bool)?
        for (key, exclusive, isLower) in [("minimum", false, true), ("exclusiveMinimum", true, true),
                                           ("maximum", false, false), ("exclusiveMaximum", true, false)] {
            guard try bound(s, key, path) != nil, case .number(let text)? = s[key] else { continue }
            let mantissa = text.split(whereSeparator: { $0 == "e" || $0 == "E" })[0].filter(\.isNumber).drop { $0 == "0" }
            guard mantissa.count <= 38, let d = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")),
                  d.isFinite, d.isZero == (mantissa.isEmpty) else {
                throw unsupported(key, path, "bounds with more than 38 significant digits, or this small, are not supported")
            }
            if isLower {
                if lower == nil || d > lower!.value || (d == lower!.value && exclusive) { lower = (d, exclusive) }
            } else {
                if upper == nil || d < upper!.value || (d == upper!.value && exclusive) { upper = (d, exclusive) }
            }
        }
        return (lower, upper)
    }

    /// Whether a number value lies within the bounds (other values are not bounded by them).
    private static func within(_ v: JSONValue, _ b: (lower: (value: Decimal, exclusive: Bool)?, upper: (value: Decimal, exclusive: Bool)?)) -> Bool {
        guard case .number(let text) = v, let d = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else { return true }
        if let (l, ex) = b.lower, ex ? d <= l : d < l { return false }
        if let (h, ex) = b.upper, ex ? d >= h : d > h { return false }
        return true
    }

    /// `d` rounded to an integer (`.up` or `.down`), clamped to ±`maxBound`.
    private static func integral(_ d: Decimal, _ mode: NSDecimalNumber.RoundingMode) -> Int {
        var v = d, r = Decimal()
        NSDecimalRound(&r, &v, 0, mode)
        return Int(truncating: NSDecimalNumber(decimal: max(min(r, Decimal(maxBound)), Decimal(-maxBound))))
    }

    private func integer(_ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        let b = try numericBounds(s, path)
        guard b.lower != nil || b.upper != nil else { return rs.anyInteger() }
        // Exact: a minimum of 2.0000000000000001 excludes 2 (as a double it was 2.0).
        var lo = -Self.maxBound, hi = Self.maxBound
        if let (l, ex) = b.lower { lo = ex ? Self.integral(l, .down) + 1 : Self.integral(l, .up) }
        if let (h, ex) = b.upper { hi = ex ? Self.integral(h, .up) - 1 : Self.integral(h, .down) }
        guard lo <= hi else { throw GrammarError.invalidSchema(path: path, reason: "no integer lies within the bounds") }
        return [.rule(rs.add(RuleSet.integerRange(lo, hi)))]
    }

    /// Numbers within `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum`, integral or fractional
    /// (pydantic's `confloat(ge=0.5)`, `Field(gt=0)`), compared as exact decimals (`RuleSet.nonNegativeRange`): the
    /// non-negative part and the negative part (a `-` and the magnitudes) as alternatives. No exponent is written.
    private func number(_ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        let (lower, upper) = try numericBounds(s, path)
        guard lower != nil || upper != nil else { return rs.anyNumber() }
        let lo = lower ?? (Decimal(-Self.maxBound), false), hi = upper ?? (Decimal(Self.maxBound), false)
        func digits(_ d: Decimal) -> DecimalDigits { DecimalDigits(magnitudeOf: d) }
        var alts: [[Symbol]] = []
        if hi.value > 0 || (hi.value == 0 && !hi.exclusive) {
            let from = lo.value >= 0 ? RuleSet.NumberBound(value: digits(lo.value), exclusive: lo.exclusive)
                                     : RuleSet.NumberBound(value: digits(0), exclusive: false)
            alts += rs.nonNegativeRange(from, RuleSet.NumberBound(value: digits(hi.value), exclusive: hi.exclusive))
        }
        if lo.value < 0 {
            // x = -y: y below -lo, above -hi (or above 0: zero is the other part's, and "-0" is not written).
            let from = hi.value < 0 ? RuleSet.NumberBound(value: digits(-hi.value), exclusive: hi.exclusive)
                                    : RuleSet.NumberBound(value: digits(0), exclusive: true)
            alts += rs.nonNegativeRange(from, RuleSet.NumberBound(value: digits(-lo.value), exclusive: lo.exclusive))
                .map { [.bytes(ByteSet(0x2D))] + $0 }
        }
        guard !alts.isEmpty else {
            throw GrammarError.invalidSchema(path: path, reason: "no number of at most \(RuleSet.maxBoundedDigits) significant digits lies within the bounds")
        }
        return [.rule(rs.add(alts))]
    }

    private mutating func array(_ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        var prefix: [[Symbol]] = []
        if let p = s["prefixItems"] {
            guard let list = p.arrayValue else { throw GrammarError.invalidSchema(path: path + "/prefixItems", reason: "must be an array") }
            for (i, item) in list.enumerated() { prefix.append(try value(item, "\(path)/prefixItems/\(i)", &rs)) }
        }
        let items = s["items"]
        if items?.arrayValue != nil { throw unsupported("items", path, "items as an array (draft 4 tuples) is not supported; use prefixItems") }
        var lo = try count(s, "minItems", path) ?? 0
        var hi = try count(s, "maxItems", path)
        let noMore = items?.boolValue == false
        if noMore { hi = min(hi ?? prefix.count, prefix.count) }
        if let h = hi, h < lo { throw GrammarError.invalidSchema(path: path, reason: "minItems exceeds what maxItems/items allow") }
        if let h = hi, h > Self.maxUnrolled { throw unsupported("maxItems", path, "at most \(Self.maxUnrolled) is supported") }
        if lo > Self.maxUnrolled { throw unsupported("minItems", path, "at most \(Self.maxUnrolled) is supported") }
        lo = max(lo, 0)
        var itemSyms: [Symbol] = []
        if !noMore {
            let v = try items.map { (x) throws(GrammarError) in try value(x, path + "/items", &rs) } ?? rs.anyValue()
            itemSyms = v.count == 1 ? v : [.rule(rs.add([v]))]
        }
        func element(_ i: Int) -> [Symbol] { i < prefix.count ? prefix[i] : itemSyms }
        let close: Symbol = .bytes(ByteSet(0x5D)), comma: Symbol = .bytes(ByteSet(0x2C))
        let ws = rs.ws()
        // tail(i): the rest after i elements (i ≥ 1), the closing bracket inside.
        let limit = hi ?? max(prefix.count, lo)
        var tail: Int
        if hi == nil {
            let loop = rs.reserve()
            rs.define(loop, [[close], [comma, ws] + itemSyms + [.rule(loop)]])
            tail = loop
        } else {
            tail = rs.add([[close]])
        }
        if limit >= 1 {
            for i in stride(from: limit - 1, through: 1, by: -1) {
                let more = [comma, ws] + element(i) + [.rule(tail)]
                tail = rs.add(i >= lo ? [[close], more] : [more])
            }
        }
        let open: Symbol = .bytes(ByteSet(0x5B))
        if hi == 0 { return [open, close] }
        let first = element(0) + [.rule(tail)]
        return lo == 0 ? [open, .rule(rs.add([[close], first]))] : [open] + first
    }

    private mutating func object(_ s: JSONValue, _ path: String, _ rs: inout RuleSet) throws(GrammarError) -> [Symbol] {
        var props: [(String, JSONValue)] = []
        if let p = s["properties"] {
            guard let m = p.objectValue else { throw GrammarError.invalidSchema(path: path + "/properties", reason: "must be an object") }
            props = m.map { ($0.key, $0.value) }
        }
        var required = Set<String>()
        if let r = s["required"] {
            guard let list = r.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw GrammarError.invalidSchema(path: path + "/required", reason: "must be an array of strings")
            }
            required = Set(list.map { $0.stringValue! })
        }
        let additional = s["additionalProperties"]
        let noAdditional = additional?.boolValue == false
        if let a = additional, a.boolValue == nil, a.objectValue == nil {
            throw GrammarError.invalidSchema(path: path + "/additionalProperties", reason: "must be a boolean or a schema")
        }
        for name in (s["required"]?.arrayValue ?? []).compactMap(\.stringValue) where !props.contains(where: { $0.0 == name }) {
            if noAdditional {
                throw GrammarError.invalidSchema(path: path + "/required", reason: "'\(name)' is required but not allowed")
            }
            props.append((name, additional ?? .bool(true)))
        }
        try count(props.count, \.properties, "properties", path)
        let open: Symbol = .bytes(ByteSet(0x7B)), close: Symbol = .bytes(ByteSet(0x7D)), comma: Symbol = .bytes(ByteSet(0x2C))
        let colon: Symbol = .bytes(ByteSet(0x3A))
        let ws = rs.ws()
        if props.isEmpty {
            // `properties: {}` declares that there are none; a schema without the key leaves the keys open.
            if noAdditional || (s["properties"] != nil && additional == nil) { return [open, close] }
            // A map: any keys, values valid against additionalProperties.
            let v = try additional.map { (x) throws(GrammarError) in try value(x, path + "/additionalProperties", &rs) } ?? rs.anyValue()
            let entry = rs.anyString() + [colon, ws] + v
            let loop = rs.reserve()
            rs.define(loop, [[close], [comma, ws] + entry + [.rule(loop)]])
            return [open, .rule(rs.add([[close], entry + [.rule(loop)]]))]
        }
        // after[i]: properties i... when one was written already (needs a comma); first[i]: when none was.
        var after = rs.add([[close]]), first = after
        for i in stride(from: props.count - 1, through: 0, by: -1) {
            let (name, sub) = props[i]
            let escapedPath = name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            let nameText = Self.literalText(.string(name))
            try count(nameText.utf8.count, \.literalBytes, "properties", path)
            let kv = RuleSet.literal(nameText) + [colon, ws]
                + (try value(sub, path + "/properties/" + escapedPath, &rs))
            let kvRule = rs.add([kv])
            let newAfter: Int, newFirst: Int
            if required.contains(name) {
                newAfter = rs.add([[comma, ws, .rule(kvRule), .rule(after)]])
                newFirst = rs.add([[.rule(kvRule), .rule(after)]])
            } else {
                newAfter = rs.add([[comma, ws, .rule(kvRule), .rule(after)], [.rule(after)]])
                newFirst = rs.add([[.rule(kvRule), .rule(after)], [.rule(first)]])
            }
            after = newAfter
            first = newFirst
        }
        return [open, .rule(first)]
    }
}
