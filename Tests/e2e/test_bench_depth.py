"""`sputnik-tools bench -d` (llama-bench's `-d/--n-depth`): the timed pp/tg tokens run after D tokens of context,
filled first in untimed prefill chunks; the test is named `tg4 @ d48` and the JSON row carries `n_depth`."""
import json
import subprocess

from conftest import MODEL, TOOLS_BIN


def bench(*args):
    r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-r", "1", "-t", "1", "--no-warmup", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_depth_rows_in_json_and_markdown():
    rows = json.loads(bench("-p", "8", "-n", "4", "-d", "0,600", "-o", "json"))
    got = [(r["n_prompt"], r["n_gen"], r["n_depth"]) for r in rows]
    assert got == [(8, 0, 0), (0, 4, 0), (8, 0, 600), (0, 4, 600)]   # 600: more than one 512-token fill chunk
    assert all(r["avg_ts"] > 0 for r in rows)
    table = bench("-p", "0", "-n", "4", "-d", "32")
    assert "tg4 @ d32" in table


def test_depth_beyond_the_context_is_refused_not_crashed():
    for depth in ("-5", "1000000"):   # SmolLM2's context is 8,192 tokens
        r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-p", "0", "-n", "4", "-d", depth],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "-d" in r.stderr, r.stderr


def test_bad_tests_and_paths_are_refused_before_any_model_is_benchmarked():
    """Helper's report of 2026-12-06: `-p 9000` blamed `-d`; `-m good,/missing` benchmarked the first model and then
    failed without printing it; `-p 0 -n 0` printed nothing and exited 0. Each is now refused up front, naming what
    is wrong, before any model is loaded."""
    def run(*args):
        return subprocess.run([TOOLS_BIN, "bench", *args], capture_output=True, text=True, timeout=60)
    r = run("-m", MODEL, "-p", "9000", "-n", "0", "-r", "1")
    assert r.returncode != 0 and "a test of 9000 tokens (-p/-n)" in r.stderr and "8192" in r.stderr, r.stderr
    r = run("-m", f"{MODEL},/nonexistent/x.gguf", "-p", "8", "-n", "0", "-r", "1")
    assert r.returncode != 0 and "/nonexistent/x.gguf" in r.stderr, r.stderr
    assert "loading" not in r.stderr and "pp8" not in r.stderr + r.stdout   # refused before the first model ran
    r = run("-m", MODEL, "-p", "0", "-n", "0")
    assert r.returncode != 0 and "nothing to benchmark" in r.stderr, r.stderr
    # Flag errors point at bench's own usage, not the tool's list of subcommands.
    for flags, word in [(("-r", "0"), "-r: at least 1"), (("-t", "0"), "-t: thread counts"), (("-p", "0", "-n", "0"), "nothing")]:
        r = run("-m", MODEL, *flags)
        assert r.returncode != 0 and word in r.stderr and "sputnik-tools bench --help" in r.stderr, r.stderr


def test_interleaved_depths_alternate_over_one_filled_context():
    """`--interleave-depths`: the tg tests at each depth, repetitions alternating (for ratios between depths measured
    seconds apart on a noisy machine); one row per depth with every repetition's sample; pp tests refused."""
    r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-r", "3", "-t", "1", "-p", "0", "-n", "4", "-d", "0,600",
                        "--interleave-depths", "-o", "json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["n_gen"], x["n_depth"]) for x in rows] == [(4, 0), (4, 600)]
    assert all(len(x["samples_ns"]) == 3 and x["avg_ts"] > 0 for x in rows)
    # Fill once, then alternate: the log names the tests once each, after the repetitions.
    assert r.stderr.count("tg4 @ d600") == 1, r.stderr
    r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-p", "8", "-n", "4", "-d", "0,32", "--interleave-depths"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--interleave-depths: tg tests only" in r.stderr, r.stderr
    # llama-bench's -ctk names the KV cache type too (helper-74: the help promised it, the parser read -c -t -k);
    # a model without MLA latent rows refuses q8_0.
    r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "-ctk", "bf16",
                        "-o", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["type_k"] == "bf16", r.stderr
    r = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "-ctk", "q8_0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "a q8_0 KV cache holds MLA latent rows" in r.stderr, r.stderr
