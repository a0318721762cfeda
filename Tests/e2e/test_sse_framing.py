"""SSE framing checked byte by byte on a raw socket (failure cases C01, C02, C03, C04, C06, C08)."""
import json
import socket

import rawhttp


def sse_events(body: bytes):
    text = body.decode("utf-8")  # strict: a split multi-byte character fails here
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    out = []
    for ev in events:
        lines = [l for l in ev.split("\n") if not l.startswith(":")]
        if not lines:
            continue
        assert all(l.startswith("data: ") for l in lines), ev
        out.append("\n".join(l[6:] for l in lines))
    return out


def stream(server, **kw):
    body = {"model": "smollm2", "stream": True, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}], **kw}
    resp = rawhttp.request(server.port, rawhttp.post("/v1/chat/completions", body, "Connection: close\r\n"))
    status, headers, payload = rawhttp.split(resp)
    assert status == 200, payload
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    return sse_events(payload)


def test_framing_and_chunk_shape(server):
    events = stream(server, max_tokens=16, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert {c["created"] for c in chunks} == {chunks[0]["created"]}
    assert {c["model"] for c in chunks} == {"smollm2"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content_chunks = [c for c in chunks if c["choices"]]
    for c in content_chunks[:-1]:
        assert c["choices"][0]["finish_reason"] is None
        assert "finish_reason" in c["choices"][0]
    assert content_chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] == usage_chunk["usage"]["prompt_tokens"] + usage_chunk["usage"]["completion_tokens"]
    for c in chunks[:-1]:
        assert c.get("usage") is None


def test_length_finish(server):
    events = stream(server, max_completion_tokens=3)
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c or c["usage"] is None for c in chunks)


def test_stop_string_never_leaks(server):
    # Find what the model says, then stop on a piece of it that spans tokens.
    full = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in stream(server, max_tokens=24)[:-1])
    assert len(full) > 12, full
    stop = full[5:11]
    events = stream(server, max_tokens=24, stop=[stop, "zzzz-never"])
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == full[:full.find(stop)]
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


def test_utf8_never_split(server):
    events = stream(server, max_tokens=40, messages=[{"role": "user", "content": "Write five emoji and the word 日本語."}])
    for e in events[:-1]:
        for ch in json.loads(e)["choices"]:
            assert "\ufffd" not in (ch["delta"].get("content") or "")


def test_disconnect_mid_stream_frees_the_request(server):
    body = {"model": "smollm2", "stream": True, "max_tokens": 400, "temperature": 0.8,
            "messages": [{"role": "user", "content": "Write a very long story."}]}
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(rawhttp.post("/v1/chat/completions", body))
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()
    # The server keeps serving: a new request completes promptly.
    status, _, payload = server.post("/v1/chat/completions", {
        "model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}, timeout=60)
    assert status == 200, payload


def test_silent_streams_get_keep_alive_comments():
    """While nothing is written (a forced tool call the parser holds until it is whole, a long prefill) a stream gets
    `: keep-alive` comments, so a proxy's idle timeout does not cut it; the SDKs ignore them and assemble the call.
    Before, a call's whole generation went out as silence. The interval is --sse-keepalive (0.2 s here)."""
    import time

    import openai
    from conftest import qwen_server
    s = qwen_server("--sse-keepalive", "0.2")
    try:
        tool = {"type": "function", "function": {"name": "write_note", "parameters": {
            "type": "object", "properties": {"text": {"type": "string", "minLength": 120, "maxLength": 200}},
            "required": ["text"]}}}
        body = {"model": "m", "stream": True, "temperature": 0, "max_tokens": 120, "tools": [tool],
                "tool_choice": "required", "messages": [{"role": "user", "content": "Write a note about Paris."}]}
        t0 = time.time()
        resp = rawhttp.request(s.port, rawhttp.post("/v1/chat/completions", body, "Connection: close\r\n"))
        took = time.time() - t0
        status, _, payload = rawhttp.split(resp)
        assert status == 200, payload
        text = payload.decode()
        assert took > 0.6, took   # long enough for a comment to be due
        assert "\n: keep-alive\n\n" in "\n" + text, text[:500]
        events = sse_events(payload)
        assert events[-1] == "[DONE]"
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="x", max_retries=0, timeout=120)
        with c.chat.completions.stream(**{k: v for k, v in body.items() if k != "stream"}) as st:
            for _ in st:
                pass
            final = st.get_final_completion()
        call = final.choices[0].message.tool_calls[0]
        assert call.function.name == "write_note" and len(json.loads(call.function.arguments)["text"]) >= 120
    finally:
        s.stop()
