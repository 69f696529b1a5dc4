# Budkavle: `make run` (the whole platform, embedded, with demo data) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench schemas lint clean

$(STAMP): pyproject.toml package.json
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/budkavle up

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy services contracts

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/service

bench: $(STAMP)
	$(BIN)/budkavle bench

schemas: $(STAMP)
	$(BIN)/python -m contracts.generate

clean:
	rm -rf $(VENV) var node_modules
