"""The nightly census pipeline's steps, as plain functions the DAG's tasks call.

Each step is keyed on the receipt date (the logical date in the facility's time
zone) and is idempotent: running a date twice leaves the warehouse and the
inboxes as running it once.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from healthops import config

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "healthops_warehouse"
SMTP_CONN_ID = "smtp_default"


class BlockingQualityFailure(RuntimeError):
    """A blocking data-quality rule failed: dependent reports must not go out."""


def receipt_date(logical_date: datetime | date | str) -> date:
    """The landing folder a run reads: the logical date, in the facility's zone."""
    if isinstance(logical_date, str):
        logical_date = datetime.fromisoformat(logical_date)
    if isinstance(logical_date, datetime):
        if logical_date.tzinfo is None:
            return logical_date.date()
        return logical_date.astimezone(ZoneInfo(config.facility_tz())).date()
    return logical_date


def task_warehouse_url() -> str:
    """HEALTHOPS_WAREHOUSE_URL when set, else Airflow's ``healthops_warehouse`` connection."""
    from healthops.warehouse.connection import normalize_url

    url = os.environ.get("HEALTHOPS_WAREHOUSE_URL")
    if url:
        return normalize_url(url)
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    return normalize_url(conn.get_uri())


# -- 1. extract and load ---------------------------------------------------------
def load_adt(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    from healthops.load.adt import load_adt_date

    d = receipt_date(logical_date)
    summary = load_adt_date(url or task_warehouse_url(), config.landing(), d, dag_run_id)
    result = summary.as_dict()
    log.info("ADT load for %s: %s", d, result)
    return result


# -- 3. validate -------------------------------------------------------------------
def validate_census(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    """Every census rule file (one GX suite per data asset: the ADT feed, the load
    batches, the timeline, the encounters, the daily census) for the receipt date.
    One audit.validation_runs row per suite; raises on any blocking failure."""
    from healthops.quality.gx_runner import validate_domain_and_record
    from healthops.quality.rules import rule_files

    d = receipt_date(logical_date)
    # The daily report shows the rules of the date's latest validation run: keep the
    # census mart's suite last so that is the one it shows.
    rules = sorted(rule_files("census"), key=lambda rf: rf.data_asset == "marts.fct_census_daily")
    summaries = validate_domain_and_record(url or task_warehouse_url(), "census", d, dag_run_id, rules=rules)
    # Before any verdict: a blocking failure is when auditors need the evidence most.
    docs = build_data_docs(summaries)
    blocking = [r for s in summaries for r in s.blocking_failures]
    result = {
        # the census mart's run, as before; every suite's run under "suites"
        "validation_run_id": str(summaries[-1].validation_run_id),
        "success": all(s.success for s in summaries),
        "blocking_failures": blocking,
        "warnings": [r for s in summaries for r in s.warnings],
        "suites": {s.suite_name: str(s.validation_run_id) for s in summaries},
        "data_docs": docs,
    }
    if blocking:
        runs = ", ".join(f"{s.suite_name} {s.validation_run_id}" for s in summaries if s.blocking_failures)
        raise BlockingQualityFailure(
            f"blocking data-quality rules failed for {d}: {', '.join(blocking)} "
            f"(validation runs: {runs}); reports are held back")
    return result


def build_data_docs(summaries) -> str | None:
    """Add the runs to the Data Docs site under $HEALTHOPS_OUT/data_docs; its index
    path, or None when the build failed. The audit schema holds the verdict and the
    evidence: a site that cannot be rendered is logged, never a reason to hold the
    census back or to let a blocking failure through."""
    from healthops.quality import data_docs

    try:
        return data_docs.build(summaries)["index"]
    except Exception:
        log.exception("Data Docs were not built for %d validation run(s)", len(summaries))
        return None


# -- 4. report and deliver ---------------------------------------------------------
def daily_census_context(conn, report_date: date, facility_code: str | None = None,
                         trend_days: int = 14) -> dict:
    """The daily census report's context, from marts only (aggregates, no PHI), the
    date's latest data-quality results and the link to the Data Docs site."""
    from healthops.census.units import load_units
    from healthops.quality.data_docs import site_url

    units = {(u["facility_code"], u["unit_code"]): u for u in load_units()}
    facility_code = facility_code or next(iter(units))[0]  # the first facility of the reference data
    rows = conn.execute(
        """select unit_code, midnight_census, admissions, discharges, transfers_in, transfers_out,
                  patient_days, staffed_beds
           from marts.fct_census_daily where facility_code = %s and census_date = %s
           order by unit_code""", (facility_code, report_date)).fetchall()
    if not rows:
        raise LookupError(f"marts.fct_census_daily has no rows for {facility_code} on {report_date}")
    out_units = []
    for unit_code, mc, adm, dis, tin, tout, pd, beds in rows:
        ref = units.get((facility_code, unit_code), {})
        out_units.append({
            "unit_code": unit_code, "unit_name": ref.get("unit_name", f"{unit_code} (not in reference data)"),
            "unit_type": ref.get("unit_type", "unknown"), "staffed_beds": beds,
            "midnight_census": mc, "admissions": adm, "discharges": dis,
            "transfers_in": tin, "transfers_out": tout, "patient_days": pd,
        })
    trend = conn.execute(
        """select census_date, sum(midnight_census)::int from marts.fct_census_daily
           where facility_code = %s and census_date between %s and %s
           group by census_date order by census_date""",
        (facility_code, report_date - timedelta(days=trend_days - 1), report_date)).fetchall()
    quality = conn.execute(
        """select r.rule_id, r.success, r.severity, coalesce(r.detail->>'description', r.expectation_type)
           from audit.rule_results r
           join (select distinct on (suite_name) validation_run_id
                 from audit.validation_runs where logical_date = %s
                 order by suite_name, run_at desc) latest using (validation_run_id)
           order by r.rule_id""", (report_date,)).fetchall()
    descriptions = rule_descriptions()
    return {
        "facility_code": facility_code,
        "facility_name": facility_name(facility_code),
        "report_date": report_date,
        "generated_at": datetime.now(timezone.utc),
        "units": out_units,
        "trend": [{"census_date": d, "midnight_census": n} for d, n in trend],
        "quality": [{"rule": r, "status": "passed" if ok else "failed", "severity": sev,
                     "detail": descriptions.get(r, desc)}
                    for r, ok, sev, desc in quality],
        "data_docs_url": site_url(),
    }


def rule_descriptions() -> dict[str, str]:
    """Rule id -> the reviewed rule file's description (what a reader of a report or
    an alert needs; the audit rows carry ids, severities and counts)."""
    from healthops.quality.rules import load_catalog

    return {r.id: " ".join(r.description.split()) for rf in load_catalog() for r in rf.rules}


def facility_name(code: str) -> str:
    from healthops.census.units import facility_names

    return facility_names().get(code, code)


def smtp_settings():
    """SMTP from Airflow's ``smtp_default`` connection (or HEALTHOPS_SMTP_URL outside Airflow)."""
    from healthops.reports.delivery import SmtpSettings

    url = os.environ.get("HEALTHOPS_SMTP_URL")
    if url:
        return SmtpSettings.from_url(url)
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(SMTP_CONN_ID)
    extra = conn.extra_dejson or {}
    return SmtpSettings(host=conn.host or "localhost", port=int(conn.port or 25),
                        username=conn.login or None, password=conn.password or None,
                        starttls=str(extra.get("starttls", extra.get("disable_tls") is False)).lower() == "true",
                        ssl=str(extra.get("ssl", extra.get("disable_ssl") is False)).lower() == "true")


def publish_daily_census(logical_date, dag_run_id: str | None = None, url: str | None = None,
                         smtp=None) -> dict:
    """Render the daily census (HTML + PDF) of every facility with census that day,
    write it under $HEALTHOPS_OUT/reports and send it to the catalog's recipients,
    once per report, facility, period, recipient and content."""
    from healthops.reports.ledger import send_once
    from healthops.reports.render import load_catalog, render_daily_census, write_outputs
    from healthops.warehouse.connection import connect

    d = receipt_date(logical_date)
    entry = load_catalog()["reports"]["daily_census"]
    settings = smtp or smtp_settings()
    published = {}
    with connect(url or task_warehouse_url()) as conn:
        facilities = [f for (f,) in conn.execute(
            "select distinct facility_code from marts.fct_census_daily where census_date = %s order by 1", (d,))]
        if not facilities:
            raise LookupError(f"marts.fct_census_daily has no rows for {d}: was the feed received?")
        for facility in facilities:
            context = daily_census_context(conn, d, facility)
            rendered = render_daily_census(context)
            paths = write_outputs(rendered, config.out() / "reports")
            sent = send_once(conn, f"daily_census/{facility}", d.isoformat(), rendered, context, entry,
                             settings, dag_run_id)
            published[facility] = {"files": {k: str(v) for k, v in paths.items()}, **sent}
    return {"report_date": d.isoformat(), "facilities": published}


def report_month(logical_date) -> str:
    """The month a monthly run reports: the month of its logical date in the facility's
    zone (a scheduled run on the 1st has the month before as its data interval, and
    that interval's start as its logical date)."""
    d = receipt_date(logical_date)
    return f"{d:%Y-%m}"


def publish_compliance_monthly(logical_date, dag_run_id: str | None = None, url: str | None = None,
                               smtp=None) -> dict:
    """The monthly compliance and data-quality report (HTML, PDF, lineage CSV) for the
    auditors: written under $HEALTHOPS_OUT/reports and sent once per content version."""
    from healthops.reports.compliance import REPORT_ID, compliance_context, figures, render_compliance
    from healthops.reports.ledger import send_once
    from healthops.reports.render import load_catalog, write_outputs
    from healthops.warehouse.connection import connect

    month = report_month(logical_date)
    entry = load_catalog()["reports"][REPORT_ID]
    settings = smtp or smtp_settings()
    with connect(url or task_warehouse_url()) as conn:
        context = compliance_context(conn, month)
        rendered = render_compliance(context)
        paths = write_outputs(rendered, config.out() / "reports")
        sent = send_once(conn, REPORT_ID, month, rendered, figures(context), entry, settings, dag_run_id)
    log.info("%s %s: %d open findings, audit trail %s; sent to %s", REPORT_ID, month,
             context["summary"]["open_findings"], "verified" if context["audit_trail"]["ok"] else "NOT VERIFIED",
             sent["sent_to"] or "nobody new")
    return {"period": month, "files": {k: str(v) for k, v in paths.items()}, **sent}
