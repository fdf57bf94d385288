# Two commands matter: `make run` and `make test`. Everything else they need is here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test lint format install browser messages static migrate seed bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download browsers here)
# and Japanese fonts so screenshots show Japanese.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk; \
	fi

messages: $(STAMP)
	$(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var -v 0

# The hashed, compressed static files production serves (whitenoise); tests render with them
# too. Collected again only when a source is newer than the manifest: a run that finds them up
# to date rewrites nothing another process may be reading.
STATIC_ROOT ?= staticfiles
$(STATIC_ROOT)/staticfiles.json: $(STAMP) $(shell find static -type f)
	$(BIN)/python manage.py collectstatic --noinput -v 0

static: $(STATIC_ROOT)/staticfiles.json

migrate: $(STAMP) messages
	$(BIN)/python manage.py migrate --noinput -v 0

seed: migrate
	$(BIN)/python manage.py seed_demo

# config/run.py prints the site's address: SITE_URL, or RUN_ADDR's (docs/configuration.md).
run: seed
	DEBUG=1 $(BIN)/python -m config.run

test: $(STAMP) messages static browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every bench/NAME.py (not _common.py) as `python -m bench.NAME`, on the configured database.
BENCHES = $(patsubst bench/%.py,%,$(filter-out bench/_% bench/__init__.py,$(wildcard bench/*.py)))

bench: migrate
	@set -e; for name in $(BENCHES); do $(BIN)/python -m bench.$$name; done

bench-quick: migrate
	@set -e; for name in $(BENCHES); do $(BIN)/python -m bench.$$name --quick; done

clean:
	rm -rf $(VENV) var staticfiles
