"""`GET /metrics` read with the official Prometheus text parser (prometheus_client): vLLM's families under the
`sputnik:` prefix with the `model_name` label, histograms that move with requests, prefix-cache and admission
counters, and per-expert routed-token counts on a tiny MoE model."""
import json
import os
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import Server

FIX = os.path.join(os.path.dirname(__file__), "..", "Fixtures")
HISTOGRAMS = ["sputnik:time_to_first_token_seconds", "sputnik:inter_token_latency_seconds",
              "sputnik:e2e_request_latency_seconds", "sputnik:request_queue_time_seconds"]


def families(server) -> dict:
    status, headers, body = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(fams, name, suffix="", **labels) -> float:
    for s in fams[name].samples:
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, suffix, labels))


def chat(server, content, **kw):
    status, _, body = server.post("/v1/chat/completions", {
        "temperature": 0, "messages": [{"role": "user", "content": content}], **kw})
    return status, body


def check_histogram(fam, model="smollm2"):
    assert fam.type == "histogram"
    buckets = [s for s in fam.samples if s.name.endswith("_bucket")]
    assert all(s.labels["model_name"] == model for s in fam.samples)
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert buckets[-1].labels["le"] == "+Inf"
    count = [s.value for s in fam.samples if s.name.endswith("_count")][0]
    total = [s.value for s in fam.samples if s.name.endswith("_sum")][0]
    assert count == buckets[-1].value
    return count, total


def test_vllm_families_move_with_requests(server):
    before = families(server)
    for name in HISTOGRAMS:
        check_histogram(before[name])
    status, _ = chat(server, "Tell me about the sea.", max_tokens=6, ignore_eos=True)
    assert status == 200
    after = families(server)
    counts = {}
    for name in HISTOGRAMS:
        c0, _ = check_histogram(before[name])
        c1, s1 = check_histogram(after[name])
        counts[name] = c1 - c0
        assert s1 > 0
    assert counts["sputnik:time_to_first_token_seconds"] == 1
    assert counts["sputnik:e2e_request_latency_seconds"] == 1
    assert counts["sputnik:request_queue_time_seconds"] == 1
    assert counts["sputnik:inter_token_latency_seconds"] == 5  # 6 tokens, 5 gaps
    # n = 4 is one request: the per-request histograms move by one, as request_finished_total does (they moved by 4).
    status, _ = chat(server, "Tell me about the sea.", max_tokens=3, n=4, temperature=1.0)
    assert status == 200
    more = families(server)
    for name in ("sputnik:time_to_first_token_seconds", "sputnik:e2e_request_latency_seconds",
                 "sputnik:request_queue_time_seconds"):
        assert check_histogram(more[name])[0] - check_histogram(after[name])[0] == 1, name
    # The older families parse too, now labelled like vLLM's.
    assert after["sputnik:num_requests_running"].type == "gauge"
    assert value(after, "sputnik:generation_tokens", "_total", model_name="smollm2") >= 6


def test_prefix_cache_counters(server):
    prompt = "Prefix caching test: " + "the quick brown fox jumps over the lazy dog. " * 6
    chat(server, prompt, max_tokens=1)
    a = families(server)
    status, _ = chat(server, prompt, max_tokens=1)
    assert status == 200
    b = families(server)
    assert a["sputnik:prefix_cache_queries"].type == "counter"
    queried = value(b, "sputnik:prefix_cache_queries", "_total") - value(a, "sputnik:prefix_cache_queries", "_total")
    hits = value(b, "sputnik:prefix_cache_hits", "_total") - value(a, "sputnik:prefix_cache_hits", "_total")
    assert queried > 60 and 16 <= hits < queried  # at least one whole block came from the cache


def test_admission_rejections_counter(server):
    fams = families(server)
    before = value(fams, "sputnik:admission_rejections", "_total", reason="context_length")
    status, _ = chat(server, "hi", max_tokens=100000)
    assert status == 400
    after = value(families(server), "sputnik:admission_rejections", "_total", reason="context_length")
    assert after == before + 1
    assert "sputnik:moe_expert_tokens" not in fams  # a dense model has no experts


def test_moe_expert_counts_move():
    model = os.path.join(FIX, "moe", "deepseek-v3-tiny", "deepseek-v3-tiny.q8_0.gguf")
    template = os.path.join(FIX, "templates", "deepseek-r1-distill-qwen-7b.jinja")
    s = Server("--model", model, "--chat-template", template, "--ctx-size", "128")
    try:
        status, body = chat(s, "hello world", max_tokens=6, ignore_eos=True)
        assert status == 200, body
        usage = json.loads(body)["usage"]
        fam = families(s)["sputnik:moe_expert_tokens"]
        assert fam.type == "counter"
        per_layer = {}
        for smp in fam.samples:
            assert smp.name == "sputnik:moe_expert_tokens_total" and smp.labels["model_name"] == "smollm2"
            assert 0 <= int(smp.labels["expert"]) < 8
            per_layer[smp.labels["layer"]] = per_layer.get(smp.labels["layer"], 0) + smp.value
        # Layer 0 is dense (first_k_dense_replace = 1); layers 1 and 2 route every forwarded token to 2 experts:
        # the prompt, then each sampled token but the last.
        assert sorted(per_layer) == ["1", "2"]
        forwarded = usage["prompt_tokens"] + usage["completion_tokens"] - 1
        assert per_layer["1"] == per_layer["2"] == 2 * forwarded
    finally:
        s.stop()


def test_gauges_count_requests_that_arrive_during_a_long_step():
    """The load gauges the endpoint picker scores by are current during a long engine step: one ~6,600-token prefill
    in a single step (seconds here) shows as running, and three requests sent during it show as
    waiting. Before, the gauges were copied only after each step, so a scrape during it read running 0, waiting 0
    while requests piled up."""
    import threading
    s = Server("--ctx-size", "8192", "--max-num-batched-tokens", "8192", "--max-num-seqs", "4")
    try:
        prompt = " ".join(f"item {i} is on the list;" for i in range(650))
        ids = json.loads(s.post("/tokenize", {"content": prompt})[2])["tokens"]
        assert 6000 < len(ids) < 8000, len(ids)
        done = []
        long_one = threading.Thread(target=lambda: done.append(s.post("/v1/completions", {
            "prompt": prompt, "max_tokens": 1, "temperature": 0})[0]))
        long_one.start()
        t0 = time.time()

        def seen(gauge, at_least):
            """Whether a scrape shows `gauge` >= at_least while the long request still runs (polled, bounded)."""
            while not done and time.time() - t0 < 60:
                if value(families(s), gauge) >= at_least:
                    return True
                time.sleep(0.05)
            return False
        # Wait until its step is running (its prefill takes seconds here), then send three more.
        seen_running = seen("sputnik:num_requests_running", 1)
        shorts = [threading.Thread(target=lambda: s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2}))
                  for _ in range(3)]
        for t in shorts:
            t.start()
        seen_waiting = seen("sputnik:num_requests_waiting", 3)
        long_one.join(120)
        for t in shorts:
            t.join(120)
        assert done == [200]
        assert seen_running and seen_waiting, (seen_running, seen_waiting)
    finally:
        s.stop()


def test_requests_that_skip_the_prefix_cache_are_not_queries(server):
    """`cache_prompt: false` and prompt logprobs compute every prompt position without looking in the cache: they
    add nothing to the prefix-cache counters (counting them as queries with no hits lowered the reported hit rate)."""
    prompt = "Counter test: " + "a stitch in time saves nine. " * 8
    chat(server, prompt, max_tokens=1)
    a = families(server)
    assert chat(server, prompt, max_tokens=1, cache_prompt=False)[0] == 200
    status, _, _ = server.post("/v1/completions", {"prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 1})
    assert status == 200
    b = families(server)
    for name in ("sputnik:prefix_cache_queries", "sputnik:prefix_cache_hits"):
        assert value(b, name, "_total") == value(a, name, "_total"), name
    assert chat(server, prompt, max_tokens=1, cache_prompt=True)[0] == 200
    c = families(server)
    assert value(c, "sputnik:prefix_cache_hits", "_total") > value(b, "sputnik:prefix_cache_hits", "_total")


def test_echo_only_completions_count_no_generated_tokens(server):
    """`max_tokens: 0` with `echo` scores the prompt and generates nothing: usage says 0 completion tokens, and the
    generation-token counter agrees (it rose by the one token the step samples and the server drops)."""
    a = families(server)
    status, _, raw = server.post("/v1/completions", {"prompt": ["one two three four", "five six"], "max_tokens": 0,
                                                      "echo": True})
    assert status == 200 and json.loads(raw)["usage"]["completion_tokens"] == 0, raw
    b = families(server)
    assert value(b, "sputnik:generation_tokens", "_total", model_name="smollm2") == \
        value(a, "sputnik:generation_tokens", "_total", model_name="smollm2")


def test_generation_tokens_move_while_a_request_streams(server):
    """`generation_tokens_total` counts every step (vLLM's), not only when a request finishes: a dashboard's tokens/s
    follows a long stream instead of jumping at its end."""
    import openai
    c = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    before = value(families(server), "sputnik:generation_tokens", "_total", model_name="smollm2")
    stream = c.completions.create(model="smollm2", prompt="Count:", max_tokens=200, stream=True,
                                  extra_body={"ignore_eos": True})
    chunks = 0
    for _ in stream:
        chunks += 1
        if chunks == 40:
            mid = value(families(server), "sputnik:generation_tokens", "_total", model_name="smollm2")
            assert mid - before >= 30, (before, mid)
    stream.close()
    after = value(families(server), "sputnik:generation_tokens", "_total", model_name="smollm2")
    assert after - before == 200, (before, after)
