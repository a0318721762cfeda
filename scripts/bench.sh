#!/usr/bin/env bash
# bench.sh TOOLS_BIN MODEL [bench args...] — runs `sputnik-tools bench` (throughput + bandwidth probe + roofline),
# prints the result and appends a dated section to BENCHMARKS.md (or $BENCH_OUT).
set -euo pipefail
BIN=${1:?usage: bench.sh TOOLS_BIN MODEL [args...]}; MODEL=${2:?model}; shift 2
OUT=${BENCH_OUT:-BENCHMARKS.md}
cmd=("$BIN" bench -m "$MODEL" "$@")
[[ " $* " == *" --bandwidth "* ]] || cmd+=(--bandwidth)   # once, even when the caller passes it too
env_lines=$(scripts/bench-env.sh)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "+ ${cmd[*]}"
SPUTNIK_BUILD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) "${cmd[@]}" | tee "$tmp"
[ -f "$OUT" ] || printf '# Sputnik benchmarks\n\nSections are appended by `make bench` and `make bench-compare`; see the end of the file for how they are measured.\n' > "$OUT"
{
  printf '\n## %s — make bench\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$env_lines"
  echo "- Command: \`${cmd[*]}\`"
  echo
  cat "$tmp"
} >> "$OUT"
echo "appended to $OUT"
