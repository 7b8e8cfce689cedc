"""
### healthops nightly: census and staffing

For the day that just ended (the logical date, in the facility's time zone):

1. **load_adt**: the HL7 ADT files received that day (`$HEALTHOPS_LANDING/adt/YYYY-MM-DD/`)
   are parsed and COPY-loaded into `raw.adt_messages`; unusable messages go to
   `raw.rejected` with a reason, resent copies of a loaded message to `raw.duplicates`;
   `audit.load_batches` records each file's sha256 and counts (in = loaded + rejected +
   duplicate). A file already loaded is skipped.
   **load_hr**: the HR export's snapshot of that day (`hr/YYYY-MM-DD/*.csv`) into `raw.hr_*`,
   bad records to `raw.rejected`, one batch per file. **extract_timekeeping**: the
   timekeeping database's punches and pay lines updated before the night's end and not
   held yet (incremental on `updated_at`, with an overlap window), every version kept in
   `raw.tk_*` (`HEALTHOPS_TIMEKEEPING_URL` or the `healthops_timekeeping` connection).
2. **dbt** (Cosmos): seeds, staging, intermediate, the marts and the `rpt` reporting views, with tests and unit tests.
3. **validate_workforce**: the workforce compliance rules of `expectations/workforce_*.yml`
   (licences, BLS, fatigue, HIPAA training, exclusion screening, nurse ratios), all
   warnings: findings for the auditors in `audit.*`, never a reason to hold the reports.
   **validate_census**: the census rules of `expectations/census_*.yml` (Great Expectations,
   one suite per table; the ADT feed's `dbt source freshness` as of local midnight);
   results kept in `audit.validation_runs` / `audit.rule_results`, then the audit chains'
   heads (over both steps' rows) appended to `$HEALTHOPS_OUT/audit/heads/heads.jsonl`, signed with the key of
   `HEALTHOPS_AUDIT_HMAC_KEY` or the `healthops_audit_hmac` connection (keep copies of it
   outside the warehouse's reach: docs/architecture.md#the-heads-file).
   A blocking failure fails the run and holds the report back.
4. **publish_daily_census** (one task per catalog report scheduled `after` this DAG):
   the daily census report (HTML body, PDF attached, charts), written to
   `$HEALTHOPS_OUT/reports/` and emailed once to the catalog's recipients through the
   `smtp_default` connection.

A failed run (any task) e-mails the catalog's `alerts.data_engineers`: the failing task,
the error, the failed rules with their counts (no PHI), the run id and the log.

**History and backfills.** `start_date` is 1997-01-01 (`healthops.config.HISTORY_START`:
HL7 v2.3, the oldest version the parser reads, is from 1997), with `catchup=False`: the
scheduler only ever creates the latest night by itself, and a hospital's years of ADT
history can be run for any date through `healthops run --date D --to D2`, a manual
trigger with a logical date, or `airflow backfill create`. Airflow creates no task
instance for a logical date before a task's `start_date`; a constant in this file
would silently turn every earlier night into an empty "successful" run. Reports of a
night older than the catalog's revision window are rendered and archived, not
emailed, unless the run's `send` param (conf `{"send": true}`, `healthops run --send`)
asks for it.

**Retries** are for transient errors only (warehouse or relay unreachable, SMTP 4xx):
bad data, a blocking rule, a bad catalog or a bug fail the task at once
(`healthops.pipeline.run_step`).

Every step is idempotent for a logical date. Owner: data engineering.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos import settings as cosmos_settings
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SeedRenderingBehavior, TestBehavior
from cosmos.operators.local import DbtBuildLocalOperator
from cosmos.profiles import PostgresUserPasswordProfileMapping

from healthops import config
from healthops.reports.catalog import load_catalog, reports_after

DAG_ID = "healthops_census_nightly"
DBT_DIR = config.DBT_PROJECT_DIR
CATALOG = load_catalog()  # which reports go out after the night (a YAML file of this repository)
REPORTING, NO_UNIT_TESTS = "path:models/reporting", config.NIGHTLY_DBT_EXCLUDE  # dbt selectors


def pipeline_step(step: str):
    """The task running ``healthops.pipeline.<step>`` for the night (``run_step``: only a
    transient error is retried; bad data, a blocking rule or a bug fail at once)."""

    @task(task_id=step)
    def run(logical_date=None, run_id=None) -> dict:
        from healthops import pipeline

        return pipeline.run_step(getattr(pipeline, step), logical_date, run_id)

    return run()


def alert_data_engineers(context) -> None:
    """Run-level failure callback: one e-mail per failed run (healthops.alerts)."""
    from healthops.alerts import notify_run_failure

    notify_run_failure(context)


@dag(
    dag_id=DAG_ID,
    # One run per local day, started when the day is over: the logical date is the
    # start of the day whose files it loads.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=config.facility_tz()),
    start_date=pendulum.datetime(*config.HISTORY_START.timetuple()[:3], tz=config.facility_tz()),
    catchup=False,  # history comes in through backfills, never by itself
    params={
        "send": Param(
            False, type="boolean", description="Email the reports even when the night is older than the revision window"
        )
    },
    max_active_runs=1,  # days build on each other: one at a time
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["healthops", "census", "adt"],
    doc_md=__doc__,
    on_failure_callback=alert_data_engineers,  # once per failed run, after it is marked failed
)
def healthops_census_nightly():
    # The night's sources, side by side (healthops.pipeline: load_adt, load_hr, extract_timekeeping).
    sources = [pipeline_step(step) for step in ("load_adt", "load_hr", "extract_timekeeping")]

    profile = ProfileConfig(
        profile_name="healthops",
        target_name="warehouse",
        # dbt logs in as the transformer role (docs/architecture.md#schemas-and-roles)
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id="healthops_warehouse_transformer", profile_args={"schema": "public"}
        ),
    )
    dbt_args = dict(
        project_dir=DBT_DIR,
        profile_config=profile,
        install_deps=False,
        invocation_mode=InvocationMode.DBT_RUNNER,
        env=config.dbt_project_env(),  # the settings dbt_project.yml reads
        cache_dir=cosmos_settings.cache_dir / DAG_ID,  # dbt's partial parse, kept from one night to the next
        retries=0,
    )
    if config.dbt_tasks() == "project":
        # One `dbt build` task: on a single small machine (the demo, a laptop) each dbt
        # task costs about a second of start-up, more than most models take to build.
        first = last = DbtBuildLocalOperator(task_id="dbt_build", exclude=[NO_UNIT_TESTS], **dbt_args)
    else:
        # One task per model (retried and shown one by one), the dbt tests in one task
        # after them, seeds (reference data the hospital edits) reloaded when changed.
        # The reporting layer (views: definitions, no data) is one task after them.
        first = DbtTaskGroup(
            group_id="dbt",
            project_config=ProjectConfig(
                dbt_project_path=DBT_DIR,
                manifest_path=DBT_DIR / "target" / "manifest.json",
                install_dbt_deps=False,  # no packages: nothing to fetch at run time
                env_vars=config.dbt_project_env(),  # the settings dbt_project.yml reads
            ),
            profile_config=profile,
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=TestBehavior.AFTER_ALL,
                seed_rendering_behavior=SeedRenderingBehavior.WHEN_SEED_CHANGES,
                exclude=[REPORTING, NO_UNIT_TESTS],
            ),
            execution_config=ExecutionConfig(
                execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
            ),
            default_args={"retries": 0},
        )
        last = DbtBuildLocalOperator(task_id="dbt_reporting", select=[REPORTING], exclude=[NO_UNIT_TESTS], **dbt_args)
        first >> last

    # The workforce rules (warnings: findings for the auditors) first; validate_census then
    # records the census rules and the audit chains' heads, once a night, over both.
    checks = [pipeline_step(step) for step in ("validate_workforce", "validate_census")]

    # One publish task per catalog report scheduled after this DAG (`schedule: {after: ...}`).
    publishers = []
    for report_id in reports_after(CATALOG, DAG_ID):

        @task(
            task_id=f"publish_{report_id}", retries=3, retry_delay=timedelta(minutes=2), retry_exponential_backoff=True
        )
        def publish(report_id=report_id, logical_date=None, run_id=None, params=None) -> dict:
            from healthops.pipeline import publish_daily, run_step

            # send None: emailed when the night is within the revision window of today, else archived
            return run_step(publish_daily, report_id, logical_date, run_id, send=True if params["send"] else None)

        publishers.append(publish())

    sources >> first
    last >> checks[0] >> checks[1] >> publishers


healthops_census_nightly()
