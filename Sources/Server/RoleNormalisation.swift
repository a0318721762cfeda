import OpenAIAPI

/// Role-order normalisation of a chat history, for templates that refuse a history the API allows.
///
/// OpenAI's API documents no alternation rule: two user messages in a row, a second system message or a system
/// message in the middle are all accepted. Several templates (Mistral's, Gemma's) `raise_exception` on them
/// ("conversation roles must alternate user/assistant/..."), which vLLM surfaces as an error (failure case C13,
/// vllm-project/vllm#6862). When a template raises on a history, the history is normalised and rendered again:
/// 1. `developer` messages are system messages; system messages after the first non-system message become user text;
/// 2. runs of messages with the same role (system, user, or assistant without tool calls or reasoning) become one
///    message, their texts joined by a blank line (`"\n\n"`); tool messages, assistant tool calls and assistant
///    messages carrying reasoning are never merged;
/// 3. only if the template still raises: the leading system text is folded into the first user message (for
///    templates without a system role), or becomes a user message when no user message follows.
/// A history the template accepts is rendered exactly as sent.
enum RoleNormalisation {
    /// The text that joins merged messages.
    static let separator = "\n\n"

    /// `messages` normalised by steps 1–2 (and 3 when `foldSystem`); nil when that changes nothing.
    static func normalised(_ messages: [ChatMessage], foldSystem: Bool) -> [ChatMessage]? {
        var out: [ChatMessage] = []
        var seenNonSystem = false
        for m in messages {
            var m = m
            if m.role == .developer || m.role == .system {
                let role: ChatRole = seenNonSystem ? .user : .system
                if m.role != role { m = rebuilt(m, role: role) }
            } else {
                seenNonSystem = true
            }
            if let last = out.last, last.role == m.role, mergeable(last), mergeable(m) {
                out[out.count - 1] = merged(last, m)
            } else {
                out.append(m)
            }
        }
        if foldSystem, let first = out.first, first.role == .system {
            out.removeFirst()
            if let user = out.first, user.role == .user, mergeable(user) {
                out[0] = merged(rebuilt(first, role: .user), user)
            } else {
                out.insert(rebuilt(first, role: .user), at: 0)
            }
        }
        return out == messages ? nil : out
    }

    /// The first normalised history (steps 1–2, then 1–3) that `render` accepts, rendered; nil when neither
    /// changes the history or both are refused too.
    static func firstAccepted<T>(_ history: [ChatMessage], render: ([ChatMessage]) throws -> T) -> T? {
        var tried = history
        for fold in [false, true] {
            guard let n = normalised(history, foldSystem: fold), n != tried else { continue }
            tried = n
            if let r = try? render(n) { return r }
        }
        return nil
    }

    /// Whether `m` is plain text that can be joined with a neighbour of its role.
    static func mergeable(_ m: ChatMessage) -> Bool {
        switch m.role {
        case .system, .user, .developer: return true
        case .assistant: return m.toolCalls.isEmpty && m.reasoningContent == nil
        case .tool: return false
        }
    }

    /// `m` with another role, built from its fields (the client's object is dropped, so the template sees the new role).
    static func rebuilt(_ m: ChatMessage, role: ChatRole) -> ChatMessage {
        ChatMessage(role: role, content: m.content ?? "", name: m.name)
    }

    /// One message holding `a`'s text, a blank line, then `b`'s (an empty text adds no separator).
    static func merged(_ a: ChatMessage, _ b: ChatMessage) -> ChatMessage {
        let texts = [a.content ?? "", b.content ?? ""].filter { !$0.isEmpty }
        return ChatMessage(role: a.role, content: texts.joined(separator: separator), name: a.name == b.name ? a.name : nil)
    }
}
