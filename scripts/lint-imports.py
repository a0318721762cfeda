#!/usr/bin/env python3
"""Checks the target layout's import arrows (README "How it is built"; the design's targets table).

1. Every product target's declared dependencies (Package.swift, read with `swift package dump-package`) are
   within what the layout allows it: the targets in its row of ALLOWED and everything those reach in turn.
   A target never depends on one above it, and the HTTP server, the scheduler, the kernels know nothing of
   the layers above them.
2. Every `import X` of a project module in a target's Swift sources is declared in Package.swift for that target
   (MemberImportVisibility makes the compiler enforce the same for members; this names the file and line).

Exit 0 when both hold; otherwise print each violation and exit 1.
"""
import json
import os
import re
import subprocess
import sys

# Each product target's direct imports as the layout draws them (top of the stack last).
ALLOWED = {
    "CKernels": [],
    "COpenBLAS": [],
    "CQuantize": ["CKernels"],
    "JSON": [],
    "Compute": ["CKernels", "COpenBLAS"],
    "GGUF": [],
    "GGUFWriting": ["GGUF"],
    "Tokenizer": ["GGUF"],
    "ChatTemplate": ["JSON"],
    "Grammar": ["JSON", "Tokenizer"],
    "Model": ["Compute", "GGUF"],
    "Scheduling": [],
    "Engine": ["Model", "Compute", "Scheduling", "Tokenizer", "ChatTemplate", "Grammar", "GGUF"],
    "OpenAIAPI": ["JSON"],
    "CZlib": [],
    "COpenSSL": [],
    "HTTPServer": ["CZlib", "COpenSSL"],
    "Server": ["HTTPServer", "OpenAIAPI", "Engine"],
    "sputnik": ["Server"],
    "sputnik-tools": ["Model", "GGUF", "GGUFWriting", "Tokenizer", "CQuantize", "JSON", "Grammar"],
    "TestSupport": [],
}


def reach(name: str, seen=None) -> set:
    """`name`'s allowed imports and everything they allow in turn."""
    seen = set() if seen is None else seen
    for d in ALLOWED.get(name, []):
        if d not in seen:
            seen.add(d)
            reach(d, seen)
    return seen


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dump = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                     capture_output=True, text=True).stdout)
    targets = {t["name"]: t for t in dump["targets"]}
    project = set(targets)
    errors = []
    for name, t in targets.items():
        deps = [list(d.values())[0][0] for d in t["dependencies"]]
        local = [d for d in deps if d in project]
        if t["type"] == "test":
            allowed = project  # tests may build on anything; their imports must still be declared
        elif name in ALLOWED:
            allowed = reach(name)
        else:
            errors.append(f"{name}: a target the layout does not know (add it to scripts/lint-imports.py and the README)")
            continue
        for d in local:
            if d not in allowed:
                errors.append(f"Package.swift: {name} depends on {d}, which the layout does not allow it")
        if t["type"] == "system":
            continue
        path = t.get("path") or os.path.join("Tests" if t["type"] == "test" else "Sources", name)
        for dirpath, _, files in os.walk(os.path.join(root, path)):
            for f in files:
                if not f.endswith(".swift"):
                    continue
                full = os.path.join(dirpath, f)
                for n, line in enumerate(open(full, encoding="utf-8"), 1):
                    m = re.match(r"\s*(?:@testable\s+|@_exported\s+)?import\s+(?:\w+\s+)?(\w+)", line)
                    if m and m.group(1) in project and m.group(1) != name and m.group(1) not in local:
                        errors.append(f"{os.path.relpath(full, root)}:{n}: imports {m.group(1)}, "
                                      f"not declared for {name} in Package.swift")
    for e in errors:
        print(e)
    print(f"lint-imports: {len(targets)} targets checked, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
