import Foundation
import Logging
import OpenAIAPI
import TestSupport
import Tokenizer
import XCTest
@testable import Server

/// A model without a chat template gets the documented ChatML default; `--chat-template` overrides it; a
/// template error becomes a 400 naming the template line.
final class TemplateFallbackTests: XCTestCase {
    private let tinyModel = Fixtures.path("dense/llama-tiny/llama-tiny.f32.gguf")

    private func server(template: String? = nil) throws -> SputnikServer {
        var o = ServerOptions()
        o.modelPath = tinyModel
        o.threads = 1
        o.contextSize = 64
        if let template {
            let p = FileManager.default.temporaryDirectory.appendingPathComponent("tpl-\(UUID().uuidString).jinja").path
            try template.write(toFile: p, atomically: true, encoding: .utf8)
            o.chatTemplatePath = p
        }
        return try SputnikServer(options: o, logger: Logger(label: "test"))
    }

    private func request(_ json: String) throws -> ChatCompletionRequest {
        try ChatCompletionRequest.decode(Array(json.utf8)).get()
    }

    func testNoTemplateUsesChatML() throws {
        let s = try server()
        let r = try request(#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}"#)
        let ids = try s.promptTokens(for: r)
        XCTAssertEqual(s.tokenizer.detokenize(ids, renderSpecial: true),
                       "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testTemplateErrorIsA400NamingTheLine() throws {
        let s = try server(template: "{% for m in messages %}\n{% if m.content == 'boom' %}\n{{ raise_exception('no booms') }}\n{% endif %}{{ m.content }}{% endfor %}")
        XCTAssertEqual(try s.promptTokens(for: request(#"{"messages":[{"role":"user","content":"ok"}]}"#)).isEmpty, false)
        XCTAssertThrowsError(try s.promptTokens(for: request(#"{"messages":[{"role":"user","content":"boom"}]}"#))) { e in
            let api = e as! APIError
            XCTAssertEqual(api.status, 400)
            XCTAssertTrue(api.message.contains("no booms"), api.message)
        }
        // A template without a system role (Gemma-style) gets the system text folded into the first user message.
        let noSystem = try server(template: "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}[{{ m.role }}]{{ m.content }}{% endfor %}")
        let ids = try noSystem.promptTokens(for: request(#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}"#))
        XCTAssertEqual(noSystem.tokenizer.detokenize(ids, renderSpecial: true), "[user]S\n\nhi")
        // A template that does not parse stops the server at start-up with the line named.
        XCTAssertThrowsError(try server(template: "line one\n{% if %}")) { e in
            XCTAssertTrue("\(e)".contains("line 2"), "\(e)")
        }
    }
}
