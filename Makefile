# healthops: the two commands that matter are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint lock clean bench

install: $(STAMP)

# The venv is rebuilt only when the lock file or the package metadata change. Its
# packages are compiled to bytecode once here: every dbt, Airflow and healthops process
# would otherwise compile what it imports again (PYTHONDONTWRITEBYTECODE=1 keeps it from
# being cached), some seconds of CPU per process, and the tests start hundreds of them.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: install
	$(BIN)/healthops demo

# The whole suite, on TEST_WORKERS processes (pytest-xdist; tests that share a module
# fixture stay together, the slow Airflow ones start first: see tests/conftest.py).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The tests that need no server: no PostgreSQL, no Airflow (markers db and slow).
test-fast: install
	$(BIN)/python -m pytest -m "not db and not slow"

# Style and static checks, at zero findings: ruff (pyflakes, pycodestyle, import order,
# bugbear; config in pyproject.toml), ruff format (the layout, checked not applied: run
# `.venv/bin/ruff format plugins dags tests bench` before committing) and sqlfluff on the dbt SQL (config in .sqlfluff;
# offline, no warehouse needed).
lint: install
	$(BIN)/ruff check plugins dags tests bench
	$(BIN)/ruff format --check plugins dags tests bench
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros

bench: install
	$(BIN)/python bench/run_all.py

# Re-resolve the pinned dependency set (run by a developer, never by CI).
lock:
	uv pip compile pyproject.toml --extra test --extra bench --extra lint --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .healthops out landing
