"""The nightly census pipeline's steps, as plain functions the DAG's tasks call.

Each step is keyed on the receipt date (the logical date in the facility's time
zone) and is idempotent: running a date twice leaves the warehouse and the
inboxes as running it once.
"""

from __future__ import annotations

import logging
import os
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from healthops import config
from healthops.errors import DataError, is_transient

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "healthops_warehouse"
TIMEKEEPING_CONN_ID = "healthops_timekeeping"
SMTP_CONN_ID = "smtp_default"
QUALITY_TASK = "validate_census"  # the nightly task whose blocking failure holds the reports back


class BlockingQualityFailure(DataError):
    """A blocking data-quality rule failed: dependent reports must not go out."""


def run_step(step, *args, **kwargs):
    """Run a pipeline step inside an Airflow task: a transient error (the warehouse or
    the relay unreachable, SMTP 4xx) is raised as it is, for the task's retries; any
    other error fails the task at once (``AirflowFailException``), since a retry
    would meet the same data, configuration or bug (``healthops.errors``)."""
    try:
        return step(*args, **kwargs)
    except Exception as e:
        if is_transient(e):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        text = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
        raise AirflowFailException(text) from e


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


def step_url(step: str, url: str | None = None) -> str:
    """The URL a step logs in with: its own role (``healthops.warehouse.roles``) on the
    server and database of ``url`` (default: ``task_warehouse_url()``)."""
    from healthops.warehouse.roles import step_url as role_url

    return role_url(url or task_warehouse_url(), step)


def connection_password(conn_id: str) -> str | None:
    """The password of an Airflow connection, or None (``roles.airflow_connection_password``)."""
    from healthops.warehouse.roles import airflow_connection_password

    return airflow_connection_password(conn_id)


def audit_heads_key(url: str) -> bytes:
    """The audit heads file's HMAC key (``healthops.quality.audit_heads.hmac_key``): the
    environment, the embedded warehouse's own key, or the Airflow connection."""
    from healthops.quality.audit_heads import hmac_key

    return hmac_key(url, from_connection=connection_password)


# -- 1. extract and load ---------------------------------------------------------
def load_adt(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    from healthops.load.adt import load_adt_date

    d = receipt_date(logical_date)
    summary = load_adt_date(step_url("loader", url), config.landing(), d, dag_run_id)
    result = summary.as_dict()
    log.info("ADT load for %s: %s", d, result)
    return result


def load_hr(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    """The HR export's snapshot of the logical date (``hr/YYYY-MM-DD/``), as the loader."""
    from healthops.load.hr import load_hr_date

    d = receipt_date(logical_date)
    summary = load_hr_date(step_url("loader", url), config.landing(), d, dag_run_id)
    result = summary.as_dict()
    log.info("HR load for %s: %s", d, result)
    return result


def timekeeping_source_url() -> str | None:
    """HEALTHOPS_TIMEKEEPING_URL when set, else Airflow's ``healthops_timekeeping``
    connection; None when neither is configured."""
    url = config.timekeeping_source_url()
    if url:
        return url
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # not under Airflow: the environment is the only setting
        return None
    from healthops.warehouse.connection import normalize_url

    try:
        conn = BaseHook.get_connection(TIMEKEEPING_CONN_ID)
    except AirflowNotFoundException:
        return None
    return normalize_url(conn.get_uri(), "timekeeping database")


def night_end(logical_date) -> datetime:
    """Local midnight after the logical date, in the facility's zone: the end of the
    night being built (what a timekeeping extract reads up to)."""
    d = receipt_date(logical_date) + timedelta(days=1)
    return datetime.combine(d, time(0), tzinfo=ZoneInfo(config.facility_tz()))


def extract_timekeeping(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    """The timekeeping versions updated before the end of the logical date's night that
    the warehouse does not hold yet (``healthops.load.timekeeping``), as the loader.
    Without a timekeeping source configured: a warning, and nothing read."""
    from healthops.load.timekeeping import extract_timekeeping as extract

    source = timekeeping_source_url()
    if source is None:
        log.warning(
            "no timekeeping source configured (HEALTHOPS_TIMEKEEPING_URL or the Airflow connection %s): "
            "nothing extracted",
            TIMEKEEPING_CONN_ID,
        )
        return {"skipped": "no timekeeping source configured"}
    d = receipt_date(logical_date)
    summary = extract(
        step_url("loader", url),
        source,
        night_end(d),
        dag_run_id,
        received_date=d,
        overlap=config.timekeeping_overlap(),
    )
    result = summary.as_dict()
    log.info("timekeeping extract for %s: %s", d, result)
    return result


# -- 3. validate -------------------------------------------------------------------
def validate_workforce(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    """Every workforce rule file (licences, BLS, fatigue, HIPAA training, exclusion
    screening, nurse ratios: docs/definitions.md#workforce-compliance-checks) for the
    receipt date, as the checker role: one audit.validation_runs row per suite, one
    rule_results row per rule, the violations' keys (worker ids, units, intervals).

    Runs before ``validate_census``, which appends the audit chains' heads once the
    night's rows are all committed: the heads are written once a night, in one place,
    and anchor both domains' runs. The workforce rules are warnings (findings for the
    auditors, never a reason to hold back the reports); a blocking one, were the
    catalog to get one, raises ``BlockingQualityFailure`` like a census rule. A
    facility without timekeeping data evaluates no rows and passes."""
    from healthops.quality.gx_runner import validate_domain_and_record

    d = receipt_date(logical_date)
    summaries = validate_domain_and_record(step_url("checker", url), "workforce", d, dag_run_id)
    docs = build_data_docs(summaries)
    blocking = [r for s in summaries for r in s.blocking_failures]
    result = {
        "success": all(s.success for s in summaries),
        "blocking_failures": blocking,
        "warnings": [r for s in summaries for r in s.warnings],
        "suites": {s.suite_name: str(s.validation_run_id) for s in summaries},
        "data_docs": docs,
    }
    if blocking:
        runs = ", ".join(f"{s.suite_name} {s.validation_run_id}" for s in summaries if s.blocking_failures)
        raise BlockingQualityFailure(
            f"blocking workforce rules failed for {d}: {', '.join(blocking)} (validation runs: {runs}); "
            "reports are held back"
        )
    log.info("workforce rules for %s: %s", d, {k: result[k] for k in ("success", "warnings")})
    return result


def validate_census(logical_date, dag_run_id: str | None = None, url: str | None = None) -> dict:
    """Every census rule file (one GX suite per data asset: the ADT feed, the load
    batches, the timeline, the encounters, the daily census; and the ADT feed's dbt
    source freshness, run by dbt) for the receipt date. One audit.validation_runs
    row per suite, then the audit chains' heads appended to the heads file
    (``record_audit_heads``), which anchor the workforce rules' rows too
    (``validate_workforce`` runs before it); raises on any blocking failure."""
    from healthops.quality.gx_runner import validate_domain_and_record
    from healthops.quality.rules import rule_files

    d = receipt_date(logical_date)
    base = url or task_warehouse_url()
    url = step_url("checker", base)
    # Before any rule runs: a night that could not anchor its audit rows fails without
    # writing them.
    key = audit_heads_key(base)
    # The daily report shows the rules of the date's latest validation run: keep the
    # census mart's suite last so that is the one it shows.
    rules = sorted(rule_files("census"), key=lambda rf: rf.data_asset == "marts.fct_census_daily")
    summaries = validate_domain_and_record(url, "census", d, dag_run_id, rules=rules)
    # Before any verdict: a blocking failure is when auditors need the evidence most.
    docs = build_data_docs(summaries)
    blocking = [r for s in summaries for r in s.blocking_failures]
    heads, heads_error = None, None
    try:
        heads = record_audit_heads(url, key, d, dag_run_id)
    except Exception as e:
        if not blocking:
            raise
        heads_error = e  # told with the blocking failure below, which decides the night
    result = {
        # the census mart's run, as before; every suite's run under "suites"
        "validation_run_id": str(summaries[-1].validation_run_id),
        "success": all(s.success for s in summaries),
        "blocking_failures": blocking,
        "warnings": [r for s in summaries for r in s.warnings],
        "suites": {s.suite_name: str(s.validation_run_id) for s in summaries},
        "data_docs": docs,
        "audit_heads": heads,
    }
    if blocking:
        runs = ", ".join(f"{s.suite_name} {s.validation_run_id}" for s in summaries if s.blocking_failures)
        raise BlockingQualityFailure(
            f"blocking data-quality rules failed for {d}: {', '.join(blocking)} "
            f"(validation runs: {runs}); reports are held back"
            + (f"; and the audit heads were not written: {heads_error}" if heads_error else "")
        )
    return result


def record_audit_heads(url: str, key: bytes, logical_date: date, dag_run_id: str | None) -> dict:
    """Append the audit chains' heads, as the night left them, to the heads file under
    $HEALTHOPS_OUT/audit/heads/ (``healthops.quality.audit_heads``). Its path and record."""
    from healthops.quality.audit_heads import append_heads, heads_path, read_heads
    from healthops.warehouse.connection import connect

    with connect(url) as conn:
        conn.read_only = True
        heads = read_heads(conn)
    record = append_heads(heads, key, logical_date, dag_run_id)
    return {"file": str(heads_path()), "record": record["record"], "hmac": record["hmac"]}


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
def daily_census_context(conn, report_date: date, facility_code: str | None = None, trend_days: int = 14) -> dict:
    """The daily census report's context for a whole facility (see
    ``healthops.reports.daily_census``), read through the report's reader."""
    from healthops.census.units import load_units
    from healthops.reports.daily_census import KIND
    from healthops.reports.reader import ReportReader

    facility_code = facility_code or load_units()[0]["facility_code"]
    return KIND.build_context(
        ReportReader(conn, KIND.models),
        report_date.isoformat(),
        {"facility": facility_code},
        {"trend_days": trend_days},
    )


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
    return SmtpSettings(
        host=conn.host or "localhost",
        port=int(conn.port or 25),
        username=conn.login or None,
        password=conn.password or None,
        starttls=str(extra.get("starttls", extra.get("disable_tls") is False)).lower() == "true",
        ssl=str(extra.get("ssl", extra.get("disable_ssl") is False)).lower() == "true",
    )


def publish_report(
    report_id: str,
    period: str,
    dag_run_id: str | None = None,
    url: str | None = None,
    smtp=None,
    send: bool | None = None,
    as_of=None,
) -> dict:
    """Publish a catalog report for a period (``healthops.reports.publish``): one
    message per recipient with the recipient's filter applied, sent once per content
    version, revised when late data change it, never with PHI. ``send``: None emails
    a live period and archives history (older than the revision window of a run
    started at ``as_of``, a date or datetime; default now), True emails history too."""
    from healthops.reports.publish import publish

    outcome = publish(
        report_id,
        period,
        url=step_url("reporter", url),
        checks_url=step_url("auditor", url),  # a report's checks (the audit trail's verification) read audit
        smtp=smtp or smtp_settings(),
        dag_run_id=dag_run_id,
        send=send,
        as_of=receipt_date(as_of) if as_of else None,
    )
    return outcome.as_dict()


def publish_daily(
    report_id: str,
    logical_date,
    dag_run_id: str | None = None,
    url: str | None = None,
    smtp=None,
    send: bool | None = None,
    as_of=None,
) -> dict:
    """A daily catalog report for the receipt date (the daily census: to each recipient
    her facility and units), and revisions of the days before that late data changed."""
    return publish_report(report_id, receipt_date(logical_date).isoformat(), dag_run_id, url, smtp, send, as_of)


def report_month(logical_date) -> str:
    """The month a monthly run reports: the month of its logical date in the facility's
    zone (a scheduled run on the 1st has the month before as its data interval, and
    that interval's start as its logical date)."""
    d = receipt_date(logical_date)
    return f"{d:%Y-%m}"


def publish_monthly(
    report_id: str,
    logical_date,
    dag_run_id: str | None = None,
    url: str | None = None,
    smtp=None,
    send: bool | None = None,
    as_of=None,
) -> dict:
    """A monthly catalog report for the month of the run's logical date."""
    return publish_report(report_id, report_month(logical_date), dag_run_id, url, smtp, send, as_of)


# -- what a run did, for the person who started it -----------------------------------
def run_summary(url: str, run_id: str, received: date | None = None) -> dict:
    """What a DAG run left in the warehouse: for a nightly run (``received`` given) the
    date's ADT files and message counts (in = loaded + rejected + duplicate), the files
    that were duplicate deliveries, the entries of the folder refused (audit.refused_files)
    and the files left for the next run (in the folder, still being written) and, when
    nothing was received, the folder that was missing or empty; the HR snapshot's and the
    timekeeping extract's counts (``hr``, ``timekeeping``); for every run, the
    report messages it emailed and those it archived without emailing (history)."""
    import psycopg

    from healthops.load.adt import PATTERN, adt_folder, adt_folder_parts
    from healthops.load.landing import open_folder
    from healthops.warehouse.connection import connect

    out: dict = {}
    with connect(url) as conn:
        try:
            if received is not None:
                files, n_in, loaded, rejected, duplicate, redelivered, paths = conn.execute(
                    """select count(*), coalesce(sum(records_in), 0), coalesce(sum(records_loaded), 0),
                              coalesce(sum(records_rejected), 0), coalesce(sum(records_duplicate), 0),
                              count(duplicate_of_batch_id), coalesce(array_agg(file_path), '{}')
                       from audit.load_batches where source = 'adt' and received_date = %s""",
                    (received,),
                ).fetchone()
                (refused,) = conn.execute(
                    "select count(*) from audit.refused_files where source = 'adt' and received_date = %s",
                    (received,),
                ).fetchone()
                # Listed again (nothing is read): a file still being written was not loaded.
                with open_folder(config.landing(), adt_folder_parts(received), PATTERN) as listing:
                    left = sorted({*listing.left, *(f.rel for f in listing.files)} - set(paths))
                out["load"] = {
                    "files": files,
                    "in": n_in,
                    "loaded": loaded,
                    "rejected": rejected,
                    "duplicate": duplicate,
                    "duplicate_deliveries": redelivered,
                    "refused": refused,
                    "left": left,
                }
                folder = adt_folder(config.landing(), received)
                if not (files or left or refused):
                    out["load"]["missing"] = f"{folder} {'has no file' if listing.exists else 'does not exist'}"
                # the workforce sources of the night: the HR snapshot's files, the
                # timekeeping versions extracted (no batch: nothing new)
                for source in ("hr", "timekeeping"):
                    out[source] = dict(
                        zip(
                            ("files", "in", "loaded", "rejected", "duplicate"),
                            conn.execute(
                                """select count(*), coalesce(sum(records_in), 0), coalesce(sum(records_loaded), 0),
                                          coalesce(sum(records_rejected), 0), coalesce(sum(records_duplicate), 0)
                                   from audit.load_batches where source = %s and received_date = %s""",
                                (source, received),
                            ).fetchone(),
                        )
                    )
            emailed, revised = conn.execute(
                "select count(*), count(*) filter (where revision > 0) from reporting.deliveries "
                "where dag_run_id = %s and state = 'sent'",
                (run_id,),
            ).fetchone()
            (archived,) = conn.execute(
                "select count(*) from reporting.messages where dag_run_id = %s and delivery = 'archived'", (run_id,)
            ).fetchone()
            out["reports"] = {"emailed": emailed, "revised": revised, "archived": archived}
        except psycopg.errors.UndefinedTable:
            pass  # the run failed before the warehouse was set up: nothing to tell
    return out


def publish_compliance_monthly(
    logical_date, dag_run_id: str | None = None, url: str | None = None, smtp=None, send: bool | None = None, as_of=None
) -> dict:
    """The monthly compliance and data-quality report for the auditors."""
    return publish_monthly("compliance_monthly", logical_date, dag_run_id, url, smtp, send, as_of)
