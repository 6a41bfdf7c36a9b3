# ClearBG: `make run` installs and starts the app; `make test` installs and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/node_modules/.bin

export PATH := $(TOOLS):$(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
PORT ?= 3000

.PHONY: setup run worker lint test bench bench-quality bench-cli bench-api migrate admin clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

.tools/.installed:
	npm install --prefix .tools --no-save --no-audit --no-fund bun@1.4.5 node@22.23.3
	touch $@

setup: $(VENV)/.installed .tools/.installed
	$(PY) -m clearbg_app check
	$(PY) -m alembic upgrade head

run: setup
	$(PY) -m reflex run --env prod --single-port --frontend-port $(PORT) --backend-port $(PORT)

# A queue worker (CLEARBG_QUEUE_URL=redis://...): holds the inference pool, serves batch items, mail,
# webhooks, exports and, for web processes with CLEARBG_INFERENCE=queue, their single images.
worker: setup
	$(PY) -m clearbg_app worker

# Lint and types (settings in pyproject.toml); `make test` fails on a new warning before pytest starts.
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy

test: setup lint
	scripts/ensure-services.sh
	scripts/ensure-chromium.sh
	$(PY) -m pytest

bench: setup
	$(PY) bench/inference.py

# Cut-out quality against coco_subjects' human masks (and u2net_samples): A..E, both halves, paired
bench-quality: setup
	$(PY) bench/quality.py

# The command line against `rembg p` on one folder of 1, 6 and 24 MP photos (same model file).
bench-cli: setup
	$(PY) bench/cli.py

# The API under load against rembg's server: make bench-api BENCH_CLIENTS=1,4 BENCH_DURATION=10 BENCH_SOAK=60
BENCH_CLIENTS ?= 1,4,16,64
BENCH_DURATION ?= 30
BENCH_SOAK ?= 300
BENCH_ARGS ?=
bench-api: setup
	scripts/ensure-services.sh
	$(PY) bench/api_load.py --clients $(BENCH_CLIENTS) --duration $(BENCH_DURATION) --soak $(BENCH_SOAK) $(BENCH_ARGS)

migrate: setup

admin: setup
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=you@example.com"; exit 2; }
	$(PY) -m clearbg_app create-admin "$(EMAIL)"

clean:
	rm -rf $(VENV) .tools .web
