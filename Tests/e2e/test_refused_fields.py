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
    ({"min_tokens": 3, "max_tokens": 10}, "min_tokens"), ({"ignore_eos": True}, "ignore_eos"),
])
def test_constrained_answers_refuse_what_would_overrun_them(server, extra, param):
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


def test_fields_at_the_value_that_asks_for_this_servers_behaviour_are_accepted(server):
    """helper-63: UIs send every llama-server / vLLM sampling field at its default (`typical_p: 1`, `mirostat: 0`,
    `skip_special_tokens: true`…), which asks for what this server does anyway: accepted, with the same answer as
    without them; any other value is still a 400 naming the field (test_chat_refuses_fields_it_would_ignore)."""
    neutral = {"typical_p": 1, "tfs_z": 1.0, "mirostat": 0, "repeat_penalty": 1, "dry_multiplier": 0,
               "xtc_probability": 0.0, "n_probs": 0, "include_stop_str_in_output": False, "skip_special_tokens": True,
               "spaces_between_special_tokens": True, "use_beam_search": False, "add_generation_prompt": True,
               "verbosity": "medium", "echo": False, "best_of": 1}
    st, plain = post(server, "/v1/chat/completions", CHAT)
    assert st == 200, plain
    st, body = post(server, "/v1/chat/completions", dict(CHAT, **neutral))
    assert st == 200, body
    assert body["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    st, body = post(server, "/v1/completions", {"prompt": "x", "max_tokens": 2, "typical_p": 1, "skip_special_tokens": True})
    assert st == 200, body
    for field, value in [("typical_p", 0.9), ("verbosity", "low"), ("mirostat", 1), ("best_of", 2)]:
        st, body = post(server, "/v1/chat/completions", dict(CHAT, **dict(neutral, **{field: value})))
        assert st == 400 and body["error"]["param"] == field, (field, body)
    st, body = post(server, "/v1/responses", {"input": "hi", "max_output_tokens": 4, "text": {"verbosity": "medium"}})
    assert st == 200, body
    st, body = post(server, "/v1/responses", {"input": "hi", "max_output_tokens": 4, "text": {"verbosity": "high"}})
    assert st == 400 and body["error"]["param"] == "text.verbosity", body


def test_vllms_continue_final_message_request_is_served(server):
    """vLLM requires `add_generation_prompt: false` beside `continue_final_message: true` (both true is its 400):
    that request was refused here ("'add_generation_prompt' is not supported"). Now it continues the final message;
    `add_generation_prompt: false` alone (no generation prompt at all) is still refused."""
    msgs = [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hello my"}]
    st, body = post(server, "/v1/chat/completions", dict(CHAT, messages=msgs, continue_final_message=True,
                                                         add_generation_prompt=False))
    assert st == 200, body
    st, same = post(server, "/v1/chat/completions", dict(CHAT, messages=msgs, continue_final_message=True))
    assert same["choices"][0]["message"]["content"] == body["choices"][0]["message"]["content"]
    st, body = post(server, "/v1/chat/completions", dict(CHAT, messages=msgs, continue_final_message=True,
                                                         add_generation_prompt=True))
    assert st == 400 and body["error"]["param"] == "continue_final_message", body
    st, body = post(server, "/v1/chat/completions", dict(CHAT, add_generation_prompt=False))
    assert st == 400 and body["error"]["param"] == "add_generation_prompt", body


@pytest.mark.parametrize("choice", [{"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
                                    {"type": "custom", "custom": {"name": "f"}}])
def test_tool_choice_types_other_than_function_are_named(server, choice):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    st, body = post(server, "/v1/chat/completions", dict(CHAT, tools=tools, tool_choice=choice))
    assert st == 400 and body["error"]["param"] == "tool_choice.type", body
    assert choice["type"] in body["error"]["message"], body


def test_sampler_settings_are_accepted_while_their_sampler_is_off(server):
    """helper-65: llama.cpp-style UIs send a sampler's settings beside its switch at the default (`mirostat: 0` with
    `mirostat_tau: 5`, `dry_multiplier: 0` with `dry_base`…): accepted while the sampler is off, refused once it is on
    (the switch is refused first) or when they would change a sampler this server runs (`repeat_last_n` with
    `repetition_penalty` ≠ 1)."""
    # Neutral penalties (0, 0, 1) leave the window inert.
    st, body = post(server, "/v1/chat/completions", dict(CHAT, frequency_penalty=0, presence_penalty=0.0, penalty_last_n=0))
    assert st == 200, body
    ui = {"mirostat": 0, "mirostat_tau": 5, "mirostat_eta": 0.1, "xtc_probability": 0, "xtc_threshold": 0.1,
          "dry_multiplier": 0, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": -1,
          "dry_sequence_breakers": ["\n"], "repeat_penalty": 1, "repeat_last_n": 64, "penalty_last_n": 64,
          "dynatemp_range": 0, "dynatemp_exponent": 1, "typ_p": 1}
    st, body = post(server, "/v1/chat/completions", dict(CHAT, **ui))
    assert st == 200, body
    st, body = post(server, "/v1/completions", dict({"prompt": "x", "max_tokens": 2}, **ui))
    assert st == 200, body
    for change, param in [({"mirostat": 2}, "mirostat"), ({"dry_multiplier": 0.8}, "dry_multiplier"),
                          ({"repetition_penalty": 1.1}, "repeat_last_n"), ({"dynatemp_range": 0.5}, "dynatemp_range"),
                          # helper-73: llama.cpp's window covers these too; beside them it was accepted and ignored.
                          ({"frequency_penalty": 1.0}, "repeat_last_n"), ({"presence_penalty": -0.5}, "repeat_last_n")]:
        st, body = post(server, "/v1/chat/completions", dict(CHAT, **dict(ui, **change)))
        assert st == 400 and body["error"]["param"] == param, (change, body)


def test_logit_bias_banning_every_token_is_400(server):
    """helper-73: with every token at -100 (banned), sampling drew banned tokens anyway. Nothing is left to sample:
    a 400 naming logit_bias. One token left open is answered (it is the only one that can come)."""
    st, body = post(server, "/tokenize", {"content": "Hello"})
    hello = body["tokens"][0]
    n = 49152   # SmolLM2's vocabulary
    ban = {str(i): -100 for i in range(n)}
    st, body = post(server, "/v1/chat/completions", dict(CHAT, logit_bias=ban, temperature=1, seed=1, max_tokens=3))
    assert st == 400 and body["error"]["param"] == "logit_bias", body
    ban[str(hello)] = 0
    st, body = post(server, "/v1/chat/completions", dict(CHAT, logit_bias=ban, temperature=1, seed=1, max_tokens=3))
    assert st == 200, body
    assert body["choices"][0]["message"]["content"] == "Hello" * 3, body
