# `make run` starts the whole system, `make test` runs the test suite; both create the .venv
# from requirements.txt on first use, and refresh it when requirements.txt changes.
PYTHON3 ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
# Touched after a successful install: newer than requirements.txt means the venv is current.
STAMP := $(VENV)/.installed

.PHONY: $(VENV) run test bench clean

$(VENV): $(STAMP)

$(STAMP): requirements.txt
	test -x $(PYTHON) || $(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PYTHON) -m app.runner

test: $(STAMP)
	$(PYTHON) -m pytest

bench: $(STAMP)
	@set -e; for script in $(sort $(wildcard bench/*.py)); do \
		echo "== $$script"; $(PYTHON) $$script; \
	done

# Leaves PIPELINE_HOME (./var by default) alone: it holds the data and the trained models.
clean:
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
