#!/usr/bin/env python3
"""Sputnik vs llama.cpp, same GGUF file, same pp/tg tests, same run: the two engines alternate round by round
(A B, B A, A B, ...) so that both see the same machine load, and the result is the ratio Sputnik / llama.cpp
per figure. Each engine runs in its own process per round (`sputnik-tools bench -o json`, scripts/bench_llamacpp.py
-o json). A model is skipped with a visible message when its file is absent or Sputnik cannot load it.

Usage: bench_compare.py --sputnik TOOLS_BIN --llamacpp-python PY --model FILE [--model FILE] [-p 512] [-n 128]
                        [-t 2] [-r 5] [--rounds 3] [--append BENCHMARKS.md]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env=None):
    """Runs cmd; returns (parsed JSON stdout or None, stderr text)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return json.loads(p.stdout), p.stderr


def warm_page_cache(path):
    """Reads `path` once so that its pages are in the page cache before the first round: otherwise the engine that
    runs first pays for the disk reads of every weight its warm-up did not touch (an MoE's unrouted experts), and the
    first round's ratio measures the disk. Skipped when the file does not fit in MemAvailable with 2 GiB to spare.
    Returns a line for the report."""
    size = os.path.getsize(path)
    avail = next(int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))
    if size > avail - (2 << 30):
        return f"page cache not warmed ({size / 2**30:.1f} GiB file, {avail / 2**30:.1f} GiB available)"
    t0 = time.time()
    with open(path, "rb", buffering=0) as f:
        while f.read(64 << 20):
            pass
    return f"file read into the page cache before round 1 ({size / 2**30:.1f} GiB in {time.time() - t0:.1f} s)"


def test_name(row):
    return f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sputnik", required=True, help="the sputnik-tools binary (its `bench` subcommand is run)")
    ap.add_argument("--llamacpp-python", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("-p", default="512")
    ap.add_argument("-n", default="128")
    ap.add_argument("-t", default="2")
    ap.add_argument("-r", default="5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--append")
    a = ap.parse_args()

    args = ["-p", a.p, "-n", a.n, "-t", a.t, "-r", a.r, "-o", "json"]
    engines = {
        "sputnik": [a.sputnik, "bench"] + args,
        "llama.cpp": [a.llamacpp_python, os.path.join(HERE, "bench_llamacpp.py")] + args,
    }
    load_start = open("/proc/loadavg").read().split()[:3]
    notes, tables = [], []
    kernels = set()   # the SIMD kernel set(s) Sputnik's JSON rows name
    for model in a.model:
        if not os.path.exists(model):
            msg = f"SKIPPED {model}: file not present in models/"
            print(msg, file=sys.stderr)
            notes.append(msg)
            continue
        # results[engine][(test, threads)] = [avg_ts per round]
        results = {e: {} for e in engines}
        meta = {}
        skipped = None
        warm = warm_page_cache(model)
        print(f"bench-compare: {os.path.basename(model)}: {warm}", file=sys.stderr)
        notes.append(f"{os.path.basename(model)}: {warm}")
        for rnd in range(a.rounds):
            order = list(engines) if rnd % 2 == 0 else list(reversed(list(engines)))
            for e in order:
                print(f"bench-compare: {os.path.basename(model)} round {rnd + 1}/{a.rounds}: {e}", file=sys.stderr)
                rows, err = run_json(engines[e] + ["-m", model])
                if rows is None:
                    if e == "sputnik":
                        skipped = f"SKIPPED {model}: Sputnik cannot load it yet ({err.splitlines()[-1] if err else 'no output'})"
                    else:
                        skipped = f"SKIPPED {model}: llama.cpp failed ({err.splitlines()[-1] if err else 'no output'})"
                    break
                for r in rows:
                    key = (test_name(r), r["n_threads"])
                    results[e].setdefault(key, []).append(r["avg_ts"])
                    print(f"    {key[0]} t={key[1]}: {r['avg_ts']:.2f} t/s", file=sys.stderr)
                    meta[e] = r
                    if e == "sputnik":
                        kernels.add(r.get("kernels", "?"))
            if skipped:
                break
        if skipped:
            print(skipped, file=sys.stderr)
            notes.append(skipped)
            continue
        lines = [f"**{meta['sputnik']['model_type']}** (`{model}`, {meta['sputnik']['model_size'] / 2**20:.1f} MiB)", "",
                 "| test | threads | Sputnik t/s (median of rounds) | llama.cpp t/s (median of rounds) "
                 "| Sputnik / llama.cpp (median of per-round ratios) | per round: Sputnik/llama.cpp t/s = ratio |",
                 "| --- | ---: | ---: | ---: | ---: | --- |"]
        for key in results["sputnik"]:
            s, l = results["sputnik"][key], results["llama.cpp"].get(key, [])
            if not l:
                continue
            ms, ml = statistics.median(s), statistics.median(l)
            ratios = [x / y for x, y in zip(s, l)]
            per = ", ".join(f"{x:.1f}/{y:.1f} = {x / y:.2f}" for x, y in zip(s, l))
            lines.append(f"| {key[0]} | {key[1]} | {ms:.2f} | {ml:.2f} | **{statistics.median(ratios):.2f}** | {per} |")
        tables.append("\n".join(lines))
        print("\n".join(lines))

    load_end = open("/proc/loadavg").read().split()[:3]
    version = subprocess.run([a.llamacpp_python, "-c", "import xllamacpp; print(xllamacpp.__version__)"],
                             stdout=subprocess.PIPE, text=True).stdout.strip() or "?"
    ref = (f"llama.cpp inside xllamacpp=={version} (prebuilt CPU wheel: AVX2/FMA/F16C, OpenMP, weight repacking), "
           "called through its C API and timed like llama-bench (scripts/bench_llamacpp.py)")
    summary = [f"- Sputnik's SIMD kernel set: {', '.join(sorted(kernels)) or '?'} (`SPUTNIK_KERNELS` caps it; the reference wheel is AVX2-only)",
               f"- Reference: {ref}",
               f"- {a.rounds} rounds, engines alternating (A B, B A, …), each round `-p {a.p} -n {a.n} -t {a.t} -r {a.r}` "
               f"with a warm-up; t/s figures are the median over rounds of each round's avg t/s; the ratio is the median of "
               f"the per-round ratios (each round's two runs are back to back, so they share the machine's load).",
               f"- Load average: {' '.join(load_start)} at start, {' '.join(load_end)} at end."]
    summary += [f"- {n}" for n in notes]
    body = "\n".join(summary) + "\n\n" + "\n\n".join(tables) + "\n"
    print("\n".join(summary))
    if a.append:
        with open(a.append, "a") as f:
            f.write(body)


if __name__ == "__main__":
    main()
