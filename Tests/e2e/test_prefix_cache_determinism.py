"""C21 (failure-cases.md): on an idle server a repeated request reproduces its output, greedy or seeded, although
its second run finds the prompt in the prefix cache and computes only what is left of it. On a K-quant model
(Qwen2.5-Coder-0.5B Q4_K_M) the leftover token took the per-row kernel while the whole prompt took the tiled GEMM,
whose per-block rounding differs: the first answer differed from the next ones (helper's report, 2026-12-06).
Steps that compute prompt tokens now use the GEMM's arithmetic whatever their size."""
from test_tool_calls import client


def runs(server, **kw):
    out = []
    for _ in range(3):
        r = client(server).chat.completions.create(model="m", max_tokens=40, logprobs=True, **kw)
        cached = r.usage.prompt_tokens_details.cached_tokens if r.usage.prompt_tokens_details else 0
        out.append((r.choices[0].message.content, [t.logprob for t in r.choices[0].logprobs.content],
                    r.usage.prompt_tokens - cached))
    return out


def test_repeated_requests_reproduce_with_prefix_cache_hits(qwen):
    for i, kw in enumerate([dict(temperature=0), dict(temperature=0.9, seed=1234)]):
        # 49 prompt tokens: the later runs find 48 in the prefix cache and compute one.
        msgs = [{"role": "user", "content": f"(q2-{i}) Write a two-sentence story about a lighthouse keeper named Ann2."}]
        (t0, l0, c0), (t1, l1, c1), (t2, l2, c2) = runs(qwen, messages=msgs, **kw)
        assert c0 >= 8 and c1 == c2 < 8, (c0, c1, c2)   # computed prompt tokens: GEMM-sized, then per-row-sized
        assert t0 == t1 == t2, (t0, t1, t2)
        assert l0 == l1 == l2
