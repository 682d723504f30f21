# driftline: `make demo` shows it working, `make test` proves it. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install kafka-jars postgres chromium lint types unit test soak demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

kafka-jars:
	scripts/kafka fetch

postgres:
	scripts/postgres install

chromium:
	scripts/chromium install

lint: install
	$(BIN)/ruff check monitor retrain tests bench scripts

types: install
	$(BIN)/mypy

test: install kafka-jars postgres chromium lint types
	$(BIN)/python -m pytest -q

soak: install kafka-jars
	DRIFTLINE_SOAK=1 $(BIN)/python -m pytest -q -s tests/test_daemon_kafka.py -k sigkilled

demo: install kafka-jars
	$(BIN)/python scripts/demo.py

bench: install kafka-jars
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .kafka .pytest_cache .mypy_cache .ruff_cache
