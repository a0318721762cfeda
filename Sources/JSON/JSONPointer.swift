// JSON Pointer (RFC 6901) over `JSONValue`: the schema compiler's `$ref` targets and error paths, and the server's
// edits of tool schemas at the paths those errors name.

extension JSONValue {
    /// The reference tokens of JSON pointer `pointer` without its leading `#` or `/` (RFC 6901 §3–4: `~1` is `/`,
    /// `~0` is `~`): `"/a~1b/0"` and `"a~1b/0"` are `["a/b", "0"]`; `""` is `[]` (the whole document).
    public static func pointerTokens(_ pointer: Substring) -> [String] {
        var p = pointer
        if p.first == "#" { p = p.dropFirst() }
        if p.first == "/" { p = p.dropFirst() }
        if p.isEmpty && !pointer.hasSuffix("/") { return [] }
        return p.split(separator: "/", omittingEmptySubsequences: false)
            .map { String($0).replacing("~1", with: "/").replacing("~0", with: "~") }
    }

    /// The value `tokens` lead to (an object's last member of that name, an array's element at that index), or nil.
    public func value<C: Collection<String>>(at tokens: C) -> JSONValue? {
        var cur = self
        for t in tokens {
            if let next = cur[t] {
                cur = next
            } else if let a = cur.arrayValue, let i = Int(t), a.indices.contains(i) {
                cur = a[i]
            } else {
                return nil
            }
        }
        return cur
    }

    /// This value without member `key` (every member of that name) of the object `tokens` lead to; nil when the path
    /// does not lead to an object that has it.
    public func removingMember(_ key: String, at tokens: ArraySlice<String>) -> JSONValue? {
        guard let head = tokens.first else {
            guard case .object(let members) = self, members.contains(where: { $0.key == key }) else { return nil }
            return .object(members.filter { $0.key != key })
        }
        switch self {
        case .object(var members):
            guard let k = members.lastIndex(where: { $0.key == head }),
                  let new = members[k].value.removingMember(key, at: tokens.dropFirst()) else { return nil }
            members[k].value = new
            return .object(members)
        case .array(var items):
            guard let k = Int(head), items.indices.contains(k), let new = items[k].removingMember(key, at: tokens.dropFirst()) else {
                return nil
            }
            items[k] = new
            return .array(items)
        default:
            return nil
        }
    }
}
