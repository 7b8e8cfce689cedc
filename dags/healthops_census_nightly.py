"""
### healthops census, nightly

For the day that just ended (the logical date, in the facility's time zone):

1. **load_adt**: the HL7 ADT files received that day (`$HEALTHOPS_LANDING/adt/YYYY-MM-DD/`)
   are parsed and COPY-loaded into `raw.adt_messages`; unusable messages and duplicates go
   to `raw.rejected` with a reason; `audit.load_batches` records each file's sha256 and
   counts (in = loaded + rejected). A file already loaded is skipped.
2. **dbt** (Cosmos): seeds, staging, intermediate and `marts.fct_census_daily`, with tests.
3. **validate_census**: the census rules of `expectations/census_*.yml` (Great Expectations,
   one suite per table; the ADT feed's `dbt source freshness` as of local midnight);
   results kept in `audit.validation_runs` / `audit.rule_results`.
   A blocking failure fails the run and holds the report back.
4. **publish_daily_census**: the daily census report (HTML body, PDF attached, charts),
   written to `$HEALTHOPS_OUT/reports/` and emailed once to the catalog's recipients
   through the `smtp_default` connection.

A failed run (any task) e-mails the catalog's `alerts.data_engineers`: the failing task,
the error, the failed rules with their counts (no PHI), the run id and the log.

Every step is idempotent for a logical date. Owner: data engineering.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SeedRenderingBehavior, TestBehavior
from cosmos.operators.local import DbtBuildLocalOperator
from cosmos.profiles import PostgresUserPasswordProfileMapping

from healthops import config

DBT_DIR = config.DBT_PROJECT_DIR


def alert_data_engineers(context) -> None:
    """Run-level failure callback: one e-mail per failed run (healthops.alerts)."""
    from healthops.alerts import notify_run_failure

    notify_run_failure(context)


@dag(
    dag_id="healthops_census_nightly",
    # One run per local day, started when the day is over: the logical date is the
    # start of the day whose files it loads.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=config.facility_tz()),
    start_date=pendulum.datetime(2026, 1, 1, tz=config.facility_tz()),
    catchup=False,
    max_active_runs=1,  # days build on each other: one at a time
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["healthops", "census", "adt"],
    doc_md=__doc__,
    on_failure_callback=alert_data_engineers,  # once per failed run, after it is marked failed
)
def healthops_census_nightly():
    @task
    def load_adt(logical_date=None, run_id=None) -> dict:
        from healthops.pipeline import load_adt as run

        return run(logical_date, run_id)

    profile = ProfileConfig(
        profile_name="healthops",
        target_name="warehouse",
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id="healthops_warehouse", profile_args={"schema": "public"}),
    )
    if config.dbt_tasks() == "project":
        # One `dbt build` task: on a single small machine (the demo, a laptop) each dbt
        # task costs about a second of start-up, more than most models take to build.
        dbt = DbtBuildLocalOperator(task_id="dbt_build", project_dir=DBT_DIR, profile_config=profile,
                                    install_deps=False, invocation_mode=InvocationMode.DBT_RUNNER,
                                    retries=0)
    else:
        # One task per model (retried and shown one by one), the dbt tests in one task
        # after them, seeds (reference data the hospital edits) reloaded when changed.
        dbt = DbtTaskGroup(
            group_id="dbt",
            project_config=ProjectConfig(
                dbt_project_path=DBT_DIR,
                manifest_path=DBT_DIR / "target" / "manifest.json",
                install_dbt_deps=False,  # no packages: nothing to fetch at run time
            ),
            profile_config=profile,
            render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.AFTER_ALL,
                                       seed_rendering_behavior=SeedRenderingBehavior.WHEN_SEED_CHANGES),
            execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                             invocation_mode=InvocationMode.DBT_RUNNER),
            default_args={"retries": 0},
        )

    @task
    def validate_census(logical_date=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from healthops.pipeline import BlockingQualityFailure, validate_census as run

        try:
            return run(logical_date, run_id)
        except BlockingQualityFailure as failure:  # the data, not the machine: retrying cannot help
            raise AirflowFailException(str(failure)) from failure

    @task(retries=3, retry_delay=timedelta(minutes=2), retry_exponential_backoff=True)
    def publish_daily_census(logical_date=None, run_id=None) -> dict:
        from healthops.pipeline import publish_daily_census as run

        return run(logical_date, run_id)

    load_adt() >> dbt >> validate_census() >> publish_daily_census()


healthops_census_nightly()
