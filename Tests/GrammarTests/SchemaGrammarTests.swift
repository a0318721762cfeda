import Grammar
import JSON
import XCTest

/// JSON schema → grammar: which texts each schema's grammar accepts, checked with the plain byte-level matcher and
/// with the token matcher over a one-byte-per-token vocabulary.
final class SchemaGrammarTests: XCTestCase {
    func schema(_ text: String) throws -> JSONValue { try JSONValue(parsing: text) }

    /// The token matcher over single-byte tokens (ids 0...255 are the bytes, 256 is end-of-generation).
    static let byteVocabulary = TokenVocabulary(tokens: (0...255).map { [UInt8($0)] } + [[]], size: 257, endOfGeneration: [256])

    func check(_ schemaText: String, accepts good: [String], rejects bad: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let g = try Grammar.jsonSchema(schema(schemaText))
        let tg = TokenGrammar(grammar: g, vocabulary: Self.byteVocabulary)
        for text in good {
            XCTAssertTrue(g.matches(text), "should accept \(text)", file: file, line: line)
            var m = GrammarMatcher(tg)
            XCTAssertTrue(m.accept(bytes: Array(text.utf8)), "token matcher should accept \(text)", file: file, line: line)
            XCTAssertTrue(m.isAccepting, "\(text) should be complete", file: file, line: line)
            XCTAssertTrue(m.mask().allows(256), "end allowed after \(text)", file: file, line: line)
        }
        for text in bad {
            XCTAssertFalse(g.matches(text), "should reject \(text)", file: file, line: line)
            var m = GrammarMatcher(tg)
            XCTAssertFalse(m.accept(bytes: Array(text.utf8)) && m.isAccepting, "token matcher should reject \(text)", file: file, line: line)
        }
    }

    func testScalars() throws {
        try check(#"{"type":"string"}"#, accepts: [#""""#, #""abc""#, #""a\"b\\c\n\u00e9""#, "\"h\u{e9}llo \u{1F600}\""],
                  rejects: [#""abc"#, #"abc"#, "\"a\nb\"", #""\x""#, #""\ud800""#])
        try check(#"{"type":"integer"}"#, accepts: ["0", "-7", "1234567890123456"], rejects: ["01", "-0x", "1.5", "12345678901234567", "+1", ""])
        try check(#"{"type":"number"}"#, accepts: ["0", "-1.25", "3e10", "6.02E+23", "1.0e-5"], rejects: [".5", "1.", "1e", "--1", "1e1234"])
        try check(#"{"type":"boolean"}"#, accepts: ["true", "false"], rejects: ["True", "1"])
        try check(#"{"type":"null"}"#, accepts: ["null"], rejects: ["nul", "None"])
        try check(#"{"type":["string","null"]}"#, accepts: ["null", #""x""#], rejects: ["1"])
    }

    func testIntegerBounds() throws {
        for (lo, hi) in [(0, 0), (-15, 7), (3, 129), (-1000, -10), (0, 100), (17, 17), (-9, 99999)] {
            let g = try Grammar.jsonSchema(schema(#"{"type":"integer","minimum":\#(lo),"maximum":\#(hi)}"#))
            for v in (lo - 30)...(hi + 30) {
                XCTAssertEqual(g.matches(String(v)), v >= lo && v <= hi, "\(v) in [\(lo), \(hi)]")
            }
            XCTAssertFalse(g.matches("-0"))
        }
        let ex = try Grammar.jsonSchema(schema(#"{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}"#))
        XCTAssertEqual((-2...12).filter { ex.matches(String($0)) }, Array(1...9))
        let onlyMin = try Grammar.jsonSchema(schema(#"{"type":"integer","minimum":5}"#))
        XCTAssertTrue(onlyMin.matches("123456"))
        XCTAssertFalse(onlyMin.matches("4"))
        XCTAssertFalse(onlyMin.matches("-5"))
    }

    func testNumberBounds() throws {
        try check(#"{"type":"number","minimum":0,"maximum":1}"#, accepts: ["0", "1", "0.5", "0.999", "0.0"],
                  rejects: ["1.5", "-0.1", "2", "1.01"])
        try check(#"{"type":"number","minimum":-2,"maximum":-1}"#, accepts: ["-2", "-1", "-1.5"], rejects: ["-2.5", "-0.5", "0", "-3"])
        try check(#"{"type":"number","minimum":-1.0,"maximum":2.0}"#, accepts: ["-1", "-0.5", "0", "1.99", "2"], rejects: ["-1.5", "2.5"])
    }

    func testObjects() throws {
        let s = #"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["name"],"additionalProperties":false}"#
        try check(s, accepts: [#"{"name":"a"}"#, #"{"name":"a","age":3}"#, #"{"name": "a", "tags": ["x", "y"]}"#, #"{"name":"a","age":3,"tags":[]}"#],
                  rejects: [#"{}"#, #"{"age":3}"#, #"{"name":"a",}"#, #"{"name":"a","extra":1}"#, #"{ "name":"a"}"#, #"{"name":  "a"}"#])
        try check(#"{"type":"object"}"#, accepts: ["{}", #"{"a":1}"#, #"{"a": {"b": [1, "x", null, true]}, "c": -2.5}"#],
                  rejects: ["[]", #"{"a"}"#, #"{"a":1,}"#])
        try check(#"{"type":"object","additionalProperties":{"type":"integer"}}"#, accepts: ["{}", #"{"x":1,"y":2}"#], rejects: [#"{"x":"1"}"#])
        try check(#"{"type":"object","properties":{},"additionalProperties":false}"#, accepts: ["{}"], rejects: [#"{"a":1}"#])
        // `properties: {}` declares none (a pydantic model without fields): only `{}`; extra keys only when allowed.
        try check(#"{"type":"object","properties":{}}"#, accepts: ["{}"], rejects: [#"{"a":1}"#])
        try check(#"{"type":"object","properties":{},"additionalProperties":true}"#, accepts: ["{}", #"{"a":1}"#], rejects: ["[]"])
    }

    func testArrays() throws {
        try check(#"{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3}"#,
                  accepts: ["[1,2]", "[1, 2, 3]"], rejects: ["[]", "[1]", "[1,2,3,4]", "[1,,2]"])
        try check(#"{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}"#,
                  accepts: [#"["a",1]"#, #"["a"]"#, "[]"], rejects: [#"["a",1,2]"#, #"[1,"a"]"#])
        try check(#"{"type":"array","prefixItems":[{"const":"x"}],"items":{"type":"boolean"},"minItems":1}"#,
                  accepts: [#"["x"]"#, #"["x",true,false]"#], rejects: ["[]", #"["y"]"#, #"["x",1]"#])
    }

    func testEnumConstAnyOfRef() throws {
        try check(#"{"enum":["red","green",3,null,{"a":[1]}]}"#, accepts: [#""red""#, #""green""#, "3", "null", #"{"a":[1]}"#],
                  rejects: [#""blue""#, "4"])
        try check(#"{"const":"fixed"}"#, accepts: [#""fixed""#], rejects: [#""other""#])
        try check(#"{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]}"#, accepts: ["5", #""ab""#], rejects: [#""abc""#, "true"])
        let tree = ##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v","kids"],"additionalProperties":false}},"$ref":"#/$defs/node"}"##
        try check(tree, accepts: [#"{"v":1,"kids":[]}"#, #"{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}"#],
                  rejects: [#"{"v":1}"#, #"{"v":1,"kids":[{"v":2}]}"#])
        let list = ##"{"type":"object","properties":{"head":{"type":"integer"},"tail":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},"required":["head","tail"]}"##
        try check(list, accepts: [#"{"head":1,"tail":null}"#, #"{"head":1,"tail":{"head":2,"tail":null}}"#], rejects: [#"{"head":1,"tail":{}}"#])
    }

    /// oneOf is enforced when no value can match two branches: different types, different values, or objects
    /// with a required property limited to different values (pydantic's discriminated unions, through `$ref`).
    func testDisjointOneOf() throws {
        try check(#"{"oneOf":[{"type":"string"},{"type":"null"}]}"#, accepts: [#""x""#, "null"], rejects: ["1"])
        try check(#"{"oneOf":[{"const":"a"},{"enum":["b","c"]},{"type":"integer"}]}"#, accepts: [#""b""#, "7"], rejects: [#""d""#])
        let pets = ##"{"$defs":{"Cat":{"properties":{"pet_type":{"const":"cat","type":"string"},"lives":{"type":"integer"}},"required":["pet_type","lives"],"type":"object"},"Dog":{"properties":{"pet_type":{"enum":["dog"],"type":"string"},"bark":{"type":"string"}},"required":["pet_type","bark"],"type":"object"}},"type":"object","properties":{"pet":{"discriminator":{"propertyName":"pet_type","mapping":{"cat":"#/$defs/Cat","dog":"#/$defs/Dog"}},"oneOf":[{"$ref":"#/$defs/Cat"},{"$ref":"#/$defs/Dog"}]}},"required":["pet"]}"##
        try check(pets, accepts: [#"{"pet":{"pet_type":"cat","lives":9}}"#, #"{"pet":{"pet_type":"dog","bark":"woof"}}"#],
                  rejects: [#"{"pet":{"pet_type":"cow","lives":9}}"#])
        // Nested discriminated unions (pydantic's docs): both cats carry pet_type "cat", told apart by color.
        let nested = ##"{"$defs":{"Black":{"type":"object","properties":{"pet_type":{"const":"cat"},"color":{"const":"black"}},"required":["pet_type","color"]},"White":{"type":"object","properties":{"pet_type":{"const":"cat"},"color":{"const":"white"}},"required":["pet_type","color"]},"Dog":{"type":"object","properties":{"pet_type":{"const":"dog"}},"required":["pet_type"]}},"oneOf":[{"oneOf":[{"$ref":"#/$defs/Black"},{"$ref":"#/$defs/White"}]},{"$ref":"#/$defs/Dog"}]}"##
        try check(nested, accepts: [#"{"pet_type":"cat","color":"white"}"#, #"{"pet_type":"dog"}"#], rejects: [#"{"pet_type":"dog","color":"white"}"#])
        // A discriminator with a default (not required): the branches' other required fields tell them apart.
        let defaulted = ##"{"oneOf":[{"allOf":[{"type":"object","properties":{"pet_type":{"const":"cat"},"lives":{"type":"integer"}},"required":["lives"]}]},{"type":"object","properties":{"pet_type":{"const":"dog"},"bark":{"type":"string"}},"required":["bark"]}]}"##
        try check(defaulted, accepts: [#"{"lives":9}"#, #"{"pet_type":"dog","bark":"woof"}"#], rejects: [#"{}"#])
        // A wide oneOf of distinct values.
        let wide = "{\"oneOf\":[" + (0..<300).map { "{\"const\":\($0)}" }.joined(separator: ",") + "]}"
        try check(wide, accepts: ["0", "299"], rejects: ["300"])
    }

    func testStringsFormatsPatterns() throws {
        try check(#"{"type":"string","minLength":2,"maxLength":4}"#, accepts: [#""ab""#, #""a\nbc""#, "\"\u{e9}\u{e9}\""], rejects: [#""a""#, #""abcde""#])
        try check(#"{"type":"string","format":"date"}"#, accepts: [#""2024-02-28""#, #""1999-12-31""#], rejects: [#""2024-02-30""#, #""2024-13-01""#, #""24-01-01""#])
        try check(#"{"type":"string","format":"time"}"#, accepts: [#""12:30:00Z""#, #""23:59:59.5+02:00""#], rejects: [#""24:00:00Z""#, #""12:30""#])
        try check(#"{"type":"string","format":"date-time"}"#, accepts: [#""2024-01-15T08:00:00Z""#], rejects: [#""2024-01-15 08:00:00Z""#])
        try check(#"{"type":"string","format":"uuid"}"#, accepts: [#""123e4567-e89b-12d3-a456-426614174000""#], rejects: [#""123e4567e89b12d3a456426614174000""#])
        try check(#"{"type":"string","format":"email"}"#, accepts: [#""a.b+c@example.co.uk""#, #""x@a-b.io""#, #""x@a.b-c.de""#],
                  rejects: [#""not an email""#, #""a@b""#, #""x@-ab.com""#, #""x@ab-.com""#, #""x@a.-b.com""#])
        // No year 0 (pydantic's datetime refuses it); year 1 and 9999 are fine.
        try check(#"{"type":"string","format":"date-time"}"#, accepts: [#""0001-01-01T00:00:00Z""#, #""9999-12-31T23:59:59Z""#],
                  rejects: [#""0000-09-03T07:29:10-00:00""#])
        try check(#"{"type":"string","format":"date"}"#, accepts: [#""0010-05-05""#, #""0100-05-05""#], rejects: [#""0000-05-05""#])
        // 29 February in leap years only (Gregorian: centuries only when divisible by 400).
        try check(#"{"type":"string","format":"date"}"#, accepts: [#""2024-02-29""#, #""2000-02-29""#, #""0004-02-29""#, #""1996-02-29""#],
                  rejects: [#""2023-02-29""#, #""1900-02-29""#, #""2100-02-29""#, #""0000-02-29""#, #""2024-02-30""#])
        try check(#"{"type":"string","format":"date-time"}"#, accepts: [#""2024-02-29T12:00:00Z""#], rejects: [#""2023-02-29T12:00:00Z""#])
        try check(#"{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"}"#, accepts: [#""AB-123""#], rejects: [#""AB-12""#, #""ab-123""#, #""xAB-123""#])
        try check(#"{"type":"string","pattern":"ab+c"}"#, accepts: [#""abc""#, #""xxabbbcyy""#], rejects: [#""ac""#])
        try check(#"{"type":"string","pattern":"^(cat|dog)s?$"}"#, accepts: [#""cat""#, #""dogs""#], rejects: [#""cow""#])
        try check(#"{"type":"string","pattern":"^[^\"]+$"}"#, accepts: [#""abc""#], rejects: [#""a\"b""#, #""""#])
        try check(#"{"type":"string","pattern":"^a\"b\\\\c$"}"#, accepts: [#""a\"b\\c""#], rejects: [#""a"b\c""#])
        // An escaped backslash before the end anchor: `^a\\$` is "a", a backslash, the end.
        try check(#"{"type":"string","pattern":"^a\\\\$"}"#, accepts: [#""a\\""#], rejects: [#""a""#, #""a\\b""#])
        try check(#"{"type":"string","pattern":"^a\\$$"}"#, accepts: [#""a$""#], rejects: [#""a""#])
        // Repeated parts that can match nothing (ECMA-262 drops the empty iterations).
        try check(#"{"type":"string","pattern":"^(a|b?)+$"}"#, accepts: [#""""#, #""a""#, #""abba""#], rejects: [#""c""#, #""abc""#])
        try check(#"{"type":"string","pattern":"^(a*)*$"}"#, accepts: [#""""#, #""aaa""#], rejects: [#""b""#])
        try check(#"{"type":"string","pattern":"^((a*)*)*b$"}"#, accepts: [#""b""#, #""aab""#], rejects: [#""a""#, #""ba""#])
        try check(#"{"type":"string","pattern":"^(x?y?){2}z$"}"#, accepts: [#""z""#, #""xz""#, #""xyxyz""#, #""yxz""#], rejects: [#""xyxyxz""#])
        try check(#"{"type":"string","pattern":"^(?:ab|(c?d?)*)+$"}"#, accepts: [#""""#, #""ab""#, #""cdab""#, #""ddc""#], rejects: [#""a""#, #""ba""#])
    }

    func testRefusesWhatItCannotEnforce() throws {
        let cases: [(String, String)] = [
            (#"{"type":"string","minLength":1,"pattern":"a"}"#, "minLength"),
            (#"{"type":"array","uniqueItems":true}"#, "uniqueItems"),
            (#"{"type":"object","patternProperties":{"a":{}}}"#, "patternProperties"),
            (#"{"type":"number","multipleOf":2}"#, "multipleOf"),
            (#"{"type":"string","format":"uri"}"#, "format"),
            (#"{"type":"string","pattern":"(a)\\1"}"#, "pattern"),
            (#"{"type":"string","pattern":"(?=a)b"}"#, "pattern"),
            (#"{"not":{"type":"string"}}"#, "not"),
            (#"{"allOf":[{"type":"string"},{"maxLength":3}]}"#, "allOf"),
            (#"{"$ref":"https://example.com/s.json"}"#, "$ref"),
            (#"{"type":"object","minProperties":1}"#, "minProperties"),
            // oneOf whose branches can both match a value (-15 is an integer and a number): enforcing it as a
            // choice would produce values the schema rejects.
            (#"{"oneOf":[{"type":"integer"},{"type":"number"}]}"#, "oneOf"),
            (#"{"oneOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"type":"string"}}}]}"#, "oneOf"),
            (#"{"oneOf":[{"enum":["a","b"]},{"enum":["b","c"]}]}"#, "oneOf"),
            (#"{"oneOf":[{"const":1},{"const":1.0}]}"#, "oneOf"),
            (#"{"oneOf":[{"type":"string"},{"maxLength":3}]}"#, "oneOf"),
            (#"{"oneOf":[{"const":0},{"const":-0.0}]}"#, "oneOf"),
            (#"{"oneOf":[{"const":{"a":1,"b":2}},{"const":{"b":2,"a":1}}]}"#, "oneOf"),
            (#"{"oneOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["a"]}]}"#, "oneOf"),
        ]
        for (text, keyword) in cases {
            XCTAssertThrowsError(try Grammar.jsonSchema(schema(text)), text) { error in
                guard case GrammarError.unsupported(let k, _, _)? = error as? GrammarError else { return XCTFail("\(text): \(error)") }
                XCTAssertEqual(k, keyword, text)
            }
        }
        for bad in [##"{"type":"strin"}"##, ##"{"type":"integer","minimum":5,"maximum":1}"##, ##"{"$ref":"#/$defs/missing"}"##,
                    #"{"enum":[]}"#, #"{"type":"object","properties":[]}"#, "3"] {
            XCTAssertThrowsError(try Grammar.jsonSchema(schema(bad)), bad) { error in
                guard case GrammarError.invalidSchema? = error as? GrammarError else { return XCTFail("\(bad): \(error)") }
            }
        }
        // Deep nesting is refused, not a stack overflow (schemas and regex groups).
        let deep = String(repeating: #"{"type":"array","items":"#, count: 100) + "{}" + String(repeating: "}", count: 100)
        XCTAssertThrowsError(try Grammar.jsonSchema(schema(deep)))
        let groups = String(repeating: "(", count: 200) + "a" + String(repeating: ")", count: 200)
        XCTAssertThrowsError(try Grammar.jsonSchema(.object([("type", .string("string")), ("pattern", .string(groups))])))
        XCTAssertThrowsError(try Grammar.jsonSchema(schema(##"{"$ref":"#"}"##))) { XCTAssertEqual($0 as? GrammarError, .leftRecursive) }
        // A non-ASCII class range is refused with the same reason however its ends are written (helper-58: `\u00ff`
        // as the end said "a class range must end at a single character").
        for p in [#"^[à-ÿ]{2}$"#, #"^[\u00e0-\u00ff]{2}$"#, #"^[\u4e00-\u9fff]$"#, #"^[a-\u00ff]$"#] {
            XCTAssertThrowsError(try Grammar.jsonSchema(.object([("type", .string("string")), ("pattern", .string(p))])), p) {
                XCTAssertTrue("\($0)".contains("non-ASCII class ranges are not supported"), "\(p): \($0)")
            }
        }
        // A surrogate pair written as two escapes is its character; a lone surrogate says so (it said "\u needs four hex
        // digits"; helper-60).
        try check(#"{"type":"string","pattern":"^\\ud83d\\ude00$"}"#, accepts: ["\"\u{1F600}\""], rejects: ["\"a\""])
        XCTAssertThrowsError(try Grammar.jsonSchema(.object([("type", .string("string")), ("pattern", .string(#"^\ud800$"#))]))) {
            XCTAssertTrue("\($0)".contains("lone UTF-16 surrogate"), "\($0)")
        }
        // A one-character range is that character, non-ASCII too.
        try check(#"{"type":"string","pattern":"^[\\u00e0-\\u00e0]$"}"#, accepts: ["\"\u{e0}\""], rejects: ["\"a\"", "\"\u{e1}\""])
        XCTAssertEqual((try? Grammar.jsonSchema(schema(#"{"title":"T","description":"d","type":"string","default":"x"}"#))) != nil, true)
    }

    /// The general builder: a Hermes tool call `<tool_call>\n{"name": ..., "arguments": <schema>}\n</tool_call>`,
    /// one or more of them, for either of two functions.
    /// `GrammarExpr.text(through:)` against its definition (the marker ends the text and occurs nowhere before),
    /// on every string of up to 5 characters over an alphabet of the marker's bytes and one other, and 3,000 random
    /// longer ones.
    func testTextThroughAMarker() throws {
        let marker = "</think>"
        let g = try Grammar.build(.text(through: marker))
        let alphabet = Array("</thik>a")
        func expected(_ s: String) -> Bool {
            guard let r = s.range(of: marker) else { return false }
            return r.upperBound == s.endIndex
        }
        var all = [""]
        for _ in 0..<5 { all = all + all.flatMap { w in alphabet.map { w + String($0) } }.filter { $0.count == (all.last?.count ?? 0) + 1 } }
        var state: UInt64 = 7
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        var samples = Set(all)
        for _ in 0..<3000 {
            var w = ""
            for _ in 0..<(next() % 14) { w += next() % 3 == 0 ? String(marker.prefix(1 + next() % 8)) : String(alphabet[next() % alphabet.count]) }
            samples.insert(w)
            samples.insert(w + marker)
        }
        var positives = 0
        for w in samples {
            XCTAssertEqual(g.matches(w), expected(w), w)
            if expected(w) { positives += 1 }
        }
        XCTAssertGreaterThan(positives, 500)
        XCTAssertTrue(g.matches("I should add.</thin</th<</think>"))
        XCTAssertFalse(g.matches("a</think>b</think>"))
    }

    func testToolCallBuilder() throws {
        func call(_ name: String, _ params: String) throws -> GrammarExpr {
            .sequence([.literal("<tool_call>\n{\"name\": \"\(name)\", \"arguments\": "), .json(schema: try schema(params)),
                       .literal("}\n</tool_call>")])
        }
        let weather = try call("get_weather", #"{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}"#)
        let time = try call("get_time", #"{"type":"object","properties":{"tz":{"type":"string"}},"required":["tz"]}"#)
        let g = try Grammar.build(.repeated(.sequence([.alternatives([weather, time]), .literal("\n")]), min: 1, max: 2))
        XCTAssertTrue(g.matches("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n"))
        XCTAssertTrue(g.matches("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\":\"UTC\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\":\"CET\"}}\n</tool_call>\n"))
        XCTAssertFalse(g.matches(""))
        XCTAssertFalse(g.matches("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"))
        XCTAssertFalse(g.matches("<tool_call>\n{\"name\": \"other\", \"arguments\": {}}\n</tool_call>\n"))
        // Token level: the text splits into tokens at arbitrary points and completes.
        let tg = TokenGrammar(grammar: g, vocabulary: Self.byteVocabulary)
        var m = GrammarMatcher(tg)
        for b in "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\":\"UTC\"}}\n</tool_call>\n".utf8 {
            XCTAssertTrue(m.mask().allows(Int32(b)))
            XCTAssertNotEqual(m.accept(Int32(b)), .rejected)
        }
        XCTAssertTrue(m.isAccepting)
        XCTAssertFalse(m.isComplete)   // a second call may follow
        XCTAssertEqual(m.accept(256), .completed)
    }
}
