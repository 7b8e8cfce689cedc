"""Build dbt models (the reporting layer, and what it needs) on a test warehouse whose
marts or audit tables a test wrote by hand: `dbt seed` then `dbt run --select ...`.
dbt resolves ref() to relation names, so a hand-made marts.fct_census_daily is read
as the real one would be. Runs in its own target path (the checkout's manifest is
the DAGs' and must not be overwritten by a partial run)."""
from __future__ import annotations

import tempfile

from healthops.warehouse.dbt_runner import run_dbt


def build_models(url: str, models: list[str], seed: bool = True) -> None:
    """Seed the reference data (unless ``seed`` is False) and build ``models`` (views
    and tables by their config) on the warehouse at ``url``."""
    with tempfile.TemporaryDirectory(prefix="healthops-dbt-") as target:
        paths = ["--target-path", target, "--log-path", target]
        if seed:
            run_dbt(["seed", "--quiet", *paths], url, capture=True)
        run_dbt(["run", "--quiet", "--select", " ".join(models), *paths], url, capture=True)


DAILY_CENSUS_MODELS = ["dim_units", "int_quality__latest_validation_runs", "rpt_daily_census_units",
                       "rpt_daily_quality_checks"]
