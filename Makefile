# One command per check; CI (.ci/run) calls these verbatim.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install deploy-check reliability reliability-short

run: install
	@scripts/ensure-redis
	@scripts/run-local

test: install
	@scripts/ensure-redis
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -ll -r dnc dnc_sync receiver sandbox flows tasks

deploy-check: install
	scripts/check-deploy

bench: install
	@scripts/ensure-redis
	$(VENV)/bin/python bench/receiver.py

# The fault, fuzz and secret-scan suite; writes docs/reliability.md (long: tens of minutes).
reliability: install
	@scripts/ensure-redis
	$(VENV)/bin/python bench/reliability.py

reliability-short: install
	@scripts/ensure-redis
	$(VENV)/bin/python bench/reliability.py --short

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python >= 3.11 is needed ($(PYTHON) is older); set PYTHON=python3.11" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "error: cannot create a virtualenv; on Debian/Ubuntu: apt-get install -y python3-venv" >&2; exit 1; }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)
