# healthops: the two commands that matter are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint lock clean bench

install: $(STAMP)

# The venv is rebuilt only when the lock file or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: install
	$(BIN)/healthops demo

test: install
	$(BIN)/python -m pytest

# Style and static checks, at zero findings: ruff (pyflakes, pycodestyle, import order,
# bugbear; config in pyproject.toml) and sqlfluff on the dbt SQL (config in .sqlfluff;
# offline, no warehouse needed).
lint: install
	$(BIN)/ruff check plugins dags tests bench
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros

bench: install
	$(BIN)/python bench/run_all.py

# Re-resolve the pinned dependency set (run by a developer, never by CI).
lock:
	uv pip compile pyproject.toml --extra test --extra bench --extra lint --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .healthops out landing
