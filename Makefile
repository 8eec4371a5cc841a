# The targets the README and .ci/run use. Everything installs into .venv with
# the exact versions in constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint typecheck pytest sshd chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,dask]'
	touch $@

## demo: install and run the whole chain on the bundled demo station (writes ./data)
demo: $(VENV)/.installed
	$(BIN)/stationkit --config stations.toml run -v
	$(BIN)/stationkit --config stations.toml status
	@echo "Readings (tidy Parquet): data/lake/readings/station=DEMO01/"
	@echo "Calibrated and flagged:  data/lake/clean/station=DEMO01/ (one Parquet per month)"
	@echo "Exports:                 data/exports/DEMO01/ (Windographer text, flagging log, CSV)"

## sshd: the SFTP tests need OpenSSH's server binary (Debian package openssh-server)
sshd:
	@test -x /usr/sbin/sshd || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }

## chromium: the HTML report tests load its pages in a headless browser (Debian package chromium)
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test sshd chromium
	$(BIN)/pytest -n 2 -q

## test: install what the tests need, then lint, type-check and run the tests
test: lint typecheck pytest

clean:
	rm -rf $(VENV) data build *.egg-info
