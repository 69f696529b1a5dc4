# Budkavle: `make run` (the whole platform, embedded, with demo data) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test test-fast bench schemas lint clean kafka

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# The pages' browser assets (htmx) and the test clients (Microsoft's Adaptive Cards library, axe-core) come from
# npm, pinned in package-lock.json; Budkavle serves the assets itself.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

run: $(STAMP) $(NODE_STAMP)
	$(BIN)/budkavle up

# Apache Kafka itself (KRaft, the broker's jars fetched from Maven Central once): prints KAFKA_BOOTSTRAP_SERVERS=…
# once the cluster takes writes, and runs until Ctrl-C. `make kafka BROKERS=1` for one broker.
BROKERS ?= 3
kafka: $(STAMP)
	$(BIN)/budkavle kafka --brokers $(BROKERS)

# Two workers (pytest-xdist), a test module to each at a time: most of the suite waits on processes, brokers and
# browsers rather than computing, and a module's platform or Kafka cluster is started once, on one worker.
test: $(STAMP) $(NODE_STAMP) lint
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy services contracts programs
	$(BIN)/python -m services.embedded.shape .importlinter
	$(BIN)/lint-imports --config .importlinter --no-cache

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/service

bench: $(STAMP)
	$(BIN)/budkavle bench

schemas: $(STAMP)
	$(BIN)/python -m services.embedded.specs

clean:
	rm -rf $(VENV) var node_modules
