#!/usr/bin/env bash
# bench-compare.sh TOOLS_BIN [MODEL...] — installs llama.cpp's Python packaging (xllamacpp, a prebuilt CPU wheel)
# into .venv-bench, runs pp512/tg128 with 2 threads on Sputnik and llama.cpp alternately (scripts/bench_compare.py)
# and appends the ratios to BENCHMARKS.md (or $BENCH_OUT).
set -euo pipefail
BIN=${1:?usage: bench-compare.sh TOOLS_BIN [MODEL...]}; shift
[ $# -eq 0 ] && set -- models/SmolLM2-135M-Instruct.Q4_1.gguf models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
VENV=${BENCH_VENV:-.venv-bench}
XLLAMACPP=${XLLAMACPP:-xllamacpp==2026.10.11549}
OUT=${BENCH_OUT:-BENCHMARKS.md}
ROUNDS=${BENCH_ROUNDS:-3}
BENCH_ARGS=(-p "${BENCH_P:-512}" -n "${BENCH_N:-128}" -t "${BENCH_T:-2}" -r "${BENCH_R:-5}")
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import xllamacpp' 2>/dev/null || "$VENV/bin/pip" install -q "$XLLAMACPP"
env_lines=$(scripts/bench-env.sh)
models=(); for m in "$@"; do models+=(--model "$m"); done
cmd=(scripts/bench_compare.py --sputnik "$BIN" --llamacpp-python "$VENV/bin/python" "${models[@]}" "${BENCH_ARGS[@]}" --rounds "$ROUNDS")
echo "+ ${cmd[*]}"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{
  printf '\n## %s — make bench-compare (Sputnik vs llama.cpp)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$env_lines"
  echo "- Command: \`${cmd[*]}\`"
} > "$tmp"
SPUTNIK_BUILD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) python3 "${cmd[@]}" --append "$tmp"
cat "$tmp" >> "$OUT"
echo "appended to $OUT"
