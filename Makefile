# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs what it needs (again only when
# pyproject.toml changed), then runs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean help

help:
	@echo "make demo   - set up .venv; inspect, train, evaluate and serve on built-in digits"
	@echo "make test   - set up .venv with the test tools and run the test suite"
	@echo "make lint   - ruff over the package, tests, examples and benchmarks"
	@echo "make bench  - run the benchmarks; they write docs/benchmarks.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# one stamp per set of extras, rebuilt when pyproject.toml changes
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[serve]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,plot,serve]'
	@touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	rm -rf demo_output
	$(BIN)/hybridclf quickstart --output-dir demo_output

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check hybridclf tests benchmarks examples

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_cnn.py
	$(BIN)/python benchmarks/bench_augment.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .hypothesis build *.egg-info
