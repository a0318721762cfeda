# Sputnik — everything a fresh Debian machine needs is installed by these targets.
#   make serve   installs system packages, downloads the default model, builds (release) and serves on :8080
#   make test    the whole test suite (Swift unit/integration tests, then the end-to-end tests)
#   make bench   throughput (llama-bench style), memory bandwidth and decode roofline → BENCHMARKS.md
#   make bench-compare  the same pp512/tg128 on Sputnik and llama.cpp (xllamacpp), alternating → BENCHMARKS.md
SHELL := /bin/bash
MODELS_DIR ?= models
MODEL ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
CONFIG ?= Config/sputnik.yaml
SWIFT ?= swift
VENV ?= .venv
JOBS ?= $(shell nproc)
RELEASE_BIN := .build/release/sputnik

.PHONY: serve test deps models test-models models-all build build-tests test-swift test-e2e venv clean bench bench-compare bench-tokenize synth

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
	@$(VENV)/bin/python -c 'import openai, pytest' 2>/dev/null || \
	  $(VENV)/bin/pip install -q 'openai>=1.40,<3' 'pytest>=8,<10'

# One release build (with tests) serves both the Swift tests and the end-to-end tests.
build-tests: deps
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing -j $(JOBS)

test-swift: test-models build-tests
	SPUTNIK_MODELS_DIR=$(abspath $(MODELS_DIR)) $(SWIFT) test -c release --skip-build

test-e2e: test-models build-tests venv
	SPUTNIK_BIN=$(abspath $(RELEASE_BIN)) SPUTNIK_MODEL=$(abspath $(MODEL)) $(VENV)/bin/python -m pytest -q Tests/e2e

test: test-swift test-e2e

# Benchmarks (BENCHMARKS.md explains the definitions). BENCH_ARGS are `sputnik bench` flags.
BENCH_MODEL ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
BENCH_ARGS ?= -p 512 -n 128 -t 1,2 -r 5
BENCH_COMPARE_MODELS ?= $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf $(MODELS_DIR)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

bench: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@scripts/bench.sh $(RELEASE_BIN) $(BENCH_MODEL) $(BENCH_ARGS)

bench-compare: models
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	@scripts/bench-compare.sh $(RELEASE_BIN) $(BENCH_COMPARE_MODELS)

# Tokenizer encode speed on a ~1 MB mixed corpus: the Qwen2 (BPE, 152k) and Gemma-3 (SentencePiece, 262k) vocabularies.
bench-tokenize: deps
	@scripts/fetch-models.sh $(MODELS_DIR) gemma3
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	$(RELEASE_BIN) bench-tokenize -m Tests/Fixtures/tokenizer/ggml-vocab-qwen2.gguf -m $(MODELS_DIR)/gemma-3-270m-q4_k_m.gguf

clean:
	rm -rf .build $(VENV)

# Full-size synthetic DeepSeek-V2-Lite models (random weights, real shapes) for MoE benchmarks: ~10 GB + ~17 GB.
SYNTH := $(MODELS_DIR)/synth-deepseek-v2-lite
synth: $(SYNTH).q4_k.gguf $(SYNTH).q8_0.gguf

$(SYNTH).%.gguf:
	@mkdir -p $(MODELS_DIR)
	$(SWIFT) build -c release --product sputnik -j $(JOBS)
	$(RELEASE_BIN) synth --arch deepseek2 --preset v2-lite --type $* --out $@.part && mv $@.part $@
