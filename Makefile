# The workshop's entry points. `make help` lists them.
# Targets that take a step accept it as a second word (`make test-step 2`) or as N=2.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

STEP_DIRS := $(sort $(wildcard step0[1-9]_*))
STEPS := $(patsubst step0%,%,$(foreach d,$(STEP_DIRS),$(firstword $(subst _, ,$(d)))))
LAST_STEP := $(lastword $(STEPS))

# `make test-step 2`: take the word after the target as N, and make that word a no-op target.
STEP_GOALS := run-step test-step diff-step start-step check-step worker
ifneq ($(filter $(firstword $(MAKECMDGOALS)),$(STEP_GOALS)),)
  ifneq ($(word 2,$(MAKECMDGOALS)),)
    N := $(word 2,$(MAKECMDGOALS))
    $(eval $(N):;@:)
  endif
endif
N ?= $(STEP)
step_dir = $(firstword $(wildcard step0$(1)_*))
DIR = $(call step_dir,$(N))

define need_step
	@if [ -z "$(N)" ]; then echo "Which step? For example: make $@ 1   (steps here: $(STEPS))"; exit 2; fi
	@if [ -z "$(DIR)" ]; then echo "There is no step $(N) (steps here: $(STEPS))."; exit 2; fi
endef

.PHONY: help setup demo run-step redis worker flower test test-step test-hostile diff-step start-step check-step \
	screenshots docs-serve docs-build bench lint clean

help: ## List the targets
	@echo "Celery SMS workshop: make <target>   (steps here: $(STEPS))"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "). Set PYTHON=python3.12, for example.")'
	@echo "==> creating the virtual environment in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Django, Celery, Redis and the workshop's tools (first run only)"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install everything (every target does this first)
	@echo "Ready: $(VENV) ($$($(PY) --version))"

demo: $(STAMP) ## Start the final step: Redis, SMS gateway, worker, Django on http://127.0.0.1:8000 (BROKER=rabbitmq)
	@$(MAKE) --no-print-directory run-step N=$(LAST_STEP) STEP_DIR=$(call step_dir,$(LAST_STEP))

run-step: $(STAMP) ## Start step N with honcho (your workspace/ copy if any, or STEP_DIR=path); Ctrl-C stops all
	$(need_step)
	@$(PY) -m workshop.demo run $(N) $(if $(STEP_DIR),--dir $(STEP_DIR))

redis: $(STAMP) ## Run a Redis server on 127.0.0.1:6379 (or use the one already there)
	@$(PY) -m workshop.redis_server

worker: $(STAMP) ## Run a Celery worker for step N (STEP=N), as its Procfile starts it (BROKER=rabbitmq: on RabbitMQ)
	$(need_step)
	@$(PY) -m workshop.demo entry $(N) worker

flower: $(STAMP) ## Open Flower (the Celery dashboard) for the final step on http://127.0.0.1:5555 (BROKER=rabbitmq)
	@$(PY) -m workshop.demo entry $(LAST_STEP) flower

test: $(STAMP) ## Run every test: the gateway, each step in its own pytest process, the docs
	@$(PY) -m workshop.testrun $(STEPS)

test-step: $(STAMP) ## Run step N's tests (STEP_DIR=path: another copy of the step; BROKER=rabbitmq: on RabbitMQ)
	$(need_step)
	@$(PY) -m pytest tests/step0$(N) $(PYTEST_ARGS)

test-hostile: $(STAMP) ## Run step 4 as production does (gunicorn) under faults and floods: the hostile matrix
	@$(PY) -m pytest tests/hostile $(PYTEST_ARGS)

diff-step: $(STAMP) ## Show what step N changes from step N-1: the lesson
	$(need_step)
	@$(PY) -m workshop.stepdiff $(N)

start-step: $(STAMP) ## Exercise: copy step N-1 into workspace/ to turn it into step N yourself
	$(need_step)
	@$(PY) -m workshop.exercise start $(N) $(if $(FORCE),--force)

check-step: $(STAMP) ## Exercise: step N's tests against workspace/, what is missing (step 4 part by part; PART=N)
	$(need_step)
	@$(PY) -m workshop.exercise check $(N) $(if $(PART),--part $(PART))

screenshots: $(STAMP) ## Save the docs' PNGs: a send on steps 1 and 4, a code verified, RabbitMQ's queues
	@$(PY) -m workshop.screenshots

docs-serve: $(STAMP) ## Serve the docs site on http://127.0.0.1:8001 with live reload
	@mkdocs serve -a 127.0.0.1:$${DOCS_PORT:-8001}

docs-build: $(STAMP) ## Build the docs site into site/, failing on any warning
	@mkdocs build --strict

bench: $(STAMP) ## Measure what Celery buys into docs/benchmarks/ (QUICK=1: a short run into bench-results/)
	@$(PY) -m workshop.bench $(if $(QUICK),--quick) $(if $(SMOKE_OUT),--smoke --out $(SMOKE_OUT))

lint: $(STAMP) ## Check style with ruff
	@ruff check .
	@ruff format --check .

clean: ## Remove generated files (keeps .venv and workspace/)
	rm -rf site .run bench-results .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
