"""Hermes tool calls written bare, without `<tool_call>`, as Qwen2.5-Coder-0.5B writes them under `tool_choice`
"auto": `{"name": …, "arguments": …}` at the start of the reply, or in a ```json fence. llama.cpp's Hermes 2 Pro
handler reads both (and its lazy grammar triggers on them); they came back as text content with finish_reason
"stop". Driven with the official `openai` client; arguments checked with `jsonschema`."""
import json

import jsonschema
from openai import OpenAI

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 40},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
SCHEMA = WEATHER["function"]["parameters"]
# At temperature 0 the first is written bare, the others in a ```json fence (checked on the binary before this).
ASKS = ["What is the weather like in Paris right now?", "Weather in Tokyo in fahrenheit?",
        "Use the tool: weather for Berlin."]


def client(server):
    return OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x", max_retries=0, timeout=300)


def test_bare_and_fenced_calls_are_tool_calls(qwen):
    for ask in ASKS:
        r = client(qwen).chat.completions.create(model="m", messages=[{"role": "user", "content": ask}],
                                                 tools=[WEATHER], temperature=0, max_tokens=80)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", (ask, c)
        assert not c.message.content, c.message
        assert len(c.message.tool_calls) == 1
        call = c.message.tool_calls[0]
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), SCHEMA)


def test_bare_call_streamed(qwen):
    stream = client(qwen).chat.completions.create(model="m", messages=[{"role": "user", "content": ASKS[1]}],
                                                  tools=[WEATHER], temperature=0, max_tokens=80, stream=True)
    name, args, content, finish = None, "", "", None
    contents = []
    for chunk in stream:
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        contents.append(d.content)
        content += d.content or ""
        for tc in d.tool_calls or []:
            name = tc.function.name or name
            args += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and name == "get_weather" and content == "", (finish, name, content)
    jsonschema.validate(json.loads(args), SCHEMA)
    # No chunk carries content: the role chunk waits for the reply's first output and, that being a call, has none
    # (it had `content: ""`, so the SDK's accumulated message said '' where the whole response says None).
    assert contents == [None] * len(contents), contents
    with client(qwen).chat.completions.stream(model="m", messages=[{"role": "user", "content": ASKS[1]}],
                                              tools=[WEATHER], temperature=0, max_tokens=80) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content is None and final.choices[0].message.tool_calls, final


def test_json_that_is_not_a_call_stays_content(qwen):
    """With tools offered, a JSON answer whose "name" is not a declared tool is the answer (the start trigger names
    the tools, as llama.cpp's pattern does): it is neither forced into a call nor parsed as one."""
    ask = [{"role": "user", "content": 'Reply with exactly this JSON and nothing else: {"name": "Ada", "age": 36}'}]
    r = client(qwen).chat.completions.create(model="m", messages=ask, tools=[WEATHER], temperature=0, max_tokens=40)
    assert r.choices[0].message.tool_calls is None, r.choices[0].message
    assert '"Ada"' in r.choices[0].message.content


def test_bare_call_arguments_are_enforced(qwen):
    """The bare form is held to the tool's schema like a tagged call (llama.cpp's lazy grammar triggers on it):
    asked for fahrenheit, the model must pick one of the declared units."""
    tool = json.loads(json.dumps(WEATHER))
    tool["function"]["parameters"]["properties"]["unit"] = {"enum": ["kelvin", "rankine"]}
    for ask in ASKS[1:]:
        r = client(qwen).chat.completions.create(model="m", messages=[{"role": "user", "content": ask}],
                                                 tools=[tool], temperature=0, max_tokens=80)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", (ask, c)
        jsonschema.validate(json.loads(c.message.tool_calls[0].function.arguments), tool["function"]["parameters"])


def test_response_format_answer_shaped_like_a_call_is_not_a_call(qwen):
    """With `response_format` the reply's grammar is the answer's (or a tagged call's): an answer that looks like a
    bare call was not held to the tool's schema, so it stays the answer (helper-38 got `days: 10` against a strict
    maximum of 3 as a call)."""
    params = {"type": "object", "additionalProperties": False, "required": ["city", "days", "unit"],
              "properties": {"city": {"type": "string", "minLength": 3, "maxLength": 6},
                             "days": {"type": "integer", "minimum": 1, "maximum": 3},
                             "unit": {"type": "string", "enum": ["kelvin"]}}}
    tool = {"type": "function", "function": {"name": "forecast", "parameters": params, "strict": True}}
    for seed in range(4):
        r = client(qwen).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Give me the 10 day forecast for San Francisco in celsius."}],
            tools=[tool], response_format={"type": "json_object"}, temperature=0.7, seed=seed, max_tokens=80)
        for call in r.choices[0].message.tool_calls or []:
            jsonschema.validate(json.loads(call.function.arguments), params)


def test_a_cut_json_answer_under_tools_is_kept(qwen):
    """Cut by max_tokens or a stop string before `{"name":`, a fenced JSON answer is the answer's start, not a call:
    it stays content (helper-43: after the cut-call fix it came back empty). From `{"name":` on it may be a call to a
    declared tool, and a cut drops it (the unit tests hold both sides)."""
    ask = [{"role": "user", "content": "Reply with a JSON object describing a cat with keys species and color. "
                                       "Only JSON, no prose."}]
    for extra in ({"max_tokens": 1}, {"max_tokens": 6}, {"max_tokens": 80, "stop": ["species"]}):
        r = client(qwen).chat.completions.create(model="m", messages=ask, tools=[WEATHER], temperature=0, **extra)
        c = r.choices[0]
        assert c.message.tool_calls is None and c.message.content and c.message.content.startswith("```"), (extra, c)


def test_streamed_choices_assemble_like_the_whole_response(qwen):
    """n > 1 with tools, and logprobs: every choice assembled by the SDK's stream helper equals the non-streamed
    choice, `content` None for a call-only choice included (helper-44: only the choice whose output opened the stream
    got a role chunk without content, the others `""`; and the log-probabilities of a call's tokens came in
    `content: ""` chunks)."""
    import openai
    add = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    for kw in ({"n": 3, "seed": 7}, {"n": 2, "seed": 7}, {"n": 1, "seed": 11, "logprobs": True}):
        args = dict(model="m", messages=ask, tools=[WEATHER, add], temperature=0.9, max_tokens=60, **kw)
        whole = client(qwen).chat.completions.create(**args)
        with client(qwen).chat.completions.stream(**args) as s:
            for _ in s:
                pass
            try:
                final = s.get_final_completion()
            except openai.LengthFinishReasonError as e:
                final = e.completion
        got = [(c.message.content, [t.function.name for t in c.message.tool_calls or []]) for c in final.choices]
        want = [(c.message.content, [t.function.name for t in c.message.tool_calls or []]) for c in whole.choices]
        assert got == want, (kw, got, want)
        assert any(content is None for content, _ in want), want   # the case in question occurs
