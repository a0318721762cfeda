"""Tool calls over HTTP with the official `openai` client and LangChain: Hermes/Qwen (the model's own template),
DeepSeek R1 and V3.1 and Qwen3 (`--chat-template` fixtures) on Qwen2.5-Coder-0.5B weights.

A 0.5B model does not reliably decide to call a tool on its own, so every call here is started by an assistant
prefill (`continue_final_message`, vLLM's field): the prompt ends with the opening of the call markup and greedy
decoding writes the rest (the city name, the closing braces and tags), which then goes through the real parsers and
response path. For the DeepSeek formats, which the Qwen weights never saw, two earlier tool rounds in the history
show the markup (rendered by the template itself) and the model copies its closing tags."""
import json

import pytest
from openai import BadRequestError, OpenAI



TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

HERMES_OPEN = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
HERMES_PARIS = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
R1_OPEN = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \""
V31_OPEN = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \""
MARKUP = ("<tool_call>", "</tool_call>", "tool▁", "```json")


def client(s):
    return OpenAI(base_url=s.base + "/v1", api_key="none", max_retries=0, timeout=300)


def call(i, city):
    return {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}


def history(null_content=True):
    """Two finished tool rounds as an OpenAI client sends them (assistant content null, tool results)."""
    out = []
    for i, (city, temp) in enumerate([("Rome", "20 C"), ("Oslo", "4 C")]):
        out += [{"role": "user", "content": f"What is the weather in {city}?"},
                {"role": "assistant", "content": None if null_content else "", "tool_calls": [call(f"abcdefgh{i}", city)]},
                {"role": "tool", "tool_call_id": f"abcdefgh{i}", "content": temp},
                {"role": "assistant", "content": f"It is {temp} in {city}."}]
    return out


def ask(prefill, shots=(), question="What is the weather in Paris?"):
    return [*shots, {"role": "user", "content": question}, {"role": "assistant", "content": prefill}]


def assemble(stream):
    """Streamed chunks → (content, reasoning, calls by index, finish_reason, first-delta checks)."""
    content, reasoning, calls, finish = "", "", {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        ch = chunk.choices[0]
        d = ch.delta
        if d.content:
            content += d.content
        r = getattr(d, "reasoning_content", None) or (d.model_extra or {}).get("reasoning_content")
        if r:
            assert not content, "reasoning after content"
            reasoning += r
        for tc in d.tool_calls or []:
            if tc.index not in calls:
                # The first delta of a call carries its index, id, type and name.
                assert tc.id and tc.type == "function" and tc.function.name, tc
                calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments or ""}
            else:
                assert tc.id is None and tc.function.name is None, tc
                calls[tc.index]["arguments"] += tc.function.arguments or ""
        if ch.finish_reason:
            finish = ch.finish_reason
    return content, reasoning, calls, finish


def check_paris(tc):
    assert tc.type == "function" and tc.id.startswith("call_")
    assert tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"city": "Paris"}


# --- Hermes / Qwen 2.5 (the model's own template) ---

def test_hermes_call_non_streamed(qwen):
    r = client(qwen).chat.completions.create(model="m", messages=ask(HERMES_OPEN), tools=TOOLS, temperature=0,
                                             max_tokens=40, extra_body={"continue_final_message": True})
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert msg.content is None
    assert len(msg.tool_calls) == 1
    check_paris(msg.tool_calls[0])


def test_hermes_call_streamed_is_assembled_by_the_client(qwen):
    stream = client(qwen).chat.completions.create(model="m", messages=ask(HERMES_OPEN), tools=TOOLS, temperature=0,
                                                  max_tokens=40, stream=True,
                                                  extra_body={"continue_final_message": True})
    content, _, calls, finish = assemble(stream)
    assert finish == "tool_calls"
    assert content == ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


def test_parallel_calls_get_distinct_indices_and_parallel_false_keeps_one(qwen):
    msgs = ask(HERMES_PARIS + HERMES_OPEN.replace("<tool_call>\n", "<tool_call>\n", 1),
               question="What is the weather in Paris and in Oslo?")
    c = client(qwen)
    r = c.chat.completions.create(model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40,
                                  extra_body={"continue_final_message": True})
    calls = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls"
    assert len(calls) == 2 and calls[0].id != calls[1].id
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    second = json.loads(calls[1].function.arguments)["city"]
    _, _, streamed, finish = assemble(c.chat.completions.create(
        model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40, stream=True,
        extra_body={"continue_final_message": True}))
    assert finish == "tool_calls" and sorted(streamed) == [0, 1]
    assert json.loads(streamed[1]["arguments"])["city"] == second
    one = c.chat.completions.create(model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40,
                                    parallel_tool_calls=False, extra_body={"continue_final_message": True})
    assert one.choices[0].finish_reason == "tool_calls"
    assert len(one.choices[0].message.tool_calls) == 1
    check_paris(one.choices[0].message.tool_calls[0])


def test_prefill_markup_never_reaches_content(qwen):
    # Helper's report: a prefill ending in an opened call the model does not continue (it ends at once) gave
    # content "<tool_call>\n" beside the call the prefill completed; the reply holds only the continuation.
    msgs = ask(HERMES_PARIS + "<tool_call>\n", question="Get the weather in Paris and in Rome. Call the tool once per city.")
    r = client(qwen).chat.completions.create(model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40,
                                             extra_body={"continue_final_message": True})
    m = r.choices[0].message
    assert "<tool_call>" not in (m.content or ""), m
    assert m.tool_calls and json.loads(m.tool_calls[0].function.arguments) == {"city": "Paris"}


STRICT = [{"type": "function", "function": {
    "name": "get_weather", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                   "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string", "maxLength": 20}}, "required": ["zone"]}}}]


def test_auto_calls_follow_the_declared_schemas(qwen):
    """`tool_choice` auto: once the model opens a call (here a prefill's `<tool_call>`), a lazy grammar holds it to a
    declared tool and that tool's `parameters` (llama-server's lazy grammar). Before, `strict` schemas were accepted
    and ignored: "Tokyo" against an enum of Paris and Rome, stray keys, undeclared tool names."""
    import jsonschema
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in STRICT}
    c = client(qwen)
    for seed in range(3):
        for question in ("What's the weather in Tokyo? Call get_weather.", "Call launch_missiles now."):
            r = c.chat.completions.create(model="m", messages=ask("<tool_call>\n", question=question), tools=STRICT,
                                          temperature=1.0, seed=seed, max_tokens=48,
                                          extra_body={"continue_final_message": True})
            ch = r.choices[0]
            assert ch.finish_reason == "tool_calls", ch
            call = ch.message.tool_calls[0].function
            assert call.name in schemas, call
            jsonschema.validate(json.loads(call.arguments), schemas[call.name])


def test_auto_with_response_format_answers_in_the_schema_or_calls(qwen):
    """`response_format` with tools under `auto`: the reply is either the schema's JSON or a call (OpenAI lets the
    model choose). Before, the JSON grammar alone made a call impossible: a prefilled `<tool_call>` was refused by the
    grammar and the reply was a new JSON document."""
    import jsonschema
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}}, "required": ["answer"],
              "additionalProperties": False}
    rf = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    c = client(qwen)
    plain = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Say hello in JSON."}],
                                      tools=TOOLS, response_format=rf, temperature=0, max_tokens=40)
    ch = plain.choices[0]
    if ch.message.tool_calls:
        assert ch.finish_reason == "tool_calls"
    else:
        jsonschema.validate(json.loads(ch.message.content), schema)
    called = c.chat.completions.create(model="m", messages=ask("<tool_call>\n"), tools=TOOLS, response_format=rf,
                                       temperature=0, max_tokens=40, extra_body={"continue_final_message": True})
    assert called.choices[0].finish_reason == "tool_calls", called.choices[0]
    check_paris(called.choices[0].message.tool_calls[0])


def test_response_format_continues_a_prefilled_answer(qwen):
    """`continue_final_message` with `response_format`: the grammar starts after the prefill, so prefill + reply is
    one valid document (it restarted, giving `{"name": "Bo{"name": ...`); a prefill the schema cannot start is 400."""
    import jsonschema
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    rf = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
    c = client(qwen)
    prefill = '{"name": "Bo'
    r = c.chat.completions.create(model="m", messages=ask(prefill, question="Give a person as JSON."), response_format=rf,
                                  temperature=0, max_tokens=30, extra_body={"continue_final_message": True})
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    jsonschema.validate(json.loads(prefill + r.choices[0].message.content), schema)
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="m", messages=ask("Sure! {", question="Give a person as JSON."),
                                  response_format=rf, max_tokens=8, extra_body={"continue_final_message": True})
    assert e.value.body["param"] == "messages"


def test_call_cut_by_max_tokens_is_length_without_markup(qwen):
    c = client(qwen)
    r = c.chat.completions.create(model="m", messages=ask(HERMES_OPEN), tools=TOOLS, temperature=0, max_tokens=1,
                                  extra_body={"continue_final_message": True})
    assert r.choices[0].finish_reason == "length"
    assert not r.choices[0].message.tool_calls
    assert not any(m in (r.choices[0].message.content or "") for m in MARKUP)
    # Streamed, the call was begun by the prefill and its arguments sent as they came: it stays as far as it went
    # (as OpenAI streams a call the token limit cuts), and no markup reaches the content.
    content, _, calls, finish = assemble(c.chat.completions.create(
        model="m", messages=ask(HERMES_OPEN), tools=TOOLS, temperature=0, max_tokens=1, stream=True,
        extra_body={"continue_final_message": True}))
    assert finish == "length" and not any(m in content for m in MARKUP)
    assert list(calls) == [0] and calls[0]["name"] == "get_weather"
    assert '{"city": "Paris"}'.startswith(calls[0]["arguments"]) and calls[0]["arguments"].startswith('{"city": "')


def test_tool_choice_none_does_not_offer_tools(qwen):
    c = client(qwen)
    plain = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], temperature=0,
                                      max_tokens=1)
    offered = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], tools=TOOLS,
                                        temperature=0, max_tokens=1)
    none = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], tools=TOOLS,
                                     tool_choice="none", temperature=0, max_tokens=1)
    assert offered.usage.prompt_tokens > plain.usage.prompt_tokens + 50  # the tool list is in the prompt
    assert none.usage.prompt_tokens == plain.usage.prompt_tokens
    # With tool_choice none the markup is not parsed: it is ordinary text.
    r = c.chat.completions.create(model="m", messages=ask(HERMES_OPEN), tools=TOOLS, tool_choice="none",
                                  temperature=0, max_tokens=12, extra_body={"continue_final_message": True})
    assert not r.choices[0].message.tool_calls and r.choices[0].finish_reason in ("stop", "length")


def test_tool_choice_auto_is_the_default(qwen):
    r = client(qwen).chat.completions.create(model="m", messages=ask(HERMES_OPEN), tools=TOOLS, tool_choice="auto",
                                             temperature=0, max_tokens=40,
                                             extra_body={"continue_final_message": True})
    check_paris(r.choices[0].message.tool_calls[0])


def test_tool_results_round_trip_through_the_template(qwen):
    c = client(qwen)
    turn = [{"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call("call_1", "Paris")]}]
    short = c.chat.completions.create(model="m", messages=turn + [
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}], tools=TOOLS, temperature=0, max_tokens=24)
    long_result = "18 C, sunny, light wind from the west, humidity 40 percent"
    long = c.chat.completions.create(model="m", messages=turn + [
        {"role": "tool", "tool_call_id": "call_1", "content": long_result}], tools=TOOLS, temperature=0,
        max_tokens=24)
    grown = len(json.loads(qwen.post("/tokenize", {"content": long_result})[2])["tokens"]) - \
        len(json.loads(qwen.post("/tokenize", {"content": "18 C"})[2])["tokens"])
    assert long.usage.prompt_tokens - short.usage.prompt_tokens == grown
    # The 0.5B model answers, or repeats the call (bare JSON, which is a call under "auto" as llama-server reads it).
    reply = short.choices[0]
    assert (reply.message.content or reply.message.tool_calls) and reply.finish_reason in ("stop", "length", "tool_calls")


def test_langchain_bind_tools(qwen):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "18 C"

    llm = ChatOpenAI(base_url=qwen.base + "/v1", api_key="none", model="m", temperature=0, max_tokens=40,
                     max_retries=0, extra_body={"continue_final_message": True})
    bound = llm.bind_tools([get_weather])
    out = bound.invoke([HumanMessage("What is the weather in Paris?"), AIMessage(HERMES_OPEN)])
    assert out.tool_calls and out.tool_calls[0]["name"] == "get_weather"
    assert out.tool_calls[0]["args"] == {"city": "Paris"}
    assert out.response_metadata["finish_reason"] == "tool_calls"
    # Second turn: the call and its result go back through the template.
    second = ChatOpenAI(base_url=qwen.base + "/v1", api_key="none", model="m", temperature=0, max_tokens=16,
                        max_retries=0).bind_tools([get_weather]).invoke(
        [HumanMessage("What is the weather in Paris?"), out,
         ToolMessage(get_weather.invoke(out.tool_calls[0]["args"]), tool_call_id=out.tool_calls[0]["id"])])
    assert isinstance(second.content, str) and second.response_metadata["finish_reason"] in ("stop", "length")


# --- DeepSeek R1 / V3.1 and Qwen3 templates (--chat-template) on the same weights ---

def test_deepseek_r1_null_content_history_renders(r1):
    # Issue 20: the second turn of a DeepSeek tool round, as every OpenAI client sends it.
    r = client(r1).chat.completions.create(model="m", messages=history() + [
        {"role": "user", "content": "Thanks"}], tools=TOOLS, temperature=0, max_tokens=4)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_deepseek_r1_history_without_a_content_key_renders(r1):
    # OpenAI makes `content` optional next to `tool_calls` (what `model_dump(exclude_none=True)` sends): the template
    # sees `none` as for null; it was an undefined key, and this template's `message['content'] is none` raised.
    h = history()
    for m in h:
        if m.get("tool_calls"):
            del m["content"]
    ask = lambda msgs: client(r1).chat.completions.create(
        model="m", messages=msgs + [{"role": "user", "content": "Thanks"}], tools=TOOLS, temperature=0, max_tokens=4)
    r = ask(h)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # The same prompt as with explicit nulls, and the same greedy reply.
    same = ask(history())
    assert r.usage.prompt_tokens == same.usage.prompt_tokens
    assert r.choices[0].message.content == same.choices[0].message.content


def test_deepseek_r1_call(r1):
    c = client(r1)
    kw = dict(model="m", messages=ask(R1_OPEN, history()), tools=TOOLS, temperature=0, max_tokens=60,
              stop=["<｜end▁of▁sentence｜>"], extra_body={"continue_final_message": True})
    r = c.chat.completions.create(**kw)
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.content is None
    check_paris(r.choices[0].message.tool_calls[0])
    content, _, calls, finish = assemble(c.chat.completions.create(**kw, stream=True))
    assert finish == "tool_calls" and content == "" and list(calls) == [0]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}


def test_deepseek_v31_call(v31):
    c = client(v31)
    kw = dict(model="m", messages=ask(V31_OPEN, history()), tools=TOOLS, temperature=0, max_tokens=60,
              stop=["<｜end▁of▁sentence｜>"], extra_body={"continue_final_message": True})
    r = c.chat.completions.create(**kw)
    assert r.choices[0].finish_reason == "tool_calls"
    check_paris(r.choices[0].message.tool_calls[0])
    content, _, calls, finish = assemble(c.chat.completions.create(**kw, stream=True))
    assert finish == "tool_calls" and list(calls) == [0] and not any(m in content for m in MARKUP)


def test_qwen3_call_and_its_null_content_history_is_refused_as_jinja2_refuses_it(qwen3):
    c = client(qwen3)
    r = c.chat.completions.create(model="m", messages=ask(HERMES_OPEN, history(null_content=False)), tools=TOOLS,
                                  temperature=0, max_tokens=40, extra_body={"continue_final_message": True})
    assert r.choices[0].finish_reason == "tool_calls"
    check_paris(r.choices[0].message.tool_calls[0])
    # This template tests `'</think>' in message.content`: jinja2 raises on None, so the server answers 400.
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="m", messages=history(), tools=TOOLS, max_tokens=4)
    assert e.value.body["param"] == "messages"


# --- bad input ---

def test_tools_on_a_template_that_cannot_render_them(server):
    status, _, body = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "tools": TOOLS, "max_tokens": 2})
    assert status == 400 and json.loads(body)["error"]["param"] == "tools"
    # tool_choice none: the tools are not offered, so nothing needs rendering.
    status, _, _ = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "tools": TOOLS, "tool_choice": "none", "max_tokens": 2})
    assert status == 200


@pytest.mark.parametrize("body,param", [
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function"),
    # A hosted tool is told its type is unsupported (it was told it lacked a function name).
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": "get_weather"}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"chat_template_kwargs": {"messages": []}}, "chat_template_kwargs"),
    ({"chat_template_kwargs": [1]}, "chat_template_kwargs"),
    ({"reasoning_format": "hidden"}, "reasoning_format"),
    ({"continue_final_message": True}, "continue_final_message"),
])
def test_bad_tool_fields_are_400_naming_the_field(server, body, param):
    status, _, raw = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **body})
    assert status == 400, raw
    err = json.loads(raw)["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}


@pytest.mark.parametrize("messages,param,words", [
    # A tool result with no assistant tool call before it.
    ([{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}],
     "messages[1].role", "must be a response to a preceding assistant message with 'tool_calls'"),
    # An id that answers no call of that message.
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
      {"role": "tool", "tool_call_id": "call_2", "content": "x"}],
     "messages[2].tool_call_id", "'call_2' does not answer a tool call of messages[1]"),
    # A call left unanswered before the next user message.
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
      {"role": "user", "content": "well?"}],
     "messages[1]", "has no response for: call_1"),
    # A tool result after the user spoke again (not part of the tool turn).
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
      {"role": "tool", "tool_call_id": "call_1", "content": "x"}, {"role": "user", "content": "and?"},
      {"role": "tool", "tool_call_id": "call_1", "content": "y"}],
     "messages[4].role", "must be a response to a preceding"),
])
def test_tool_histories_openai_refuses_are_refused(server, messages, param, words):
    """OpenAI answers these tool-call histories with a 400 (a chat template would render a conversation that never
    happened); so does this server, naming the message."""
    c = OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(BadRequestError) as e:
        c.chat.completions.create(model="smollm2", messages=messages, max_tokens=2)
    assert e.value.body["param"] == param and words in e.value.body["message"], e.value.body


def test_well_formed_tool_histories_pass_the_check(qwen):
    """Two calls answered in any order, then the conversation goes on; calls without ids (some clients omit them)
    are not matched by id. (Qwen2.5-Coder: a template that renders tool calls.)"""
    server = qwen
    c = OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    second = dict(CALL, id="call_2")
    status, _, raw = server.post("/apply-template", {"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
        {"role": "tool", "tool_call_id": "call_2", "content": "4"}, {"role": "tool", "tool_call_id": "call_1", "content": "3"},
        {"role": "assistant", "content": "Done."}, {"role": "user", "content": "thanks"}]})
    assert status == 200, raw
    no_ids = {"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    r = c.chat.completions.create(model="m", max_tokens=2, messages=[
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [no_ids]},
        {"role": "tool", "tool_call_id": "whatever", "content": "3"}])
    assert r.choices[0].message is not None


WRITE = [{"type": "function", "function": {
    "name": "write_file", "description": "Write a text file.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                   "required": ["path", "content"]}}}]
POEM = [{"role": "user", "content": "Save the text 'The sea is calm tonight, the tide is full' to the file sea.txt."}]


def test_streamed_call_arguments_arrive_in_pieces_as_they_are_generated(qwen):
    """helper-66: the stream was silent until a call was complete, then sent it whole (an agent writing a file waited
    minutes and timed out). Now the call is begun when its name is generated and its arguments follow in pieces, which
    concatenate to the non-streamed arguments."""
    c = client(qwen)
    body = dict(model="m", messages=POEM, tools=WRITE, tool_choice="required", temperature=0, max_tokens=80)
    whole = c.chat.completions.create(**body).choices[0].message.tool_calls[0].function
    pieces = []
    for chunk in c.chat.completions.create(**body, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if tc.function.arguments:
                pieces.append(tc.function.arguments)
    assert len(pieces) >= 5, pieces
    assert "".join(pieces) == whole.arguments
    json.loads(whole.arguments)


def test_streamed_call_arguments_arrive_in_pieces_on_messages_and_responses(qwen):
    import anthropic
    a = anthropic.Anthropic(base_url=qwen.base, api_key="none", max_retries=0, timeout=300)
    tool = {"name": "write_file", "input_schema": WRITE[0]["function"]["parameters"]}
    body = dict(model="m", max_tokens=80, temperature=0, tools=[tool], tool_choice={"type": "any"}, messages=POEM)
    whole = a.messages.create(**body).content[0].input
    deltas = []
    with a.messages.stream(**body) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas.append(event.delta.partial_json)
    assert len(deltas) >= 5 and json.loads("".join(deltas)) == whole, deltas
    c = client(qwen)
    rtool = {"type": "function", "name": "write_file", "parameters": WRITE[0]["function"]["parameters"]}
    rbody = dict(model="m", input=POEM[0]["content"], tools=[rtool], tool_choice="required", temperature=0,
                 max_output_tokens=80)
    rwhole = next(o for o in c.responses.create(**rbody).output if o.type == "function_call")
    pieces, done = [], None
    for event in c.responses.create(**rbody, stream=True):
        if event.type == "response.function_call_arguments.delta":
            pieces.append(event.delta)
        if event.type == "response.function_call_arguments.done":
            done = event.arguments
    assert len(pieces) >= 5 and "".join(pieces) == done == rwhole.arguments, pieces


def test_a_bare_call_under_auto_streams_in_pieces_too(qwen):
    """helper-68: Qwen2.5-Coder's usual call under `auto` is bare JSON in a ```json fence (no <tool_call>); it was held
    back until whole. Its arguments now stream like a tagged call's, concatenating to the non-streamed text."""
    c = client(qwen)
    body = dict(model="m", messages=POEM, tools=WRITE, temperature=0, max_tokens=100, logprobs=True)
    r = c.chat.completions.create(**body)
    whole = r.choices[0].message.tool_calls[0].function
    assert r.choices[0].logprobs.content[0].token == "```"   # the bare, fenced form
    pieces = [tc.function.arguments for chunk in c.chat.completions.create(**body, stream=True) if chunk.choices
              for tc in chunk.choices[0].delta.tool_calls or [] if tc.function.arguments]
    assert len(pieces) >= 5 and "".join(pieces) == whole.arguments, pieces


def test_a_streamed_responses_call_cut_by_the_cap_is_incomplete(qwen):
    """helper-68: a call the token cap cut while its arguments streamed was `completed` with arguments that are not
    JSON; it is `incomplete`, in its output_item.done and in the final response."""
    c = client(qwen)
    tool = {"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}
    done, final, announced = None, None, set()
    for event in c.responses.create(model="m", input="weather in Paris?", tools=[tool], tool_choice="required",
                                    max_output_tokens=19, stream=True):
        if event.type == "response.output_item.added":
            announced.add(event.item.id)
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            done = event.item
        if event.type == "response.completed":
            final = event.response
    assert done is not None and done.status == "incomplete", done
    # The final object leaves the cut call out, as the whole response does (the SDK parses strict arguments from it),
    # and holds no item the stream did not announce (helper-69: an empty message stood in for it).
    assert final.status == "incomplete" and not [o for o in final.output if o.type == "function_call"]
    assert {o.id for o in final.output} <= announced, final.output
