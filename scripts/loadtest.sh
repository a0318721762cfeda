#!/usr/bin/env bash
# loadtest.sh BIN MODEL [OUT] — guidellm (PyPI, unmodified) against `sputnik serve`: a sweep of request rates
# (guidellm's `sweep` profile: synchronous, throughput, then constant rates between them) on each OpenAI endpoint
# the server answers (/v1/chat/completions, and /v1/completions where the server has it), synthetic prompts of
# LOADTEST_PROMPT tokens asking for LOADTEST_OUTPUT tokens. Writes OUT/<endpoint>.json (guidellm's report) and prints
# a Markdown summary. guidellm needs a Hugging Face tokenizer for its synthetic prompts: it is made offline from the
# GGUF (transformers + gguf), since the hub is not reachable.
set -euo pipefail
BIN=${1:?usage: loadtest.sh BIN MODEL [OUT]}; MODEL=${2:?usage: loadtest.sh BIN MODEL [OUT]}; OUT=${3:-bench-out/loadtest}
VENV=${LOADTEST_VENV:-.venv-loadtest}
PROMPT=${LOADTEST_PROMPT:-128}; OUTPUT=${LOADTEST_OUTPUT:-64}; SWEEP=${LOADTEST_SWEEP:-6}; SECS=${LOADTEST_SECONDS:-30}
# The sweep's throughput stage opens this many concurrent requests (guidellm's default, 512, only measures the 429s
# beyond --max-queued-requests); its constant rates are then spread up to the throughput it measured.
CONC=${LOADTEST_CONCURRENCY:-16}
THREADS=${LOADTEST_THREADS:-$(nproc)}
mkdir -p "$OUT"
if ! "$VENV/bin/python" -c 'import guidellm, gguf' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'guidellm==0.8.1' 'gguf>=0.10'
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$VENV/bin/python" - "$MODEL" "$OUT/tokenizer" <<'PY'
import os, sys
from transformers import AutoTokenizer
model, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model)), gguf_file=os.path.basename(model))
tok.save_pretrained(out)
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ALIAS=$(basename "$MODEL" .gguf)
"$BIN" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --threads "$THREADS" --alias "$ALIAS" --log-level warning \
  > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.5; done
echo "sputnik $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $ALIAS, $THREADS threads, prompt $PROMPT / output $OUTPUT tokens, sweep of $SWEEP (throughput stage at $CONC concurrent), ${SECS}s each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for endpoint in /v1/chat/completions /v1/completions; do
  name=$(basename "$endpoint")
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT$endpoint" -H 'Content-Type: application/json' -d '{}')
  if [ "$code" = 404 ]; then echo "$endpoint: not served by this build (404), skipped"; continue; fi
  "$VENV/bin/guidellm" run --disable-progress \
    --backend "kind=openai_http,target=http://127.0.0.1:$PORT,model=$ALIAS,http2=false,request_format=$endpoint" \
    --tokenizer "kind=huggingface_auto,model=$OUT/tokenizer" \
    --data "kind=synthetic_text,prompt_tokens=$PROMPT,output_tokens=$OUTPUT" \
    --profile "kind=sweep,sweep_size=$SWEEP,max_concurrency=$CONC" --constraint "kind=max_duration,seconds=$SECS" \
    --output "kind=json,path=$OUT/$name.json" > "$OUT/$name.log" 2>&1
  "$VENV/bin/python" - "$OUT/$name.json" "$endpoint" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"\n{sys.argv[2]}\n")
print("| strategy | requests ok / errored | req/s | output tok/s | TTFT p50 / p95 (ms) | ITL p50 (ms) | latency p50 (s) |")
print("|---|---|---|---|---|---|---|")
for b in d["benchmarks"]:
    s, m = b["config"]["strategy"], b["metrics"]
    name = s["type_"] + (f"@{s['rate']:.2f}" if s.get("rate") else "") + (f"@{s['max_concurrency']}" if s["type_"] == "throughput" else "")
    ok, err = m["request_totals"]["successful"], m["request_totals"]["errored"]
    g = lambda k: m[k]["successful"]
    print(f"| {name} | {ok} / {err} | {g('requests_per_second')['mean']:.2f} | {g('output_tokens_per_second')['mean']:.1f} | "
          f"{g('time_to_first_token_ms')['median']:.0f} / {g('time_to_first_token_ms')['percentiles']['p95']:.0f} | "
          f"{g('inter_token_latency_ms')['median']:.1f} | {g('request_latency')['median']:.2f} |")
PY
done
