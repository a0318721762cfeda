"""`--kv-cache-type q8_0` (llama.cpp's `-ctk q8_0` choice) on an MLA model: the tiny DeepSeek-V3 reference model
from Tests/Fixtures/moe serves chat through the official openai client with its latent rows in 8 bits, its first
token's distribution close to an f16 cache's; models without MLA and block sizes that do not fit the 16-slot tiles
are refused at startup with the reason."""
import math
import os

import openai

from conftest import Server
from test_config_and_auth import _serve_error

FIX = os.path.join(os.path.dirname(__file__), "..", "Fixtures")
MODEL = os.path.join(FIX, "moe", "deepseek-v3-tiny", "deepseek-v3-tiny.q8_0.gguf")
TEMPLATE = os.path.join(FIX, "templates", "deepseek-r1-distill-qwen-7b.jinja")
# A prompt of ~70 tokens: several 16-slot tiles and a partial one.
PROMPT = "Count the birds on the wire: " + ", ".join(f"bird {i}" for i in range(20)) + ". How many?"


def _first_token_logprobs(server: Server) -> tuple[dict, str, openai.types.CompletionUsage]:
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)
    r = client.chat.completions.create(model="m", temperature=0, max_tokens=24, logprobs=True, top_logprobs=5,
                                       messages=[{"role": "user", "content": PROMPT}])
    first = r.choices[0].logprobs.content[0]
    return {t.token: t.logprob for t in first.top_logprobs}, r.choices[0].message.content or "", r.usage


def test_q8_0_latent_cache_serves_chat_close_to_f16():
    runs = {}
    for kv in ("f16", "q8_0"):
        s = Server("--model", MODEL, "--chat-template", TEMPLATE, "--ctx-size", "256", "--kv-cache-type", kv,
                   model=None)
        try:
            runs[kv] = _first_token_logprobs(s)
            if kv == "q8_0":
                client = openai.OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=120)
                chunks = list(client.chat.completions.create(
                    model="m", temperature=0, max_tokens=8, stream=True,
                    messages=[{"role": "user", "content": PROMPT}]))
                assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        finally:
            s.stop()
    (f16_top, _, f16_usage), (q8_top, q8_text, q8_usage) = runs["f16"], runs["q8_0"]
    assert q8_usage.prompt_tokens == f16_usage.prompt_tokens > 64
    assert q8_usage.completion_tokens >= 1
    # The greedy first token is the f16 cache's, and the top candidates' log-probabilities agree closely.
    assert max(q8_top, key=q8_top.get) == max(f16_top, key=f16_top.get), (q8_top, f16_top)
    common = set(q8_top) & set(f16_top)
    assert len(common) >= 3, (q8_top, f16_top)
    worst = max(abs(q8_top[t] - f16_top[t]) for t in common)
    assert worst < 0.15, (worst, q8_top, f16_top)   # measured 0.048 (bf16 against f16: 0.019)
    assert all(math.isfinite(v) for v in q8_top.values())


def test_q8_0_cache_is_refused_without_mla_or_with_small_blocks():
    # SmolLM2: a llama model, K and V rows. Refused from the file's metadata, before its weights load, naming where
    # q8_0 was chosen (helper-74: the refusal came after a full load and always named the flag).
    out = _serve_error(["--kv-cache-type", "q8_0"])
    assert "--kv-cache-type q8_0 holds MLA latent rows (DeepSeek-V2/V3/R1); this llama model's attention keeps K and V rows: use f16, bf16 or f32" in out, out
    assert "loading weights" not in out and "hyper-parameter" not in out, out
    out = _serve_error([], {"SPUTNIK_KV_CACHE_TYPE": "q8_0"})
    assert "SPUTNIK_KV_CACHE_TYPE q8_0 holds MLA latent rows" in out and "--kv-cache-type" not in out, out
    out = _serve_error(["--kv-cache-type", "q8_0", "--block-size", "8"])
    assert "--block-size (8) must be a multiple of 16 with --kv-cache-type q8_0" in out, out


def test_chat_takes_the_kv_cache_type_for_a_local_model():
    """`sputnik chat MODEL --kv-cache-type q8_0` (helper-74: chat had no way to choose it): a piped question is
    answered on the tiny DeepSeek-V3; a model without MLA rows is refused with serve's reason."""
    import subprocess
    from conftest import BIN, MODEL as SMOLLM
    r = subprocess.run([BIN, "chat", MODEL, "--kv-cache-type", "q8_0", "--threads", "1", "--max-tokens", "4"],
                       input="hello there\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip(), r.stdout + r.stderr
    r = subprocess.run([BIN, "chat", SMOLLM, "--kv-cache-type", "q8_0", "--threads", "1"],
                       input="hello\n", capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "q8_0 holds MLA latent rows" in r.stderr, r.stdout + r.stderr
    r = subprocess.run([BIN, "chat", SMOLLM, "--kv-cache-type", "q4"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--kv-cache-type must be f16, bf16, f32 or q8_0" in r.stderr, r.stderr


def test_scalar_kernels_are_announced(monkeypatch):
    """Where the CPU (here: the kernel cap) has no AVX512-VNNI, q8_0 runs its scalar twins: serve says so at startup
    and still answers."""
    monkeypatch.setenv("SPUTNIK_KERNELS", "avx2")
    s = Server("--model", MODEL, "--chat-template", TEMPLATE, "--ctx-size", "256", "--kv-cache-type", "q8_0",
               model=None)
    try:
        status, _, _ = s.post("/v1/chat/completions", {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200
        assert "--kv-cache-type q8_0 runs scalar attention kernels with the avx2 kernels" in s.logtext(), s.logtext()
    finally:
        s.stop()
