"""Anthropic `/v1/messages` tools and thinking through the official anthropic package, unmodified (issue 15.5):
custom tools `{name, description, input_schema}` and `tool_choice` (`any`, `tool`, `auto`, `none`) onto the chat
pipeline; `tool_use` blocks (`toolu_…` ids, `input` valid against the tool's `input_schema`, checked with
`jsonschema`), `stop_reason: "tool_use"`, streamed as `content_block_start` (tool_use) + `input_json_delta` and
assembled by the SDK's stream helper; `thinking` enabled → a `thinking` block (streamed `thinking_delta`) before the
text on the DeepSeek-R1 template, and a 400 naming `thinking` on a template without reasoning. Calls are made
deterministic by `tool_choice` forcing through the grammar (Qwen2.5-Coder-0.5B)."""
import json

import anthropic
import jsonschema
import pytest


WEATHER = {"name": "get_weather", "description": "Get the current weather in a city.",
           "input_schema": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                            "properties": {"city": {"type": "string", "maxLength": 40},
                                           "unit": {"enum": ["celsius", "fahrenheit"]}}}}
TIME = {"name": "get_time", "description": "Current local time in a time zone.",
        "input_schema": {"type": "object", "additionalProperties": False, "required": ["zone"],
                         "properties": {"zone": {"type": "string", "maxLength": 40}}}}
TOOLS = [WEATHER, TIME]
NOT = {"type": "object", "properties": {"city": {"type": "string"}}, "not": {"required": ["x"]}}
SCHEMAS = {t["name"]: t["input_schema"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather like in Paris right now?"}]
# The model, asked to repeat a text holding a closing tag, writes reasoning, then `</think>`, then more text.
REPEAT = [{"role": "user", "content": "Repeat exactly: I should add.</think>The answer is 4."}]


def client(server):
    return anthropic.Anthropic(base_url=server.base, api_key="unused", max_retries=0, timeout=300)


def check_tool_use(block, allowed):
    assert block.type == "tool_use" and block.id.startswith("toolu_") and len(block.id) > len("toolu_")
    assert block.name in allowed
    assert isinstance(block.input, dict)
    jsonschema.validate(block.input, SCHEMAS[block.name])


def test_any_forces_one_tool_use_block(qwen):
    m = client(qwen).messages.create(model="m", max_tokens=60, temperature=0, tools=TOOLS,
                                     tool_choice={"type": "any"}, messages=ASK)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1, m.content
    check_tool_use(uses[0], {"get_weather", "get_time"})
    assert m.stop_reason == "tool_use" and m.stop_sequence is None
    # Each call gets its own id.
    again = client(qwen).messages.create(model="m", max_tokens=60, temperature=0, tools=TOOLS,
                                         tool_choice={"type": "any"}, messages=ASK)
    assert [b for b in again.content if b.type == "tool_use"][0].id != uses[0].id


def test_named_tool_and_disable_parallel(qwen):
    m = client(qwen).messages.create(
        model="m", max_tokens=60, temperature=0, tools=TOOLS, messages=ASK,
        tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True})
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1
    check_tool_use(uses[0], {"get_time"})
    assert m.stop_reason == "tool_use"


def test_streamed_tool_use_matches_and_is_assembled_by_the_sdk(qwen):
    kw = dict(model="m", max_tokens=60, temperature=0, tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather"},
              messages=ASK)
    whole = client(qwen).messages.create(**kw)
    want = [b for b in whole.content if b.type == "tool_use"][0]
    events = list(client(qwen).messages.create(stream=True, **kw))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e.type == "content_block_start"]
    tool_starts = [e for e in starts if e.content_block.type == "tool_use"]
    assert len(tool_starts) == 1
    ts = tool_starts[0]
    assert ts.content_block.name == "get_weather" and ts.content_block.id.startswith("toolu_")
    assert ts.content_block.input == {}
    deltas = [e.delta for e in events if e.type == "content_block_delta" and e.index == ts.index]
    assert deltas and all(d.type == "input_json_delta" for d in deltas)
    assert json.loads("".join(d.partial_json for d in deltas)) == want.input
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == sorted(stops) and len(stops) == len(starts) and ts.index in stops
    assert events[-2].delta.stop_reason == "tool_use"
    with client(qwen).messages.stream(**kw) as s:
        final = s.get_final_message()
    got = [b for b in final.content if b.type == "tool_use"]
    assert len(got) == 1 and got[0].name == "get_weather" and got[0].input == want.input
    assert final.stop_reason == "tool_use"


def test_tool_choice_none_and_tool_results(qwen):
    m = client(qwen).messages.create(model="m", max_tokens=12, temperature=0, tools=TOOLS,
                                     tool_choice={"type": "none"}, messages=ASK)
    assert [b.type for b in m.content] == ["text"] and m.stop_reason in ("end_turn", "max_tokens")
    # A forced call, answered with a tool_result, is sent back and the model writes text.
    call = client(qwen).messages.create(model="m", max_tokens=60, temperature=0, tools=TOOLS,
                                        tool_choice={"type": "tool", "name": "get_weather"}, messages=ASK)
    use = [b for b in call.content if b.type == "tool_use"][0]
    follow = ASK + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in call.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21 C"}]}]
    m = client(qwen).messages.create(model="m", max_tokens=24, temperature=0, tools=TOOLS, messages=follow)
    assert m.content and m.usage.input_tokens + m.usage.cache_read_input_tokens > call.usage.input_tokens


@pytest.mark.parametrize("extra,param", [
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
    ({"tools": TOOLS, "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
    ({"tool_choice": {"type": "any"}}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "any"}, "max_tokens": 2000,
      "thinking": {"type": "enabled", "budget_tokens": 1024}}, "tool_choice"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 100}, "max_tokens": 2000}, "thinking.budget_tokens"),
    # helper-40: each of these was a 200 (Anthropic answers 400).
    ({"tools": [WEATHER, WEATHER]}, "tools: Tool names must be unique"),
    ({"tools": [dict(WEATHER, name="bad name!")]}, "tools[0].name"),
    ({"tools": [dict(WEATHER, input_schema={"type": "string"})]}, "tools[0].input_schema.type"),
    ({"tools": [dict(WEATHER, strict=True, input_schema=NOT)]}, "'tools[0].input_schema' for a strict tool"),
    ({"tools": [dict(WEATHER, defer_loading=True)]}, "tools[0].defer_loading: not supported"),
    ({"tools": [dict(WEATHER, allowed_callers=["code_execution_20250825"])]}, "tools[0].allowed_callers: not supported"),
    ({"tools": [dict(WEATHER, input_examples=["Paris"])]}, "tools[0].input_examples[0]"),
    ({"tools": [dict(WEATHER, frobnicate=True)]}, "tools[0].frobnicate: Extra inputs are not permitted"),
    ({"tools": TOOLS, "tool_choice": {"type": "auto", "foo": 1}}, "tool_choice.foo: Extra inputs are not permitted"),
    ({"system": [{"type": "text", "text": "Be brief.", "foo": 1}]}, "system[0].foo: Extra inputs are not permitted"),
    ({"system": [{"type": "text", "text": ""}]}, "system[0].text: text content blocks must be non-empty"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0]: all messages must have non-empty content"),
    ({"messages": [{"role": "user", "content": []}]}, "messages[0]: all messages must have non-empty content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     "messages[0].content[0].text: text content blocks must be non-empty"),
    # A tool_result answers a tool_use of the message before it (Anthropic's rule; it was rendered anyway).
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "4"}]}]},
     "unexpected tool_use_id found in tool_result blocks: toolu_x"),
    ({"messages": [{"role": "user", "content": "weather?"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "4"}]}]},
     "messages.2.content: unexpected tool_use_id found in tool_result blocks: toolu_2"),
    # helper-72: a second result for one call was accepted (and rendered, paired by position with the other call).
    ({"tools": TOOLS, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                                          {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "4"},
                                     {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"},
                                     {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"}]}]},
     "messages.2.content: each tool_use must have a single result. Found multiple `tool_result` blocks with id: toolu_1"),
])
def test_bad_tool_and_thinking_fields_are_400s(qwen, extra, param):
    body = {"model": "m", "max_tokens": 16, "messages": ASK, **extra}
    status, _, raw = qwen.post("/v1/messages", body)
    assert status == 400, raw
    err = json.loads(raw)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert param in err["error"]["message"], err


def test_strict_and_cache_control_tools_and_an_empty_prefill_are_accepted(qwen):
    # What the anthropic SDK's ToolParam offers (helper-42: all four were refused).
    tools = [dict(WEATHER, strict=True, cache_control={"type": "ephemeral"}, eager_input_streaming=True,
                  defer_loading=False, allowed_callers=["direct"]),
             dict(TIME, strict=False, input_schema=NOT, input_examples=[{"zone": "Europe/Paris"}])]
    m = client(qwen).messages.create(model="m", max_tokens=64, temperature=0, tools=tools,
                                     tool_choice={"type": "tool", "name": "get_weather"}, messages=ASK)
    check_tool_use(m.content[0], {"get_weather"})
    # input_examples reach the prompt (with the tool's description).
    plain = client(qwen).messages.count_tokens(model="m", tools=[TIME], messages=ASK).input_tokens
    shown = client(qwen).messages.count_tokens(model="m", tools=[dict(TIME, input_examples=[{"zone": "Europe/Paris"}])],
                                               messages=ASK).input_tokens
    assert shown > plain
    # A final assistant message may be empty (it is the prefill the reply continues).
    m = client(qwen).messages.create(model="m", max_tokens=4, temperature=0,
                                     messages=ASK + [{"role": "assistant", "content": ""}])
    assert m.stop_reason in ("max_tokens", "end_turn")


def test_a_prefill_with_a_forced_tool_names_anthropic_fields(qwen):
    """A final assistant message (a prefill) with `tool_choice` any: the 400 speaks of this API's fields, not of the
    chat route's `continue_final_message`."""
    with pytest.raises(anthropic.BadRequestError) as e:
        client(qwen).messages.create(model="m", max_tokens=16, tools=TOOLS, tool_choice={"type": "any"},
                                     messages=ASK + [{"role": "assistant", "content": "Let me"}])
    message = e.value.body["error"]["message"]
    assert "tool_choice" in message and "continue_final_message" not in message, message


def test_thinking_refused_without_reasoning_template(qwen):
    with pytest.raises(anthropic.BadRequestError) as e:
        client(qwen).messages.create(model="m", max_tokens=1100, messages=ASK,
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert "thinking" in e.value.body["error"]["message"]


def test_thinking_block_before_text(r1):
    # The stop sequence (matched on the raw output) ends the reply shortly after the think block closes.
    kw = dict(model="m", max_tokens=1100, temperature=0, messages=REPEAT, stop_sequences=["\nI'm"],
              thinking={"type": "enabled", "budget_tokens": 1024})
    m = client(r1).messages.create(**kw)
    kinds = [b.type for b in m.content]
    assert kinds[0] == "thinking" and "text" in kinds, m.content
    thinking = m.content[0]
    assert thinking.thinking and "<think>" not in thinking.thinking and "</think>" not in thinking.thinking
    assert thinking.signature == ""
    text = "".join(b.text for b in m.content if b.type == "text")
    assert text.strip() and m.stop_reason == "stop_sequence"
    events = list(client(r1).messages.create(stream=True, **kw))
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == kinds
    got = "".join(e.delta.thinking for e in events if e.type == "content_block_delta" and e.delta.type == "thinking_delta")
    assert got == thinking.thinking
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta") == text
    with client(r1).messages.stream(**kw) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == kinds and final.content[0].thinking == thinking.thinking
    # Without thinking the think block stays inline in the text, as before.
    plain = client(r1).messages.create(model="m", max_tokens=20, temperature=0, messages=REPEAT)
    assert [b.type for b in plain.content] == ["text"]
    # The thinking block goes back in history.
    follow = REPEAT + [{"role": "assistant", "content": [b.model_dump() for b in m.content]},
                       {"role": "user", "content": "Thanks."}]
    assert client(r1).messages.create(model="m", max_tokens=4, temperature=0, messages=follow).usage.output_tokens >= 1


def test_thinking_display(r1):
    """`thinking.display`: `omitted` returns the thinking block with empty text (no thinking_delta events), as
    Anthropic does; `summarized` (the default) returns the whole thinking; other values are a 400. The field was
    refused as unknown."""
    kw = dict(model="m", max_tokens=1100, temperature=0, messages=REPEAT, stop_sequences=["\nI'm"])
    full = client(r1).messages.create(thinking={"type": "enabled", "budget_tokens": 1024, "display": "summarized"}, **kw)
    assert full.content[0].type == "thinking" and full.content[0].thinking
    omitted = client(r1).messages.create(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"}, **kw)
    assert [b.type for b in omitted.content] == [b.type for b in full.content]
    assert omitted.content[0].thinking == ""
    assert [b.text for b in omitted.content if b.type == "text"] == [b.text for b in full.content if b.type == "text"]
    events = list(client(r1).messages.create(stream=True, thinking={"type": "enabled", "budget_tokens": 1024,
                                                                   "display": "omitted"}, **kw))
    assert [e.content_block.type for e in events if e.type == "content_block_start"][0] == "thinking"
    assert not [e for e in events if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]
    with pytest.raises(anthropic.BadRequestError) as e:
        client(r1).messages.create(thinking={"type": "enabled", "budget_tokens": 1024, "display": "updates"}, **kw)
    assert "thinking.display" in e.value.body["error"]["message"]


def test_history_fields_the_api_returns_are_accepted(qwen):
    """`caller` and `toolset_name` on tool_use / tool_result blocks come back from Anthropic's API in history (the
    SDK models them); they were refused as unknown fields."""
    history = ASK + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}, "caller": {"type": "direct"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20 C",
                                      "toolset_name": "ts"}]}]
    m = client(qwen).messages.create(model="m", max_tokens=8, temperature=0, tools=TOOLS, messages=history)
    assert m.usage.output_tokens >= 1


def test_tool_use_history_on_a_template_that_fails_on_none(qwen3):
    """The second turn of a tool use (what every agent sends) on the Qwen3 template: the tool_use-only assistant turn
    has no text, and the template's `'</think>' in message.content` failed on none (a 400, "argument of type
    'NoneType' is not iterable"). Anthropic clients send no null, so the turn renders with empty content; the chat
    route still keeps a JSON null as none (test_tool_calls)."""
    history = ASK + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20 C"}]}]
    m = client(qwen3).messages.create(model="m", max_tokens=8, temperature=0, tools=TOOLS, messages=history)
    assert m.usage.output_tokens >= 1


def test_thinking_disabled_selects_the_non_thinking_mode(qwen3):
    """helper-63: `thinking: {"type": "disabled"}` (Anthropic: no extended thinking) changed nothing; on Qwen3's
    template, which thinks by default, the model still reasoned (inline in the text). Now it selects the template's
    non-thinking mode, the prompt chat's `reasoning_effort: "none"` renders (Qwen3's empty think block)."""
    import openai
    kw = dict(model="m", max_tokens=12, temperature=0, messages=ASK)
    off = client(qwen3).messages.create(thinking={"type": "disabled"}, **kw)
    default = client(qwen3).messages.create(**kw)
    chat = openai.OpenAI(base_url=qwen3.base + "/v1", api_key="x").chat.completions.create(
        model="m", messages=ASK, max_tokens=12, temperature=0, reasoning_effort="none")
    assert off.usage.input_tokens == chat.usage.prompt_tokens != default.usage.input_tokens
    assert "".join(b.text for b in off.content if b.type == "text") == chat.choices[0].message.content
    counted = client(qwen3).messages.count_tokens(model="m", messages=ASK, thinking={"type": "disabled"})
    assert counted.input_tokens == off.usage.input_tokens


def test_count_tokens_takes_anthropics_body_only(qwen):
    """helper-63: count_tokens read `max_tokens`, `stream`, sampling fields and `stop_sequences` and dropped them; its
    body has none of them, and Anthropic answers "Extra inputs are not permitted". `thinking` enabled on a template
    without reasoning is the 400 /v1/messages gives (it was counted)."""
    for extra in ({"max_tokens": 5}, {"stream": True}, {"temperature": 0.3}, {"top_p": 0.5}, {"top_k": 3},
                  {"stop_sequences": ["x"]}, {"metadata": {"user_id": "u"}}):
        st, _, body = qwen.post("/v1/messages/count_tokens", dict({"model": "m", "messages": ASK}, **extra))
        err = json.loads(body)
        key = next(iter(extra))
        assert st == 400 and err["error"]["message"] == f"{key}: Extra inputs are not permitted", (extra, err)
    st, _, body = qwen.post("/v1/messages/count_tokens", {"model": "m", "messages": ASK,
                                                          "thinking": {"type": "enabled", "budget_tokens": 1024}})
    assert st == 400 and "thinking" in json.loads(body)["error"]["message"], body
