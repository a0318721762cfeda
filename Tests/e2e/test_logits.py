"""`sputnik-tools logits`: every position's logits of a token sequence as raw little-endian float32, and --top K.

Uses the tiny qwen2 fixture (F32 weights) and its HF reference logits (Tests/Fixtures/dense/qwen2-tiny).
"""
import json
import os
import struct
import subprocess
import tempfile

from conftest import TOOLS_BIN

FIX = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "dense", "qwen2-tiny")


def test_logits_file_matches_hf_and_top_k():
    manifest = json.load(open(os.path.join(FIX, "manifest.json")))
    ids = manifest["sequences"]["9"]
    vocab = 512
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.f32")
        r = subprocess.run([TOOLS_BIN, "logits", "--model", os.path.join(FIX, "qwen2-tiny.f32.gguf"),
                            "--tokens", ",".join(map(str, ids)), "--out", out, "--top", "2",
                            "--threads", "2", "--kv-cache-type", "f32"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        data = open(out, "rb").read()
    assert len(data) == len(ids) * vocab * 4
    got = struct.unpack(f"<{len(ids) * vocab}f", data)
    want_raw = open(os.path.join(FIX, "hf_logits.s9.f32"), "rb").read()
    want = struct.unpack(f"<{len(ids) * vocab}f", want_raw)
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-3
    lines = r.stdout.strip().split("\n")
    assert len(lines) == len(ids)
    for t, line in enumerate(lines):
        pos, tok, tops = line.split("\t")
        assert int(pos) == t and int(tok) == ids[t]
        row = want[t * vocab:(t + 1) * vocab]
        best = int(tops.split(" ")[0].split(":")[0])
        assert best == max(range(vocab), key=lambda i: row[i])


def test_logits_rejects_bad_token():
    r = subprocess.run([TOOLS_BIN, "logits", "--model", os.path.join(FIX, "qwen2-tiny.f32.gguf"),
                        "--tokens", "1,99999", "--top", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "outside the vocabulary" in r.stderr
