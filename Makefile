# A newcomer's commands: `make test` and `make demo`. Each sets up .venv on its own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo bench install clean

# pipefail: the install's own exit status, not grep's, decides (the filter below is a pipe).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

# pip shows each package as it goes, one "Collecting"/"Downloading" line each (a cold cache takes a few
# minutes; a warm one under one). Run again after pyproject.toml changed, it would also say "Requirement
# already satisfied" of every package already there: those lines are left out. (`pip -q` would drop them,
# but also every other line: pip shows no progress below INFO.)
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing the package with its test, pulumi and terraform extras into $(VENV)"
	$(PY) -m pip install --disable-pip-version-check -e '.[test,pulumi,terraform]' | grep --line-buffered -v '^Requirement already satisfied: '
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The whole product on loopback: a local AWS endpoint, a tiny index, plan/deploy/change/deploy.
demo: $(STAMP)
	$(PY) examples/demo.py

# Every benchmark side by side in one run; writes the table of ratios to benchmarks/RESULTS.md.
# Container rows need an engine and ALAB_CONTAINER_TEST_IMAGE (scripts/setup-container-engine.sh).
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --output benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) build .pytest_cache
