# voiceauth: every target does its own set-up (virtualenv in .venv, install, model fetch).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup model demo test check bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

model: $(STAMP)
	$(VENV)/bin/voiceauth models fetch

demo: model
	$(VENV)/bin/voiceauth demo

test: model
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy voiceauth models enrollment ivr benchmarks

bench-quick: model
	$(PY) -m benchmarks.embed_latency --seconds 3 --repeats 5

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
