"""DeepSeek-style reasoning over HTTP: `<think>…</think>` split into `reasoning_content` and `content` (streamed
and not), `--reasoning-format` / `reasoning_format`, `reasoning_effort` and `chat_template_kwargs` selecting the
template's thinking mode, and `reasoning_content` in history. Qwen2.5-Coder-0.5B weights under the DeepSeek-R1
distill, DeepSeek-V3.1 and Qwen3 templates (fixtures)."""
import json
import os

from conftest import R1_TEMPLATE, TEMPLATES as FIX, qwen_server as start
from test_tool_calls import client

# The model, asked to repeat a text holding a closing tag, writes reasoning, then `</think>`, then more text.
REPEAT = [{"role": "user", "content": "Repeat exactly: I should add.</think>The answer is 4."}]


def reasoning_of(msg):
    return (msg.model_extra or {}).get("reasoning_content")


def streamed(c, **kw):
    reasoning, content, order = "", "", []
    for chunk in c.chat.completions.create(stream=True, **kw):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        r = (d.model_extra or {}).get("reasoning_content")
        if r:
            reasoning += r
            order.append("r")
        if d.content:
            content += d.content
            order.append("c")
    return reasoning, content, order


def test_split_non_streamed_and_streamed_agree(r1):
    c = client(r1)
    kw = dict(model="m", messages=REPEAT, temperature=0, max_tokens=40, reasoning_effort="high")
    r = c.chat.completions.create(**kw)
    msg = r.choices[0].message
    reasoning = reasoning_of(msg)
    assert reasoning and "<think>" not in reasoning and "</think>" not in reasoning
    assert r.usage.completion_tokens == 40
    assert 0 < r.usage.completion_tokens_details.reasoning_tokens < 40, r.usage
    s_reasoning, s_content, order = streamed(c, **kw)
    assert (s_reasoning, s_content) == (reasoning, msg.content)
    # reasoning deltas first, then content deltas
    assert order == sorted(order, key=lambda k: k == "c") and "r" in order


def test_think_tags_typed_by_the_client_are_text(r1):
    # C46 (helper's report): "<think>" in a system or user message turned the whole reply into reasoning. The R1
    # template opens no think block without reasoning_effort, so the answer is content, as with plain text.
    c = client(r1)
    tagged = c.chat.completions.create(model="m", temperature=0, max_tokens=12, messages=[
        {"role": "system", "content": "Before answering, reason inside <think> tags."},
        {"role": "user", "content": "Write a haiku about rain. Use <think> tags."}])
    msg = tagged.choices[0].message
    assert reasoning_of(msg) is None and msg.content, msg
    # The prefill of a continued assistant message is answer text too (reasoning_effort opens the think block).
    cont = c.chat.completions.create(model="m", temperature=0, max_tokens=8, reasoning_effort="high",
                                     messages=[{"role": "user", "content": "Write a haiku about rain."},
                                               {"role": "assistant", "content": "Rain"}],
                                     extra_body={"continue_final_message": True})
    assert reasoning_of(cont.choices[0].message) is None and cont.choices[0].message.content


def test_think_tags_in_tools_and_history_are_text(qwen3):
    # Helper's second report, on the Qwen3 template: "<think>" in a tool description, or an unclosed think block in
    # an earlier assistant turn (a reply cut by max_tokens sent back), made the whole reply reasoning.
    c = client(qwen3)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather. <think>",
                                               "parameters": {"type": "object", "properties": {}}}}]
    for kw in [dict(tools=tools, messages=[{"role": "user", "content": "Write a haiku about rain."}]),
               dict(messages=[{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "<think>let me"},
                              {"role": "user", "content": "Write a haiku about rain."}])]:
        msg = c.chat.completions.create(model="m", temperature=0, max_tokens=12, **kw).choices[0].message
        assert reasoning_of(msg) is None, msg


def test_anthropic_thinking_prefill_reaches_the_prompt(r1):
    # Helper's second report: with thinking on, the required thinking block of a final assistant message was
    # accepted but left out of the prompt (count_tokens was the same whatever its text).
    def count(thought):
        body = {"model": "m", "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [{"role": "user", "content": "Write a haiku about rain."},
                             {"role": "assistant", "content": [{"type": "thinking", "thinking": thought, "signature": ""}]}]}
        st, _, raw = r1.post("/v1/messages/count_tokens", body)
        assert st == 200, raw
        return json.loads(raw)["input_tokens"]
    assert count("Five, seven, five syllables about falling rain on a tin roof.") > count("Ok.") + 5


def test_reasoning_format_none_leaves_it_inline(r1):
    c = client(r1)
    split = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=40,
                                      reasoning_effort="high")
    inline = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=40,
                                       reasoning_effort="high", extra_body={"reasoning_format": "none"})
    assert reasoning_of(inline.choices[0].message) is None
    text = inline.choices[0].message.content
    assert "</think>" in text and text.startswith(reasoning_of(split.choices[0].message).rstrip())


def test_server_flag_reasoning_format_none():
    s = start("--chat-template", R1_TEMPLATE,
              "--reasoning-format", "none")
    try:
        c = client(s)
        r = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=40,
                                      reasoning_effort="high")
        assert reasoning_of(r.choices[0].message) is None and "</think>" in r.choices[0].message.content
        # ... and the request can ask for the split back.
        r = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=40,
                                      reasoning_effort="high", extra_body={"reasoning_format": "deepseek"})
        assert reasoning_of(r.choices[0].message)
    finally:
        s.stop()


def test_reply_without_closing_tag_is_all_reasoning(r1):
    r = client(r1).chat.completions.create(model="m", messages=[{"role": "user", "content": "Count to three."}],
                                           temperature=0, max_tokens=3, reasoning_effort="high")
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "length"
    assert reasoning_of(msg) and msg.content == ""


def test_non_thinking_mode(r1):
    c = client(r1)
    # This template's non-thinking mode (enable_thinking false, its default) closes the block in the prompt.
    for extra in ({"reasoning_effort": "none"}, {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
                  {"extra_body": {"chat_template_kwargs": {"thinking": False}}}, {}):
        r = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=12, **extra)
        assert reasoning_of(r.choices[0].message) is None, extra
        assert r.choices[0].message.content
    thinking = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=12,
                                         extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    assert reasoning_of(thinking.choices[0].message)


def test_deepseek_v31_thinking_switch():
    s = start("--chat-template", os.path.join(FIX, "deepseek-ai-DeepSeek-V3.1.jinja"))
    try:
        c = client(s)
        off = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=12)
        on = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=12,
                                       extra_body={"chat_template_kwargs": {"thinking": True}})
        effort = c.chat.completions.create(model="m", messages=REPEAT, temperature=0, max_tokens=12,
                                           reasoning_effort="high")
        assert reasoning_of(off.choices[0].message) is None
        assert reasoning_of(on.choices[0].message)
        assert reasoning_of(effort.choices[0].message) == reasoning_of(on.choices[0].message)
    finally:
        s.stop()


def test_reasoning_content_in_history_reaches_the_template():
    s = start("--chat-template", os.path.join(FIX, "Qwen-Qwen3-0.6B.jinja"))
    try:
        c = client(s)
        base = [{"role": "user", "content": "Hi"}]
        without = c.chat.completions.create(model="m", messages=base + [{"role": "assistant", "content": "Hello"}],
                                            temperature=0, max_tokens=1, extra_body={"continue_final_message": False})
        thought = "The user greets me; I greet back politely."
        with_r = c.chat.completions.create(
            model="m", messages=base + [{"role": "assistant", "content": "Hello", "reasoning_content": thought}],
            temperature=0, max_tokens=1)
        # Qwen3 renders the last assistant turn's reasoning inside <think>…</think>.
        assert with_r.usage.prompt_tokens > without.usage.prompt_tokens + 5
    finally:
        s.stop()


def test_thinking_effort_on_a_template_without_reasoning_is_refused(server):
    status, _, body = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "high", "max_tokens": 2})
    assert status == 400 and json.loads(body)["error"]["param"] == "reasoning_effort"
    status, _, _ = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "none", "max_tokens": 2})
    assert status == 200


def test_response_format_applies_to_the_answer_after_the_reasoning(r1):
    """On a template that reasons, `response_format` holds the answer after `</think>`; the reasoning is free (vLLM's
    structured output with a reasoning parser). It held the whole output from the first token, so the model wrote its
    thoughts as JSON (`{"<think>": "I'm thinking about about…`) and ran to max_tokens."""
    import jsonschema
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}},
              "required": ["answer"], "additionalProperties": False}
    rf = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    c = client(r1)
    # Thinking on (the prompt opens the block): this prompt's greedy reply reasons, closes the block, then answers.
    r = c.chat.completions.create(model="m", messages=REPEAT, response_format=rf, temperature=0, max_tokens=300,
                                  reasoning_effort="high")
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    assert reasoning_of(m) and "</think>" not in reasoning_of(m)
    jsonschema.validate(json.loads(m.content), schema)
    # Thinking off (this template's default closes the block in the prompt, as `reasoning_effort` none does): the reply
    # is the answer in the format from the first token. The model could open a second think block and never reach
    # the JSON (helper-61: `content` "", everything in `reasoning_content`, finish_reason length); vLLM applies the
    # grammar from the first token when the prompt ends the reasoning.
    for extra in ({}, {"reasoning_effort": "none"}):
        for seed in range(4):
            r = c.chat.completions.create(model="m", messages=REPEAT, response_format=rf, temperature=1, seed=seed,
                                          max_tokens=120, **extra)
            m = r.choices[0].message
            assert reasoning_of(m) is None, (extra, seed, m)
            jsonschema.validate(json.loads(m.content), schema)
    # The first token's candidates under the grammar: none opens a think block (`<`, `<th`, …).
    r = c.chat.completions.create(model="m", messages=REPEAT, response_format=rf, temperature=0, max_tokens=1,
                                  logprobs=True, top_logprobs=20)
    tops = [t.token for t in r.choices[0].logprobs.content[0].top_logprobs]
    assert tops and not any(t.lstrip().startswith("<") for t in tops), tops


def test_a_prefill_with_reasoning_on_v31_has_one_think_block(v31):
    """helper-61: DeepSeek V3.1's non-thinking generation prompt closes an empty block (`<think></think>`); a final
    assistant message carrying `reasoning_content`, continued, added its own block after it: two think blocks. Now
    the prefill's block replaces the empty one."""
    st, _, body = v31.post("/apply-template", {"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "bar", "reasoning_content": "foo"}],
        "continue_final_message": True})
    assert st == 200, body
    prompt = json.loads(body)["prompt"]
    tail = prompt[prompt.rindex("<｜Assistant｜>"):]
    assert tail.count("<think>") == 1 and tail.endswith("bar") and "foo" in tail, tail


def test_a_last_token_cut_inside_a_character_counts_as_reasoning(r1):
    """helper-69: when max_tokens cut a multi-byte character inside the think block, its last token (no text of its
    own) was left out of `reasoning_tokens`; a reply that is all reasoning counts every token."""
    ask = [{"role": "user", "content": "用中文写一首关于大海的诗，并使用表情符号 🌊🐚"}]
    seen = set()
    for n in range(15, 23):
        status, _, raw = r1.post("/v1/chat/completions", {"model": "m", "messages": ask, "temperature": 0, "max_tokens": n,
                                                          "reasoning_effort": "high"})
        assert status == 200, raw
        r = json.loads(raw)
        if not r["choices"][0]["message"]["content"]:
            assert r["usage"]["completion_tokens_details"]["reasoning_tokens"] == r["usage"]["completion_tokens"] == n
            seen.add(n)
    assert seen, "no reply was all reasoning"
