#!/usr/bin/env python3
"""The cost of wide JSON schemas through `sputnik serve`: one greedy chat request per schema, timed end to end, with
the server's RSS before and after (VmRSS from /proc). Each server binary given gets a fresh server; each schema is new
to it (its grammar is compiled and its token masks made during the request, on the engine thread, so the time is
also how long the request stalls every other request's decoding).

Schemas: an enum of 10,000 strings; an object with 5,000 optional integer properties; 2,000 properties with the last
required (120 tokens); strings with maxLength 100 and 2,000 and with minLength 300; anyOf of 100 bounded strings;
100 bounded optional strings (to the first token). Usage: scripts/bench_schema_cost.py --bin OLD --bin NEW [--model M]."""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serverproc import free_port, wait_ready  # noqa: E402

BIO = "Write a long biography of a famous painter as JSON."
CASES = [
    ("enum of 10,000 strings", 30, lambda k: {"enum": [f"m{k} value number {i}" for i in range(10_000)]}),
    ("5,000 optional properties", 30,
     lambda k: {"type": "object", "properties": {f"k{k}_{i}": {"type": "integer"} for i in range(5000)}}),
    ("2,000 properties, last required", 120,
     lambda k: {"type": "object", "properties": {f"f{k}_{i}": {"type": "integer"} for i in range(2000)},
                "required": [f"f{k}_1999"]}),
    # Bounded strings (with their own prompt): each character count was its own grammar position, with its own walk
    # of the vocabulary.
    ("string, maxLength 100", 60,
     lambda k: {"type": "object", "properties": {f"s{k}": {"type": "string", "maxLength": 100}}, "required": [f"s{k}"]},
     BIO),
    ("string, maxLength 2,000", 150,
     lambda k: {"type": "object", "properties": {f"b{k}": {"type": "string", "maxLength": 2000}}, "required": [f"b{k}"]},
     BIO),
    ("string, minLength 300, maxLength 2,000", 150,
     lambda k: {"type": "object", "properties": {f"m{k}": {"type": "string", "minLength": 300, "maxLength": 2000}},
                "required": [f"m{k}"]}, BIO),
    ("anyOf of 100 strings, maxLength 1-100", 60,
     lambda k: {"type": "object", "required": ["w"],
                "properties": {"w": {"anyOf": [{"type": "string", "maxLength": i + 1 + k} for i in range(100)]}}}, BIO),
    ("100 optional strings, maxLength 2,000 (first token)", 1,
     lambda k: {"type": "object", "properties": {f"o{k}_{i}": {"type": "string", "maxLength": 2000} for i in range(100)}}),
]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


def run(binary, model, rounds):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "-m", model, "--port", str(port), "-c", "4096"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"

        def post(body):
            t0 = time.time()
            req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    return r.status, time.time() - t0, json.loads(r.read())["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as e:
                return e.code, time.time() - t0, e.read().decode()[:120]

        post({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        rows = []
        for name, max_tokens, make, *prompt in CASES:
            for k in range(rounds):
                before = rss_mib(proc.pid)
                status, secs, out = post({"messages": [{"role": "user", "content": prompt[0] if prompt else "Fill it in"}], "temperature": 0,
                                          "max_tokens": max_tokens, "response_format": {
                                              "type": "json_schema", "json_schema": {"name": "s", "schema": make(k)}}})
                rows.append((name, k, status, secs, before, rss_mib(proc.pid), out[:40]))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="sputnik binary (repeatable)")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--rounds", type=int, default=2, help="distinct schemas of each kind")
    a = ap.parse_args()
    print("| binary | schema | # | status | seconds | RSS before MiB | RSS after MiB | output starts |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for b in a.bin:
        for name, k, status, secs, before, after, out in run(b, a.model, a.rounds):
            print(f"| {b} | {name} | {k} | {status} | {secs:.2f} | {before} | {after} | `{out}` |", flush=True)
    print(f"\nLoad average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
