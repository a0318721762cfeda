"""A top-level field a route does not know is a 400 naming it — OpenAI's "Unrecognized request argument supplied",
Anthropic's "Extra inputs are not permitted" — never accepted and dropped (a typo such as `temprature` would
otherwise sample at the default). Driven through the official openai and anthropic clients (`extra_body` is how
their users send fields the SDK does not model)."""
import json

import anthropic
import openai
import pytest

MSGS = [{"role": "user", "content": "hi"}]


def oai(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)


def refused_by_openai(call, field):
    with pytest.raises(openai.BadRequestError) as e:
        call()
    err = e.value.body
    assert e.value.status_code == 400
    assert err["param"] == field and field in err["message"], err
    assert err["type"] == "invalid_request_error"
    return err["message"]


@pytest.mark.parametrize("field,value", [("temprature", 0.5), ("id_slot", 0), ("samplers", ["top_k"]),
                                         ("n_keep", 4), ("thinking", {"type": "enabled"})])
def test_chat_refuses_unknown_fields(server, field, value):
    msg = refused_by_openai(lambda: oai(server).chat.completions.create(
        model="smollm2", messages=MSGS, max_tokens=2, extra_body={field: value}), field)
    assert msg.startswith("Unrecognized request argument supplied")


@pytest.mark.parametrize("field,value", [("temprature", 0.5), ("id_slot", 0), ("messages", MSGS)])
def test_completions_refuse_unknown_fields(server, field, value):
    msg = refused_by_openai(lambda: oai(server).completions.create(
        model="smollm2", prompt="Once", max_tokens=2, extra_body={field: value}), field)
    assert msg.startswith("Unrecognized request argument supplied")


def test_responses_refuse_unknown_fields(server):
    refused_by_openai(lambda: oai(server).responses.create(model="smollm2", input="hi", max_output_tokens=16,
                                                             extra_body={"seed": 3}), "seed")


def test_messages_refuse_unknown_fields(server):
    c = anthropic.Anthropic(base_url=server.base, api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="smollm2", max_tokens=4, messages=MSGS, extra_body={"temprature": 0.5})
    assert e.value.status_code == 400
    assert "temprature: Extra inputs are not permitted" in str(e.value)
    # count_tokens too
    with pytest.raises(anthropic.BadRequestError):
        c.messages.count_tokens(model="smollm2", messages=MSGS, extra_body={"foo": 1})


def test_openai_fields_that_need_no_action_are_accepted(server):
    r = oai(server).chat.completions.create(
        model="smollm2", messages=MSGS, max_tokens=2, temperature=0, metadata={"team": "a"}, store=False,
        service_tier="auto", user="u-1", prompt_cache_key="k", safety_identifier="s-1", stream_options=None)
    assert r.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("kw,field", [({"service_tier": "flex"}, "service_tier"), ({"verbosity": "low"}, "verbosity"),
                                      ({"metadata": {"k": 1}}, "metadata"), ({"metadata": {"k" * 65: "v"}}, "metadata")])
def test_openai_fields_it_cannot_honour_are_refused(server, kw, field):
    refused_by_openai(lambda: oai(server).chat.completions.create(model="smollm2", messages=MSGS, max_tokens=2, **kw),
                      field)


@pytest.mark.parametrize("opts,key", [({"include_usgae": True}, "stream_options.include_usgae"),
                                      ({"include_usage": True, "continuous": True}, "stream_options.continuous")])
def test_unknown_stream_options_are_refused(server, opts, key):
    """A misspelt stream option was accepted and dropped (no usage chunk came)."""
    for path, body in [("/v1/chat/completions", {"messages": MSGS}), ("/v1/completions", {"prompt": "Once"})]:
        status, _, out = server.post(path, dict(body, max_tokens=2, stream=True, stream_options=opts))
        assert status == 400, out
        assert json.loads(out)["error"]["param"] == key, out


@pytest.mark.parametrize("body,param", [
    ({"thinking": {"type": "disabled", "foo": 1}}, "thinking.foo"),
    ({"metadata": {"user_id": "u", "foo": 1}}, "metadata.foo"),
    ({"messages": [{"role": "user", "content": "hi", "foo": 1}]}, "messages[0].foo"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "foo": 1}]}]}, "messages[0].content[0].foo"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x", "foo": 1}]}]},
     "messages[0].content[0].foo"),
])
def test_messages_refuse_unknown_nested_fields(server, body, param):
    """Anthropic answers an unknown nested field with "Extra inputs are not permitted"; they were accepted."""
    status, _, out = server.post("/v1/messages", dict({"model": "m", "max_tokens": 2, "messages": MSGS}, **body))
    assert status == 400, out
    err = json.loads(out)["error"]
    assert err["type"] == "invalid_request_error" and err["message"] == f"{param}: Extra inputs are not permitted", err


def test_messages_accept_cache_control_and_citations(server):
    status, _, out = server.post("/v1/messages", {"model": "m", "max_tokens": 2, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "citations": None}]}]})
    assert status == 200, out


def test_default_modalities_are_accepted(server):
    r = oai(server).chat.completions.create(model="smollm2", messages=MSGS, max_tokens=2, modalities=["text"])
    assert r.choices[0].finish_reason in ("stop", "length")
    refused_by_openai(lambda: oai(server).chat.completions.create(model="smollm2", messages=MSGS, max_tokens=2,
                                                                    modalities=["text", "audio"]), "modalities")


def test_include_obfuscation(server):
    """OpenAI's `stream_options.include_obfuscation`: false (no padding, what this server sends) is accepted; true
    cannot be honoured and is a 400 naming it. It was refused as unknown either way."""
    chunks = list(oai(server).chat.completions.create(model="smollm2", messages=MSGS, max_tokens=2, stream=True,
                                                      stream_options={"include_usage": True, "include_obfuscation": False}))
    assert chunks[-1].usage is not None
    status, _, out = server.post("/v1/completions", {"prompt": "Once", "max_tokens": 2, "stream": True,
                                                     "stream_options": {"include_obfuscation": True}})
    assert status == 400 and json.loads(out)["error"]["param"] == "stream_options.include_obfuscation", out


@pytest.mark.parametrize("tool,param", [
    ({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "foo": 1}, "tools[0].foo"),
    ({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strcit": True}},
     "tools[0].function.strcit"),
    ({"type": "function", "function": {"name": "f", "strict": "yes"}}, "tools[0].function.strict"),
])
def test_chat_tools_refuse_unknown_fields(server, tool, param):
    """A function tool has `type` and `function` {name, description, parameters, strict}; anything else was accepted
    and dropped (helper-40: a misspelt `strict` left the tool unenforced)."""
    refused_by_openai(lambda: oai(server).chat.completions.create(
        model="smollm2", messages=MSGS, max_tokens=2, tools=[tool]), param)


# Message fields: a key outside OpenAI's message schema, or `name`, reaches the chat template (as vLLM passes it);
# when the template never names it, it could not change the prompt, so it is refused instead of dropped.
@pytest.mark.parametrize("messages,param", [
    ([{"role": "user", "content": "hi", "foo": 1}], "messages[0].foo"),
    ([{"role": "user", "content": "hi", "name": "alice"}], "messages[0].name"),   # SmolLM2's template has no names
    # A word of the template's text (its system prompt says "helpful") is not a field it reads.
    ([{"role": "user", "content": "hi", "helpful": True}], "messages[0].helpful"),
    ([{"role": "user", "content": "hi", "tool_call_id": "c1"}], "messages[0].tool_call_id"),
    ([{"role": "user", "content": "hi", "tool_calls": [{"id": "c1", "type": "function",
                                                         "function": {"name": "f", "arguments": "{}"}}]}],
     "messages[0].tool_calls"),
    ([{"role": "user", "content": [{"type": "text", "text": "hi", "foo": 1}]}], "messages[0].content[0].foo"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": "no", "foo": 1}]}],
     "messages[1].content[0].foo"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "audio": {"id": "audio_1"}}],
     "messages[1].audio"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
                                          "function_call": {"name": "f", "arguments": "{}"}}], "messages[1].function_call"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "see", "annotations": [
        {"type": "url_citation", "url_citation": {"url": "https://a.example", "title": "a", "start_index": 0, "end_index": 3}}]}],
     "messages[1].annotations"),
    ([{"role": "user", "content": "hi", "refusal": "no"}], "messages[0].refusal"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes", "refusal": "no"}], "messages[1].refusal"),
])
def test_chat_refuses_message_fields_it_cannot_honour(server, messages, param):
    refused_by_openai(lambda: oai(server).chat.completions.create(model="smollm2", messages=messages, max_tokens=2), param)


def test_a_reply_sent_back_as_history_is_accepted(server):
    """`messages.append(choice.message)`: the client's message object carries refusal / audio / function_call /
    tool_calls / annotations as null; they are accepted, and an earlier refusal is what the assistant said."""
    c = oai(server)
    first = c.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=4, temperature=0)
    sent_back = first.choices[0].message.model_dump()
    assert {"refusal", "audio", "function_call", "tool_calls", "annotations"} <= sent_back.keys()
    second = c.chat.completions.create(model="smollm2", messages=MSGS + [sent_back, {"role": "user", "content": "and?"}],
                                       max_tokens=2)
    assert second.choices[0].finish_reason == "length"
    for refused in [{"role": "assistant", "content": None, "refusal": "I cannot help with that."},
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot help with that."}]}]:
        status, _, raw = server.post("/apply-template", {"messages": MSGS + [refused, {"role": "user", "content": "why?"}]})
        assert status == 200, raw
        assert "<|im_start|>assistant\nI cannot help with that.<|im_end|>" in json.loads(raw)["prompt"], raw


def test_message_fields_the_template_names_are_honoured(tmp_path):
    """With a template that reads `name` and a custom `persona` key, both reach the prompt (and are not refused)."""
    from conftest import Server
    template = tmp_path / "names.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m.role }}{% if m.name %} ({{ m.name }}){% endif %}"
                        "{% if m.persona %} as {{ m.persona }}{% endif %}: {{ m.content }}<|im_end|>\n{% endfor %}"
                        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    s = Server("--chat-template", str(template))
    try:
        status, _, raw = s.post("/apply-template", {"messages": [
            {"role": "user", "content": "hi", "name": "alice", "persona": "a pirate"}]})
        assert status == 200, raw
        assert json.loads(raw)["prompt"].startswith("<|im_start|>user (alice) as a pirate: hi<|im_end|>"), raw
        status, _, raw = s.post("/apply-template", {"messages": [{"role": "user", "content": "hi", "mood": "sad"}]})
        assert status == 400 and json.loads(raw)["error"]["param"] == "messages[0].mood", raw
    finally:
        s.stop()
    # A key named only in a comment or a string is not read.
    template.write_text("{# reads mood #}{% for m in messages %}{{ 'style: persona' }}<|im_start|>{{ m.role }}\n{{ m.content }}"
                        "<|im_end|>\n{% endfor %}")
    s = Server("--chat-template", str(template))
    try:
        for key in ["mood", "persona", "style"]:
            status, _, raw = s.post("/apply-template", {"messages": [{"role": "user", "content": "hi", key: "x"}]})
            assert status == 400 and json.loads(raw)["error"]["param"] == f"messages[0].{key}", raw
    finally:
        s.stop()


def test_a_message_field_the_template_names_elsewhere_is_refused(tmp_path, qwen):
    """helper-63: the check was textual, so a key named anywhere counted as read: Qwen2.5's template reads
    `tool_call.name`, and a user message's `name` came back 200 with a prompt byte-identical to one without it. Now a
    field whose removal leaves the rendered prompt unchanged is a 400 naming it; where the template does render it
    (here `name` on tool messages only), it is accepted."""
    for extra in ({"name": "bob"}, {"arguments": "x"}, {"function": "f"}):
        status, _, raw = qwen.post("/apply-template", {"messages": [dict({"role": "user", "content": "hi"}, **extra)]})
        key = next(iter(extra))
        assert status == 400 and json.loads(raw)["error"]["param"] == f"messages[0].{key}", raw
    from conftest import Server
    template = tmp_path / "tool-names.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m.role }}{% if m.role == 'tool' %} {{ m.name }}{% endif %}"
                        "\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    s = Server("--chat-template", str(template))
    try:
        status, _, raw = s.post("/apply-template", {"messages": [{"role": "user", "content": "hi", "name": "bob"}]})
        assert status == 400 and json.loads(raw)["error"]["param"] == "messages[0].name", raw
        history = [{"role": "user", "content": "hi"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "42"}]
        status, _, raw = s.post("/apply-template", {"messages": history})
        assert status == 200 and "<|im_start|>tool f42" in json.loads(raw)["prompt"], raw   # trim_blocks, as HF renders
    finally:
        s.stop()


def test_fields_the_template_reads_indirectly_or_together_are_kept(tmp_path):
    """helper-65: the refusal of message fields that change nothing must not refuse fields that do: a template that
    prints the whole message (`tojson`) or loops over its items, one that reads `name` only together with another
    field (`m.name or m.nick`), and one that prints a speaker only when it changes all keep them. A field no render
    uses is still refused, and `reasoning_content` on a user message is such a field for SmolLM2's template."""
    from conftest import Server
    cases = {
        "tojson": "{% for m in messages %}{{ m | tojson }}\n{% endfor %}",
        "items": "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}\n{% endfor %}",
        "or": "{% for m in messages %}{{ m.role }}{% if m.name or m.nick %} *{% endif %}: {{ m.content }}\n{% endfor %}",
        "speaker": "{% set ns = namespace(last='') %}{% for m in messages %}{% if m.name and m.name != ns.last %}"
                   "[{{ m.name }}] {% set ns.last = m.name %}{% endif %}{{ m.content }}\n{% endfor %}",
    }
    for label, text in cases.items():
        template = tmp_path / f"{label}.jinja"
        template.write_text(text + "{% if add_generation_prompt %}assistant:{% endif %}")
        s = Server("--chat-template", str(template))
        try:
            if label == "or":
                msgs = [{"role": "user", "content": "hi", "name": "bob", "nick": "b"}]
            elif label == "speaker":
                msgs = [{"role": "user", "content": "a", "name": "bob"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c", "name": "bob"}]
            else:
                msgs = [{"role": "user", "content": "hi", "name": "bob"}]
            status, _, raw = s.post("/apply-template", {"messages": msgs})
            assert status == 200, (label, raw)
        finally:
            s.stop()


def test_reasoning_content_on_a_user_message_is_refused_where_the_template_drops_it(server):
    status, _, raw = server.post("/apply-template", {"messages": [{"role": "user", "content": "hi", "reasoning_content": "zz"}]})
    assert status == 400 and json.loads(raw)["error"]["param"] == "messages[0].reasoning_content", raw


def test_tokenize_refuses_fields_it_does_not_read(server):
    """helper-65: `/tokenize` read past unknown members: vLLM's chat form `{"messages": …}` beside `content` came back
    with the tokens of `content`."""
    for body, key in [({"content": "x", "messages": [{"role": "user", "content": "hi"}]}, "messages"),
                      ({"content": "x", "foo": 1}, "foo")]:
        status, _, raw = server.post("/tokenize", body)
        assert status == 400 and json.loads(raw)["error"]["param"] == key, raw
    status, _, raw = server.post("/detokenize", {"tokens": [1], "foo": 1})
    assert status == 400 and json.loads(raw)["error"]["param"] == "foo", raw
    status, _, raw = server.post("/tokenize", {"content": "x", "model": "smollm2", "add_special": False})
    assert status == 200, raw


def test_responses_input_items_refuse_fields_they_do_not_read(server):
    """helper-65: `/v1/responses` input items accepted any member and dropped it (`name` on a message, `foo`,
    `tool_calls` on a user item, extras on function_call items): now a 400 naming `input[i].key`; the `id` and
    `status` an item sent back from an earlier response carries are accepted."""
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    for item, key in [({"role": "user", "content": "Hi", "name": "bob"}, "name"),
                      ({"role": "user", "content": "Hi", "foo": 1}, "foo"),
                      (dict(call, extra=1), "extra"),
                      ({"type": "function_call_output", "call_id": "c1", "output": "4", "foo": 2}, "foo")]:
        status, _, raw = server.post("/v1/responses", {"input": [item], "max_output_tokens": 4})
        assert status == 400 and json.loads(raw)["error"]["param"] == f"input[0].{key}", (item, raw)
    first = oai(server).responses.create(model="smollm2", input="Say hi.", max_output_tokens=4)
    back = [o.model_dump(exclude_none=True) for o in first.output]
    assert all("id" in o and "status" in o for o in back), back
    again = oai(server).responses.create(model="smollm2", input=[{"role": "user", "content": "Say hi."}, *back,
                                                                 {"role": "user", "content": "Again."}], max_output_tokens=4)
    assert again.status in ("completed", "incomplete")
