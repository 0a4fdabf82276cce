# Kehu: `make dev` runs everything, `make test` tests everything. Only Python 3.11 and make needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ROLE ?= admin
PYTEST_ARGS ?=

.PHONY: install dev test unit lint format token migrate bench chaos demo docs clean k8s

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

## The console's browser assets (ECharts, pinned in services/console/package-lock.json), when
## node is here; without npm the console shows its tables without charts.
CONSOLE_ASSETS := services/console/node_modules/.package-lock.json
$(CONSOLE_ASSETS): services/console/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix services/console --no-audit --no-fund --loglevel=error >/dev/null && touch $@; \
	else echo '[kehu] npm not found: the console will show tables without charts'; fi

install: $(VENV)/.installed $(CONSOLE_ASSETS)

## Start PostgreSQL, the broker and every service (data kept in .kehu/); Ctrl-C stops all.
dev: install
	@$(PY) -m shared.devstack dev

## Run the whole test suite against a throwaway PostgreSQL and broker.
test: install
	@$(PY) -m shared.devstack test -- $(PYTEST_ARGS)

## The inner loop: the tests that need neither PostgreSQL nor the broker (tests/unit), no stack.
unit: install
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	@$(VENV)/bin/ruff check shared services tests bench
	@$(VENV)/bin/ruff format --check shared services tests bench
	@$(VENV)/bin/mypy
	@! grep -nE 'sa\.(select|update|insert|delete)\b|session\.(execute|scalar|scalars|get)\b' \
		services/*/api.py services/*/api/*.py 2>/dev/null \
		|| { echo 'SQL in an api module: queries belong in repository.py'; exit 1; }
	@$(PY) -m shared.asyncapi --check docs/
	@$(PY) -m shared.k8s check

## Render deploy/kubernetes/base/services.yaml from deploy/kubernetes/services.yaml.
k8s: install
	@$(PY) -m shared.k8s write

## Regenerate the AsyncAPI document, the event catalog and the portal under docs/.
docs: install
	@$(PY) -m shared.asyncapi --write docs/

format: install
	@$(VENV)/bin/ruff format shared services tests bench
	@$(VENV)/bin/ruff check --fix shared services tests bench

## The fault suite alone (it also runs in `make test`): broker and PostgreSQL restarted under
## write load, a consumer killed mid-batch, duplicate deliveries; writes bench/chaos.md.
chaos: install
	@KEHU_CHAOS_REPORT=1 $(PY) -m shared.devstack test -- tests/chaos $(PYTEST_ARGS)

## Measure the hot paths against same-work baselines, raw baselines and Kehu's other figures in
## one run; writes bench/report.md and .json. BENCH_ARGS="--only NAME" re-runs one scenario
## (e.g. console_dashboard: the dashboard at 100k customers; or hot_paths --path POST --seconds
## 3 while iterating) and replaces only its figures in the report (python -m bench --help).
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo 'make bench needs wrk (apt-get install wrk)'; exit 1; }
	@$(PY) -m bench $(BENCH_ARGS)

## Load a demo data set into the running `make dev` stack through the public APIs.
demo: install
	@$(PY) -m bench.demo $(DEMO_ARGS)

## Print a bearer token for ROLE (admin, manager, agent, analyst, integration) for the dev stack.
token: install
	@$(PY) -m shared.auth $(ROLE)

migrate: install
	@$(PY) -m shared.migrate

.PHONY: backup restore
## Dump every service database into backups/<UTC stamp>/ (pg_dump -Fc, manifest with sha256).
backup: install
	@$(PY) -m shared.backup backup $(BACKUP_ARGS)

## Verify and restore a backup: make restore BACKUP=backups/<stamp> [RESTORE_ARGS=--target-prefix drill_]
restore: install
	@test -n "$(BACKUP)" || { echo 'usage: make restore BACKUP=backups/<stamp> [RESTORE_ARGS=--target-prefix drill_]'; exit 2; }
	@$(PY) -m shared.backup restore "$(BACKUP)" $(RESTORE_ARGS)

clean:
	rm -rf $(VENV) .kehu .pytest_cache .mypy_cache .ruff_cache
