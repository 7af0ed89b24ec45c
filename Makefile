# The two commands: `make run` starts the app, `make test` runs the checks.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean browser

# llama-cpp-python is built for a portable x86-64 baseline (AVX2, FMA, F16C, BMI2), never for
# the build machine (-march=native): a native build can die with SIGILL on another CPU, or
# in a VM that hides instructions its CPU advertises (AMX). For a native build on your own
# machine: make clean && make run LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
	-DGGML_AMX_BF16=OFF

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing requirements. llama-cpp-python compiles from source the first time:"
	@echo "about five minutes on two cores."
	# --no-cache-dir: never reuse a wheel built earlier with other (native) flags.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(PY) -m pip install --no-cache-dir \
		-r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -r requirements-dev.txt
	@touch $@

run: $(VENV)/.installed
	@echo "Starting PDR Inspector. With no OPENAI_BASE_URL or OPENAI_API_KEY set it runs on the"
	@echo "bundled SmolLM2-135M model: a small demo model, quick and not clever."
	$(PY) -m streamlit run app.py

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	  else \
	    echo "Chromium is not installed and cannot be installed here (needs root and"; \
	    echo "apt-get): the browser tests will skip. Install the 'chromium' package."; \
	  fi; }

test: $(VENV)/.dev-installed browser
	$(PY) -m ruff check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Benchmarks, not tests: every figure against its limit; about five minutes on two cores.
# BENCH_ARGS="--markdown FILE" also writes the table for BENCHMARKS.md.
.PHONY: bench
bench: $(VENV)/.dev-installed
	$(PY) -m bench $(BENCH_ARGS)
