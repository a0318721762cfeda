"""Fields other servers give a meaning this one does not implement are refused with a 400 naming them, never accepted
and ignored (found by a new-user pass); and combinations that would silently break a constrained answer are refused."""
import json

import pytest

CHAT = {"max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}
PERSON = {"type": "json_schema", "json_schema": {"name": "p", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}


def post(server, path, body):
    st, _, raw = server.post(path, body)
    return st, json.loads(raw)


@pytest.mark.parametrize("field,value", [
    ("guided_json", {"type": "object"}), ("json_schema", {"type": "object"}), ("grammar", "root ::= \"a\""),
    ("typical_p", 0.5), ("repeat_penalty", 1.5), ("mirostat", 2), ("n_predict", 5), ("include_stop_str_in_output", True),
    ("skip_special_tokens", False), ("use_beam_search", True), ("length_penalty", 2.0), ("truncate_prompt_tokens", 8),
    ("add_generation_prompt", False), ("functions", [{"name": "f"}]), ("function_call", "auto"),
    ("modalities", ["audio"]), ("audio", {"voice": "x"}), ("prediction", {"type": "content", "content": "x"}),
    ("echo", True), ("best_of", 2), ("store", True),
])
def test_chat_refuses_fields_it_would_ignore(server, field, value):
    st, body = post(server, "/v1/chat/completions", dict(CHAT, **{field: value}))
    assert st == 400, body
    assert body["error"]["param"] == field


def test_null_and_neutral_values_stay_accepted(server):
    st, body = post(server, "/v1/chat/completions", dict(CHAT, guided_json=None, store=False, functions=None))
    assert st == 200, body


@pytest.mark.parametrize("field,value", [("top_logprobs", 3), ("response_format", {"type": "json_object"}),
                                         ("typical_p", 0.5)])
def test_completions_refuse_fields_they_would_ignore(server, field, value):
    st, body = post(server, "/v1/completions", {"prompt": "x", "max_tokens": 2, field: value})
    assert st == 400, body
    assert body["error"]["param"] == field


@pytest.mark.parametrize("extra,param", [
    ({"stop": [","]}, "stop"), ({"stop_token_ids": [28]}, "stop_token_ids"),
    ({"min_tokens": 3, "max_tokens": 10}, "min_tokens"), ({"ignore_eos": True}, "ignore_eos"),
])
def test_constrained_answers_refuse_what_would_cut_or_overrun_them(server, extra, param):
    st, body = post(server, "/v1/chat/completions", dict(CHAT, response_format=PERSON, **extra))
    assert st == 400, body
    assert body["error"]["param"] == param


def test_json_schema_without_schema_is_400(server):
    # A misspelt key is named itself (an unknown field of json_schema).
    for js, param in (({"name": "x"}, "response_format.json_schema.schema"),
                      ({"name": "x", "schemas": {"type": "integer"}}, "response_format.json_schema.schemas")):
        st, body = post(server, "/v1/chat/completions",
                        dict(CHAT, response_format={"type": "json_schema", "json_schema": js}))
        assert st == 400, body
        assert body["error"]["param"] == param


def test_empty_api_key_is_refused_at_start(tmp_path):
    import subprocess
    from conftest import BIN, MODEL
    r = subprocess.run([BIN, "serve", "--model", MODEL, "--port", "0", "--api-key", ""], capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"api-key" in r.stderr and b"empty" in r.stderr
