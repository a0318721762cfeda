"""Anthropic `POST /v1/messages` and `/v1/messages/count_tokens` through the official anthropic package, unmodified:
the same greedy text as the chat route, the stream's event order, stop sequences, Anthropic-shaped errors and the
`x-api-key` header."""
import json

import anthropic
import openai
import pytest

from conftest import Server

PARIS = "Describe Paris, the capital of France, in detail: its history, its landmarks and its food."


def client(server, key="unused"):
    return anthropic.Anthropic(base_url=server.base, api_key=key, max_retries=0, timeout=120)


def chat(server, messages, max_tokens, **kw):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0).chat.completions.create(
        model="smollm2", temperature=0, max_tokens=max_tokens, messages=messages, **kw)


def test_non_streamed_matches_chat(server):
    want = chat(server, [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": PARIS}], 12)
    m = client(server).messages.create(model="smollm2", max_tokens=12, temperature=0, system="Be helpful.",
                                       messages=[{"role": "user", "content": PARIS}])
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == want.choices[0].message.content
    assert m.stop_reason == "max_tokens" and m.stop_sequence is None
    assert m.usage.output_tokens == 12
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == want.usage.prompt_tokens


def test_system_blocks_and_text_blocks(server):
    a = client(server).messages.create(model="smollm2", max_tokens=8, temperature=0, system="Be helpful.",
                                       messages=[{"role": "user", "content": PARIS}])
    b = client(server).messages.create(
        model="smollm2", max_tokens=8, temperature=0, system=[{"type": "text", "text": "Be helpful."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": PARIS}]}])
    assert a.content[0].text == b.content[0].text


def test_stop_sequence_reported(server):
    full = client(server).messages.create(model="smollm2", max_tokens=24, temperature=0,
                                          messages=[{"role": "user", "content": PARIS}]).content[0].text
    words = full.split()
    assert len(words) > 4, full
    stop = words[3]
    m = client(server).messages.create(model="smollm2", max_tokens=24, temperature=0, stop_sequences=[stop],
                                       messages=[{"role": "user", "content": PARIS}])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == stop
    assert m.content[0].text == full[:full.index(stop)]


def test_no_output_is_an_empty_content_list(server):
    # A stop sequence at the very start of the reply: nothing to say. Anthropic answers `content: []` (no empty text
    # block, which it would itself refuse as input), streamed with no content block events.
    full = client(server).messages.create(model="smollm2", max_tokens=8, temperature=0,
                                          messages=[{"role": "user", "content": PARIS}]).content[0].text
    stop = full.strip()[:1]
    assert stop and full.startswith(stop), full
    m = client(server).messages.create(model="smollm2", max_tokens=8, temperature=0, stop_sequences=[stop],
                                       messages=[{"role": "user", "content": PARIS}])
    assert m.content == [] and m.stop_reason == "stop_sequence" and m.stop_sequence == stop
    events = list(client(server).messages.create(model="smollm2", max_tokens=8, temperature=0, stream=True,
                                                 stop_sequences=[stop], messages=[{"role": "user", "content": PARIS}]))
    assert [e.type for e in events] == ["message_start", "message_delta", "message_stop"]
    assert events[1].delta.stop_reason == "stop_sequence"
    with client(server).messages.stream(model="smollm2", max_tokens=8, temperature=0, stop_sequences=[stop],
                                        messages=[{"role": "user", "content": PARIS}]) as st:
        assert st.get_final_message().content == []


def test_final_assistant_message_is_a_prefill(server):
    # Anthropic's prefill: the reply continues the final assistant message and holds only the continuation, as the
    # chat route's continue_final_message (helper's report: it was answered as a new turn).
    msgs = [{"role": "user", "content": PARIS}, {"role": "assistant", "content": "Paris is famous for"}]
    m = client(server).messages.create(model="smollm2", max_tokens=10, temperature=0, messages=msgs)
    want = chat(server, msgs, 10, extra_body={"continue_final_message": True})
    assert m.content[0].text == want.choices[0].message.content and m.content[0].text
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == want.usage.prompt_tokens
    turn = chat(server, msgs, 10)   # as history: a different prompt
    assert turn.usage.prompt_tokens != want.usage.prompt_tokens


def test_stream_events_and_text(server):
    whole = client(server).messages.create(model="smollm2", max_tokens=16, temperature=0,
                                           messages=[{"role": "user", "content": PARIS}])
    events = list(client(server).messages.create(model="smollm2", max_tokens=16, temperature=0, stream=True,
                                                 messages=[{"role": "user", "content": PARIS}]))
    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) <= {"content_block_delta", "ping"} and "content_block_delta" in types
    assert events[0].message.content == [] and events[0].message.usage.input_tokens > 0
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == whole.content[0].text
    assert events[-2].delta.stop_reason == "max_tokens" and events[-2].usage.output_tokens == 16
    # The SDK's stream helper assembles the same message.
    with client(server).messages.stream(model="smollm2", max_tokens=16, temperature=0,
                                        messages=[{"role": "user", "content": PARIS}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == final.content[0].text == whole.content[0].text
    assert final.stop_reason == "max_tokens"
    # The final usage splits the prompt as the whole answer does (the same prompt again: served from the prefix
    # cache), so the SDK's assembled message reports the cache reads too.
    again = client(server).messages.create(model="smollm2", max_tokens=16, temperature=0,
                                           messages=[{"role": "user", "content": PARIS}])
    assert again.usage.cache_read_input_tokens > 0
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == \
        (again.usage.input_tokens, again.usage.cache_read_input_tokens, again.usage.output_tokens)
    # message_start splits the prompt as message_delta does (it gave the whole prompt as input_tokens, and 0 cache
    # reads, while message_delta split it: clients that read message_start's usage saw a different split).
    start, delta = events[0].message.usage, events[-2].usage
    assert delta.cache_read_input_tokens > 0
    assert (start.input_tokens, start.cache_read_input_tokens) == (delta.input_tokens, delta.cache_read_input_tokens)


def test_count_tokens_matches_prompt(server):
    msgs = [{"role": "user", "content": PARIS}]
    n = client(server).messages.count_tokens(model="smollm2", system="Be helpful.", messages=msgs)
    want = chat(server, [{"role": "system", "content": "Be helpful."}] + msgs, 1)
    assert n.input_tokens == want.usage.prompt_tokens


def test_tool_history_converts(server):
    msgs = [{"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 C"}]}]
    n = client(server).messages.count_tokens(model="smollm2", messages=msgs)
    plain = client(server).messages.count_tokens(model="smollm2", messages=msgs[:1])
    assert n.input_tokens > plain.input_tokens + 8
    m = client(server).messages.create(model="smollm2", max_tokens=4, temperature=0, messages=msgs)
    assert m.usage.output_tokens >= 1


@pytest.mark.parametrize("extra,word", [
    ({"tools": [{"name": "f", "input_schema": {"type": "object"}}]}, "tools"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ({"temperature": 1.5}, "temperature"),
    ({"top_k": -1}, "top_k"),
])
def test_refused_fields_are_anthropic_errors(server, extra, word):
    with pytest.raises(anthropic.BadRequestError) as e:
        client(server).messages.create(model="smollm2", max_tokens=8, messages=[{"role": "user", "content": "hi"}], **extra)
    body = e.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert word in body["error"]["message"]


@pytest.mark.parametrize("body,word", [
    ({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "smollm2", "max_tokens": 4}, "messages"),
    ({"model": "smollm2", "max_tokens": 4, "messages": [{"role": "system", "content": "hi"}]}, "messages[0].role"),
    ({"model": "smollm2", "max_tokens": 4,
      "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, "messages[0].content[0].type"),
    # helper-71: a prefill ending in whitespace was continued mid-token (the reply began with a garbled "！");
    # Anthropic refuses it in these words.
    ({"model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"},
                                                        {"role": "assistant", "content": "Answer: "}]},
     "messages: final assistant content cannot end with trailing whitespace"),
    ({"model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "text", "text": "Answer"}, {"type": "text", "text": "```json\n"}]}]},
     "messages: final assistant content cannot end with trailing whitespace"),
])
def test_bad_bodies_are_anthropic_400s(server, body, word):
    status, _, raw = server.post("/v1/messages", body)
    assert status == 400, raw
    err = json.loads(raw)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert word in err["error"]["message"]


def test_x_api_key_is_the_api_key():
    s = Server("--api-key", "sekret")
    try:
        m = client(s, key="sekret").messages.create(model="smollm2", max_tokens=2,
                                                   messages=[{"role": "user", "content": "hi"}])
        assert m.usage.output_tokens >= 1
        with pytest.raises(anthropic.AuthenticationError) as e:
            client(s, key="wrong").messages.create(model="smollm2", max_tokens=2,
                                                   messages=[{"role": "user", "content": "hi"}])
        assert e.value.body["error"]["type"] == "authentication_error"
        # Honoured like the bearer key on every route.
        assert s.get("/v1/models", headers={"x-api-key": "sekret"})[0] == 200
        assert s.get("/v1/models", headers={"x-api-key": "wrong"})[0] == 401
        assert s.get("/v1/models", headers={"Authorization": "Bearer sekret"})[0] == 200
    finally:
        s.stop()


def test_unknown_routes_and_methods_under_messages_answer_in_anthropic_shape(server):
    """`GET /v1/messages` (405) and `POST /v1/messages/batches` (404) answered in OpenAI's error shape, which the
    anthropic SDK cannot read (helper-40)."""
    status, headers, raw = server.get("/v1/messages")
    assert status == 405 and headers.get("Allow") == "POST", (status, headers)
    err = json.loads(raw)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error", err
    status, _, raw = server.post("/v1/messages/batches", {"requests": []})
    err = json.loads(raw)
    assert status == 404 and err["type"] == "error" and err["error"]["type"] == "not_found_error", err
    with pytest.raises(anthropic.NotFoundError):
        client(server).messages.batches.create(requests=[])


def test_transport_errors_on_the_messages_routes_are_in_anthropic_shape(server):
    """Errors the HTTP layer answers before routing once the head is read (body over the limit, an unsupported
    Content-Encoding, bad gzip) come in Anthropic's error shape on /v1/messages and count_tokens, as the routed errors
    do, and the client raises its typed errors for them; other routes keep OpenAI's shape. (A head too large to read
    has no known route: OpenAI's shape.)"""
    import rawhttp
    cases = [("Content-Length: 9000000\r\n", 413), ("Content-Encoding: br\r\nContent-Length: 2\r\n", 415),
             ("Content-Encoding: gzip\r\nContent-Length: 2\r\n", 400)]
    for path in ["/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions"]:
        for headers, status in cases:
            raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n").encode()
            got, _, body = rawhttp.split(rawhttp.request(server.port, raw + (b"" if status == 413 else b"{}")))
            assert got == status, (path, headers[:40], got, body)
            err = json.loads(body)
            if path.startswith("/v1/messages"):
                assert err["type"] == "error" and set(err["error"]) >= {"type", "message"}, err
                assert err["error"]["type"] == ("request_too_large" if status == 413 else "invalid_request_error"), err
            else:
                assert set(err["error"]) == {"message", "type", "param", "code"}, err
    big = "word " * (2 * 1024 * 1024)      # ~10 MB of JSON: over the 8 MiB body limit
    with pytest.raises(anthropic.APIStatusError) as e:
        client(server).messages.create(model="smollm2", max_tokens=4, messages=[{"role": "user", "content": big}])
    assert e.value.status_code == 413 and e.value.body["error"]["type"] == "request_too_large", e.value.body


def test_context_overflow_is_worded_as_anthropic_words_it():
    """helper-62: /v1/messages refused an over-long request with OpenAI's wording; Anthropic's clients (Claude Code,
    Continue, aider…) read Anthropic's to shrink `max_tokens` or compact the history: "input length and `max_tokens`
    exceed context limit: P + M > L, …" and "prompt is too long: P tokens > L maximum"."""
    import re
    s = Server("--ctx-size", "512")
    try:
        st, _, body = s.post("/v1/messages", {"model": "m", "max_tokens": 4096,
                                              "messages": [{"role": "user", "content": "word " * 100}]})
        e = json.loads(body)
        assert st == 400 and e["type"] == "error" and e["error"]["type"] == "invalid_request_error", body
        m = re.fullmatch(r"input length and `max_tokens` exceed context limit: (\d+) \+ 4096 > 512, "
                         r"decrease input length or `max_tokens` and try again", e["error"]["message"])
        assert m and int(m.group(1)) < 512, e
        st, _, body = s.post("/v1/messages", {"model": "m", "max_tokens": 16,
                                              "messages": [{"role": "user", "content": "word " * 2000}]})
        e = json.loads(body)
        assert st == 400 and re.fullmatch(r"prompt is too long: (\d+) tokens > 512 maximum", e["error"]["message"]), e
        # The OpenAI routes keep OpenAI's wording.
        st, _, body = s.post("/v1/chat/completions", {"max_tokens": 4096, "messages": [{"role": "user", "content": "word"}]})
        assert st == 400 and json.loads(body)["error"]["message"].startswith("This model's maximum context length is 512")
    finally:
        s.stop()
