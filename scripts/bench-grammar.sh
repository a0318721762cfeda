#!/usr/bin/env bash
# bench-grammar.sh TOOLS_BIN MODEL... — constrained (JSON schema) vs unconstrained decode per step
# (`sputnik-tools bench-grammar`), printed and appended as a dated section to BENCHMARKS.md (or $BENCH_OUT).
set -euo pipefail
BIN=${1:?usage: bench-grammar.sh TOOLS_BIN MODEL...}; shift
OUT=${BENCH_OUT:-BENCHMARKS.md}
cmd=("$BIN" bench-grammar -n "${BENCH_GRAMMAR_N:-128}" -r "${BENCH_GRAMMAR_R:-5}")
for m in "$@"; do cmd+=(-m "$m"); done
env_lines=$(scripts/bench-env.sh)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "+ ${cmd[*]}"
SPUTNIK_BUILD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) "${cmd[@]}" | tee "$tmp"
{
  printf '\n## %s — make bench: constrained decoding (response_format)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$env_lines"
  echo "- Command: \`${cmd[*]}\`"
  echo
  cat "$tmp"
} >> "$OUT"
echo "appended to $OUT"
