# Two commands, each doing its own set-up on a fresh clone:
#   make demo   -- build the venv, start Rotel on loopback, run democli, print what arrived
#   make test   -- build the venv, run ruff, mypy --strict and the test suite
#   make reliability -- the reliability suites at full scale; writes docs/reliability.md
#   make demo-month -- a month of a product with a few hundred installs; writes the HTML report
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-month test lint bench bench-insights bench-instructions bench-versus footprint reliability docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/demo.py

# a month of a product with a few hundred installs, through real runs; writes build/month.html
demo-month: $(BIN)/.installed
	$(BIN)/python examples/month.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py $(ARGS)

# What phonehome costs in instructions (valgrind; a few minutes): docs/benchmarks.md's second table
bench-instructions: $(BIN)/.installed
	$(BIN)/python benchmarks/instructions.py $(ARGS)

# The minimal CLIs' start-up beside another checkout (BEFORE=path), interleaved wall-clock pairs
bench-versus: $(BIN)/.installed
	$(BIN)/python benchmarks/versus.py $(BEFORE) $(ARGS)

# What each install weighs (fresh venvs from PyPI, a minute or two): README.md's table
footprint: $(BIN)/.installed
	$(BIN)/python benchmarks/footprint.py

# the store and `phonehome insights` over 1,000,000 spans (about ten minutes; docs/insights.md)
bench-insights: $(BIN)/.installed
	$(BIN)/python benchmarks/insights.py $(ARGS)

# The reliability suites at full scale (about eight minutes): writes docs/reliability.md
RELIABILITY := tests/test_faults.py tests/test_crash.py tests/test_concurrency.py \
	tests/test_hostile_state.py tests/test_bad_input.py tests/test_fuzz_settings.py \
	tests/test_security.py tests/test_destinations.py tests/test_senders.py
reliability: $(BIN)/.installed
	PHONEHOME_RELIABILITY=full PHONEHOME_RELIABILITY_REPORT=build/reliability.json \
		$(BIN)/python -m pytest -q -p no:logging $(RELIABILITY)
	$(BIN)/python reliability/report.py build/reliability.json docs/reliability.md

# the generated parts of docs/ (tests fail when they drift)
docs: $(BIN)/.installed
	$(BIN)/python -m phonehome._core.table docs/configuration.md

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests examples benchmarks reliability
	$(BIN)/ruff format --check src tests examples benchmarks reliability
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
