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
