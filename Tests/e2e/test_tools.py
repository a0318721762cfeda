"""`sputnik tokenize/detokenize/template` and the llama-server-compatible /tokenize and /detokenize routes,
checked against the reference fixtures (llama.cpp ids, jinja2 renders)."""
import json
import os
import subprocess
import tempfile

from conftest import BIN, MODEL

FIX = os.path.join(os.path.dirname(__file__), "..", "Fixtures")
VOCAB = os.path.join(FIX, "tokenizer", "smollm2.vocab.gguf")


def run(*args: str) -> str:
    return subprocess.run([BIN, *args], check=True, capture_output=True, timeout=120).stdout.decode()


def records(n=12):
    with open(os.path.join(FIX, "tokenizer", "smollm2.vocab.jsonl")) as f:
        return [json.loads(l) for l in f][:n]


def test_cli_tokenize_and_detokenize_match_llama_cpp():
    for r in records():
        assert json.loads(run("tokenize", "-m", VOCAB, "--text", r["text"])) == r["ids_plain"], r["text"]
        assert json.loads(run("tokenize", "-m", VOCAB, "--special", "--text", r["text"])) == r["ids_special"]
        if r["ids_plain"]:
            assert run("detokenize", "-m", VOCAB, "--ids", ",".join(map(str, r["ids_plain"]))) == r["detok"]


def test_cli_template_is_byte_exact():
    manifest = json.load(open(os.path.join(FIX, "templates", "manifest.json")))
    convs = {c["id"]: c for c in json.load(open(os.path.join(FIX, "templates", "conversations.json")))}
    renders = [json.loads(l) for l in open(os.path.join(FIX, "templates", "renders.jsonl"))]
    checked = 0
    for name in ("smollm2-135m-instruct", "deepseek-r1-distill-qwen-7b", "meta-llama-Llama-3.1-8B-Instruct"):
        t = manifest["templates"][name]
        for r in (r for r in renders if r["template"] == name and "rendered" in r):
            conv = convs[r["conversation"]]
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"messages": conv["messages"], **({"tools": conv["tools"]} if "tools" in conv else {})}, f)
            args = ["template", "--template", os.path.join(FIX, "templates", t["file"]), "--messages", f.name,
                    "--now", manifest["strftime_now_clock"]]
            if t["bos_token"] is not None:
                args += ["--bos-token", t["bos_token"]]
            args += ["--eos-token", t["eos_token"]]
            if not r["add_generation_prompt"]:
                args.append("--no-generation-prompt")
            assert run(*args) == r["rendered"], (name, r["conversation"])
            os.unlink(f.name)
            checked += 1
    assert checked >= 30


def test_cli_template_from_model():
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"messages": [{"role": "user", "content": "Hi"}]}, f)
    out = run("template", "-m", MODEL, "--messages", f.name)
    assert out == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                   "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_tokenize_routes(server):
    status, _, body = server.post("/tokenize", {"content": "<|im_start|>user\nHello", "parse_special": True})
    assert status == 200
    ids = json.loads(body)["tokens"]
    assert ids[0] == 1  # <|im_start|> parsed as the control token
    status, _, body = server.post("/tokenize", {"content": "<|im_start|>user", "parse_special": False})
    assert 1 not in json.loads(body)["tokens"]
    status, _, body = server.post("/detokenize", {"tokens": ids})
    assert status == 200 and json.loads(body)["content"] == "<|im_start|>user\nHello"
    status, _, body = server.post("/detokenize", {"tokens": [10 ** 9]})
    assert status == 400 and json.loads(body)["error"]["param"] == "tokens"
    status, _, body = server.post("/tokenize", {"content": 5})
    assert status == 400 and "must be a string, got" in json.loads(body)["error"]["message"]
    status, _, body = server.post("/tokenize", {"bogus": 1})
    assert status == 400 and json.loads(body)["error"]["message"] == "'content' is a required property"


def test_apply_template_gives_the_prompt_the_server_generates_from(qwen):
    """`POST /apply-template` (llama-server's route): the prompt text a chat request is generated from, exactly. Both
    helpers of 2026-12-06 took `sputnik template` for that and found it differs on tool histories (it renders the
    template alone: `arguments` strings stay strings, as jinja2 does, while the server passes them to Qwen's `tojson`
    as objects, as vLLM and llama.cpp do)."""
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    body = {"model": "m", "max_tokens": 1, "temperature": 0, "tools": [weather], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]}
    status, _, raw = qwen.post("/apply-template", body)
    assert status == 200, raw
    prompt = json.loads(raw)["prompt"]
    assert '{"name": "get_weather", "arguments": {"city": "Paris"}}' in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    status, _, raw = qwen.post("/tokenize", {"content": prompt, "parse_special": True})
    tokens = json.loads(raw)["tokens"]
    status, _, raw = qwen.post("/v1/chat/completions", body)
    assert status == 200, raw
    assert json.loads(raw)["usage"]["prompt_tokens"] == len(tokens)
    # The chat route's 400s, for the same body.
    status, _, raw = qwen.post("/apply-template", {"model": "m", "messages": []})
    assert status == 400 and json.loads(raw)["error"]["param"] == "messages", raw
