#!/usr/bin/env bash
# loadtest.sh BIN MODEL [OUT] — guidellm (PyPI, unmodified) against `sputnik serve` and then against llama.cpp's
# server (the xllamacpp wheel from PyPI, in .venv-bench as `make bench-compare` uses it), one server at a time on the
# same model, slots and context: a sweep of request rates (guidellm's `sweep` profile: synchronous, throughput, then
# constant rates between them) on each OpenAI endpoint (/v1/chat/completions and /v1/completions; one a server
# answers 404 is skipped), synthetic prompts of LOADTEST_PROMPT tokens asking for LOADTEST_OUTPUT tokens. Writes
# OUT/<engine>-<chat-completions|completions>.json (guidellm's report) and prints a Markdown summary (engine column).
# LOADTEST_ENGINES="sputnik" skips llama.cpp. guidellm needs a Hugging Face tokenizer for its synthetic prompts: it
# is made offline from the GGUF (transformers + gguf), since the hub is not reachable.
set -euo pipefail
BIN=${1:?usage: loadtest.sh BIN MODEL [OUT]}; MODEL=${2:?usage: loadtest.sh BIN MODEL [OUT]}; OUT=${3:-bench-out/loadtest}
VENV=${LOADTEST_VENV:-.venv-loadtest}
PROMPT=${LOADTEST_PROMPT:-128}; OUTPUT=${LOADTEST_OUTPUT:-64}; SWEEP=${LOADTEST_SWEEP:-6}; SECS=${LOADTEST_SECONDS:-30}
# The sweep's throughput stage opens this many concurrent requests (guidellm's default, 512, only measures the 429s
# beyond --max-queued-requests); its constant rates are then spread up to the throughput it measured.
CONC=${LOADTEST_CONCURRENCY:-16}
THREADS=${LOADTEST_THREADS:-$(nproc)}
mkdir -p "$OUT"
# torch pinned to its CPU build (guidellm otherwise pulls CUDA torch and the nvidia-* wheels: a 5.9 GB venv instead
# of 1.5 GB): from pip's find-links folder where the machine has one (these machines: /opt/wheels), else PyTorch's
# CPU index.
TORCH=${LOADTEST_TORCH:-torch==2.13.0+cpu}
if ! "$VENV/bin/python" -c 'import guidellm, gguf' 2>/dev/null; then
  python3 -m venv "$VENV"
  echo "$TORCH" > "$VENV/constraints.txt"
  extra=()
  "$VENV/bin/pip" download -q --no-deps --no-index -d "$VENV/.torch-probe" "$TORCH" >/dev/null 2>&1 ||
    extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
  rm -rf "$VENV/.torch-probe"
  "$VENV/bin/pip" install -q -c "$VENV/constraints.txt" "${extra[@]}" 'guidellm==0.8.1' 'gguf>=0.10'
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$VENV/bin/python" - "$MODEL" "$OUT/tokenizer" <<'PY'
import os, sys
from transformers import AutoTokenizer
model, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model)), gguf_file=os.path.basename(model))
tok.save_pretrained(out)
PY
ENGINES=${LOADTEST_ENGINES:-sputnik llama.cpp}
# Both servers decode up to SLOTS requests at once with CTX tokens of context each.
SLOTS=${LOADTEST_SLOTS:-8}; CTX=${LOADTEST_CTX:-1024}
LLAMA_VENV=${LOADTEST_LLAMACPP_VENV:-.venv-bench}; XLLAMACPP=${XLLAMACPP:-xllamacpp==2026.10.11549}
case " $ENGINES " in *" llama.cpp "*)
  test -x "$LLAMA_VENV/bin/python" || python3 -m venv "$LLAMA_VENV"
  "$LLAMA_VENV/bin/python" -c 'import xllamacpp' 2>/dev/null || "$LLAMA_VENV/bin/pip" install -q "$XLLAMACPP";;
esac
# llama.cpp's HTTP server inside the xllamacpp wheel: MODEL PORT SLOTS CTX THREADS ALIAS.
LLAMACPP_SERVER='
import sys, time, xllamacpp as xl
p = xl.CommonParams()
p.model.path, p.port, p.n_parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p.n_ctx = int(sys.argv[4]) * int(sys.argv[3])
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = int(sys.argv[5])
p.model_alias = {sys.argv[6]}
s = xl.Server(p)
print("ready", flush=True)
while True:
    time.sleep(3600)
'
ALIAS=$(basename "$MODEL" .gguf)
SERVER=""
stop_server() { if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; fi; }
trap stop_server EXIT
echo "$(git rev-parse --short HEAD 2>/dev/null || echo '?'), $ALIAS, $THREADS threads, $SLOTS slots of $CTX tokens, prompt $PROMPT / output $OUTPUT tokens, sweep of $SWEEP (throughput stage at $CONC concurrent), ${SECS}s each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for engine in $ENGINES; do
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  case "$engine" in
    sputnik)
      "$BIN" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --threads "$THREADS" --alias "$ALIAS" \
        --max-num-seqs "$SLOTS" --ctx-size "$CTX" --log-level warning > "$OUT/server-sputnik.log" 2>&1 &
      SERVER=$!; version="sputnik $(git rev-parse --short HEAD 2>/dev/null || echo '?')";;
    llama.cpp)
      "$LLAMA_VENV/bin/python" -c "$LLAMACPP_SERVER" "$MODEL" "$PORT" "$SLOTS" "$CTX" "$THREADS" "$ALIAS" \
        > "$OUT/server-llama.cpp.log" 2>&1 &
      SERVER=$!; version="llama.cpp ($("$LLAMA_VENV/bin/python" -c 'import xllamacpp; print("xllamacpp", xllamacpp.__version__)'))";;
    *) echo "unknown engine '$engine' (sputnik, llama.cpp)" >&2; exit 2;;
  esac
  for _ in $(seq 1 240); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || { echo "$engine did not start (see $OUT/server-$engine.log)" >&2; exit 1; }
  echo; echo "### $version, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  for endpoint in /v1/chat/completions /v1/completions; do
    name=$engine-$(echo "${endpoint#/v1/}" | tr / -)
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT$endpoint" -H 'Content-Type: application/json' -d '{}')
    if [ "$code" = 404 ]; then echo "$endpoint: not served by $engine (404), skipped"; continue; fi
    "$VENV/bin/guidellm" run --disable-progress \
      --backend "{\"kind\":\"openai_http\",\"target\":\"http://127.0.0.1:$PORT\",\"model\":\"$ALIAS\",\"http2\":false,\"request_format\":\"$endpoint\"}" \
      --tokenizer "kind=huggingface_auto,model=$OUT/tokenizer" \
      --data "kind=synthetic_text,prompt_tokens=$PROMPT,output_tokens=$OUTPUT" \
      --profile "kind=sweep,sweep_size=$SWEEP,max_concurrency=$CONC" --constraint "kind=max_duration,seconds=$SECS" \
      --output "kind=json,path=$OUT/$name.json" > "$OUT/$name.log" 2>&1 ||
      { echo; echo "$engine $endpoint: guidellm failed: $(grep -E '^[A-Za-z]*Error' "$OUT/$name.log" | tail -1) (log: $OUT/$name.log)"; continue; }
    "$VENV/bin/python" - "$OUT/$name.json" "$endpoint" "$engine" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"\n{sys.argv[3]} {sys.argv[2]} (load average after: {open('/proc/loadavg').read().split()[0]})\n")
print("| engine | strategy | requests ok / errored | req/s | output tok/s | TTFT p50 / p95 (ms) | ITL p50 (ms) | latency p50 (s) |")
print("|---|---|---|---|---|---|---|---|")
for b in d["benchmarks"]:
    s, m = b["config"]["strategy"], b["metrics"]
    name = s["type_"] + (f"@{s['rate']:.2f}" if s.get("rate") else "") + (f"@{s['max_concurrency']}" if s["type_"] == "throughput" else "")
    ok, err = m["request_totals"]["successful"], m["request_totals"]["errored"]
    g = lambda k: m[k]["successful"]
    print(f"| {sys.argv[3]} | {name} | {ok} / {err} | {g('requests_per_second')['mean']:.2f} | {g('output_tokens_per_second')['mean']:.1f} | "
          f"{g('time_to_first_token_ms')['median']:.0f} / {g('time_to_first_token_ms')['percentiles']['p95']:.0f} | "
          f"{g('inter_token_latency_ms')['median']:.1f} | {g('request_latency')['median']:.2f} |")
PY
  done
  stop_server
done
