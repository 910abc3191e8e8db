# Two commands for a fresh machine: `make run` (install + run the embedded default) and
# `make test` (install + run the whole test suite). Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test bench system-deps clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-prod.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py

system-deps:
	bash scripts/ensure_system_deps.sh

# system-deps first: the dev requirements build a C extension (gcc), the browser tests need Chromium
test: system-deps $(VENV)/.dev
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/bench_locator.py

clean:
	rm -rf $(VENV) var
