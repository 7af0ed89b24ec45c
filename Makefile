# The two commands: `make run` starts the app, `make test` runs the checks.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean

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

test: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
