# Coffer: `make demo` and `make test` set everything up themselves on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
# Debian's interpreter first: every Unix user can run it (the demo runs each key holder as its own user;
# an interpreter under /root is out of their reach).
PYTHON ?= $(shell test -x /usr/bin/python3.11 && echo /usr/bin/python3.11 || command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .make
APT_PACKAGES := softhsm2 postgresql chromium gnupg patroni etcd-server
DEMO_HOME ?= .coffer-demo

.PHONY: setup test test-fast demo lint bench soak clean lock

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

# Exactly what was tested: every package (build tools too) pinned by hash in requirements.lock, then
# Coffer itself without dependencies. `make lock` remakes the lock from pyproject.toml and constraints.txt.
$(STAMPS)/venv: pyproject.toml requirements.lock
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

lock:
	@test -x $(STAMPS)/pip-tools/bin/pip-compile || $(PYTHON) -m venv $(STAMPS)/pip-tools
	$(STAMPS)/pip-tools/bin/pip install -q --disable-pip-version-check pip-tools==7.6.2
	$(STAMPS)/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	  --extra dev -c constraints.txt --no-emit-index-url -o requirements.lock pyproject.toml

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

# Every benchmark runs (one at a time); the run fails afterwards if any missed a target.
bench: setup
	@failed=""; for f in $$(ls bench/*.py | grep -v bench/verdict.py); do echo "== $$f"; \
	  $(PY) $$f || failed="$$failed $$f"; done; \
	if [ -n "$$failed" ]; then echo "benchmarks that missed a target or failed:$$failed"; exit 1; fi

clean:
	rm -rf $(STAMPS) $(VENV) node_modules
