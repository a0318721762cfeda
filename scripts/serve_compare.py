#!/usr/bin/env python3
"""Serving throughput side by side: Sputnik vs llama.cpp's server (xllamacpp), same model, same machine.

For each concurrency level, runs scripts/loadtest.py against each server in turn (alternating engines) and
prints aggregate output tokens/s and TTFT p50/p99. Loopback only; bounded by --requests and --timeout.

  python scripts/serve_compare.py --sputnik .build/release/sputnik --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --concurrency 1,4,8,16 --requests 32 --max-tokens 128 --prompt-tokens 110

Every request has its own prompt of about --prompt-tokens tokens with the chat template (a numbered opening, then
prose), new at every concurrency level, so the servers' prompt caches can share no more than the template's prefix;
the mean prompt_tokens each server reported is printed.

The llama.cpp side needs `pip install xllamacpp` in the interpreter given by --llamacpp-python.
"""
import argparse
import json
import os
import subprocess
import sys
from serverproc import free_port, wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))

LLAMACPP_SERVER = r"""
import sys, time, xllamacpp as xl
p = xl.CommonParams()
p.model.path = sys.argv[1]
p.port = int(sys.argv[2])
p.n_parallel = int(sys.argv[3])
p.n_ctx = int(sys.argv[4]) * int(sys.argv[3])
p.cpuparams.n_threads = int(sys.argv[5])
p.cpuparams_batch.n_threads = int(sys.argv[5])
s = xl.Server(p)
print("READY", flush=True)
while True:
    time.sleep(3600)
"""


def loadtest(port, model, n, c, max_tokens, timeout, prompt_tokens, prompt_offset):
    out = subprocess.run([sys.executable, os.path.join(HERE, "loadtest.py"), "--port", str(port), "--model", model,
                          "--requests", str(n), "--concurrency", str(c), "--max-tokens", str(max_tokens),
                          "--prompt-tokens", str(prompt_tokens), "--prompt-offset", str(prompt_offset),
                          "--timeout", str(timeout), "--json"], capture_output=True, timeout=timeout + 60)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sputnik", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--llamacpp-python", default=sys.executable)
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=110,
                    help="distinct prompts of about this many tokens (issue 18 item 6: ~110); 0 = four short ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024, help="context per slot / per request")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    slots = max(levels)
    ports = {"sputnik": free_port(), "llama.cpp": free_port()}
    procs = {}
    log = open("/tmp/serve_compare.log", "w")
    try:
        procs["sputnik"] = subprocess.Popen(
            [a.sputnik, "serve", "--model", a.model, "--port", str(ports["sputnik"]), "--threads", str(a.threads),
             "--max-num-seqs", str(slots), "--ctx-size", str(a.ctx), "--alias", "m"], stdout=log, stderr=log)
        procs["llama.cpp"] = subprocess.Popen(
            [a.llamacpp_python, "-c", LLAMACPP_SERVER, a.model, str(ports["llama.cpp"]), str(slots), str(a.ctx),
             str(a.threads)], stdout=log, stderr=log)
        for name, p in procs.items():
            wait_ready(ports[name], p)
        rows = []
        for level, c in enumerate(levels):
            for name in ("sputnik", "llama.cpp"):
                # Each level's prompts are new to both servers (same prompts for both engines at a level).
                r = loadtest(ports[name], "m", a.requests, c, a.max_tokens, a.timeout, a.prompt_tokens,
                             level * a.requests)
                rows.append((c, name, r))
                print(f"c={c:<3} {name:<9} ok={r['ok']}/{r['requests']} out={r['output_tok_s']:>7} tok/s "
                      f"ttft p50={r['ttft_p50_s']}s p99={r['ttft_p99_s']}s itl p50={r['itl_p50_ms']}ms "
                      f"prompt tokens={r.get('prompt_tokens_mean')}", flush=True)
        print("\n| concurrency | Sputnik tok/s | llama.cpp tok/s | ratio | Sputnik TTFT p50/p99 s | llama.cpp TTFT p50/p99 s |")
        print("|---|---|---|---|---|---|")
        for c in levels:
            s = next(r for cc, n, r in rows if cc == c and n == "sputnik")
            l = next(r for cc, n, r in rows if cc == c and n == "llama.cpp")
            ratio = s["output_tok_s"] / l["output_tok_s"] if l["output_tok_s"] else float("nan")
            print(f"| {c} | {s['output_tok_s']} | {l['output_tok_s']} | {ratio:.2f} | "
                  f"{s['ttft_p50_s']}/{s['ttft_p99_s']} | {l['ttft_p50_s']}/{l['ttft_p99_s']} |")
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
