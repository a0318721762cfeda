"""`POST /v1/responses` (stateless) through the official openai package, unmodified: the same greedy text as the
chat route for the same conversation, typed stream events in OpenAI's order, and 400s naming what cannot be
honoured."""
import json
import time

import openai
import pytest

PARIS = "Describe Paris, the capital of France, in detail: its history, its landmarks and its food."


def client(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)


def chat_text(server, messages, max_tokens):
    r = client(server).chat.completions.create(model="smollm2", temperature=0, max_tokens=max_tokens, messages=messages)
    return r.choices[0].message.content, r


def test_non_streamed_matches_chat(server):
    want, chat = chat_text(server, [{"role": "user", "content": PARIS}], 12)
    r = client(server).responses.create(model="smollm2", input=PARIS, max_output_tokens=12, temperature=0)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.output_text == want
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output[0].content[0].type == "output_text"
    assert r.usage.input_tokens == chat.usage.prompt_tokens
    assert r.usage.output_tokens == chat.usage.completion_tokens == 12
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    # The body validates as the SDK's own type, which requires input_tokens_details.cache_write_tokens (the client
    # does not validate: it read None there).
    from openai.types.responses import Response
    raw = client(server).responses.with_raw_response.create(model="smollm2", input=PARIS, max_output_tokens=12,
                                                            temperature=0)
    Response.model_validate_json(raw.text)
    assert r.usage.input_tokens_details.cache_write_tokens == 0
    # The token cap ended it: incomplete, as OpenAI and vLLM report it.
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.max_output_tokens == 12 and r.temperature == 0 and r.store is False
    assert r.tool_choice == "auto" and r.tools == []   # OpenAI's defaults (it read "none" without tools)
    # Left out, temperature and top_p echo what was sampled with (OpenAI echoes its defaults; these were null).
    assert r.top_p == 1.0


def test_omitted_sampling_fields_echo_the_values_used(server):
    c = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    r = c.responses.create(model="smollm2", input="Hi", max_output_tokens=16)
    assert r.temperature == 1.0 and r.top_p == 1.0


def test_completed_at_only_when_completed(server):
    # OpenAI sets `completed_at` (Unix seconds) on a completed response only.
    c = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    done = c.responses.create(model="m", input="Say hi.", temperature=0, max_output_tokens=200)
    assert done.status == "completed" and done.created_at <= done.completed_at <= time.time() + 1, done
    capped = c.responses.create(model="m", input="Say hi.", temperature=0, max_output_tokens=1)
    assert capped.status == "incomplete" and capped.completed_at is None


def test_errors_name_input_not_messages(server):
    # Helper's second report: a context overflow named `messages`, which this route does not have.
    st, _, body = server.post("/v1/responses", {"model": "m", "input": "hi " * 5000, "max_output_tokens": 5})
    err = json.loads(body)["error"]
    assert st == 400 and err["code"] == "context_length_exceeded" and err["param"] == "input", err


def test_instructions_and_items_are_the_chat_conversation(server):
    msgs = [{"role": "system", "content": "You are a travel guide."},
            {"role": "user", "content": "Name a city."},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": PARIS}]
    want, _ = chat_text(server, msgs, 10)
    r = client(server).responses.create(
        model="smollm2", instructions="You are a travel guide.", temperature=0, max_output_tokens=10,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Name a city."}]},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]},
               {"role": "user", "content": PARIS}])
    assert r.output_text == want
    assert r.instructions == "You are a travel guide."


def test_streamed_events_in_order(server):
    whole = client(server).responses.create(model="smollm2", input=PARIS, max_output_tokens=16, temperature=0)
    events = list(client(server).responses.create(model="smollm2", input=PARIS, max_output_tokens=16, temperature=0,
                                                  stream=True))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == whole.output_text == events[-4].text
    final = events[-1].response
    assert final.output_text == whole.output_text and final.usage.output_tokens == whole.usage.output_tokens
    item_id = events[2].item.id
    assert all(e.item_id == item_id for e in events if e.type == "response.output_text.delta")


def test_stream_helper_final_response(server):
    with client(server).responses.stream(model="smollm2", input="Say hello.", max_output_tokens=8, temperature=0) as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert final.output_text == text and final.usage.output_tokens >= 1


def test_function_call_history_converts(server):
    r = client(server).responses.create(model="smollm2", temperature=0, max_output_tokens=4, input=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "Let me check."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"}])
    assert r.usage.output_tokens >= 1


@pytest.mark.parametrize("extra,param", [
    ({"previous_response_id": "resp_abc"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"background": True}, "background"),
    ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}, "tools"),
    ({"reasoning": {"effort": "low"}}, "reasoning"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
    ({"text": {"format": {"type": "json_schema"}}}, "text.format.name"),
    ({"truncation": "auto"}, "truncation"),
    ({"temperature": 3}, "temperature"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    # Not Responses API fields: refused by name, never dropped (a seed or stop that silently did nothing).
    ({"extra_body": {"seed": 5}}, "seed"),
    ({"extra_body": {"stop": ["5"]}}, "stop"),
    ({"extra_body": {"top_k": 1}}, "top_k"),
    ({"extra_body": {"bogus": 1}}, "bogus"),
])
def test_refused_fields_name_their_param(server, extra, param):
    with pytest.raises(openai.BadRequestError) as e:
        client(server).responses.create(model="smollm2", input="hi", **extra)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param, e.value.body
    if param == "previous_response_id":
        assert "stateless" in e.value.body["message"]


@pytest.mark.parametrize("body,param", [
    ({"model": "smollm2"}, "input"),
    ({"input": 5}, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}, "input[0].content[0].type"),
    # helper-72: a second output for one call was accepted (chat and Anthropic refuse it).
    ({"input": [{"role": "user", "content": "weather?"},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "4"},
                {"type": "function_call_output", "call_id": "c1", "output": "4"}]}, "input[3].call_id"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "wizard", "content": "hi"}]}, "input[0].role"),
])
def test_bad_input_is_400(server, body, param):
    status, _, raw = server.post("/v1/responses", body)
    assert status == 400, raw
    assert json.loads(raw)["error"]["param"] == param


def test_text_format_json_schema_through_responses_parse(server):
    """`text.format` `json_schema` / `json_object` constrain the output as chat's `response_format` does (it was a 400),
    so the SDK's `responses.parse(text_format=Model)` works unmodified; the format is echoed in `text.format`."""
    import jsonschema
    import pydantic

    class City(pydantic.BaseModel):
        name: str
        country: str

    r = client(server).responses.parse(model="smollm2", input="Name a city and its country as JSON.", temperature=0,
                                       max_output_tokens=60, text_format=City)
    assert r.status == "completed", r
    assert isinstance(r.output_parsed, City)
    assert r.text.format.type == "json_schema" and r.text.format.name == "City"
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}},
              "required": ["n"], "additionalProperties": False}
    raw = client(server).responses.create(model="smollm2", input="Pick a digit, as JSON.", temperature=0,
                                          max_output_tokens=30,
                                          text={"format": {"type": "json_schema", "name": "d", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(raw.output_text), schema)
    obj = client(server).responses.create(model="smollm2", input='Reply with exactly this JSON: {"ok": true}',
                                          temperature=0, max_output_tokens=40, text={"format": {"type": "json_object"}})
    assert obj.status == "completed", obj
    assert isinstance(json.loads(obj.output_text), dict)
    for fmt, param in [({"type": "json_schema", "schema": schema}, "text.format.name"),
                       ({"type": "json_schema", "name": "d"}, "text.format.schema"),
                       ({"type": "json_schema", "name": "d", "schema": schema, "bogus": 1}, "text.format.bogus"),
                       ({"type": "xml"}, "text.format.type"),
                       # A keyword the grammar cannot enforce is named where this route has it (not chat's
                       # response_format.json_schema.schema…).
                       ({"type": "json_schema", "name": "d", "schema": {"type": "object", "properties": {
                           "u": {"type": "string", "format": "uri"}}}}, "text.format.schema.properties.u.format")]:
        with pytest.raises(openai.BadRequestError) as e:
            client(server).responses.create(model="smollm2", input="x", max_output_tokens=4, text={"format": fmt})
        assert e.value.body["param"] == param, fmt
        assert "response_format" not in e.value.body["message"], e.value.body


def test_function_call_output_as_parts_and_cache_fields(server):
    """`function_call_output.output` may be input_text parts (OpenAI's types allow it); `prompt_cache_key` and
    `safety_identifier` are Responses fields too (chat accepted them, Responses refused them)."""
    def ask(output, **extra):
        return client(server).responses.create(model="smollm2", temperature=0, max_output_tokens=4, input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": "Let me check."},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": output}], **extra)
    parts = ask([{"type": "input_text", "text": "Sunny,"}, {"type": "input_text", "text": "21 C"}],
                extra_body={"prompt_cache_key": "k1", "safety_identifier": "user-7"})
    plain = ask("Sunny,\n21 C")   # parts are joined by a newline (as vLLM and llama-server join text parts)
    assert parts.usage.input_tokens == plain.usage.input_tokens
    assert parts.output_text == plain.output_text
    # Echoed as sent, as OpenAI echoes them (helper-71: the identifier came back as `user`, the key not at all).
    assert parts.prompt_cache_key == "k1" and parts.safety_identifier == "user-7" and parts.user is None
    assert parts.service_tier == "default" and parts.text.verbosity == "medium"
    assert plain.prompt_cache_key is None and plain.safety_identifier is None
