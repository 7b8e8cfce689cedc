"""Build dbt models (the reporting layer, and what it needs) on a test warehouse whose
marts or audit tables a test wrote by hand: `dbt seed` then `dbt run --select ...`.
dbt resolves ref() to relation names, so a hand-made marts.fct_census_daily is read
as the real one would be. Runs in its own target path (the checkout's manifest is
the DAGs' and must not be overwritten by a partial run)."""
from __future__ import annotations

import tempfile
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

from healthops.warehouse.dbt_runner import run_dbt


def build_models(url: str, models: list[str], seed: bool = True) -> None:
    """Seed the reference data (unless ``seed`` is False) and build ``models`` (views
    and tables by their config) on the warehouse at ``url``."""
    with tempfile.TemporaryDirectory(prefix="healthops-dbt-") as target:
        paths = ["--target-path", target, "--log-path", target]
        if seed:
            run_dbt(["seed", "--quiet", *paths], url, capture=True)
        run_dbt(["run", "--quiet", "--select", " ".join(models), *paths], url, capture=True)


@contextmanager
def template_database(pg_server: str, prepare: Callable[[str], None]) -> Iterator[str]:
    """A database made once (for a test module): ``prepare(url)`` writes its hand-made
    rows and builds its models; yields its name, for ``make_database(template=name)``
    to copy per test; dropped afterwards."""
    import psycopg

    from healthops.warehouse.connection import libpq_url

    name = "tpl_" + uuid.uuid4().hex[:12]
    admin = libpq_url(pg_server)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        prepare(f"{pg_server.rpartition('/')[0]}/{name}")
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


DAILY_CENSUS_MODELS = ["dim_units", "int_quality__latest_validation_runs", "rpt_daily_census_units",
                       "rpt_daily_quality_checks"]
MONTHLY_CENSUS_MODELS = ["dim_units", "fct_census_period", "rpt_monthly_census_trend", "rpt_monthly_census_units"]
