# imsnn: every target sets up .venv on first use (Python 3.10, pinned official Lava stack).
# Override the interpreter with `make PYTHON=/path/to/python3.10 ...`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The stamp is keyed on the dependency list: editing pyproject.toml reinstalls, nothing else does.
DEPS_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean help

help:
	@echo "make demo   set up, fetch MNIST, train baseline + IMSNN, export, run in Lava, report"
	@echo "make test   set up, run the test suite"
	@echo "make lint   ruff"
	@echo "make bench  benchmarks (long; JSON into bench/results/)"
	@echo "make clean  remove .venv and build outputs"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@set -e; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then \
	    py="$$(PYTHON='$(PYTHON)' sh deploy/find_python310.sh)" || exit 1; \
	    echo "creating $(VENV) with $$py"; \
	    rm -rf $(VENV); "$$py" -m venv $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e '.[dev]'; \
	rm -f $(VENV)/.installed-*; touch $@; \
	echo "$(VENV) ready"

demo: $(STAMP)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash deploy/demo.sh

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check imsnn_train imsnn_lava tests bench

bench: $(STAMP)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash bench/run_all.sh

clean:
	rm -rf $(VENV) build dist *.egg-info runs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
