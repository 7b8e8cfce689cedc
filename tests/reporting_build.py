"""Build dbt models (the reporting layer, and what it needs) on a test warehouse whose
marts or audit tables a test wrote by hand: `dbt seed` then `dbt run --select ...`.
dbt resolves ref() to relation names, so a hand-made marts.fct_census_daily is read
as the real one would be. Runs in its own target path (the checkout's manifest is
the DAGs' and must not be overwritten by a partial run), which ``run_dbt`` starts from
the partial-parse state of the earlier runs on the same database name and login."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator

from healthops.warehouse.dbt_runner import run_dbt

import db_names

# The workforce domain's models (HR, timekeeping, staffing): a census test that has no
# workforce data leaves them out of its nightly build (about 1.7 s of dbt per build,
# some twenty builds in the suite); the staffing tests and the fault tests build all.
WORKFORCE_MODELS = (
    "path:models/staging/hr path:models/staging/timekeeping path:models/intermediate/workforce "
    "path:models/marts/workforce path:models/reporting/staffing"
)


def census_build(url: str, *args: str):
    """``nightly_build`` (dbt build as the transformer, no unit tests) without the
    workforce models: for the census tests, whose feeds have no staff."""
    from healthops import config
    from healthops.warehouse.dbt_runner import nightly_build

    return nightly_build(url, "--exclude", f"{config.NIGHTLY_DBT_EXCLUDE} {WORKFORCE_MODELS}", *args)


def build_models(url: str, models: list[str], seed: bool = True, full_refresh: bool = False) -> None:
    """Seed the reference data (unless ``seed`` is False) and build ``models`` (views
    and tables by their config; incremental ones from nothing with ``full_refresh``)
    on the warehouse at ``url``."""
    with tempfile.TemporaryDirectory(prefix="healthops-dbt-") as target:
        paths = ["--target-path", target, "--log-path", target]
        if seed:
            run_dbt(["seed", "--quiet", *paths], url, capture=True)
        refresh = ["--full-refresh"] if full_refresh else []
        run_dbt(["run", "--quiet", *refresh, "--select", " ".join(models), *paths], url, capture=True)


@contextmanager
def template_database(pg_server: str, base: str, fill: Callable[[str], None]) -> Iterator[str]:
    """A copy of ``base`` (the session's migrated warehouse: the ``migrated_template``
    fixture) on the test server, filled once (``fill(url)``: rows, then the models
    with ``build_models``) to be copied for each test (``make_database(template=name)``):
    yields its name; dropped on exit. Sessions still open on it after ``fill`` (a GX
    datasource keeps a connection pool) are closed, or no copy could be made."""
    import psycopg

    from healthops.warehouse.connection import libpq_url

    url = db_names.create(pg_server, base)  # a reused name: dbt's partial parse holds (tests/db_names.py)
    name = db_names.name_of(url)
    try:
        fill(url)
        with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
        yield name
    finally:
        db_names.drop(pg_server, name)


DAILY_CENSUS_MODELS = [
    "dim_units",
    "int_quality__latest_validation_runs",
    "rpt_daily_census_units",
    "rpt_daily_quality_checks",
]
MONTHLY_CENSUS_MODELS = ["dim_units", "fct_census_period", "rpt_monthly_census_trend", "rpt_monthly_census_units"]
