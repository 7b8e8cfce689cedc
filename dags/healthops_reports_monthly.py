"""
### healthops reports, monthly

On the 1st of each month at 06:00 facility time, for the month before (the run's
data interval; its logical date is the interval's start, so the report month is
the logical date's month):

1. **publish_compliance_monthly**: the compliance and data-quality findings report
   for auditors, from the `audit` schema only: every catalog rule's outcome by day,
   open findings, reviews, the evidence lineage (source file SHA-256 → load batch →
   validation runs) and the audit trail's verification. HTML body, PDF attached,
   the lineage as CSV; sent once per content version (a late review or a re-validated
   day sends a revised report).

A failed run e-mails the catalog's `alerts.data_engineers`. Owner: data engineering.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from healthops import config


def alert_data_engineers(context) -> None:
    from healthops.alerts import notify_run_failure

    notify_run_failure(context)


@dag(
    dag_id="healthops_reports_monthly",
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone=config.facility_tz()),
    start_date=pendulum.datetime(2026, 1, 1, tz=config.facility_tz()),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 3, "retry_delay": timedelta(minutes=2),
                  "retry_exponential_backoff": True},
    tags=["healthops", "reports", "audit"],
    doc_md=__doc__,
    on_failure_callback=alert_data_engineers,
)
def healthops_reports_monthly():
    @task
    def publish_compliance_monthly(logical_date=None, run_id=None) -> dict:
        from healthops.pipeline import publish_compliance_monthly as run

        return run(logical_date, run_id)

    publish_compliance_monthly()


healthops_reports_monthly()
