#!/usr/bin/env python3
"""Load test for an OpenAI-compatible chat endpoint on this machine (loopback only).

Sends N streamed chat requests at concurrency C and reports aggregate output tokens/s, time to first token
(TTFT) and inter-token latency (ITL) percentiles. Bounded: at most --requests requests and --timeout seconds.

  scripts/loadtest.py --port 8080 --requests 32 --concurrency 8 --max-tokens 128
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time

PROMPTS = [
    "Explain how a bicycle stays upright while moving. Give a detailed answer with examples and history.",
    "Write a short story about a lighthouse keeper who finds a message in a bottle on a stormy night.",
    "Describe the water cycle step by step, as you would to a curious ten-year-old, with analogies.",
    "List ten practical tips for writing clear technical documentation, and explain each one briefly.",
]


# Filler for --prompt-tokens: plain prose, cut to length per request after a distinct opening line.
FILLER = ("The harbour town woke slowly that morning. Fishing boats rocked against the pier while gulls argued over "
          "scraps, and the baker on the corner pulled the first loaves from the oven. Children ran down the cobbled "
          "street toward the school, their bags bouncing, and an old man unfolded his newspaper on the bench by the "
          "fountain. Far out at sea a cargo ship moved along the horizon, its lights still on in the grey dawn. ")


def make_prompt(i, prompt_tokens):
    """Request i's prompt: one of PROMPTS, or with prompt_tokens > 0 a distinct prompt of about that many tokens
    (a numbered opening, so no two requests share more than the chat template's prefix, then FILLER words to
    length, then the question); about prompt_tokens counted with the chat template, as usage.prompt_tokens."""
    if prompt_tokens <= 0:
        return PROMPTS[i % len(PROMPTS)]
    question = PROMPTS[i % len(PROMPTS)]
    words = (FILLER * 20).split()
    opening = f"Request {i}, case {(i * 7919) % 100003}: read this passage first."
    # ~1.35 tokens per word of this prose (SmolLM2 / Qwen BPE); ~25 tokens go to a typical chat template.
    budget = max(0, int((prompt_tokens - 25 - 1.35 * len((opening + " " + question).split())) / 1.35))
    return " ".join([opening] + words[:budget] + [question])


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# prompt_tokens of every answered request, from the usage chunk (list.append is atomic under the GIL).
prompt_tokens_seen = []


def one_request(host, port, model, prompt, max_tokens, deadline, api_key):
    """Returns (ttft_s, [inter-token gaps s], output_tokens, error or None)."""
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0.7,
                       "ignore_eos": True, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": prompt}]})
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=max(1.0, deadline - time.time()))
    try:
        conn.request("POST", "/v1/chat/completions", body, headers)
        resp = conn.getresponse()
        if resp.status != 200:
            return None, [], 0, f"HTTP {resp.status}: {resp.read()[:200]!r}"
        ttft, last, gaps, tokens = None, None, [], 0
        buf = b""
        while True:
            if time.time() > deadline:
                return ttft, gaps, tokens, "deadline"
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:]
                    if data == b"[DONE]":
                        return ttft, gaps, tokens, None
                    obj = json.loads(data)
                    if obj.get("usage"):
                        tokens = obj["usage"]["completion_tokens"]
                        prompt_tokens_seen.append(obj["usage"].get("prompt_tokens", 0))
                    if obj.get("choices") and obj["choices"][0]["delta"].get("content"):
                        now = time.perf_counter()
                        if ttft is None:
                            ttft = now - start
                        else:
                            gaps.append(now - last)
                        last = now
        return ttft, gaps, tokens, "stream ended without [DONE]"
    except OSError as e:
        return None, [], 0, str(e)
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", default="default")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=0,
                    help="distinct prompts of about this many tokens per request (0: the four short PROMPTS)")
    ap.add_argument("--prompt-offset", type=int, default=0,
                    help="number the --prompt-tokens prompts from here (runs against one server that must not "
                         "find the previous run's prompts in its prefix cache take different offsets)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loadtest.py only targets this machine (127.0.0.1 / localhost / ::1)")
    deadline = time.time() + a.timeout
    lock = threading.Lock()
    next_index = [0]
    results = []

    def worker():
        while True:
            with lock:
                i = next_index[0]
                if i >= a.requests or time.time() > deadline:
                    return
                next_index[0] += 1
            r = one_request(a.host, a.port, a.model, make_prompt(a.prompt_offset + i, a.prompt_tokens), a.max_tokens, deadline, a.api_key)
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.time()) + 5)
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[3] is None]
    ttfts = [r[0] for r in ok if r[0] is not None]
    gaps = [g for r in ok for g in r[1]]
    out_tokens = sum(r[2] for r in ok)
    report = {
        "requests": len(results), "ok": len(ok), "errors": [r[3] for r in results if r[3]][:5],
        "concurrency": a.concurrency, "max_tokens": a.max_tokens, "wall_s": round(wall, 2),
        "prompt_tokens_mean": round(statistics.fmean(prompt_tokens_seen), 1) if prompt_tokens_seen else None,
        "output_tokens": out_tokens, "output_tok_s": round(out_tokens / wall, 2) if wall > 0 else 0,
        "ttft_p50_s": round(percentile(ttfts, 50), 3), "ttft_p99_s": round(percentile(ttfts, 99), 3),
        "itl_p50_ms": round(percentile(gaps, 50) * 1000, 1), "itl_p99_ms": round(percentile(gaps, 99) * 1000, 1),
        "itl_mean_ms": round(statistics.fmean(gaps) * 1000, 1) if gaps else float("nan"),
    }
    if a.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>14}: {v}")
    sys.exit(0 if len(ok) == len(results) else 1)


if __name__ == "__main__":
    main()
