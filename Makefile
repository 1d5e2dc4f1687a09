# One command per check; CI (.ci/run) calls these verbatim.
VENV ?= .venv
PYTHON ?= python3
# Two stamps: the runtime dependencies (make run, deploy-check), and the dev extra beside them
# (make test, lint, bench, reliability). scripts/install-venv installs with uv, or pip.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test test-faults lint bench bench-peers install install-dev deploy-check reliability reliability-short \
	docs docs-build docs-screenshots

run: install
	@scripts/ensure-redis
	@scripts/run-local

# The suite without the fault suites' CI sizes (tests/chaos, several minutes of their own):
# make test-faults runs those, CI runs both, make reliability the long versions. Two xdist
# workers share it a module at a time (tests/scheduling.py); TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2
test: install-dev
	@scripts/ensure-redis
	$(VENV)/bin/pytest --ignore=tests/chaos -n $(TEST_WORKERS)

test-faults: install-dev
	@scripts/ensure-redis
	$(VENV)/bin/pytest tests/chaos

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -ll -r dnc dnc_sync receiver sandbox flows tasks

deploy-check: install
	scripts/check-deploy

bench: install-dev
	@scripts/ensure-redis
	$(VENV)/bin/python -m bench.receiver

# The documentation site (mkdocs.yml), its reference pages generated from the code: make docs
# serves it at http://127.0.0.1:8000, rebuilding on each edit (a warning is shown, not fatal,
# while writing); make docs-build builds it as CI does (a warning fails). Material's
# end-of-life banner is silenced: it says nothing about this site.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --no-strict

docs-build: install-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The built site's home, configuration and runbook pages in headless Chromium, each checked for
# its heading, as artifacts/docs/*.png (CI keeps them).
docs-screenshots: docs-build
	@scripts/ensure-chromium
	$(VENV)/bin/python scripts/docs_screenshots.py site artifacts/docs

# Ours beside the Go and FastAPI peers of ../shared/peers, interleaved rounds, one JSON summary.
bench-peers: install-dev
	@scripts/bench-peers

# The fault, fuzz and secret-scan suite; writes docs/reliability.md (long: tens of minutes).
reliability: install-dev
	@scripts/ensure-redis
	$(VENV)/bin/python -m reliability.suite

reliability-short: install-dev
	@scripts/ensure-redis
	$(VENV)/bin/python -m reliability.suite --short

install: $(STAMP)
install-dev: $(DEV_STAMP)

$(STAMP): pyproject.toml
	scripts/install-venv $(VENV) $(PYTHON) .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	scripts/install-venv $(VENV) $(PYTHON) '.[dev]'
	touch $(DEV_STAMP)
