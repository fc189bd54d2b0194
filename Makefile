# RubricLab: `make run` (the app with the demo, embedded SQLite and broker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install install-dev migrate demo bench lint fakellm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

## The app on http://127.0.0.1:8000 with the demo project: web server, Celery worker and beat.
run: demo
	DEBUG=$${DEBUG:-1} $(BIN)/python -m tools.run_local

## The whole test suite (PostgreSQL and Redis when DATABASE_URL / CELERY_BROKER_URL say so).
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmarks: each prints `BENCH <name> value=... unit=... bound=... ratio=...` last.
bench: install-dev
	$(BIN)/python -m benchmarks.run_all

lint: install-dev
	$(BIN)/ruff check .

fakellm: install-dev
	$(BIN)/python -m tools.fakellm --port 8089

clean:
	rm -rf var/broker var/celerybeat-schedule* var/*.sqlite3*
