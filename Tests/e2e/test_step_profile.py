"""SPUTNIK_PROFILE_STEPS=1: when the engine goes idle it writes the mean time per phase of its steps, by batch
size, to stderr (issue 20 item 3: where a batched decode step's time goes)."""
import concurrent.futures
import json
import os
import re
import time

from conftest import Server


def profile_lines(server, done):
    """The `profile batch=` lines the server has written, once `done(lines)` holds or 10 s have passed: the engine
    writes them when it goes idle, which can come a moment after the last response."""
    deadline = time.time() + 10
    while True:
        lines = [l for l in server.logtext_all().splitlines() if l.startswith("profile batch=")]
        if done(lines) or time.time() > deadline:
            return lines
        time.sleep(0.05)


def complete(server, prompt):
    # 64 tokens: long enough that the four concurrent requests overlap even on a loaded machine (with 12 they
    # could finish one by one, and no batched step would be logged).
    status, _, body = server.post("/v1/completions", {"model": "smollm2", "prompt": prompt, "max_tokens": 64,
                                                      "temperature": 0, "ignore_eos": True})
    assert status == 200, body
    return json.loads(body)["choices"][0]["text"]


def test_profile_lines_per_batch_size(monkeypatch):
    monkeypatch.setenv("SPUTNIK_PROFILE_STEPS", "1")
    s = Server()
    try:
        alone = complete(s, "Tell me about the sea.")
        prompts = [f"Tell me about {t}." for t in ("the sea", "rivers", "mountains", "owls")]
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            together = list(ex.map(lambda p: complete(s, p), prompts))
        assert together[0] == alone   # batched greedy output equals the one computed alone
        # Wait for the batched steps' line, then check everything that was written.
        lines = profile_lines(s, lambda ls: any(re.match(r"profile batch=([2-9]|\d\d)", l) for l in ls))
        phases = ("step", "scheduler", "forward", "matmul", "attention", "sampler", "detokenize+stop", "events")
        rows = {}
        for line in lines:
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            assert set(fields) == {"batch", "steps", *phases}, line
            batch = 0 if fields["batch"] == "prefill" else int(fields["batch"])
            rows.setdefault(batch, []).append({k: float(v) for k, v in fields.items() if k != "batch"})
        assert 0 in rows, lines            # prompt steps
        assert 1 in rows, lines            # the lone request's decode steps
        assert max(rows) >= 2, lines       # and batched decode steps
        for row in (r for rs in rows.values() for r in rs):
            assert row["steps"] >= 1 and row["step"] > 0
            assert row["forward"] <= row["step"] + 1e-3
            assert row["matmul"] + row["attention"] <= row["forward"] + 1e-3
    finally:
        s.stop()


def test_mla_attention_is_profiled(monkeypatch):
    """The MLA models' latent attention is timed as `attention` too (it read 0.0 for DeepSeek models before)."""
    monkeypatch.setenv("SPUTNIK_PROFILE_STEPS", "1")
    fix = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "moe", "deepseek-v3-tiny", "deepseek-v3-tiny.q8_0.gguf")
    s = Server("--model", fix, "--ctx-size", "256")
    try:
        status, _, body = s.post("/v1/completions", {"prompt": "hello world " * 12, "max_tokens": 24, "temperature": 0,
                                                     "ignore_eos": True})
        assert status == 200, body
        lines = profile_lines(s, lambda ls: len(ls) >= 2)   # the prompt step's line and the decode steps'
        rows = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in lines]
        assert rows and all(float(r["attention"]) > 0 for r in rows), lines
        assert all(float(r["matmul"]) + float(r["attention"]) <= float(r["forward"]) + 1e-3 for r in rows), lines
    finally:
        s.stop()
