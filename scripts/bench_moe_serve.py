#!/usr/bin/env python3
"""Serving run of `make bench-moe`: starts `sputnik serve` on one GGUF file (127.0.0.1), reports the time to
healthy (load time), then for 1, 4 and 8 concurrent streamed /v1/completions requests of N tokens each the
aggregate generated tokens/s (first request sent → last token received, prefill included) and, at the end, the
server's peak RSS (VmHWM) with its anonymous and file-backed parts (RssAnon, RssFile) and the file size.
Prints markdown lines for BENCHMARKS.md. Standard library only; every wait is bounded.

With --rounds R > 1 the whole list of stream counts is run R times in turn (1, 8, 1, 8, ... for "1,8"), so
readings on a shared machine are paired in time; each round's ratio is against that round's one-stream run, and the
median ratio per stream count is printed after the table.

Usage: bench_moe_serve.py --bin SPUTNIK --model FILE [--tokens 64] [--streams 1,4,8] [--threads 2] [--rounds 1]
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from serverproc import free_port


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def stream_completion(base, prompt, tokens, timeout=900):
    """One streamed completion; returns its generated tokens (the final usage chunk's completion_tokens)."""
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}, "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    n = 0
    with urllib.request.urlopen(req, timeout=timeout) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                n = chunk["usage"]["completion_tokens"]
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--streams", default="1,4,8")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rounds", type=int, default=1, help="run the list of stream counts this many times in turn")
    a = ap.parse_args()
    # Read the file into the page cache first (as bench_compare.py does): otherwise the first run pays for the
    # expert pages the warm-up request did not touch (a 1-stream run read 7.7 tok/s where warm runs read ~12.5).
    t_read = time.time()
    with open(a.model, "rb") as f:
        while f.read(16 << 20):
            pass
    t_read = time.time() - t_read
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(f"/tmp/sputnik-bench-moe-{port}.log", "w+")
    t0 = time.time()
    proc = subprocess.Popen([a.bin, "serve", "--model", a.model, "--host", "127.0.0.1", "--port", str(port),
                             "--threads", a.threads, "--ctx-size", "1024", "--max-num-seqs", "8"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        healthy = None
        while time.time() - t0 < 900:
            if proc.poll() is not None:
                log.seek(0)
                print(f"- serve {os.path.basename(a.model)}: server exited: {log.read()[-2000:]}")
                return 1
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        healthy = time.time() - t0
                        break
            except OSError:
                time.sleep(0.2)
        if healthy is None:
            print(f"- serve {os.path.basename(a.model)}: not healthy within 900 s")
            return 1
        prompt = "The history of the printing press begins with"
        # Warm-up, untimed: the largest stream count once at full length, so that every expert's pages are mapped into
        # the process before the first timed run (a 4-token warm-up left round 1's one-stream run at 11.8 tok/s
        # against 16.9 in round 2, which inflated round 1's ratio to 2.50× where round 2 read 1.80×).
        most = max(int(x) for x in a.streams.split(","))
        with concurrent.futures.ThreadPoolExecutor(max_workers=most) as ex:
            list(ex.map(lambda i: stream_completion(base, f"{prompt} [{i}]", a.tokens), range(most)))
        rows = []   # (round, streams, tokens, seconds)
        for rnd in range(1, max(1, a.rounds) + 1):
            for c in [int(x) for x in a.streams.split(",")]:
                start = time.time()
                with concurrent.futures.ThreadPoolExecutor(max_workers=c) as ex:
                    counts = list(ex.map(lambda i: stream_completion(base, f"{prompt} ({i})", a.tokens), range(c)))
                dt = time.time() - start
                rows.append((rnd, c, sum(counts), dt))
        hwm, anon, filed = (status_kb(proc.pid, k) for k in ("VmHWM", "RssAnon", "RssFile"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    size = os.path.getsize(a.model)
    print(f"- `sputnik serve` {os.path.basename(a.model)} ({size / 2**30:.2f} GiB file), {a.threads} threads: healthy after "
          f"{healthy:.1f} s (process start → /health 200, weights loaded; the file was read into the page cache first in {t_read:.1f} s)")
    print("")
    print("| round | streams | tokens | seconds | aggregate tok/s | × one stream |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = {}
    for rnd, c, n, dt in rows:
        first = next(r for r in rows if r[0] == rnd)   # the round's first run: one stream with the default list
        ratio = n / dt / (first[2] / first[3])
        ratios.setdefault(c, []).append(ratio)
        print(f"| {rnd} | {c} | {n} | {dt:.2f} | {n / dt:.2f} | {ratio:.2f} |")
    print("")
    if a.rounds > 1:
        print("- Median × the round's first stream count, over " + str(a.rounds) + " rounds: " +
              ", ".join(f"{c} streams {statistics.median(v):.2f}" for c, v in ratios.items()))
    print(f"- Peak RSS (VmHWM) {hwm / 2**20:.2f} GiB = {hwm / 1024 / (size / 2**20) * 100:.0f}% of the file; at the end "
          f"RssAnon {anon / 2**20:.2f} GiB, RssFile {filed / 2**20:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
