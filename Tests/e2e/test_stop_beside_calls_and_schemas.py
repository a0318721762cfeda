"""Stop strings beside tool calls and JSON schemas, and the Anthropic routes' request id (helper-71), through the
official openai and anthropic packages, unmodified:
- a stop string that matches inside a call's streamed arguments ends the reply as the whole response ends it: chat
  `finish_reason` `stop` (not `tool_calls`), Anthropic `stop_reason` `stop_sequence` naming the string (not
  `tool_use`);
- `stop` / `stop_sequences` are accepted beside a forced call or a `response_format` schema, as OpenAI, Anthropic and
  vLLM accept them (they were a 400): a stop string the answer never writes changes nothing, one it writes cuts it;
- `/v1/messages` answers carry `request-id` (the field Anthropic sends and its SDK reads), errors included;
- "prompt is too long: P tokens > L maximum" states the prompt's real token count, as count_tokens counts it.
Qwen2.5-Coder-0.5B, greedy: asked for the weather in Paris with a weather tool, it calls get_weather(city="Paris")."""
import json

import anthropic
import openai
import pytest

WEATHER = {"name": "get_weather", "description": "Get the current weather in a city.",
           "input_schema": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}
CHAT_TOOLS = [{"type": "function", "function": {"name": WEATHER["name"], "description": WEATHER["description"],
                                                "parameters": WEATHER["input_schema"]}}]
ASK = [{"role": "user", "content": "What's the weather in Paris? Use the tool."}]


def claude(server):
    return anthropic.Anthropic(base_url=server.base, api_key="unused", max_retries=0, timeout=300)


def gpt(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=300)


def test_the_call_is_made_without_a_stop_string(qwen):
    # The premise of the tests below: greedy, the reply is the call get_weather(city="Paris").
    m = claude(qwen).messages.create(model="m", max_tokens=60, temperature=0, tools=[WEATHER], messages=ASK)
    assert m.stop_reason == "tool_use" and [b.input for b in m.content if b.type == "tool_use"] == [{"city": "Paris"}]


@pytest.mark.parametrize("stop", ["Paris", "}"])
def test_anthropic_stream_cut_inside_a_call_ends_as_the_whole_message(qwen, stop):
    kw = dict(model="m", max_tokens=60, temperature=0, tools=[WEATHER], messages=ASK, stop_sequences=[stop])
    whole = claude(qwen).messages.create(**kw)
    assert whole.stop_reason == "stop_sequence" and whole.stop_sequence == stop, whole
    assert not [b for b in whole.content if b.type == "tool_use"]
    with claude(qwen).messages.stream(**kw) as s:
        final = s.get_final_message()
    # The cut call's input was already streamed (the SDK completes it as it can); the stop reason says it is cut.
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == stop, final


def test_chat_stream_cut_inside_a_call_finishes_with_stop(qwen):
    kw = dict(model="m", messages=ASK, tools=CHAT_TOOLS, temperature=0, max_tokens=60, stop=["Paris"])
    whole = gpt(qwen).chat.completions.create(**kw)
    assert whole.choices[0].finish_reason == "stop" and not whole.choices[0].message.tool_calls
    reasons = [c.choices[0].finish_reason for c in gpt(qwen).chat.completions.create(stream=True, **kw)
               if c.choices and c.choices[0].finish_reason]
    assert reasons == ["stop"]


def test_stop_sequences_beside_a_forced_tool(qwen):
    kw = dict(model="m", max_tokens=60, temperature=0, tools=[WEATHER], messages=ASK,
              tool_choice={"type": "tool", "name": "get_weather"})
    # A stop sequence the call never writes (LangChain sends "\n\nHuman:" with every request): the call.
    m = claude(qwen).messages.create(stop_sequences=["\n\nHuman:"], **kw)
    assert m.stop_reason == "tool_use" and [b.input for b in m.content if b.type == "tool_use"] == [{"city": "Paris"}]
    # One it writes: cut there, no call, the stop sequence named, streamed or not.
    m = claude(qwen).messages.create(stop_sequences=["Paris"], **kw)
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == "Paris"
    assert not [b for b in m.content if b.type == "tool_use"]
    with claude(qwen).messages.stream(stop_sequences=["Paris"], **kw) as s:
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "Paris"
    # Chat's named function and `required` alike.
    for choice in ({"type": "function", "function": {"name": "get_weather"}}, "required"):
        r = gpt(qwen).chat.completions.create(model="m", messages=ASK, tools=CHAT_TOOLS, tool_choice=choice,
                                              temperature=0, max_tokens=60, stop=["\n\nHuman:"])
        assert r.choices[0].finish_reason in ("tool_calls", "stop") and r.choices[0].message.tool_calls, r
        assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}
        r = gpt(qwen).chat.completions.create(model="m", messages=ASK, tools=CHAT_TOOLS, tool_choice=choice,
                                              temperature=0, max_tokens=60, stop=["Paris"])
        assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls, r


def test_stop_beside_a_json_schema(qwen):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    kw = dict(model="m", messages=[{"role": "user", "content": "Name a city in France and its country as JSON."}],
              temperature=0, max_tokens=60,
              response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}})
    full = gpt(qwen).chat.completions.create(**kw)
    answer = json.loads(full.choices[0].message.content)
    assert set(answer) == {"city", "country"}
    # A stop string the answer never writes changes nothing; stop_token_ids likewise.
    same = gpt(qwen).chat.completions.create(stop=["@@"], extra_body={"stop_token_ids": [0]}, **kw)
    assert same.choices[0].message.content == full.choices[0].message.content
    # One it writes cuts it there, as OpenAI and vLLM cut it.
    cut = gpt(qwen).chat.completions.create(stop=[","], **kw)
    text = full.choices[0].message.content
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].message.content == text[:text.index(",")]


def test_anthropic_answers_carry_request_id(qwen):
    raw = claude(qwen).messages.with_raw_response.create(model="m", max_tokens=5, messages=ASK)
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    assert raw.parse()._request_id == raw.headers["request-id"]
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(qwen).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": ""}])
    assert e.value.request_id and e.value.request_id.startswith("req-")
    # The OpenAI routes keep their own field only.
    r = gpt(qwen).chat.completions.with_raw_response.create(model="m", max_tokens=2, messages=ASK)
    assert "request-id" not in r.headers and r.headers["x-request-id"]


def test_prompt_too_long_states_the_real_count(server):
    # ~600 KB of text on a 2,048-token context is refused before tokenizing; Anthropic's wording still states P.
    big = [{"role": "user", "content": "lorem ipsum dolor sit amet " * 22000}]
    counted = claude(server).messages.count_tokens(model="m", messages=big).input_tokens
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(server).messages.create(model="m", max_tokens=5, messages=big)
    assert f"prompt is too long: {counted} tokens > 2048 maximum" in str(e.value), (counted, str(e.value))


def test_tool_results_are_rendered_in_call_order(qwen):
    # Both APIs match results to calls by id, in any order; Qwen's template pairs them by position (helper-71: the
    # Rome result, sent first, was rendered as the Paris call's).
    calls = [{"id": "call_p", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
             {"id": "call_r", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]
    def prompt(results):
        body = {"model": "m", "tools": CHAT_TOOLS, "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": None, "tool_calls": calls}, *results]}
        status, _, raw = qwen.post("/apply-template", body)
        assert status == 200, raw
        return json.loads(raw)["prompt"]
    paris = {"role": "tool", "tool_call_id": "call_p", "content": "PARIS: 18C"}
    rome = {"role": "tool", "tool_call_id": "call_r", "content": "ROME: 25C"}
    in_order = prompt([paris, rome])
    assert in_order.index("PARIS: 18C") < in_order.index("ROME: 25C")
    assert prompt([rome, paris]) == in_order


TWO = [{"role": "user", "content": "What's the weather in Paris and in Rome? Use the tool for each city."}]


def chat_both_ways(server, **kw):
    """(finish, calls) of the whole reply and (finish, content) of the streamed one."""
    whole = gpt(server).chat.completions.create(model="m", tools=CHAT_TOOLS, temperature=0, max_tokens=80, **kw)
    finish, content = None, ""
    for c in gpt(server).chat.completions.create(model="m", tools=CHAT_TOOLS, temperature=0, max_tokens=80, stream=True, **kw):
        if c.choices:
            content += c.choices[0].delta.content or ""
            finish = c.choices[0].finish_reason or finish
    w = whole.choices[0]
    return (w.finish_reason, [json.loads(t.function.arguments) for t in w.message.tool_calls or []], w.message.content), (finish, content)


@pytest.mark.parametrize("messages,choice,stop", [
    (ASK, "required", "}\n<"),      # after the arguments, inside the call's closing markup
    (TWO, "auto", "Rome"),          # inside the second of two calls
    (TWO, "auto", "}\n{"),          # between two calls
    (TWO, "auto", "}\n```"),        # after the last call's arguments
])
def test_streamed_and_whole_replies_agree_on_calls_cut_by_a_stop(qwen, messages, choice, stop):
    """helper-72: the stream counted a call whole when its arguments parsed, the whole reply when its markup did, so
    a stop after the arguments or inside a later call made the stream say `tool_calls` / `tool_use` where the whole
    reply said `stop` / `stop_sequence` (or the other way round). Both count the calls of the whole reply now; on
    Anthropic's route `stop_sequence` names the stop whenever one was generated."""
    (wf, calls, wcontent), (sf, scontent) = chat_both_ways(qwen, messages=messages, tool_choice=choice, stop=[stop])
    assert sf == wf == ("tool_calls" if calls else "stop"), (wf, calls, sf)
    assert "<tool_call>" not in (wcontent or "") + scontent and '"name"' not in (wcontent or "") + scontent
    tools = [WEATHER]
    kw = dict(model="m", max_tokens=80, temperature=0, tools=tools, messages=messages, stop_sequences=[stop],
              tool_choice={"type": "any"} if choice == "required" else {"type": "auto"})
    whole = claude(qwen).messages.create(**kw)
    with claude(qwen).messages.stream(**kw) as s:
        final = s.get_final_message()
    uses = [b.input for b in whole.content if b.type == "tool_use"]
    assert final.stop_reason == whole.stop_reason == ("tool_use" if uses else "stop_sequence"), (whole, final)
    assert final.stop_sequence == whole.stop_sequence == stop


def test_a_stop_token_inside_a_forced_call_leaves_no_markup(qwen):
    # helper-72: `stop_token_ids` ("Paris") cut the forced call and its markup came back as content.
    paris = json.loads(qwen.post("/tokenize", {"content": "Paris"})[2])["tokens"]
    assert len(paris) == 1
    for choice in ("required", "auto"):
        (wf, calls, wcontent), (sf, scontent) = chat_both_ways(
            qwen, messages=ASK, tool_choice=choice, extra_body={"stop_token_ids": paris})
        assert wf == sf == "stop" and not calls and not wcontent and not scontent, (choice, wf, calls, wcontent, scontent)


def test_transport_errors_of_the_anthropic_routes_carry_request_id(qwen):
    # helper-72: a 413 (body over the cap) on /v1/messages had only X-Request-Id, so the SDK's request_id was None.
    import urllib.error, urllib.request
    big = b'{"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "' + b"x" * (9 << 20) + b'"}]}'
    req = urllib.request.Request(qwen.base + "/v1/messages", data=big, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 413
    assert e.value.headers["request-id"] and e.value.headers["request-id"] == e.value.headers["x-request-id"]


def test_a_huge_history_ending_in_a_prefill_is_too_long_not_a_prefill_error(server):
    # helper-72: the prefill check ran first and answered "does not render its text as sent".
    big = [{"role": "user", "content": "lorem ipsum " * 60000}, {"role": "assistant", "content": "Sure"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(server).messages.create(model="m", max_tokens=5, messages=big)
    assert "prompt is too long:" in str(e.value) and "tokens > 2048 maximum" in str(e.value), str(e.value)
    st, _, raw = server.post("/v1/chat/completions", {"messages": big, "max_tokens": 5, "continue_final_message": True,
                                                      "add_generation_prompt": False})
    assert st == 400 and json.loads(raw)["error"]["code"] == "context_length_exceeded", raw[:300]
