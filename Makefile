# Two commands matter: `make demo` and `make test`. Each does all the set-up it needs on a fresh
# machine and skips what is already done, so the second run starts in seconds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The ledger database; the CLI, tests and demo read it from this Airflow connection.
export AIRFLOW_CONN_LEDGER_DEFAULT ?= postgresql://postgres@127.0.0.1:5432/ledger

.PHONY: help setup browser demo airflow test test-v3 test-fast test-e2e test-celery test-deployment lint bench chaos audit clean

help:
	@echo "make demo   - set up, start the HubSpot sandbox, run an integration's DAG, show the ledger"
	@echo "make airflow - a local Airflow 3 of this checkout (api-server, scheduler, DAG processor,"
	@echo "               triggerer) with the project's DAGs; Ctrl-C stops it (AIRFLOW_ARGS=\"--port 8081\")"
	@echo "make test   - set up and run the whole test suite (lint, unit, integration, end-to-end),"
	@echo "              then the sync's end-to-end tests again at HubSpot's legacy v3 API (test-v3)"
	@echo "make test-fast - unit tests only (seconds)"
	@echo "make test-celery - the DAGs on two Celery workers (Redis, scheduler, DAG processor; minutes)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks, report in bench/report.md"
	@echo "make chaos  - the fault matrix at a larger scale (CHAOS_ARGS=\"--scale medium --runs 3\")"
	@echo "make audit  - the pinned set against the vendored PyPA advisory database (offline)"

# Re-installs only when the pins change.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml tools/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e tools
	@touch $@

setup: $(STAMP)

# Headless Chromium from Debian's packages, for the operator page's browser test (tests/ui);
# Playwright drives it with executable_path (its own browser download cannot work here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

demo: $(STAMP)
	$(BIN)/python -m hubspot_ledger_tools.demo

# A real local deployment: prints the URL and the login; Ctrl-C stops every process it started.
airflow: $(STAMP)
	$(BIN)/python -m hubspot_ledger_tools.airflow_local $(AIRFLOW_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The suite runs on TEST_WORKERS pytest-xdist workers, one test module per worker at a time
# (--dist loadfile: a module's tests keep their order and share its fixtures). Most of its time
# is spent waiting on the sandbox, PostgreSQL and Airflow, so workers outnumber the CPUs; each has
# its own ledger database and Airflow home (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) lint
	$(BIN)/pytest $(XDIST)
	@$(MAKE) --no-print-directory test-v3

# The suite runs at HubSpot's default, date-versioned API (hubspot_default's api_version extra
# unset: /crm/objects/2026-03/…); this pass runs the sync's end-to-end tests once more at the
# legacy v3 paths (/crm/v3, /crm/v4, /oauth/v3): every read a sync makes (listing, searches,
# batch reads, associations, the token endpoint, account details, introspection, the deal
# pipelines). tests/sync/test_api_version.py, in the default run, syncs at both versions and
# asserts which paths HubSpot received. HUBSPOT_API_VERSION=v3 pytest … runs any other test at v3.
TEST_V3 ?= tests/sync -m "e2e and not deployment"
test-v3: $(STAMP)
	HUBSPOT_API_VERSION=v3 $(BIN)/pytest $(XDIST) $(TEST_V3)

test-fast: $(STAMP)
	$(BIN)/pytest -m unit -q

test-e2e: $(STAMP) browser
	$(BIN)/pytest -m "e2e and not deployment"

# e.g. make bench BENCH_ARGS="--scale medium"; see bench/README.md
bench: $(STAMP)
	$(BIN)/python -m hubspot_ledger_tools.bench $(BENCH_ARGS)

# The fault matrix of tests/reliability, on a bigger portal; prints fault, runs, records
# expected, records in the ledger, duplicates, lost.
CHAOS_ARGS ?= --scale small --runs 2
chaos: $(STAMP)
	$(BIN)/python -m hubspot_ledger_tools.fault_matrix $(CHAOS_ARGS)

# The pinned set (requirements.txt + constraints.txt) against the snapshot of the PyPA advisory
# database vendored in audit/ (no network); writes audit/report.md, which says what was checked
# against which snapshot and what was not. Exit 1: a pin matches an advisory; 2: UNCHECKED (no
# database); 3: STALE, the snapshot is older than AUDIT_MAX_AGE_DAYS (default 365).
audit: $(STAMP)
	$(BIN)/python -m hubspot_ledger_tools.audit

clean:
	rm -rf $(VENV) .airflow .airflow-test .demo .pytest_cache .mypy_cache .ruff_cache

# A real Airflow deployment on CeleryExecutor: Redis (the one at 127.0.0.1:6379, else Debian's
# redis-server started by the test), two Celery workers, the scheduler and the DAG processor, four
# integrations syncing at once (tests/celery). Not in `make test`: Airflow's start-up alone takes
# about a minute.
test-celery: $(STAMP)
	@command -v redis-server >/dev/null || redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y redis-server; }
	$(BIN)/pytest -m celery tests/celery

# The tests that start a whole Airflow deployment (the Celery workers, a real backfill through
# the scheduler): minutes each, so not in `make test`'s default run.
test-deployment: $(STAMP) browser
	@command -v redis-server >/dev/null || redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y redis-server; }
	$(BIN)/pytest -m deployment
