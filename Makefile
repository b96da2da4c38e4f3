# Metron: `make demo` runs the product on a demo organization; `make test` runs the whole suite.
# Both create .venv and install the pinned requirements first; nothing else is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install install-dev lint migrations-check serve clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per requirements file: reinstall only when the pins change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py seed_demo
	@echo "Metron is serving at http://$(HOST):$(PORT)/admin/ with its task cluster (Ctrl-C stops both)."
	@# The task cluster runs beside the web server and stops with it.
	$(BIN)/python manage.py qcluster & cluster=$$!; \
	trap 'kill $$cluster 2>/dev/null; wait $$cluster 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrations-check: install-dev
	$(BIN)/python manage.py makemigrations --check --dry-run

test: lint migrations-check
	$(BIN)/pytest --create-db

serve: install
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Throw away the embedded database (it is recreated on the next command).
clean-db:
	rm -rf .metron/pgdata
