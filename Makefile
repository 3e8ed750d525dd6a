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
	@echo "make demo   - set up .venv; train, evaluate and predict on the built-in digits"
	@echo "make test   - set up .venv with the test tools and run the test suite"
	@echo "make lint   - ruff over the package, tests, examples and benchmarks"
	@echo "make bench  - run the benchmarks; they write docs/benchmarks.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# one stamp per set of extras, rebuilt when pyproject.toml changes
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,plot,serve]'
	@touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	rm -rf demo_output/digits demo_output/digits_test
	$(BIN)/python -c "import pathlib; from hybridclf.datasets import write_digits_folder; \
	root = pathlib.Path(write_digits_folder('demo_output/digits', n_per_class=40)); \
	[(pathlib.Path('demo_output/digits_test', f.parent.name).mkdir(parents=True, exist_ok=True), \
	  f.rename(pathlib.Path('demo_output/digits_test', f.parent.name, f.name))) \
	 for d in sorted(root.iterdir()) for f in sorted(d.iterdir())[::4]]"
	$(BIN)/hybridclf train --data-dir demo_output/digits --output-dir demo_output/model \
	  --features hog lbp color --image-size 64 --cv-folds 3
	$(BIN)/hybridclf evaluate --model-dir demo_output/model \
	  --test-data-dir demo_output/digits_test --output-dir demo_output/report
	$(BIN)/hybridclf predict --model-dir demo_output/model demo_output/digits_test/digit_3 \
	  --output demo_output/predictions.csv
	@echo
	@echo "Model card: demo_output/model/README.md   Report: demo_output/report/report.html"
	@echo "Serve it from Python:"
	@echo "  import hybridclf; model = hybridclf.load_model('demo_output/model')"
	@echo "  model.predict(['photo.png'])   # or: hybridclf predict --model-dir demo_output/model FILES"

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
