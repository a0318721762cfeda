"""The served binary carries only the product CLI; the developer tools live in `sputnik-tools` (design rule 12)."""
import subprocess

from conftest import BIN, TOOLS_BIN

PRODUCT = ["serve", "chat", "info", "tokenize", "detokenize", "template"]
TOOLS = ["bench", "bench-tokenize", "logits", "synth"]


def subcommands(binary: str) -> set:
    out = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True, timeout=60).stdout
    section = out.split("SUBCOMMANDS:", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()}


def test_served_binary_has_only_product_commands():
    assert subcommands(BIN) >= set(PRODUCT)
    assert not subcommands(BIN) & set(TOOLS)
    r = subprocess.run([BIN, "bench"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "bench" in r.stderr


def test_tools_binary_has_the_tools():
    assert subcommands(TOOLS_BIN) >= set(TOOLS)
    assert not subcommands(TOOLS_BIN) & set(PRODUCT)
