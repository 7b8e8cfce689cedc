"""
### healthops reports, monthly

On the monthly reports' catalog schedule (`cron:` of `report_templates/catalog.yml`;
the 1st of each month at 06:00 facility time), for the month before (the run's
data interval; its logical date is the interval's start, so the report month is
the logical date's month):

one task per monthly report of the report catalog (`report_templates/catalog.yml`,
entries with `period: month`), e.g.

- **publish_monthly_census**: census and utilization (ADC, occupancy, ALOS) for the CNO and CFO;
- **publish_dq_governance**: data quality and records governance for the HIM director;
- **publish_compliance_monthly**: compliance and data-quality findings for auditors, from the
  `audit` schema only: every rule's outcome by day, open findings, reviews, the evidence
  lineage (source file SHA-256 → load batch → validation runs), the audit trail's verification.

Each is sent once per recipient and content version; a late change (a review, a
re-validated day, late ADT data) sends one revised message saying what changed.

A month older than the revision window is rendered and archived, not emailed, unless
the run's `send` param asks for it (`healthops reports monthly --send`). Any month since
1997 can be run (`start_date`, as in `healthops_census_nightly`). Retries are for
transient errors only.

A failed run e-mails the catalog's `alerts.data_engineers`. Owner: data engineering.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from healthops import config
from healthops.reports.catalog import load_catalog, period_cron

# The reviewed catalog says which monthly reports exist and when they run (a YAML file
# of this repository; the module imports no rendering stack, so parsing stays fast).
CATALOG = load_catalog()


def alert_data_engineers(context) -> None:
    from healthops.alerts import notify_run_failure

    notify_run_failure(context)


@dag(
    dag_id="healthops_reports_monthly",
    schedule=CronDataIntervalTimetable(period_cron(CATALOG, "month"), timezone=config.facility_tz()),
    start_date=pendulum.datetime(*config.HISTORY_START.timetuple()[:3], tz=config.facility_tz()),
    catchup=False,
    params={
        "send": Param(
            False, type="boolean", description="Email the reports even when the month is older than the revision window"
        )
    },
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    tags=["healthops", "reports", "audit"],
    doc_md=__doc__,
    on_failure_callback=alert_data_engineers,
)
def healthops_reports_monthly():
    for report_id, entry in CATALOG["reports"].items():
        if entry.get("period") != "month":
            continue

        @task(task_id=f"publish_{report_id}")
        def publish(report_id=report_id, logical_date=None, run_id=None, params=None) -> dict:
            from healthops.pipeline import publish_monthly, run_step

            return run_step(publish_monthly, report_id, logical_date, run_id, send=True if params["send"] else None)

        publish()


healthops_reports_monthly()
