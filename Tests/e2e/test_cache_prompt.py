"""llama-server's `cache_prompt` on /v1/chat/completions and /v1/completions: true (the default) lets a prompt start
from the prefix cache, false computes every prompt position anew (the usage then reports no cached tokens). Before,
the field was refused as unknown, so clients written for llama-server (which send `cache_prompt: true` on every
request) failed here. Any value but a boolean or null is a 400 naming it."""
import json

from test_tool_calls import client

SYSTEM = "You are a meticulous assistant who answers in one short sentence. " * 12


def cached(usage):
    return (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)


def test_cache_prompt_false_computes_the_whole_prompt(server):
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Name a color."}]
    body = {"temperature": 0, "max_tokens": 8, "messages": msgs}
    first = json.loads(server.post("/v1/chat/completions", body)[2])
    warm = json.loads(server.post("/v1/chat/completions", {**body, "cache_prompt": True})[2])
    cold = json.loads(server.post("/v1/chat/completions", {**body, "cache_prompt": False})[2])
    assert cached(warm["usage"]) >= 128, warm["usage"]
    assert cached(cold["usage"]) == 0, cold["usage"]
    assert cold["usage"]["prompt_tokens"] == warm["usage"]["prompt_tokens"]
    texts = {r["choices"][0]["message"]["content"] for r in (first, warm, cold)}
    assert len(texts) == 1, texts
    # The blocks a cache_prompt:false request fills are still cached for the next one.
    again = json.loads(server.post("/v1/chat/completions", {**body, "cache_prompt": None})[2])
    assert cached(again["usage"]) >= 128, again["usage"]


def test_cache_prompt_on_completions_and_through_the_sdk(server):
    prompt = SYSTEM + "The colour of the sky is"
    body = {"model": "m", "prompt": prompt, "max_tokens": 4, "temperature": 0}
    server.post("/v1/completions", body)
    warm = json.loads(server.post("/v1/completions", {**body, "cache_prompt": True})[2])
    cold = json.loads(server.post("/v1/completions", {**body, "cache_prompt": False})[2])
    assert cached(warm["usage"]) >= 128 and cached(cold["usage"]) == 0, (warm["usage"], cold["usage"])
    assert warm["choices"][0]["text"] == cold["choices"][0]["text"]
    r = client(server).chat.completions.create(
        model="m", max_tokens=4, temperature=0, extra_body={"cache_prompt": False},
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Name a fruit."}])
    details = r.usage.prompt_tokens_details
    assert details is None or not details.cached_tokens, r.usage


def test_cache_prompt_must_be_a_boolean(server):
    for route, body in [("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
                        ("/v1/completions", {"prompt": "hi"})]:
        status, _, raw = server.post(route, {**body, "max_tokens": 2, "cache_prompt": "yes"})
        assert status == 400, raw
        err = json.loads(raw)["error"]
        assert err["param"] == "cache_prompt" and err["type"] == "invalid_request_error", err
