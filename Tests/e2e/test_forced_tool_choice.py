"""`tool_choice` "required" and a named function, enforced by the grammar matcher (issue 14.3): the reply is always
calls — one or more for "required" (exactly one with parallel_tool_calls false), exactly one for a named function —
in the template's markup, to an allowed tool, with arguments valid against its `parameters` (checked with the
`jsonschema` package). No prefill: the grammar alone makes Qwen2.5-Coder-0.5B (which never writes `<tool_call>` on its
own) produce the call. Driven with the official `openai` client (streamed calls assembled by it) and LangChain's
`with_structured_output(method="function_calling")`, unmodified."""
import json

import jsonschema
import pytest
from openai import BadRequestError, OpenAI



WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 40},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current local time in a time zone.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["zone"],
                   "properties": {"zone": {"type": "string", "maxLength": 40}}}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather like in Paris right now?"}]


def client(server):
    return OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x", max_retries=0, timeout=300)


def check_call(call, allowed):
    assert call.type == "function"
    assert call.function.name in allowed
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize("choice,allowed", [
    ("required", {"get_weather", "get_time"}),
    ({"type": "function", "function": {"name": "get_time"}}, {"get_time"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"get_weather"}),
])
def test_forced_call_whole(qwen, choice, allowed):
    r = client(qwen).chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice=choice,
                                             temperature=0, max_tokens=80)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert len(c.message.tool_calls) == 1 if isinstance(choice, dict) else len(c.message.tool_calls) >= 1
    for call in c.message.tool_calls:
        check_call(call, allowed)
    assert not c.message.content


def test_forced_call_sampled_and_streamed(qwen):
    """Sampled at temperature 1 with several seeds, streamed: every answer is still a valid call."""
    for seed in range(3):
        stream = client(qwen).chat.completions.create(
            model="m", messages=ASK, tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed,
            max_tokens=80, stream=True)
        calls, finish, content = {}, None, ""
        for chunk in stream:
            d = chunk.choices[0].delta if chunk.choices else None
            if d is None:
                continue
            content += d.content or ""
            for tc in d.tool_calls or []:
                call = calls.setdefault(tc.index, {"name": None, "args": ""})
                if tc.function.name:
                    call["name"] = tc.function.name
                call["args"] += tc.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls" and calls and content == "", (seed, calls)
        for call in calls.values():
            assert call["name"] in SCHEMAS
            jsonschema.validate(json.loads(call["args"]), SCHEMAS[call["name"]])


def test_forced_call_streamed_message_has_null_content(qwen):
    """A calls-only reply has `content` null streamed as whole (OpenAI sends null in the first chunk): the SDK's
    accumulated message says None, not ''."""
    with client(qwen).chat.completions.stream(model="m", messages=ASK, tools=TOOLS, tool_choice="required",
                                              temperature=0, max_tokens=80) as stream:
        final = stream.get_final_completion()
    msg = final.choices[0].message
    assert msg.content is None, msg
    assert len(msg.tool_calls) == 1
    whole = client(qwen).chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="required",
                                                 temperature=0, max_tokens=80)
    assert whole.choices[0].message.content is None


def test_forced_call_on_a_reasoning_template(r1):
    """DeepSeek-R1 markup: the non-thinking mode is used, so the call comes first and parses."""
    r = client(r1).chat.completions.create(model="m", messages=ASK, tools=[WEATHER],
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                           temperature=0, max_tokens=120)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    check_call(c.message.tool_calls[0], {"get_weather"})


def test_langchain_function_calling_structured_output(qwen):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class Weather(BaseModel):
        """The weather report for a city."""
        city: str = Field(max_length=40)
        celsius: int = Field(ge=-60, le=60)

    llm = ChatOpenAI(base_url=f"http://127.0.0.1:{qwen.port}/v1", api_key="x", model="m", temperature=0,
                     max_tokens=80, max_retries=0)
    out = llm.with_structured_output(Weather, method="function_calling").invoke("Report the weather in Paris.")
    assert isinstance(out, Weather)
    assert -60 <= out.celsius <= 60 and len(out.city) <= 40


def test_bad_forced_tool_schemas_are_400(qwen):
    c = client(qwen)
    bad = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {
        "type": "object", "properties": {"xs": {"type": "array", "uniqueItems": True}}}}}
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="m", messages=ASK, tools=[bad], tool_choice="required", max_tokens=8)
    assert e.value.body["param"].startswith("tools[0].function.parameters")
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="required", max_tokens=8,
                                  response_format={"type": "json_object"})
    assert e.value.body["param"] == "response_format"
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="m", messages=ASK, tools=TOOLS,
                                  tool_choice={"type": "function", "function": {"name": "nope"}}, max_tokens=8)
    assert e.value.body["param"] == "tool_choice"


def test_a_non_strict_tool_is_forced_without_the_keywords_the_grammar_cannot_enforce(qwen):
    """helper-58: pydantic's `HttpUrl` (`maxLength` 2083) and `set[str]` (`uniqueItems`) made every forced call a 400,
    though the same tool was accepted under `auto` and OpenAI promises a non-strict tool no schema adherence. Now those
    keywords are left out and the rest of the schema (types, required, the enum) still holds."""
    params = {"type": "object", "additionalProperties": False, "required": ["url", "tags", "unit"],
              "properties": {"url": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083},
                             "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "uniqueItems": True,
                                      "maxItems": 3},
                             "unit": {"enum": ["celsius", "fahrenheit"]}}}
    tool = {"type": "function", "function": {"name": "save", "strict": False, "parameters": params}}
    r = client(qwen).chat.completions.create(model="m", messages=[{"role": "user", "content": "Save https://example.com"}],
                                             tools=[tool], tool_choice="required", temperature=0, max_tokens=120)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "save"
    relaxed = json.loads(json.dumps(params))
    del relaxed["properties"]["url"]["maxLength"], relaxed["properties"]["tags"]["uniqueItems"]
    jsonschema.validate(json.loads(call.function.arguments), relaxed)
    # The same tool marked strict cannot be enforced: a 400 naming the keyword.
    with pytest.raises(BadRequestError) as e:
        client(qwen).chat.completions.create(model="m", messages=ASK, tool_choice="required", max_tokens=8,
                                             tools=[{"type": "function", "function": dict(tool["function"], strict=True)}])
    assert e.value.body["param"] in ("tools[0].function.parameters.properties.url.maxLength",
                                     "tools[0].function.parameters.properties.tags.uniqueItems")


def test_langchain_structured_output_with_url_and_set_fields(qwen):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, HttpUrl

    class Bookmark(BaseModel):
        """A saved link."""
        url: HttpUrl
        tags: set[str]

    llm = ChatOpenAI(base_url=f"http://127.0.0.1:{qwen.port}/v1", api_key="x", model="m", temperature=0,
                     max_tokens=120, max_retries=0)
    out = llm.with_structured_output(Bookmark, method="function_calling").invoke("Bookmark https://example.com as news.")
    assert isinstance(out, Bookmark)


def test_required_with_no_tools_is_400(qwen):
    with pytest.raises(BadRequestError) as e:
        client(qwen).chat.completions.create(model="m", messages=ASK, tools=[], tool_choice="required", max_tokens=8)
    assert e.value.body["param"] == "tools"


def test_a_stop_string_inside_a_forced_call_cuts_it_without_markup(qwen):
    """`stop` beside a forced call is applied as OpenAI applies it (it was a 400): a stop string the call writes ends
    the reply there, `stop`, with no call and none of the call's text or markup in content, streamed or not."""
    for stop in (["city"], ["{"]):
        kw = dict(model="m", messages=ASK, tools=TOOLS, tool_choice="required", stop=stop, temperature=0, max_tokens=60)
        r = client(qwen).chat.completions.create(**kw)
        c = r.choices[0]
        assert c.finish_reason == "stop" and not c.message.tool_calls and not c.message.content, (stop, c)
        chunks = [ch for ch in client(qwen).chat.completions.create(stream=True, **kw) if ch.choices]
        assert not "".join(ch.choices[0].delta.content or "" for ch in chunks), stop
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices[0].finish_reason] == ["stop"]


def test_a_forced_call_cut_by_max_tokens_leaks_no_markup(qwen):
    """Cut inside the opening tag (1–3 tokens) or inside the call: `length`, and no `<tool_call` text in content."""
    for n in (1, 2, 3, 8):
        r = client(qwen).chat.completions.create(model="m", messages=ASK, tools=TOOLS, tool_choice="required",
                                                 temperature=0, max_tokens=n)
        c = r.choices[0]
        assert c.finish_reason == "length", (n, c)
        assert not c.message.content, (n, c.message.content)
        assert not c.message.tool_calls


def test_a_name_that_needs_json_escaping_is_still_a_call(qwen):
    """The forced skeleton writes the name as a JSON string body: a declared name with a quote or a backslash is
    escaped there (it was written raw, so the markup reached content and the call was lost), and comes back as
    declared."""
    for name in ('say"hi', 'back\\slash'):
        tool = {"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False}}}
        r = client(qwen).chat.completions.create(model="m", messages=ASK, tools=[tool], tool_choice="required",
                                                 temperature=0, max_tokens=40)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls" and not c.message.content, c
        assert c.message.tool_calls[0].function.name == name
        assert isinstance(json.loads(c.message.tool_calls[0].function.arguments)["a"], int)


def test_a_tool_without_parameters_is_called_with_no_arguments(qwen):
    """OpenAI: omitting `parameters` defines an empty parameter list, so the forced call's arguments are `{}`
    (they were any object: invented keys, or a call run to max_tokens and dropped)."""
    tool = {"type": "function", "function": {"name": "get_random", "description": "A random number."}}
    for seed in range(3):
        r = client(qwen).chat.completions.create(model="m", messages=ASK, tools=[tool], tool_choice="required",
                                                 temperature=1.0, seed=seed, max_tokens=40)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", c
        assert json.loads(c.message.tool_calls[0].function.arguments) == {}


def test_a_tool_name_holding_the_templates_markup_is_refused(qwen):
    """helper-61: a declared name with the call markup in it (`a<｜tool▁sep｜>b`) came back as a call to an undeclared
    `a`, since the parsers split calls on that markup. Such a name (markup, a control-token text, a line break) is a
    400 naming the tool's name; names that only need JSON escaping stay callable (above)."""
    for name in ("a<｜tool▁sep｜>b", "x</tool_call>", "two\nlines", "im<|im_end|>"):
        tool = {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
        for choice in ("auto", "required"):
            with pytest.raises(BadRequestError) as e:
                client(qwen).chat.completions.create(model="m", messages=ASK, tools=[tool], tool_choice=choice,
                                                     max_tokens=8)
            assert e.value.body["param"] == "tools[0].function.name", (name, e.value.body)


TWO_CITIES = [{"role": "user", "content": "What is the weather in Paris and in Rome? Call the tool once for each city."}]
CITY = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_required_allows_several_calls_unless_parallel_calls_are_off(qwen):
    """OpenAI: `required` means "must call one or more tools"; Anthropic's `any` likewise unless
    `disable_parallel_tool_use` (helper-66: `required` gave one call where `auto` gave two)."""
    c = client(qwen)
    body = dict(model="m", messages=TWO_CITIES, tools=[CITY], tool_choice="required", temperature=0, max_tokens=100)
    calls = c.chat.completions.create(**body).choices[0].message.tool_calls
    assert [json.loads(t.function.arguments)["city"] for t in calls] == ["Paris", "Rome"]
    one = c.chat.completions.create(**body, parallel_tool_calls=False).choices[0]
    assert one.finish_reason == "tool_calls" and len(one.message.tool_calls) == 1
    import anthropic
    a = anthropic.Anthropic(base_url=qwen.base, api_key="none", max_retries=0, timeout=300)
    tool = {"name": "get_weather", "input_schema": CITY["function"]["parameters"]}
    m = a.messages.create(model="m", max_tokens=100, temperature=0, tools=[tool], tool_choice={"type": "any"},
                          messages=TWO_CITIES)
    assert [b.input["city"] for b in m.content if b.type == "tool_use"] == ["Paris", "Rome"]
    m = a.messages.create(model="m", max_tokens=100, temperature=0, tools=[tool],
                          tool_choice={"type": "any", "disable_parallel_tool_use": True}, messages=TWO_CITIES)
    assert len([b for b in m.content if b.type == "tool_use"]) == 1 and m.stop_reason == "tool_use"
