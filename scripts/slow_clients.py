#!/usr/bin/env python3
"""Slow and many clients at scale (issue 16 item 7, `make slowloris`): the p50/p99 latency of a normal chat request on
an otherwise idle server, then with 500 connections trickling a request head at 1 byte/s and 200 idle keep-alive
connections open, then idle again. The loaded p99 must be within 1.5x of the unloaded p99 (the unloaded samples are
taken before and after, so drift in the machine's other load counts against neither side). Prints a Markdown entry
(appended to --report). Exit 0 when the bound holds."""
import argparse
import http.client
import json
import os
import platform
import socket
import sys
import threading
import time

from soak import start_server


BODY = json.dumps({"model": "m", "max_tokens": 4, "temperature": 0,
                   "messages": [{"role": "user", "content": "Say hi."}]}).encode()


def latencies(port, n):
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("POST", "/v1/chat/completions", body=BODY, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"chat request answered {r.status}")
        out.append(time.perf_counter() - t0)
    c.close()
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", type=int, default=200, help="requests per phase")
    ap.add_argument("--tricklers", type=int, default=500)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    p, port = start_server(args.bin, args.model, ["--max-connections", "2048"], "sputnik-slowloris")
    socks, stop = [], threading.Event()
    try:
        latencies(port, 10)  # warm up
        before = latencies(port, args.n // 2)
        for _ in range(args.tricklers):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"P")
            socks.append(c)
        for _ in range(args.idle):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)
            socks.append(c)
        head = b"OST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000

        def trickle():
            i = 0
            while not stop.is_set() and i < len(head):
                for c in socks[:args.tricklers]:
                    try:
                        c.sendall(head[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(1.0)
        t = threading.Thread(target=trickle)
        t.start()
        loaded = latencies(port, args.n)
        alive = 0
        for c in socks[:args.tricklers]:
            try:
                c.setblocking(False)
                alive += 1 if c.recv(1) != b"" else 0
            except BlockingIOError:
                alive += 1  # still open, nothing sent back: still trickling
            except OSError:
                pass
        stop.set()
        t.join()
        for c in socks:
            c.close()
        socks.clear()
        after = latencies(port, args.n // 2)
    finally:
        stop.set()
        for c in socks:
            c.close()
        p.terminate()
        p.wait(30)
    alone = before + after
    ok = pct(loaded, 99) <= 1.5 * pct(alone, 99)
    ms = lambda x: f"{x * 1000:.1f} ms"
    rep = [
        f"\n### Slow and many clients, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n",
        f"- command: `scripts/slow_clients.py --bin {args.bin} --model {args.model} -n {args.n} "
        f"--tricklers {args.tricklers} --idle {args.idle}`",
        f"- machine: {os.cpu_count()} vCPUs {platform.machine()}, load average {os.getloadavg()[0]:.2f} at the end",
        f"- chat request (4 tokens, greedy), {len(alone)} unloaded samples (half before, half after) and {len(loaded)} "
        f"with {args.tricklers} connections trickling a request head at 1 byte/s ({alive} still open at the end of the "
        f"loaded phase) and {args.idle} idle keep-alive connections",
        "",
        "| | p50 | p99 | max |",
        "|---|---|---|---|",
        f"| unloaded | {ms(pct(alone, 50))} | {ms(pct(alone, 99))} | {ms(max(alone))} |",
        f"| loaded | {ms(pct(loaded, 50))} | {ms(pct(loaded, 99))} | {ms(max(loaded))} |",
        "",
        f"- [{'x' if ok else ' '}] loaded p99 within 1.5x of the unloaded p99 "
        f"({pct(loaded, 99) / pct(alone, 99):.2f}x)",
    ]
    text = "\n".join(rep) + "\n"
    print(text)
    if args.report:
        with open(args.report, "a") as f:
            f.write(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
