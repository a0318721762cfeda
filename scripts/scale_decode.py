#!/usr/bin/env python3
"""Batched decode scaling through `sputnik serve` over HTTP (issue 20 item 3).

Starts `sputnik serve` (loopback, --max-num-seqs 16, -t THREADS), then for each concurrency C in --concurrency
(default 4,8,16) sends the same C greedy /v1/completions requests (distinct prompts, `max_tokens` tokens each,
`ignore_eos`) first one at a time, then all C at once, and reports

  scaling(C) = aggregate tokens/s with C at once / aggregate tokens/s one at a time

where aggregate tokens/s = completion tokens / wall-clock seconds from the first request sent to the last answer.
Each measurement is repeated --repeats times (engines warmed first); the best of each is used. The greedy texts of the
concurrent run must equal the one-at-a-time texts (the script exits 1 otherwise). The load average is printed before
and after, since the machine may be shared.

  python3 scripts/scale_decode.py --bin .build/release/sputnik --model models/SmolLM2-135M-Instruct.Q4_1.gguf

With --profile the server runs with SPUTNIK_PROFILE_STEPS=1 and the script prints the mean time per phase of an
engine step by batch size (scheduler, forward with its matmul and attention parts, sampler, detokenizer and stop
strings, event hand-off to the HTTP side), aggregated over the whole run, as a Markdown table.

Only 127.0.0.1 is used; every request has a timeout and every loop is bounded.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from serverproc import free_port, wait_ready

TOPICS = ["the sea", "a lighthouse", "mountains", "a library", "winter", "a robot", "the moon", "a garden",
          "trains", "a city at night", "bees", "the desert", "a violin", "rain", "a bakery", "volcanoes"]


def complete(port, prompt, max_tokens, timeout):
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "ignore_eos": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        out = json.loads(r.read())
    return out["choices"][0]["text"], out["usage"]["completion_tokens"]


def run(port, prompts, max_tokens, concurrent, timeout):
    """(tokens/s, texts) for `prompts` sent one at a time or all at once."""
    start = time.perf_counter()
    if concurrent:
        with concurrent_pool(len(prompts)) as ex:
            results = list(ex.map(lambda p: complete(port, p, max_tokens, timeout), prompts))
    else:
        results = [complete(port, p, max_tokens, timeout) for p in prompts]
    elapsed = time.perf_counter() - start
    tokens = sum(n for _, n in results)
    return tokens / elapsed, [t for t, _ in results], tokens


def concurrent_pool(n):
    return concurrent.futures.ThreadPoolExecutor(max_workers=n)


PHASES = ["step", "scheduler", "forward", "matmul", "attention", "sampler", "detokenize+stop", "events"]


def print_profile(text):
    """Aggregates the server's `profile batch=…` lines (weighted by steps) into one Markdown table."""
    total = {}
    for line in text.splitlines():
        if not line.startswith("profile batch="):
            continue
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        b, n = f["batch"], int(f["steps"])
        acc = total.setdefault(b, {"steps": 0, **{p: 0.0 for p in PHASES}})
        acc["steps"] += n
        for p in PHASES:
            acc[p] += float(f[p]) * n
    def key(b):
        return -1 if b == "prefill" else int(b)
    print("| batch | steps | " + " | ".join(f"{p} ms" for p in PHASES) + " | ms / token |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in PHASES) + " | ---: |")
    for b in sorted(total, key=key):
        acc = total[b]
        n = acc["steps"]
        per_token = "" if b == "prefill" else f"{acc['step'] / n / int(b):.3f}"
        print(f"| {b} | {n} | " + " | ".join(f"{acc[p] / n:.3f}" for p in PHASES) + f" | {per_token} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/release/sputnik")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--concurrency", default="4,8,16")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--profile", action="store_true", help="print the engine-step profile by batch size")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    if max(levels) > len(TOPICS):
        sys.exit(f"at most {len(TOPICS)} concurrent requests")
    port = free_port()
    env = dict(os.environ, SPUTNIK_PROFILE_STEPS="1") if args.profile else None
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([args.bin, "serve", "--model", args.model, "--port", str(port), "--host", "127.0.0.1",
                             "-t", str(args.threads), "--max-num-seqs", "16", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    ok = True
    results = {"load_before": os.getloadavg(), "levels": {}}
    try:
        wait_ready(port, proc)
        prompts = [f"Write a short poem about {t}." for t in TOPICS]
        run(port, prompts[:4], args.max_tokens, False, args.timeout)   # warm-up
        run(port, prompts[:4], args.max_tokens, True, args.timeout)
        print(f"load average before: {results['load_before'][0]:.2f} {results['load_before'][1]:.2f} "
              f"{results['load_before'][2]:.2f}")
        for c in levels:
            ps = prompts[:c]
            seq_best, conc_best, seq_texts, conc_texts = 0.0, 0.0, None, None
            for _ in range(args.repeats):
                tps, texts, _ = run(port, ps, args.max_tokens, False, args.timeout)
                seq_best, seq_texts = max(seq_best, tps), texts
                tps, texts, _ = run(port, ps, args.max_tokens, True, args.timeout)
                conc_best, conc_texts = max(conc_best, tps), texts
                if texts != seq_texts:
                    ok = False
            same = seq_texts == conc_texts
            print(f"C={c:2d}: one at a time {seq_best:7.1f} tok/s, {c} at once {conc_best:7.1f} tok/s, "
                  f"scaling {conc_best / seq_best:.2f}x, greedy texts identical: {same}")
            results["levels"][c] = {"sequential_tps": seq_best, "concurrent_tps": conc_best,
                                    "scaling": conc_best / seq_best, "identical": same}
        results["load_after"] = os.getloadavg()
        print(f"load average after: {results['load_after'][0]:.2f} {results['load_after'][1]:.2f} "
              f"{results['load_after'][2]:.2f}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    if args.profile:
        log.seek(0)
        print_profile(log.read())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if not ok:
        print("greedy outputs differ between one-at-a-time and concurrent runs", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
