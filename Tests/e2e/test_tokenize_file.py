"""`sputnik tokenize --file` reads the file byte for byte (issue 20.2): a leading U+FEFF is text, not an encoding mark.

For every vocabulary in Tests/Fixtures/tokenizer, the corpus texts that start with a BOM are written to a file and
tokenized with `--file`; the ids must equal llama.cpp's (`ids_plain`, recorded in the fixture) and `--text`'s. A double
BOM must give the BOM's ids twice, as llama.cpp and `POST /tokenize` do.
"""
import json
import pathlib
import subprocess

import pytest

from conftest import BIN

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Fixtures" / "tokenizer"
VOCABS = sorted(p for p in FIXTURES.glob("*.gguf"))


def tokenize(vocab: pathlib.Path, *args: str) -> list:
    r = subprocess.run([BIN, "tokenize", "-m", str(vocab), *args], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def bom_cases(vocab: pathlib.Path) -> list:
    rows = [json.loads(line) for line in (FIXTURES / (vocab.stem + ".jsonl")).read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["text"].startswith("\ufeff")]


@pytest.mark.parametrize("vocab", VOCABS, ids=[v.stem for v in VOCABS])
def test_leading_bom_is_kept(vocab, tmp_path):
    cases = bom_cases(vocab)
    assert cases, f"{vocab.stem}: the fixture has no text starting with a BOM"
    for case in cases:
        f = tmp_path / "in.txt"
        f.write_bytes(case["text"].encode("utf-8"))
        assert tokenize(vocab, "--file", str(f)) == case["ids_plain"], case["text"]
        assert tokenize(vocab, "--text", case["text"]) == case["ids_plain"]


@pytest.mark.parametrize("vocab", VOCABS, ids=[v.stem for v in VOCABS])
def test_double_bom_gives_two_boms(vocab, tmp_path):
    single = tmp_path / "one.txt"
    single.write_bytes("\ufeffdouble BOM".encode("utf-8"))
    double = tmp_path / "two.txt"
    double.write_bytes("\ufeff\ufeffdouble BOM".encode("utf-8"))
    one = tokenize(vocab, "--file", str(single))
    two = tokenize(vocab, "--file", str(double))
    assert two == tokenize(vocab, "--text", "\ufeff\ufeffdouble BOM")
    assert two != one  # (a vocabulary may merge the two BOMs into one token: deepseek-llm does)
    # Detokenized, the ids give back both BOMs (a leading-space vocabulary may prefix a space).
    text_two = subprocess.run([BIN, "detokenize", "-m", str(vocab), "--ids", ",".join(map(str, two))],
                              capture_output=True, timeout=60)
    assert text_two.returncode == 0
    assert text_two.stdout.decode("utf-8").lstrip(" ").startswith("\ufeff\ufeffdouble")


def test_invalid_utf8_file_is_refused(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"ok \xff\xfe not utf-8")
    r = subprocess.run([BIN, "tokenize", "-m", str(VOCABS[0]), "--file", str(f)], capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"not valid UTF-8" in r.stderr and b"offset 3" in r.stderr
