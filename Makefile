# `make run` starts the whole system, `make test` runs the test suite; both create the .venv
# from requirements.txt on first use, and refresh it when requirements.txt changes.
PYTHON3 ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
# Touched after a successful install: newer than requirements.txt means the venv is current.
STAMP := $(VENV)/.installed
# Debian tools some tests and benchmarks drive; a test whose tool is missing skips with why.
SYSTEM_PACKAGES := redis-server chromium chromium-driver prometheus wrk iproute2
SYSTEM_TOOLS := redis-server chromium chromedriver promtool wrk ip

.PHONY: $(VENV) system run test test-quick bench clean

$(VENV): $(STAMP)

$(STAMP): requirements.txt
	test -x $(PYTHON) || $(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Installs the Debian packages above when a tool is missing (root and apt-get needed; CI runs
# it). Without them everything still runs; only the tests that drive those tools skip.
system:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then echo "system tools present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages for:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); \
	else echo "missing:$$missing (install: apt-get install $(SYSTEM_PACKAGES)); the tests that need them will skip"; fi

run: $(STAMP)
	$(PYTHON) -m app.runner

test: $(STAMP)
	$(PYTHON) -m pytest

# The fast tests alone, for a quick loop while working: no fault suite, browser or multi-host.
test-quick: $(STAMP)
	$(PYTHON) -m pytest -m "not slow"

# Each script prints its figures and adds them to one table, printed last; the status is 1
# when a script fails or a bar does not hold.
BENCH_SCRIPTS := $(filter-out bench/table.py bench/support.py,$(sort $(wildcard bench/*.py)))
bench: $(STAMP)
	@results=$$(mktemp); status=0; \
	for script in $(BENCH_SCRIPTS); do \
		echo "== $$script"; BENCH_RESULTS=$$results $(PYTHON) $$script || status=1; \
	done; \
	echo "== the table"; $(PYTHON) bench/table.py $$results || status=1; \
	rm -f $$results; exit $$status

# Leaves PIPELINE_HOME (./var by default) alone: it holds the data and the trained models.
clean:
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
