# Two commands on a fresh machine: `make demo` and `make test`. Each sets itself up:
# a venv in .venv, the pinned Python deps, and the Delta/S3A jars cached in .cache/jars.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JARS   := .cache/jars/manifest.json
PYTEST_ARGS ?=

SIZE ?= medium

.PHONY: setup demo test jars bench clean help

help:
	@echo "make demo   - run the demo end to end on the local profile"
	@echo "make test   - run the test suite (real Spark, Delta, S3 API server on loopback)"
	@echo "make setup  - only create .venv and fetch the jars"
	@echo "make bench [SIZE=small|medium|large] - point-in-time join benchmark, all engines"
	@echo "make clean  - remove .venv, caches and the local warehouse"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "timetravel needs Python >= 3.11"'
	@command -v java >/dev/null || { echo "error: Java 17+ is needed for Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

$(JARS): $(STAMP) timetravel/_jars/pom.xml
	$(BIN)/timetravel setup-jars

setup: $(STAMP) $(JARS)

jars: $(JARS)

demo: setup
	$(BIN)/timetravel demo run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -u benchmarks/pit_join.py --size $(SIZE)

clean:
	rm -rf $(VENV) .cache warehouse .pytest_cache
