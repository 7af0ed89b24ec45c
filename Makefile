# The two commands: `make run` starts the app, `make test` runs the checks.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean browser

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing requirements. llama-cpp-python compiles from source the first time:"
	@echo "about five minutes on two cores."
	$(PY) -m pip install -r requirements.txt
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
