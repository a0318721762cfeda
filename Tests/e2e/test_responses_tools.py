"""`/v1/responses` function tools and reasoning through the official openai package, unmodified (issue 15.5):
`tools` (`{type:"function", name, parameters}`) and `tool_choice` onto the chat pipeline; `function_call` output
items (`call_id`, `name`, `arguments` valid against the tool's `parameters`, checked with `jsonschema`), streamed as
`response.output_item.added`, `response.function_call_arguments.delta`/`.done`, `response.output_item.done`;
`reasoning` → a `reasoning` output item (streamed `response.reasoning_text.delta`) before the message on the
DeepSeek-R1 template, a 400 naming `reasoning` elsewhere. Calls are made deterministic by `tool_choice` forcing
through the grammar (Qwen2.5-Coder-0.5B)."""
import json

import jsonschema
import pytest
from openai import BadRequestError, OpenAI

from test_anthropic_tools import REPEAT

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather in a city.", "strict": True,
           "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                          "properties": {"city": {"type": "string", "maxLength": 40},
                                         "unit": {"enum": ["celsius", "fahrenheit"]}}}}
TIME = {"type": "function", "name": "get_time", "description": "Current local time in a time zone.", "strict": True,
        "parameters": {"type": "object", "additionalProperties": False, "required": ["zone"],
                       "properties": {"zone": {"type": "string", "maxLength": 40}}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["name"]: t["parameters"] for t in TOOLS}
ASK = "What is the weather like in Paris right now?"
NOT = {"type": "object", "properties": {"city": {"type": "string"}}, "not": {"required": ["x"]}}


def client(server):
    return OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=300)


def check_call(item, allowed):
    assert item.type == "function_call" and item.call_id.startswith("call_") and item.id.startswith("fc_")
    assert item.name in allowed and item.status == "completed"
    jsonschema.validate(json.loads(item.arguments), SCHEMAS[item.name])


def test_required_gives_one_function_call(qwen):
    r = client(qwen).responses.create(model="m", input=ASK, tools=TOOLS, tool_choice="required",
                                      temperature=0, max_output_tokens=60)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1, r.output
    check_call(calls[0], {"get_weather", "get_time"})
    assert r.status == "completed" and r.tool_choice == "required"
    assert [t.name for t in r.tools] == ["get_weather", "get_time"]


def test_named_function_streamed_matches(qwen):
    kw = dict(model="m", input=ASK, tools=TOOLS, tool_choice={"type": "function", "name": "get_time"},
              temperature=0, max_output_tokens=60, parallel_tool_calls=False)
    whole = client(qwen).responses.create(**kw)
    want = [o for o in whole.output if o.type == "function_call"]
    assert len(want) == 1
    check_call(want[0], {"get_time"})
    events = list(client(qwen).responses.create(stream=True, **kw))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"]
    assert len(added) == 1 and added[0].item.name == "get_time" and added[0].item.arguments == ""
    idx, item_id = added[0].output_index, added[0].item.id
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert deltas and all(e.item_id == item_id for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0].arguments == "".join(deltas) == want[0].arguments and done[0].name == "get_time"
    item_done = [e for e in events if e.type == "response.output_item.done" and e.output_index == idx]
    assert len(item_done) == 1 and item_done[0].item.arguments == want[0].arguments
    assert types.index("response.function_call_arguments.done") < types.index("response.completed")
    final = events[-1].response
    assert [o.type for o in final.output] == [o.type for o in whole.output]


def test_function_call_output_round_trip_and_none(qwen):
    first = client(qwen).responses.create(model="m", input=ASK, tools=TOOLS, temperature=0, max_output_tokens=60,
                                          tool_choice={"type": "function", "name": "get_weather"})
    call = [o for o in first.output if o.type == "function_call"][0]
    follow = [{"role": "user", "content": ASK}, call.model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}]
    r = client(qwen).responses.create(model="m", input=follow, tools=TOOLS, temperature=0, max_output_tokens=16)
    assert r.output and r.usage.input_tokens > first.usage.input_tokens
    none = client(qwen).responses.create(model="m", input=ASK, tools=TOOLS, tool_choice="none", temperature=0,
                                         max_output_tokens=12)
    assert [o.type for o in none.output] == ["message"]


@pytest.mark.parametrize("extra,param", [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
    ({"reasoning": {"effort": "high", "summary": "auto"}}, "reasoning.summary"),
    ({"reasoning": {"effort": "high"}}, "reasoning"),
    # strict: a schema the grammar cannot enforce is a 400 naming it here as on chat (helper-40: it was read and
    # dropped).
    ({"tools": [dict(WEATHER, parameters=NOT)]}, "tools[0].parameters.not"),
    ({"tools": [dict(WEATHER, foo=1)]}, "tools[0].foo"),
])
def test_bad_tool_and_reasoning_fields_are_400s(qwen, extra, param):
    with pytest.raises(BadRequestError) as e:
        client(qwen).responses.create(model="m", input=ASK, max_output_tokens=8, **extra)
    assert e.value.body["param"] == param, e.value.body


def test_non_strict_tool_takes_a_schema_the_grammar_cannot_enforce(qwen):
    """`strict: false`, null or left out: the grammar enforces what it can (LangChain's bind_tools leaves it out,
    with pydantic schemas the grammar cannot fully enforce; helper-42)."""
    tool = {k: v for k, v in WEATHER.items() if k != "strict"}
    for t in (dict(tool, strict=False, parameters=NOT), dict(tool, strict=None, parameters=NOT), dict(tool, parameters=NOT)):
        r = client(qwen).responses.create(model="m", input=ASK, max_output_tokens=8, tools=[t])
        assert r.status in ("completed", "incomplete")


def test_reasoning_item_before_message(r1):
    kw = dict(model="m", input=REPEAT, temperature=0, max_output_tokens=40, reasoning={"effort": "high"})
    r = client(r1).responses.create(**kw)
    kinds = [o.type for o in r.output]
    assert kinds[:2] == ["reasoning", "message"], r.output
    text = r.output[0].content[0].text
    assert text and "<think>" not in text and "</think>" not in text and r.output[0].summary == []
    assert r.reasoning.effort == "high"
    # The reasoning item's tokens are counted (helper's report: always 0).
    assert 0 < r.usage.output_tokens_details.reasoning_tokens < r.usage.output_tokens, r.usage
    assert r.status == "incomplete" and r.completed_at is None   # capped at 40 tokens: no completion time
    events = list(client(r1).responses.create(stream=True, **kw))
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == kinds
    got = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert got == text
    done = [e for e in events if e.type == "response.reasoning_text.done"]
    assert len(done) == 1 and done[0].text == text
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == r.output_text
    # Without `reasoning` the think block stays inline in the text, as before.
    plain = client(r1).responses.create(model="m", input=REPEAT, temperature=0, max_output_tokens=20)
    assert [o.type for o in plain.output] == ["message"]
    # The output goes back as input (the reasoning item becomes the assistant turn's reasoning) for the next turn.
    follow = REPEAT + [o.model_dump(exclude_none=True) for o in r.output] + [{"role": "user", "content": "Thanks."}]
    again = client(r1).responses.create(model="m", input=follow, temperature=0, max_output_tokens=4)
    assert again.usage.input_tokens > r.usage.input_tokens and again.usage.output_tokens >= 1


def test_function_call_history_on_a_template_that_fails_on_none(qwen3):
    """A function_call item becomes an assistant turn with no content; the Qwen3 template tests
    `'</think>' in message.content`, which fails on none (a 400 before). This route's client sent no null, so the
    turn renders with empty content."""
    follow = [{"role": "user", "content": ASK},
              {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
              {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"}]
    r = client(qwen3).responses.create(model="m", input=follow, tools=TOOLS, temperature=0, max_output_tokens=8)
    assert r.output and r.usage.output_tokens >= 1


def test_function_call_output_without_its_call_is_refused(qwen):
    """OpenAI answers a function_call_output whose call_id no function_call item before it made with a 400 ("No tool
    call found for function call output"); it was rendered as an answer to a call never made."""
    for items, param in [([{"type": "function_call_output", "call_id": "nope", "output": "x"}], "input[0].call_id"),
                         ([{"role": "user", "content": "hi"},
                           {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
                           {"type": "function_call_output", "call_id": "call_2", "output": "x"}], "input[2].call_id")]:
        with pytest.raises(BadRequestError) as e:
            client(qwen).responses.create(model="m", input=items, max_output_tokens=8)
        assert e.value.body["param"] == param and "No tool call found" in e.value.body["message"], e.value.body


def test_whole_calls_of_a_capped_response_are_completed(qwen):
    """helper-58: when the token cap ended a response after whole function calls, the final object (streamed and not)
    marked every call `incomplete`, though each call's `response.output_item.done` had said `completed` and its
    arguments were whole. Only an item the cap cut is `incomplete`, and the events agree with the final object — save
    a call the cap cut while its arguments streamed: its events end with it `incomplete`, and the final object leaves
    it out, as the whole response does (the SDK's stream helper parses strict arguments from it; helper-68)."""
    weather = {"type": "function", "name": "get_weather", "description": "Get weather", "strict": True,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                              "additionalProperties": False}}
    inp = [{"role": "user", "content": "What's the weather in Paris?"},
           {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
           {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]
    c = client(qwen)
    r = c.responses.create(model="m", input=inp, tools=[weather], max_output_tokens=60, temperature=0)
    done = {}
    with c.responses.stream(model="m", input=inp, tools=[weather], max_output_tokens=60, temperature=0) as s:
        for e in s:
            if e.type == "response.output_item.done":
                done[e.output_index] = e.item.status
        f = s.get_final_response()
    for resp in (r, f):
        calls = [o for o in resp.output if o.type == "function_call"]
        assert calls, [o.type for o in resp.output]   # the case this test is about: calls until the cap
        assert resp.status == "incomplete"
        assert all(o.status == "completed" for o in calls)
        for o in calls:
            json.loads(o.arguments)
        for o in resp.output[:-1]:
            assert o.status == "completed"
    final = {i: o.status for i, o in enumerate(f.output)}
    cut = {i: s for i, s in done.items() if i not in final}
    assert {i: s for i, s in done.items() if i in final} == final and set(cut.values()) <= {"incomplete"}
    assert not cut or list(cut) == [len(f.output)]
