# `make run` and `make test` create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/demo.toml
ARGS ?=

.PHONY: run exchange test test-fast lint bench interop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m actors.session --config $(CONFIG) $(ARGS)

# The embedded exchange on its own, for any client, until Ctrl-C (docs/simulator.md): the first stdout line
# is its endpoints as JSON (the recipe is not echoed: @); ARGS="--replay FILE" serves a recording
exchange: $(STAMP)
	@$(BIN)/python -m actors.sim --config $(CONFIG) $(ARGS)

# lint, format and types first (seconds), then the suite; worksteal: a worker that runs out of tests takes
# some of the other's (the suite's durations are uneven: a 60 s real-time run beside tests of milliseconds)
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist worksteal $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check actors supervision tests bench
	$(BIN)/ruff format --check actors supervision tests bench
	$(BIN)/mypy

# The suite without the tests marked realtime (real sockets, subprocess sessions, the 60 s chaos run)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not realtime" $(ARGS)

# Benchmarks (docs/performance.md): prints a table, writes bench/results.json. Needs ../shared;
# installs cryptofeed into bench/.venv-peer for the peer figure (never into the project).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

# cryptofeed's own Binance and Upbit feeds against the exchange for 130 s (ARGS="--seconds S"), checked and
# summarised as JSON (docs/simulator.md). Installs cryptofeed into bench/.venv-peer (never into the project);
# not part of make test: it takes minutes.
interop: $(STAMP)
	$(BIN)/python -m bench.interop $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
