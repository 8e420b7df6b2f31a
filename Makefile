# voiceauth: every target does its own set-up (virtualenv in .venv, install, model fetch).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup model run demo test check bench-quick clean

# Debian packages the tests need (espeak-ng: IVR prompts and synthetic-speech tests; sox: audio tools;
# chromium: the console browser test; festival + voices and libsox-fmt-all (GSM, AMR-NB): the countermeasure's
# training corpus and telephone channel).
SYSDEPS := espeak-ng sox chromium festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts libsox-fmt-all

$(STAMP): pyproject.toml
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: install these Debian packages for the full test suite:$$missing"; fi; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

model: $(STAMP)
	$(VENV)/bin/voiceauth models fetch

run: model
	$(VENV)/bin/voiceauth serve

demo: model
	$(VENV)/bin/voiceauth demo

test: model
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy voiceauth models enrollment ivr benchmarks
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site   # the docs site (docs/)

bench-quick: model
	$(PY) -m benchmarks all --quick --out /tmp/voiceauth-bench-quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
