"""What a llama-server or vLLM user types (helper-67): their options this server lacks are refused by name with
what to use instead, before argument-parser can misread them (`-hf` was `-h -f`: help and exit 0; the value of an
unknown option beside `-m` became "give the model file once"); `--api-key k1,k2` takes either key; `--chat-template`
takes `chatml` and an inline template; `/v1/models` carries vLLM's `root`, `parent` and `max_model_len`; llama-server's
and vLLM's routes this server lacks answer 501 naming what to use."""
import json
import os
import subprocess

import pytest

from conftest import BIN, MODEL, Server


def serve_refusal(*argv, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    env.update(env_extra or {})
    p = subprocess.run([BIN, "serve", *argv], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("argv,named,hint", [
    (["-hf", "ggml-org/gemma-3-1b-it-GGUF"], "-hf", "local GGUF file"),
    (["-m", MODEL, "-ngl", "99"], "-ngl", "CPU only"),
    (["-m", MODEL, "-np", "4"], "-np", "--max-num-seqs"),
    (["-m", MODEL, "-ctk", "q8_0"], "-ctk", "--kv-cache-type"),
    (["-m", MODEL, "--cache-type-k=q8_0"], "--cache-type-k", "--kv-cache-type"),
    (["-m", MODEL, "--gpu-memory-utilization", "0.9"], "--gpu-memory-utilization", "CPU only"),
    (["-m", MODEL, "--served-model-name", "x"], "--served-model-name", "--alias"),
    (["-m", MODEL, "--max-model-len", "2048"], "--max-model-len", "--ctx-size"),
    (["-m", MODEL, "-fa", "on"], "-fa", "leave it out"),
    (["-m", MODEL, "-xyz"], "-xyz", "single letters"),
])
def test_foreign_options_are_refused_by_name(argv, named, hint):
    code, out = serve_refusal(*argv)
    assert code == 64, out
    assert f"Unknown option '{named}'" in out and hint in out, out


def test_an_unknown_options_value_is_not_taken_for_a_second_model_file():
    code, out = serve_refusal("-m", MODEL, "--some-new-option", "9")
    assert code == 64, out
    assert "'9' is not a model file" in out and "'--some-new-option'" in out, out


def test_a_foreign_option_under_json_logs_is_one_json_line():
    code, out = serve_refusal("-m", MODEL, "--log-format", "json", "-ngl", "99")
    assert code == 64
    line = json.loads(out.strip().splitlines()[-1])
    assert line["level"] == "critical" and "-ngl" in line["msg"], out


def test_api_key_takes_a_comma_separated_list():
    s = Server("--api-key", "k1,k2")
    try:
        for key, status in (("k1", 200), ("k2", 200), ("k1,k2", 401), ("k3", 401)):
            got, _, _ = s.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            assert got == status, key
    finally:
        s.stop()
    code, out = serve_refusal("-m", MODEL, "--port", "0", "--api-key", "k1,,k2")
    assert code != 0 and "api-key" in out, out


@pytest.mark.parametrize("template", ["chatml", "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"])
def test_chat_template_takes_chatml_and_an_inline_template(template):
    s = Server("--chat-template", template)
    try:
        status, _, raw = s.post("/apply-template", {"messages": [{"role": "user", "content": "Hi"}]})
        assert status == 200, raw
        prompt = json.loads(raw)["prompt"]
        expected = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" if template == "chatml" else "<user>Hi<assistant>"
        assert prompt == expected
    finally:
        s.stop()


def test_models_carry_vllms_fields(server):
    status, _, raw = server.get("/v1/models")
    card = json.loads(raw)["data"][0]
    assert status == 200 and card["root"] == card["id"] and card["parent"] is None
    assert card["max_model_len"] == 2048   # the test server's --ctx-size
    status, _, raw = server.get("/v1/models/" + card["id"])
    assert status == 200 and json.loads(raw)["max_model_len"] == 2048


@pytest.mark.parametrize("method,path,hint", [
    ("POST", "/v1/embeddings", "generative models only"),
    ("POST", "/completion", "/v1/completions"),
    ("POST", "/infill", "suffix"),
    ("GET", "/props", "/v1/models"),
    ("GET", "/slots", "/metrics"),
])
def test_routes_of_other_servers_are_named(server, method, path, hint):
    status, _, raw = server.post(path, {"input": "x"}) if method == "POST" else server.get(path)
    assert status == 501, raw
    err = json.loads(raw)["error"]
    assert path in err["message"] and hint in err["message"] and err["type"] == "not_supported_error", err
