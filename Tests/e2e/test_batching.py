"""Continuous batching from the outside: /metrics, cancellation freeing KV blocks, overload, prefix caching,
and greedy outputs that do not depend on what else is in the batch (failure cases C21, C26)."""
import json
import socket
import threading
import time

import rawhttp
from conftest import Server


def metrics(server) -> dict:
    status, headers, body = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name.split("{", 1)[0]] = float(value)  # labels (model_name) dropped
    return out


def wait_idle(server, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = metrics(server)
        if m["sputnik:num_requests_running"] == 0 and m["sputnik:kv_cache_usage_perc"] == 0:
            return m
        time.sleep(0.05)
    raise AssertionError(f"engine not idle: {m}")


def chat(server, content, **kw):
    status, _, body = server.post("/v1/chat/completions", {
        "model": "smollm2", "temperature": 0, "messages": [{"role": "user", "content": content}], **kw})
    assert status == 200, body
    return json.loads(body)


def test_metrics_names(server):
    m = metrics(server)
    for name in ("sputnik:num_requests_running", "sputnik:num_requests_waiting", "sputnik:kv_cache_usage_perc",
                 "sputnik:prompt_tokens_total", "sputnik:generation_tokens_total", "sputnik:num_preemptions_total"):
        assert name in m, name
    before = m["sputnik:generation_tokens_total"]
    chat(server, "Hello!", max_tokens=5)
    assert metrics(server)["sputnik:generation_tokens_total"] >= before + 1


def test_disconnect_frees_kv_blocks(server):
    for stream in (True, False):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(rawhttp.post("/v1/chat/completions", {
            "model": "smollm2", "stream": stream, "max_tokens": 1500, "temperature": 1.0,
            "messages": [{"role": "user", "content": "Write an extremely long story about a dragon."}]}))
        # One scrape must show the request running and holding KV blocks (two scrapes could straddle its end).
        deadline = time.time() + 30
        while True:
            m = metrics(server)
            if m["sputnik:num_requests_running"] >= 1 and m["sputnik:kv_cache_usage_perc"] > 0:
                break
            assert time.time() < deadline, m
            time.sleep(0.02)
        s.close()
        wait_idle(server, timeout=5)


def test_prefix_cache_reports_cached_tokens(server):
    system = "You are a meticulous assistant. " * 20
    msgs = lambda q: [{"role": "system", "content": system}, {"role": "user", "content": q}]
    first = server.post("/v1/chat/completions", {"temperature": 0, "max_tokens": 8, "messages": msgs("Name a color.")})
    second = server.post("/v1/chat/completions", {"temperature": 0, "max_tokens": 8, "messages": msgs("Name a fruit.")})
    u1 = json.loads(first[2])["usage"]
    u2 = json.loads(second[2])["usage"]
    assert u2["prompt_tokens_details"]["cached_tokens"] >= 128
    assert u2["prompt_tokens_details"]["cached_tokens"] < u2["prompt_tokens"]


def test_concurrent_greedy_equals_alone(server):
    prompts = [f"Write one sentence about the number {i}." for i in range(8)]
    alone = [chat(server, p, max_tokens=16)["choices"][0]["message"]["content"] for p in prompts]
    results = [None] * len(prompts)

    def worker(i):
        results[i] = chat(server, prompts[i], max_tokens=16)["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert results == alone


def test_overload_gets_429_with_retry_after():
    s = Server("--max-num-seqs", "1", "--max-queued-requests", "1")
    try:
        body = {"model": "smollm2", "max_tokens": 300, "temperature": 1.0, "ignore_eos": True,
                "messages": [{"role": "user", "content": "Write a long story."}]}
        statuses = []
        lock = threading.Lock()

        def worker():
            st, headers, payload = s.post("/v1/chat/completions", body, timeout=300)
            with lock:
                statuses.append((st, headers, payload))

        threads = [threading.Thread(target=worker) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=300)
        codes = sorted(st for st, _, _ in statuses)
        assert len(codes) == 5
        assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
        for st, headers, payload in statuses:
            if st == 429:
                assert int(headers["Retry-After"]) >= 1
                assert json.loads(payload)["error"]["type"]
    finally:
        s.stop()


def test_loadtest_script_reports(server):
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "loadtest.py")
    out = subprocess.run([sys.executable, script, "--port", str(server.port), "--model", "smollm2", "--requests", "8",
                          "--concurrency", "4", "--max-tokens", "16", "--timeout", "300", "--json"],
                         capture_output=True, timeout=320)
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)
    assert r["ok"] == 8 and r["output_tokens"] == 8 * 16
    assert r["output_tok_s"] > 0 and r["ttft_p50_s"] > 0 and r["itl_p50_ms"] > 0


def test_loadtest_prompt_tokens_are_distinct_and_sized(server):
    """`make bench-serve` load (issue 18 item 6): --prompt-tokens 110 gives ~110-token prompts by the server's own
    count, and a run at a new --prompt-offset finds none of the previous run's prompts in the prefix cache (its
    first-token latency is a full prefill, not a cache hit)."""
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "loadtest.py")

    def run(offset):
        out = subprocess.run([sys.executable, script, "--port", str(server.port), "--model", "smollm2", "--requests",
                              "4", "--concurrency", "1", "--max-tokens", "4", "--timeout", "300", "--json",
                              "--prompt-tokens", "110", "--prompt-offset", str(offset)],
                             capture_output=True, timeout=320)
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout)

    first = run(1000)
    assert 95 <= first["prompt_tokens_mean"] <= 125, first
    again = run(1000)     # the same prompts: served from the prefix cache
    fresh = run(2000)     # new prompts: prefilled in full
    assert again["ttft_p50_s"] < fresh["ttft_p50_s"], (again, fresh)
