# Two commands for a fresh machine: `make run` (install + run the embedded default) and
# `make test` (install + run the whole test suite). Both create .venv on first use.
# `make serve`: the production front (nginx → gunicorn, deploy/front.py) on UCC_PORT; Ctrl-C stops it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run serve test bench system-deps clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.prod: $(VENV)/.runtime requirements-prod.txt
	$(PY) -m pip install -q -r requirements-prod.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-prod.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py

# system-deps: nginx (and gcc for requirements-prod.txt). The schema is created or migrated first;
# the demo city is `$(PY) -m flask --app app seed-demo` (not done here: a real city imports its own grid).
serve: system-deps $(VENV)/.prod
	$(PY) -m flask --app app init-db
	$(PY) deploy/front.py

system-deps:
	bash scripts/ensure_system_deps.sh

# system-deps first: the dev requirements build a C extension (gcc), the browser tests need Chromium
test: system-deps $(VENV)/.dev
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/bench_locator.py

clean:
	rm -rf $(VENV) var
