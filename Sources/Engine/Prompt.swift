import ChatTemplate
import Tokenizer

/// Chat messages → prompt token ids: the model's chat template (`tokenizer.chat_template`, or the ChatML
/// fallback) rendered with `add_generation_prompt`, then tokenized with special tokens parsed and BOS added as
/// the vocabulary says (llama-server's and vLLM's behaviour).
public struct Prompt: Sendable {
    /// The template every prompt is rendered with.
    public let template: ChatTemplate
    /// The vocabulary prompts are tokenized with.
    public let tokenizer: Tokenizer
    /// Text of the BOS / EOS tokens, passed to the template as `bos_token` / `eos_token`.
    let bosText: String?
    let eosText: String?

    /// Used when the GGUF has no `tokenizer.chat_template` and no `--chat-template` is given.
    public static let chatMLTemplate = """
    {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
    """

    /// A prompt builder over `template` and `tokenizer`.
    public init(template: ChatTemplate, tokenizer: Tokenizer) {
        self.template = template
        self.tokenizer = tokenizer
        bosText = tokenizer.bosTokenId.map { tokenizer.tokenText($0) }
        eosText = tokenizer.eosTokenId.map { tokenizer.tokenText($0) }
    }

    /// The prompt's token ids. `messages`: a list of message objects (`role`, `content`, …) as the template
    /// expects them; `tools`: the request's tool list or nil. `[numPromptTokens]`
    /// - Throws: `ChatTemplateError` when the template fails on these messages.
    public func tokens(messages: JinjaValue, tools: JinjaValue?) throws(ChatTemplateError) -> [Int32] {
        let text: String
        do {
            text = try template.render(messages: messages, tools: tools, addGenerationPrompt: true,
                                       bosToken: bosText, eosToken: eosText)
        } catch let e as ChatTemplateError {
            throw e
        } catch {
            throw ChatTemplateError.runtime(line: 0, message: "\(error)")
        }
        return tokenizer.encode(text, addSpecial: true, parseSpecial: true)
    }
}
