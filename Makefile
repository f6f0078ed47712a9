# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test torture fuzz bench dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dist: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e '.[dist]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/cronflow validate --jobs jobs.toml.example
	$(BIN)/cronflow run --jobs jobs.toml.example --date $$(date -u -d yesterday +%Y-%m-%d) --rerun all
	$(BIN)/cronflow status --jobs jobs.toml.example
	$(BIN)/cronflow logs report --stdout --jobs jobs.toml.example
	@echo
	@echo "Watch it live in the terminal: $(BIN)/cronflow top --jobs jobs.toml.example"
	@echo "or in the browser: $(BIN)/cronflow serve --jobs jobs.toml.example, then open http://127.0.0.1:8080/"

# Lint, format and types first (ruff, mypy --strict), then every test on one pytest worker per
# CPU and one more: the tests wait on the processes they start for about a quarter of their
# time (2 CPUs: 3 workers 187 s, 2 workers 208 s, 4 workers 193 s).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: $(VENV)/.installed-test
	$(BIN)/ruff check cronflow tests bench tools
	$(BIN)/ruff format --check cronflow tests bench tools
	$(BIN)/python -m mypy cronflow
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Not part of `make test`: every kind of invocation at once, killed with SIGKILL at random, some
# with the clock stepped, every ping and alert to a trickling receiver, for MINUTES minutes;
# prints duplicates per 10,000 runs, runs, lost runs and orphans seen (tests/torture.py).
MINUTES ?= 10
torture: $(VENV)/.installed-test
	$(BIN)/python -m tests.torture --minutes $(MINUTES) --kill --faults

# Not part of `make test`: the property tests of bad input (every key of the jobs file, every
# option of every command) with EXAMPLES new cases each; `make test` draws a few hundred fixed ones.
EXAMPLES ?= 5000
fuzz: $(VENV)/.installed-test
	CRONFLOW_FUZZ_EXAMPLES=$(EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider -n auto \
		tests/test_bad_input.py tests/test_fuzz_options.py -k "any_"

# dist/: the wheel and sdist (for pip, pipx, uv) and cronflow.pyz (one file to copy to a server).
dist: $(VENV)/.installed-dist
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python tools/build_pyz.py dist

bench: dist
	$(BIN)/python bench/bench_pieces.py
	$(BIN)/python bench/bench_chain.py
	$(BIN)/python bench/bench_runs.py
	$(BIN)/python bench/bench_backfill.py
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_latency.py
	$(BIN)/python bench/bench_daemon.py
	$(BIN)/python bench/bench_status.py
	$(BIN)/python bench/bench_top.py
	$(BIN)/python bench/bench_index.py
	$(BIN)/python bench/bench_many.py
	$(BIN)/python bench/bench_page.py
	$(BIN)/python bench/bench_pyz.py
	$(BIN)/python bench/bench_years.py
	$(BIN)/python bench/bench_week.py

clean:
	rm -rf $(VENV) .cronflow demo-data dist build
