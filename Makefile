# RubricLab: `make run` (the app with the demo, embedded SQLite and broker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: screenshots run test install install-dev install-trl install-browser migrate demo bench lint fakellm clean

# pip prints a line per package (no --quiet): a first install takes a couple of minutes and
# must not look like a hang. --progress-bar off keeps logs readable.
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar off

$(BIN)/python:
	@echo "== creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "== installing RubricLab and its dependencies (a few minutes the first time)"
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "== installing RubricLab with the dev extras (a few minutes the first time)"
	$(PIP_INSTALL) -e ".[dev]"
	touch $(VENV)/.installed $@

# TRL for the GRPO test of exported bundles, kept out of `make run`. torch goes in first, as the
# CPU wheel of one pinned version (it lies in /opt/wheels on our machines, which pip finds through
# PIP_FIND_LINKS); trl then installs with torch pinned by a constraints file, because any other
# torch requirement would pull a multi-gigabyte CUDA build.
TORCH_VERSION := 2.13.0
TORCH_WHEELS ?= /opt/wheels
TORCH_SPEC := torch==$(TORCH_VERSION)$(if $(wildcard $(TORCH_WHEELS)/torch-$(TORCH_VERSION)+cpu-*.whl),+cpu)
$(VENV)/.installed-trl: pyproject.toml | $(VENV)/.installed-dev
	@echo "installing torch ($(TORCH_SPEC)) and the trl group: about a minute, once"
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS)) "$(TORCH_SPEC)"
	printf 'torch==$(TORCH_VERSION)\n' > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[dev,trl]"
	touch $@

# Browser tests drive Debian's chromium (Playwright's own browser download does not work here).
install-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-dejavu-core; fi; }

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-trl: $(VENV)/.installed-trl

migrate: install
	@echo "== migrating the database"
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	@echo "== loading the demo project"
	$(BIN)/python manage.py load_demo

## The app on http://127.0.0.1:8000 with the demo project: web server, Celery worker and beat.
run: demo
	DEBUG=$${DEBUG:-1} $(BIN)/python -m tools.run_local

## The whole test suite (PostgreSQL and Redis when DATABASE_URL / CELERY_BROKER_URL say so),
## with TRL for the GRPO test of exported bundles.
test: install-dev install-trl install-browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The README's screenshots, taken by the browser journey test.
screenshots: install-dev install-browser
	RUBRICLAB_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e/test_journey.py tests/e2e/test_workbench.py -q

## Benchmarks: each prints `BENCH <name> value=... unit=... bound=... ratio=...` last.
bench: install-dev
	$(BIN)/python -m benchmarks.run_all

lint: install-dev
	$(BIN)/ruff check .

fakellm: install-dev
	$(BIN)/python -m tools.fakellm --port 8089

clean:
	rm -rf var/broker var/celerybeat-schedule* var/*.sqlite3*
