# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast install clean docs

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## Generate ~5,000 synthetic text CAPTCHAs, train the CRNN, evaluate on a held-out generated set.
demo: $(STAMP)
	$(BIN)/python -m recaptcha_tf demo --out demo_run --logdir logs

## Lint and format checks (ruff, configured in pyproject.toml), then the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

## Lint plus the fast tier (tests not marked slow): about 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -m "not slow"

## The documentation site into site/ (mkdocs-material; the CLI, model-zoo and results pages are generated from the
## code and benchmarks/results/*.json). `$(BIN)/mkdocs serve` previews it while editing docs/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) logs balanced_images models demo_run .pytest_cache
