# Two commands matter: `make dev` runs the product locally, `make test` runs every check.
# Both create what they need on first use (virtual environments, dependencies).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs Python 3.13, so tests and builds do too. pyenv machines have it installed but not
# activated: look for it on PATH first, then in pyenv's versions folder.
PYTHON313 ?= $(shell for py in $$(ls -1d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV) \
	$$(command -v python3.13 2>/dev/null); do "$$py" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$py"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
# `sam build` looks for python3.13 on PATH.
export PATH := $(if $(PYTHON313),$(dir $(PYTHON313)):,)$(PATH)
export SAM_CLI_TELEMETRY := 0
PIP_FLAGS := --quiet --disable-pip-version-check
# The same import roots as in Lambda, for our scripts run outside pytest and for mypy: read from
# pytest's pythonpath in pyproject.toml, the one list of function folders (after the venv exists).
APP_PYTHONPATH = $(shell $(BIN)/python -c 'import tomllib; print(":".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["pytest"]["ini_options"]["pythonpath"]))')

.PHONY: help install dev token admin-show admin-resync admin-replay admin-problems admin-reconcile catalog-bootstrap openapi test lint typecheck pytest validate build post-build aws-data bytecode bench bench-short bench-storm clean

help:
	@echo "make dev       run the product locally: demo page, API, webhook, embedded AWS, Stripe emulator"
	@echo "make token     mint a development token (ORG=org_acme ROLE=admin)"
	@echo "make test      ruff, mypy, pytest (unit, integration, e2e), sam validate --lint, cfn-lint, checkov"
	@echo "make openapi   regenerate functions/openapi.json (the API the functions serve) from the handlers"
	@echo "make admin-show ORG=org_demo | admin-resync ORG=... | admin-replay EVENT=evt_... | admin-problems | admin-reconcile"
	@echo "              operator commands against make dev (python -m functions.admin --stack NAME ... for a deployed stack)"
	@echo "make catalog-bootstrap   create or update the catalog's Stripe products and prices (STRIPE_SECRET_KEY; LIVE=1)"
	@echo "make bench     cold starts, warm latency vs the floor, calls/request, memory, throughput, sizes, renewal storm"
	@echo "make build     sam build (arm64, python3.13), then trim botocore's data and compile the built code to bytecode"
	@echo "make clean     remove virtual environments and build output"

$(BIN)/.installed: tests/requirements.txt layers/common/requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found (install it, e.g. 'pyenv install 3.13')" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON313) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -r tests/requirements.txt
	@touch $@

$(SAM_VENV)/.installed: tests/requirements-sam.txt
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found" >&2; exit 1; }
	@test -x $(SAM_VENV)/bin/python || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_FLAGS) -r tests/requirements-sam.txt
	@touch $@

# Debian's Chromium for the end-to-end browser test (as root, or through sudo).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

$(CHECKOV_VENV)/.installed: tests/requirements-checkov.txt
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found" >&2; exit 1; }
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP_FLAGS) -r tests/requirements-checkov.txt
	@touch $@

install: $(BIN)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(CHROMIUM)

dev: $(BIN)/.installed
	PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m functions.local_stack.dev

ORG ?= org_demo
ROLE ?= admin
token: $(BIN)/.installed
	@PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m functions.local_stack.dev_tokens --org $(ORG) --role $(ROLE)

# Operator commands against `make dev` (python -m functions.admin; add --stack NAME for a deployed stack).
EVENT ?=
ADMIN = PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m functions.admin
admin-show: $(BIN)/.installed
	@$(ADMIN) show $(ORG)
admin-resync: $(BIN)/.installed
	@$(ADMIN) resync $(ORG)
admin-replay: $(BIN)/.installed
	@test -n "$(EVENT)" || { echo "usage: make admin-replay EVENT=evt_..." >&2; exit 2; }
	@$(ADMIN) replay $(EVENT)
admin-problems: $(BIN)/.installed
	@$(ADMIN) problems
admin-reconcile: $(BIN)/.installed
	@$(ADMIN) reconcile
# The catalog's Stripe products and prices (the key in STRIPE_SECRET_KEY; LIVE=1 for a live key;
# API_BASE=http://127.0.0.1:3002 for make dev's emulator, with STRIPE_SECRET_KEY=sk_test_fake_0123456789).
catalog-bootstrap: $(BIN)/.installed
	@$(ADMIN) bootstrap-catalog $(if $(LIVE),--live) $(if $(API_BASE),--api-base $(API_BASE))

openapi: $(BIN)/.installed
	PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m tests.support.generate_openapi

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	MYPYPATH=$(APP_PYTHONPATH) $(BIN)/mypy layers/common/tenant_billing functions tests

pytest: $(BIN)/.installed $(SAM_VENV)/.installed $(CHROMIUM)
	$(BIN)/python -m pytest

validate: $(BIN)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(SAM) validate --lint
	$(SAM_VENV)/bin/python -P tests/support/lint_deployed_template.py
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .ci/checkov.yaml --file template.yaml --quiet --compact --skip-download

test: lint typecheck pytest validate bench-short

bench: $(BIN)/.installed $(SAM_VENV)/.installed
	PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m tests.bench.harness

# The short mode runs in `make test` (and so in CI), so the benchmark cannot rot.
bench-short: $(BIN)/.installed
	PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m tests.bench.harness --short

# The renewal storm alone (tests/bench/storm.py): STORM_ORGS organizations (2000 like `make bench`).
STORM_ORGS ?= 2000
bench-storm: $(BIN)/.installed
	PYTHONPATH=$(APP_PYTHONPATH) $(BIN)/python -m tests.bench.harness --storm-only --storm-orgs $(STORM_ORGS)

build: $(SAM_VENV)/.installed
	$(SAM) build
	$(MAKE) --no-print-directory post-build

# What `make build` adds to what `sam build` built (BUILD_DIR); the benchmark and the tests run it
# on their own copy of the shipped layout.
BUILD_DIR ?= .aws-sam/build
post-build: aws-data bytecode

# botocore's data trimmed to the services we create clients for (tests/support/trim_aws_data.py):
# `aws_data` beside each built botocore package, which template.yaml's AWS_DATA_PATH points at, so
# a cold start parses a small endpoints.json and uncompressed models instead of all of botocore's.
aws-data:
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found" >&2; exit 1; }
	$(PYTHON313) tests/support/trim_aws_data.py $(BUILD_DIR)

# `sam build` ships no bytecode, and Lambda's code folders are read-only: without .pyc files every
# cold start compiles each module it imports (`make bench` times both: about 3x the import time).
# unchecked-hash (PEP 552): a built package never changes, so Python uses each .pyc without
# comparing it with its source's timestamp (which zipping would not keep exactly).
bytecode:
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found" >&2; exit 1; }
	$(PYTHON313) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD_DIR)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .ruff_cache
