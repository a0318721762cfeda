#!/usr/bin/env bash
# bench-moe.sh TOOLS_BIN SPUTNIK_BIN MODEL... — the full-size MoE benchmark of `make bench-moe`, appended to
# BENCHMARKS.md (or $BENCH_OUT) as one section:
#   1. the memory read-bandwidth probe alone (1 thread and every CPU: what the machine can do);
#   2. per model, Sputnik tg with the probe in the same process (decode roofline fraction) and its peak RSS, then
#      tg at depth ($BENCH_DEPTHS, default 4096 then 0: `bench -d`);
#   3. per model, Sputnik vs llama.cpp (xllamacpp) pp/tg pairs, alternating (scripts/bench_compare.py);
#   4. per model, `sputnik serve` load time, 1/4/8 concurrent streams and peak RSS (scripts/bench_moe_serve.py).
# Only one model process runs at a time (the files are 10–17 GB). Not part of `make test`.
set -euo pipefail
TOOLS=${1:?usage: bench-moe.sh TOOLS_BIN SPUTNIK_BIN MODEL...}; BIN=${2:?}; shift 2
OUT=${BENCH_OUT:-BENCHMARKS.md}
VENV=${BENCH_VENV:-.venv-bench}
XLLAMACPP=${XLLAMACPP:-xllamacpp==2026.10.11549}
P=${BENCH_P:-128}; N=${BENCH_N:-32}; R=${BENCH_R:-2}; ROUNDS=${BENCH_ROUNDS:-2}; T=${BENCH_T:-2}
DEPTHS=${BENCH_DEPTHS:-4096,0}   # depth 0 last: its expert pages are then already faulted in
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import xllamacpp' 2>/dev/null || "$VENV/bin/pip" install -q "$XLLAMACPP"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{
  printf '\n## %s — make bench-moe (full-size synthetic DeepSeek-V2-Lite)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  scripts/bench-env.sh
  echo ""
  echo "### Memory read bandwidth (sputnik-tools bench --bandwidth: AVX2 read loop, 512 MiB, best of 7)"
  echo ""
  "$TOOLS" bench --bandwidth -t "$T" 2>/dev/null | sed -n '/read bandwidth/,$p'
} > "$tmp"
for m in "$@"; do
  if [ ! -f "$m" ]; then echo "- $m: absent, skipped" >> "$tmp"; continue; fi
  {
    echo ""
    echo "### $(basename "$m")"
    echo ""
    echo "Decode roofline, same process (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    echo ""
    "$TOOLS" bench -m "$m" -p 0 -n "$N" -t "$T" -r "$R" --bandwidth 2>/dev/null
    echo ""
    echo "Decode at depth (MLA's latent cache; -d $DEPTHS, the context filled first, untimed; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    echo ""
    "$TOOLS" bench -m "$m" -p 0 -n "$N" -t "$T" -r "$R" -d "$DEPTHS" 2>/dev/null
    echo ""
    echo "Sputnik vs llama.cpp (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
  } >> "$tmp"
  SPUTNIK_BUILD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) python3 scripts/bench_compare.py \
    --sputnik "$TOOLS" --llamacpp-python "$VENV/bin/python" --model "$m" -p "$P" -n "$N" -t "$T" -r "$R" \
    --rounds "$ROUNDS" --append "$tmp"
  {
    echo ""
    echo "Serving (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    echo ""
    python3 scripts/bench_moe_serve.py --bin "$BIN" --model "$m" --threads "$T" --rounds 2
  } >> "$tmp"
done
cat "$tmp" >> "$OUT"
cat "$tmp"
echo "appended to $OUT"
