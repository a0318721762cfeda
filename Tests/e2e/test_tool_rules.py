"""The tool rules of OpenAI's and Anthropic's APIs on every route (helper-66): a function's parameters are an object
schema (a string schema forced a call the parser could not read back, whose markup then reached the content); tool
names are unique; a tool call in the history is answered before the conversation goes on or ends (a model shown an
unanswered call makes up its result; OpenAI and Anthropic answer 400); and `tool_choice` and history `tool_calls`
carry no members the server would drop."""
import json

import pytest

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}


def refused(server, path, body):
    status, _, raw = server.post(path, dict({"model": "m", "max_tokens": 4}, **body))
    assert status == 400, raw
    err = json.loads(raw)["error"]
    return err.get("param"), err["message"]


@pytest.mark.parametrize("schema", [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}])
def test_parameters_must_be_an_object_schema(qwen, schema):
    tool = {"type": "function", "function": {"name": "t", "parameters": schema}}
    param, _ = refused(qwen, "/v1/chat/completions", {"messages": ASK, "tools": [tool], "tool_choice": "required"})
    assert param == "tools[0].function.parameters.type"
    param, _ = refused(qwen, "/v1/responses", {"input": "x", "tools": [{"type": "function", "name": "t", "parameters": schema}]})
    assert param == "tools[0].parameters.type"


def test_tool_names_are_unique(qwen):
    param, message = refused(qwen, "/v1/chat/completions", {"messages": ASK, "tools": [WEATHER, WEATHER]})
    assert param == "tools[1].function.name" and "unique" in message
    t = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    param, _ = refused(qwen, "/v1/responses", {"input": "x", "tools": [t, t]})
    assert param == "tools[1].name"


def test_a_history_ending_in_an_unanswered_call_is_refused_on_chat(qwen):
    param, message = refused(qwen, "/v1/chat/completions", {"messages": ASK + [CALL], "tools": [WEATHER]})
    assert param == "messages[1]" and "call_1" in message
    # Answered, it is served.
    status, _, raw = qwen.post("/v1/chat/completions", {"model": "m", "max_tokens": 4, "tools": [WEATHER], "messages": ASK + [
        CALL, {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]})
    assert status == 200, raw


@pytest.mark.parametrize("after", [[], [{"role": "user", "content": "thanks"}]])
def test_an_unanswered_function_call_item_is_refused_on_responses(qwen, after):
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    param, message = refused(qwen, "/v1/responses", {"input": [{"role": "user", "content": "Weather?"}, call] + after,
                                                     "tools": [tool]})
    assert param == "input" and "No tool output found for function call call_1" in message


@pytest.mark.parametrize("after", [[], [{"role": "user", "content": "thanks"}]])
def test_an_unanswered_tool_use_is_refused_on_messages(qwen, after):
    use = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                             "input": {"city": "Paris"}}]}
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
    status, _, raw = qwen.post("/v1/messages", {"model": "m", "max_tokens": 4, "tools": [tool],
                                                "messages": [{"role": "user", "content": "Weather?"}, use] + after})
    assert status == 400, raw
    err = json.loads(raw)["error"]
    assert err["type"] == "invalid_request_error" and "messages.1: tool_use ids were found without tool_result" in err["message"]


@pytest.mark.parametrize("choice,param", [
    ({"type": "function", "function": {"name": "get_weather", "foo": 1}}, "tool_choice.function.foo"),
    ({"type": "function", "function": {"name": "get_weather"}, "foo": 1}, "tool_choice.foo"),
])
def test_tool_choice_members_are_not_dropped_on_chat(qwen, choice, param):
    got, _ = refused(qwen, "/v1/chat/completions", {"messages": ASK, "tools": [WEATHER], "tool_choice": choice})
    assert got == param


def test_tool_choice_members_are_not_dropped_on_responses_and_messages(qwen):
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    got, _ = refused(qwen, "/v1/responses", {"input": "x", "tools": [tool],
                                             "tool_choice": {"type": "function", "name": "get_weather", "foo": 1}})
    assert got == "tool_choice.foo"
    status, _, raw = qwen.post("/v1/messages", {"model": "m", "max_tokens": 4, "messages": ASK,
                                                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                                                "tool_choice": {"type": "none", "disable_parallel_tool_use": True}})
    assert status == 400 and "disable_parallel_tool_use" in json.loads(raw)["error"]["message"], raw


def test_history_tool_call_members_are_not_dropped(qwen):
    answered = [{"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]
    for extra, param in (({"foo": 1}, "messages[1].tool_calls[0].foo"),):
        call = json.loads(json.dumps(CALL))
        call["tool_calls"][0].update(extra)
        got, _ = refused(qwen, "/v1/chat/completions", {"messages": ASK + [call] + answered, "tools": [WEATHER]})
        assert got == param
    call = json.loads(json.dumps(CALL))
    call["tool_calls"][0]["function"]["foo"] = 1
    got, _ = refused(qwen, "/v1/chat/completions", {"messages": ASK + [call] + answered, "tools": [WEATHER]})
    assert got == "messages[1].tool_calls[0].function.foo"
    # The `index` of a call accumulated from a stream is accepted.
    call = json.loads(json.dumps(CALL))
    call["tool_calls"][0]["index"] = 0
    status, _, raw = qwen.post("/v1/chat/completions", {"model": "m", "max_tokens": 2, "tools": [WEATHER],
                                                        "messages": ASK + [call] + answered})
    assert status == 200, raw


def test_an_output_after_a_user_message_does_not_answer_a_call(qwen):
    """The call is unanswered when the user speaks first; the 400 names it (helper-68: it named none)."""
    call = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    param, message = refused(qwen, "/v1/responses", {"tools": [tool], "input": [
        {"role": "user", "content": "Weather?"}, call, {"role": "user", "content": "hurry"},
        {"type": "function_call_output", "call_id": "c1", "output": "21 C"}]})
    assert param == "input" and "No tool output found for function call c1:" in message, message
