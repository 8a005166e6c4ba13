# icoapi developer commands. Everything installs itself: `make demo` and
# `make test` work on a fresh machine with Python >= 3.12 available.

SHELL := /bin/bash
VENV := .venv
POETRY_HOME := .poetry
POETRY := $(POETRY_HOME)/bin/poetry
POETRY_VERSION := 2.5.1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_NO_INTERACTION := 1
# pytest-xdist workers. Most tests wait on simulated hardware in real time
# (scans, streams at 9.5 kHz, timeouts), so 6 workers keep 2 cores busy.
TEST_WORKERS ?= 6

.PHONY: install demo run test lint format bench simulator fuzz clean

install: $(STAMP)

$(POETRY):
	@python=$$(scripts/find-python) && \
	"$$python" -m venv $(POETRY_HOME) && \
	$(POETRY_HOME)/bin/pip install --quiet --disable-pip-version-check "poetry==$(POETRY_VERSION)"

# --compile: bytecode for every installed package now, so no process (the
# service, each test worker) compiles them again where PYTHONDONTWRITEBYTECODE is set.
$(STAMP): pyproject.toml poetry.lock | $(POETRY)
	@python=$$(scripts/find-python) && \
	{ [ -x $(PY) ] || "$$python" -m venv $(VENV); } && \
	$(POETRY) install --quiet --with dev --compile
	@touch $(STAMP)

## Start the service against the built-in device simulator (no hardware needed).
demo: install
	CAN_INTERFACE=simulator $(PY) -m icoapi

## Start the service for real hardware (CAN settings from .env or the environment).
run: install
	$(PY) -m icoapi

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10

## Fuzz the whole OpenAPI schema with schemathesis against the app on the simulator
## (tests/core/test_openapi_contract.py runs a short version in `make test`).
fuzz: install
	$(PY) scripts/fuzz.py --max-examples 200
	$(PY) scripts/fuzz.py --max-examples 50 --access-control

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check icoapi tests bench
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format icoapi tests bench

bench: install
	$(PY) bench/bench_simulator.py
	$(PY) bench/bench_measurement.py
	$(PY) bench/bench_guard.py
	$(PY) bench/bench_dataspace.py
	$(PY) bench/bench_crash.py
	$(PY) bench/bench_files.py
	$(PY) bench/bench_endurance.py

## Serve the simulator alone over TCP (socketcand protocol) on port 29536.
simulator: install
	$(PY) -m icoapi.simulator --port 29536

clean:
	rm -rf $(VENV) $(POETRY_HOME) .pytest_cache .mypy_cache .ruff_cache

## install.sh and the image on real Debian root file systems (debootstrap, chroot,
## buildah); needs root. Not part of `make test`; says what it skipped.
.PHONY: deploy-check
deploy-check: install
	scripts/deploy-check
