"""Issue 17: `stream_options.continuous_usage_stats` (vLLM's; guidellm always sends it). Every streamed chunk of
/v1/chat/completions and /v1/completions carries the running usage: the prompt's tokens, the tokens generated so
far (over all choices) and their sum; the final include_usage chunk is unchanged."""
import json

import pytest

from test_openai_client import client

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "The capital of France is Paris. The capital of Italy is"
BOTH = {"include_usage": True, "continuous_usage_stats": True}


def sse(server, path, body):
    status, headers, payload = server.post(path, body)
    assert status == 200, payload
    assert headers["Content-Type"].startswith("text/event-stream")
    events = [line[6:] for line in payload.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def check_running(chunks, final, chat=True):
    """Every chunk's usage is the running count: prompt constant and equal to the final usage's, completion
    non-decreasing and ending at the final count, total the sum. Returns the completion counts."""
    counts = []
    for c in chunks:
        u = c["usage"]
        assert u is not None, c
        assert set(u) == {"prompt_tokens", "completion_tokens", "total_tokens"}, u
        assert u["prompt_tokens"] == final["prompt_tokens"], (u, final)
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
        counts.append(u["completion_tokens"])
    assert counts == sorted(counts), counts
    # Chat opens with the role chunk (nothing generated yet); a completion's first chunk holds its first token.
    assert counts[0] == (0 if chat else 1), counts
    assert counts[-1] == final["completion_tokens"], (counts, final)
    return counts


def test_chat_every_chunk_carries_running_usage(server):
    chunks = sse(server, "/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "stream": True,
                                                  "temperature": 0, "max_tokens": 24, "stream_options": BOTH})
    final = chunks[-1]
    assert final["choices"] == [] and "prompt_tokens_details" in final["usage"]   # the include_usage chunk as before
    counts = check_running(chunks[:-1], final["usage"])
    content = [c for c in chunks[:-1] if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) >= 2
    # Each content chunk completes at least one more token than the one before it.
    content_counts = [c["usage"]["completion_tokens"] for c in content]
    assert all(b > a for a, b in zip(content_counts, content_counts[1:])), content_counts
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length") and counts[-1] >= len(content)
    # The same request answered whole counts the same tokens (temperature 0).
    status, _, body = server.post("/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "temperature": 0,
                                                           "max_tokens": 24})
    assert status == 200
    assert json.loads(body)["usage"]["completion_tokens"] == final["usage"]["completion_tokens"]


def test_chat_n_choices_sum(server):
    chunks = sse(server, "/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "stream": True, "n": 2,
                                                  "temperature": 0.8, "seed": 3, "max_tokens": 10, "ignore_eos": True,
                                                  "stream_options": BOTH})
    final = chunks[-1]["usage"]
    counts = check_running(chunks[:-1], final)
    assert final["completion_tokens"] == counts[-1] == 20   # both choices' tokens, summed
    assert {c["choices"][0]["index"] for c in chunks[:-1]} == {0, 1}


def test_continuous_without_include_usage(server):
    """Usage on every chunk, and no extra usage chunk at the end."""
    chunks = sse(server, "/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "stream": True,
                                                  "temperature": 0, "max_tokens": 12,
                                                  "stream_options": {"continuous_usage_stats": True}})
    assert all(c["choices"] for c in chunks)
    status, _, body = server.post("/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "temperature": 0,
                                                           "max_tokens": 12})
    check_running(chunks, json.loads(body)["usage"])


@pytest.mark.parametrize("options", [{"include_usage": True, "continuous_usage_stats": False},
                                     {"include_usage": True, "continuous_usage_stats": None}])
def test_off_keeps_todays_stream(server, options):
    chunks = sse(server, "/v1/chat/completions", {"model": "smollm2", "messages": QUESTION, "stream": True,
                                                  "max_tokens": 6, "stream_options": options})
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_completions_every_chunk_carries_running_usage(server):
    chunks = sse(server, "/v1/completions", {"model": "smollm2", "prompt": [PROMPT, "Once upon a time"], "stream": True,
                                             "temperature": 0, "max_tokens": 12, "stream_options": BOTH})
    final = chunks[-1]
    assert final["choices"] == []
    check_running(chunks[:-1], final["usage"], chat=False)
    status, _, body = server.post("/v1/completions", {"model": "smollm2", "prompt": [PROMPT, "Once upon a time"],
                                                      "temperature": 0, "max_tokens": 12})
    whole = json.loads(body)["usage"]
    assert (whole["prompt_tokens"], whole["completion_tokens"]) == (final["usage"]["prompt_tokens"],
                                                                   final["usage"]["completion_tokens"])


def test_non_boolean_is_refused(server):
    for path, body in [("/v1/chat/completions", {"messages": QUESTION}), ("/v1/completions", {"prompt": PROMPT})]:
        status, _, payload = server.post(path, {**body, "stream": True,
                                                "stream_options": {"continuous_usage_stats": "yes"}})
        assert status == 400, payload
        err = json.loads(payload)["error"]
        assert err["param"] == "stream_options.continuous_usage_stats" and err["type"] == "invalid_request_error"


def check_client_chunks(chunks):
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    prompt, counts = final.usage.prompt_tokens, []
    for c in chunks[:-1]:
        assert c.usage is not None
        assert c.usage.prompt_tokens == prompt
        assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
        counts.append(c.usage.completion_tokens)
    assert counts == sorted(counts) and counts[-1] == final.usage.completion_tokens > 0


def test_openai_client_chat_and_completions(server):
    oc = client(server)
    chat = list(oc.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=12, temperature=0,
                                           stream=True, stream_options=BOTH))
    check_client_chunks(chat)
    # The vLLM spelling through extra_body, as guidellm-style callers send it.
    legacy = list(oc.completions.create(model="smollm2", prompt=PROMPT, max_tokens=12, temperature=0, stream=True,
                                        extra_body={"stream_options": BOTH}))
    check_client_chunks(legacy)
