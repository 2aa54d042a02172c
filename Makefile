# Coffer: `make demo` and `make test` set everything up themselves on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .make
APT_PACKAGES := softhsm2 postgresql chromium gnupg patroni etcd-server
DEMO_HOME ?= .coffer-demo

.PHONY: setup test test-fast demo lint bench soak clean

setup: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/npm

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	$(PYTHON) -c "import venv, ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml constraints.txt
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

$(STAMPS)/npm: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider -m "not slow and not browser"

demo: setup
	$(VENV)/bin/coffer demo --home $(DEMO_HOME) --report $(DEMO_HOME)/report.json

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy --strict src

soak: setup
	COFFER_CRASH_KILLS=1000 COFFER_QUEUE_KILLS=1000 $(VENV)/bin/pytest -q -p no:cacheprovider -s \
	  tests/crash/test_coordinator_kill.py tests/pipeline/test_crash.py

bench: setup
	@set -e; for f in bench/*.py; do echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf $(STAMPS) $(VENV) node_modules
