# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs what it needs (again only when
# pyproject.toml changed), then runs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?= --durations=15

.PHONY: demo test browser lint bench bytecode fastdup-venv docs clean help

help:
	@echo "make demo   - set up .venv; inspect, train, evaluate and serve on built-in digits"
	@echo "make test   - set up .venv with the test tools and run the test suite"
	@echo "make lint   - ruff over the package, tests, examples and benchmarks"
	@echo "make bench  - run the benchmarks; they write docs/benchmarks.md"
	@echo "make fastdup-venv - fastdup in its own venv, a peer bench_inspect measures"
	@echo "make docs   - build the API reference from the docstrings into docs/api/"
	@echo "make bytecode - compile hybridclf's byte code (demo, test and bench do it first)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# one stamp per set of extras, rebuilt when pyproject.toml changes; the demo
# gets the plot extra so its evaluation report has its figures
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[serve,plot]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,plot,serve]'
	@touch $@ $(VENV)/.installed-base

# the peers of bench_inspect: imagededup in the project venv (the bench extra)
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(PIP) -e '.[dev,plot,serve,bench]'
	@touch $@

# fastdup pins NumPy 1.26 and scikit-learn 1.5, so it gets a venv of its own;
# bench_inspect runs it there in a subprocess (benchmarks/_fastdup_pairs.py)
FASTDUP_VENV ?= benchmarks/.venv-fastdup
$(FASTDUP_VENV)/.installed:
	$(PYTHON) -m venv $(FASTDUP_VENV)
	$(FASTDUP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'fastdup>=2.5'
	@touch $@

fastdup-venv: $(FASTDUP_VENV)/.installed

# the editable install leaves hybridclf uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set Python compiles every module it imports on
# every run (about 0.1 s of each command's start); an installed wheel has its
# byte code. compileall writes only what changed; an edited module whose .pyc
# is stale is compiled again (Python checks the source's time and size)
bytecode: | $(BIN)/python
	@$(BIN)/python -m compileall -q hybridclf

demo: $(VENV)/.installed-base bytecode
	rm -rf demo_output
	$(BIN)/hybridclf quickstart --output-dir demo_output

# the browser tests drive Debian's chromium; they skip, saying why, without it
browser:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && \
	  [ "$$(id -u)" = 0 ] && (apt-get install -y -q chromium >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1))) || \
	  echo "chromium not installed: the browser tests will skip"

test: $(VENV)/.installed-dev browser bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check hybridclf tests benchmarks examples

bench: $(VENV)/.installed-bench bytecode
	@$(MAKE) --no-print-directory fastdup-venv || \
	  echo "fastdup did not install: bench_inspect says it was not measured"
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_cnn.py
	$(BIN)/python benchmarks/bench_augment.py
	$(BIN)/python benchmarks/bench_accuracy.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_inspect.py
	$(BIN)/python benchmarks/bench_open_set.py

# the user guide is Markdown in docs/; this builds the API reference beside it.
# pdoc follows hybridclf's __all__, which names no module, so the public
# modules (no leading underscore) are listed here.
API_DIR ?= docs/api
API_MODULES = hybridclf \
	$(filter-out hybridclf._%,$(basename $(subst /,.,$(wildcard hybridclf/*.py)))) \
	$(subst /,.,$(patsubst %/__init__.py,%,$(wildcard hybridclf/*/__init__.py)))
docs: $(VENV)/.installed-dev
	rm -rf $(API_DIR)
	MPLBACKEND=Agg $(BIN)/python -m pdoc --docformat numpy -o $(API_DIR) $(API_MODULES)
	@echo "API reference: $(API_DIR)/index.html"

clean:
	rm -rf $(VENV) demo_output .pytest_cache .hypothesis build *.egg-info
