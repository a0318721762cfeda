"""SPUTNIK_KERNELS caps the SIMD kernel set (reference, avx2, avxvnni, avx512vnni), and every set gives the same
bits: the AVX2, AVX-VNNI and AVX512-VNNI builds of the eight-row GEMMs, of the K-quant GEMM and of the
32-element-block GEMM compute the same exact integer block sums and the same float steps, and the AVX512-VL attention kernels the same per-head float operations,
so greedy text and logprobs through the server are identical whichever the CPU runs. The startup log
names the set in use. Sets the CPU lacks fall back to the next lower one (the test reads which from the log)."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import MODEL, QWEN, TOOLS_BIN, Server

SETS = ("avx2", "avxvnni", "avx512vnni")


def served_set(server):
    """The set named in the startup log line, which may come a moment after the server answers (10 s at most)."""
    deadline = time.time() + 10
    while not (m := re.search(r"kernels: (\w+)", server.logtext_all())) and time.time() < deadline:
        time.sleep(0.05)
    assert m, server.logtext_all()
    return m.group(1)


def greedy(server, prompt):
    status, _, body = server.post("/v1/completions", {"model": "smollm2", "prompt": prompt, "max_tokens": 24,
                                                      "temperature": 0, "ignore_eos": True, "logprobs": 3})
    assert status == 200, body
    choice = json.loads(body)["choices"][0]
    return choice["text"], choice["logprobs"]["token_logprobs"], choice["logprobs"]["top_logprobs"]


def test_every_kernel_set_gives_the_same_greedy_tokens_and_logprobs(monkeypatch):
    prompts = ["The lighthouse keeper", "List three prime numbers:"]
    results = {}
    for name in SETS:
        monkeypatch.setenv("SPUTNIK_KERNELS", name)
        s = Server()
        try:
            used = served_set(s)
            assert used in SETS and SETS.index(used) <= SETS.index(name), (name, used)
            results[used] = [greedy(s, p) for p in prompts]
        finally:
            s.stop()
    assert "avx2" in results
    for used, outs in results.items():
        assert outs == results["avx2"], f"{used} differs from avx2"


# A prompt of ~60 tokens: its prefill passes 8 tokens or more through every matmul (the AVX512-VNNI 16-row tiles and
# the offset-form q8_0 head on SmolLM2; on Qwen2.5-Coder-0.5B the K-quant prefill GEMM of its q4_K / q6_K layers;
# on Gemma 3 270M the 32-element-block GEMM of its q5_0 / q8_0 layers, whose 640-wide rows no K-quant fits: each
# built per set), and echo with logprobs returns the logits of every prompt position.
# A prompt of two to four tokens: its prompt step runs the 32-element-block types through the GEMM's one-group tiles
# (b32_small8, built per set) and the K-quants through the row kernel that takes the GEMM's float steps.
SHORT_PROMPT = "The sea"
GEMMA = os.path.join(os.path.dirname(os.path.abspath(MODEL)), "gemma-3-270m-q4_k_m.gguf")
LONG_PROMPT = ("The keeper of the old lighthouse wrote in his log every night: the wind from the north, the ships "
               "that passed, the gulls on the rocks, the colour of the sea at dusk and the lamps of the village "
               "across the bay, and one line about the letter he never sent.")


@pytest.mark.parametrize("model", ["smollm2", "qwen", "gemma"])
def test_every_kernel_set_gives_the_same_prompt_logprobs(monkeypatch, model):
    path = {"smollm2": MODEL, "qwen": QWEN, "gemma": GEMMA}[model]
    if not os.path.exists(path):
        pytest.skip(f"SKIPPED: {path} is absent (make test-models)")
    results = {}
    for name in SETS:
        monkeypatch.setenv("SPUTNIK_KERNELS", name)
        s = Server(model=path)
        try:
            used = served_set(s)
            outs = []
            for prompt in (LONG_PROMPT, SHORT_PROMPT):
                status, _, body = s.post("/v1/completions", {"model": "smollm2", "prompt": prompt, "max_tokens": 8,
                                                             "temperature": 0, "echo": True, "logprobs": 3})
                assert status == 200, body
                choice = json.loads(body)["choices"][0]
                outs.append((choice["text"], choice["logprobs"]["token_logprobs"], choice["logprobs"]["top_logprobs"]))
            assert len(outs[0][1]) > 40 and len(outs[1][1]) <= 8 + 4, outs
            results[used] = outs
        finally:
            s.stop()
    assert "avx2" in results
    for used, out in results.items():
        assert out == results["avx2"], f"{model}: {used} differs from avx2"


def best_set():
    flags = set(open("/proc/cpuinfo").read().split())
    return ("avx512vnni" if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
            else "avxvnni" if "avx_vnni" in flags else "avx2")


def test_default_is_the_best_set_the_cpu_runs(monkeypatch):
    monkeypatch.delenv("SPUTNIK_KERNELS", raising=False)
    s = Server()
    try:
        assert served_set(s) == best_set()
        assert "SPUTNIK_KERNELS" not in s.logtext_all()
    finally:
        s.stop()


def test_a_misspelt_cap_is_warned_about(monkeypatch):
    """A value that names no set (here in capitals) applies no cap, and the log says so instead of staying silent."""
    monkeypatch.setenv("SPUTNIK_KERNELS", "AVX2")
    s = Server()
    try:
        assert served_set(s) == best_set()
        assert "SPUTNIK_KERNELS='AVX2' is not one of reference, avx2, avxvnni, avx512vnni: no cap applied" in s.logtext_all()
    finally:
        s.stop()


def test_bench_reports_the_kernel_set(monkeypatch):
    """`sputnik-tools bench` says which set it measured (JSON `kernels`, the markdown footer), so side-by-side numbers
    in BENCHMARKS.md name it."""
    env = {**os.environ, "SPUTNIK_KERNELS": "avx2"}
    run = lambda *a: subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-r", "1", "-t", "1", "--no-warmup", "-p", "8",
                                     "-n", "0", *a], capture_output=True, text=True, timeout=300, env=env)
    r = run("-o", "json")
    assert r.returncode == 0, r.stderr
    assert [row["kernels"] for row in json.loads(r.stdout)] == ["avx2"]
    r = run()
    assert r.returncode == 0 and "kernels: avx2," in r.stdout, r.stdout
