"""The ``healthops`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import smtplib
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from healthops import config


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {s!r}") from None


# -- services the local modes start --------------------------------------------------
@contextlib.contextmanager
def warehouse():
    """The warehouse URL; an embedded server started here is stopped on exit."""
    from healthops.warehouse.connection import embedded_server, warehouse_url

    if os.environ.get("HEALTHOPS_WAREHOUSE_URL"):
        yield warehouse_url()
        return
    server = embedded_server()
    was_running = server.is_running()
    url = server.ensure_running().url
    # the generated timekeeping source beside the embedded warehouse (`healthops demo`
    # makes it), unless a real one is configured
    tk = None if os.environ.get("HEALTHOPS_TIMEKEEPING_URL") else embedded_timekeeping(url)
    if tk:
        os.environ["HEALTHOPS_TIMEKEEPING_URL"] = tk
    try:
        yield url
    finally:
        if tk:
            os.environ.pop("HEALTHOPS_TIMEKEEPING_URL", None)
        if not was_running:
            server.stop()


TIMEKEEPING_DB = "timekeeping"


def embedded_timekeeping(url: str, create: bool = False) -> str | None:
    """The URL of the demo's generated timekeeping database (``timekeeping``) on the
    embedded warehouse's server, made when ``create``; None when it does not exist.
    A stand-in for a vendor's database: healthops only reads it (the extract), the
    generator writes it."""
    import psycopg

    from healthops.warehouse.connection import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (TIMEKEEPING_DB,)).fetchone()
        if not exists:
            if not create:
                return None
            conn.execute(f'create database "{TIMEKEEPING_DB}"')
    return f"{url.rsplit('/', 1)[0]}/{TIMEKEEPING_DB}"


@contextlib.contextmanager
def smtp_relay():
    """The SMTP URL: the configured relay, else an embedded server that writes each
    message to $HEALTHOPS_OUT/outbox/ as a .eml file."""
    configured = os.environ.get("AIRFLOW_CONN_SMTP_DEFAULT") or os.environ.get("HEALTHOPS_SMTP_URL")
    if configured:
        yield configured, None
        return
    from healthops.reports.outbox import start_outbox

    # aiosmtpd logs every SMTP command at INFO ("mail.log"); once Airflow has set the
    # root logger up, that would bury the demo's own output.
    for name in ("mail.log", "healthops.reports.outbox"):
        logging.getLogger(name).setLevel(logging.WARNING)
    outbox_dir = config.out() / "outbox"
    with start_outbox(outbox_dir) as box:
        yield box.url, outbox_dir


# -- commands --------------------------------------------------------------------------
def cmd_generate(args) -> int:
    from healthops.synthetic.adt_feed import generate

    start = args.start or (date.today() - timedelta(days=args.days))
    summary = generate(config.landing(), start, args.days, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _describe(r: dict) -> str:
    """One line per run: its verdict, what it loaded and what became of its reports."""
    parts = []
    load = r.get("load")
    if load is not None and (r.get("tasks") or {}).get("load_adt") == "success":
        if load["files"]:
            redelivered = load.get("duplicate_deliveries")
            parts.append(
                f"ADT {load['files']} file(s): {load['in']} in = {load['loaded']} loaded + "
                f"{load['rejected']} rejected + {load['duplicate']} duplicate"
                + (f" ({redelivered} file(s) delivered again)" if redelivered else "")
            )
        elif load.get("missing"):
            parts.append(f"ADT: nothing received ({load['missing']})")
        if load.get("refused"):
            parts.append(f"ADT: {load['refused']} entry(ies) of the folder refused, not read (audit.refused_files)")
        if load.get("left"):
            parts.append(f"ADT: {len(load['left'])} file(s) still being written, left for the next run")
    tasks = r.get("tasks") or {}
    for source, label, what in (("hr", "HR", "record"), ("timekeeping", "timekeeping", "new version")):
        counts = r.get(source)
        if (
            counts
            and counts["files"]
            and tasks.get("load_hr" if source == "hr" else "extract_timekeeping") == "success"
        ):
            parts.append(
                f"{label} {counts['files']} batch(es): {counts['loaded']} {what}(s) loaded"
                + (f", {counts['rejected']} rejected" if counts["rejected"] else "")
            )
    if r.get("message"):
        parts.append(r["message"])
    rep = r.get("reports")
    if rep and r["verdict"] != "held":
        if rep["archived"]:
            parts.append(f"reports: {rep['archived']} archived, not emailed (history)")
        if rep["emailed"]:
            revised = f" ({rep['revised']} revised)" if rep["revised"] else ""
            parts.append(f"reports: {rep['emailed']} emailed{revised}")
    label = {"success": "success", "held": "HELD", "failed": "FAILED"}[r["verdict"]]
    return f"{label:<7} {r['seconds']:6.1f} s  " + "; ".join(parts)


def _history_notice(report_ids: list[str], periods: list[str], send: bool) -> str | None:
    """Which periods are older than the revision window (archived, not emailed, unless --send)."""
    from healthops.reports.catalog import load_catalog
    from healthops.reports.periods import is_history, live_period, periods_to_check

    catalog = load_catalog()
    today = config.facility_today()
    history: set[str] = set()
    window = ""
    for report_id in report_ids:
        entry = catalog["reports"][report_id]
        history |= {p for p in periods if is_history(entry["period"], entry, p, today)}
        window = periods_to_check(entry["period"], entry, live_period(entry["period"], today))[-1]
    if not history:
        return None
    span = f"{min(history)} .. {max(history)}" if len(history) > 1 else min(history)
    if send:
        return f"{len(history)} period(s) older than the revision window ({span}): reports emailed, as --send asks."
    return (
        f"{len(history)} period(s) older than the revision window (before {window}): {span}. Their reports are "
        "rendered and archived (healthops reports sent --archived), not emailed; --send emails them."
    )


def _audience_warnings(url: str, first: date, last: date) -> list[str]:
    """Facilities with census data in the range that some report's recipients do not cover."""
    import psycopg

    from healthops.reports.catalog import load_catalog
    from healthops.reports.publish import facilities_without_audience
    from healthops.warehouse.connection import connect

    with connect(url) as conn:
        try:
            facilities = [
                f
                for (f,) in conn.execute(
                    "select distinct facility_code from marts.fct_census_daily where census_date between %s and %s",
                    (first, last),
                )
            ]
        except psycopg.errors.UndefinedTable:  # no mart yet (the first night failed before dbt)
            return []
    gaps = facilities_without_audience(load_catalog(), facilities)
    return [
        f"facility {f} has census data but no recipient of {', '.join(reports)} in the report catalog: its "
        "data is loaded, built and checked; add a recipient with its filter to send its reports."
        for f, reports in sorted(gaps.items())
    ]


def _run_dag(dag_id: str, dates: list[date], labels: list[str], send: bool, what: str, census_nights: bool = False):
    """Run ``dag_id`` for each logical date, printing each verdict as it comes; exit
    code 0 only when every date ran and succeeded. ``census_nights``: also name the
    facilities whose census was built for the dates but that have no recipient."""
    from healthops.orchestration import run_dates

    by_date = dict(zip((d.isoformat() for d in dates), labels))

    def show(r):
        print(f"  {by_date.get(r['date'], r['date'])}: {_describe(r)}", flush=True)

    with warehouse() as url, smtp_relay() as (smtp_url, outbox_dir):
        behind = _warehouse_behind(url)
        if behind:  # every run would fail at its first task: say why now, not in the Airflow log
            print(f"FAILED: {behind}", file=sys.stderr)
            return 1, []
        print(f"Running {len(dates)} {what} run(s) through Airflow: {labels[0]} .. {labels[-1]}", flush=True)
        results = run_dates(dates, url, smtp_url, dag_id=dag_id, conf={"send": True} if send else None, on_result=show)
        warnings = _audience_warnings(url, dates[0], dates[-1]) if census_nights else []
    for w in warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    held = [r for r in results if r["verdict"] == "held"]
    if held:
        print(
            f"HELD: {len(held)} night(s) loaded and built, reports held back by blocking data-quality rules "
            "(healthops audit findings):",
            file=sys.stderr,
        )
        for r in held:
            print(f"  {r['date']}: {', '.join(r.get('blocking', []))}", file=sys.stderr)
    failed = [r for r in results if r["verdict"] == "failed"]
    not_run = [lab for d, lab in by_date.items() if d not in {r["date"] for r in results}]
    if failed:
        r = failed[-1]
        print(
            f"FAILED: the {what} run for {by_date.get(r['date'], r['date'])} did not succeed: {r['message']}. "
            + (f"Not run after it: {', '.join(not_run)}. " if not_run else "")
            + f"Airflow log: {r['log']}",
            file=sys.stderr,
        )
    elif not results:
        print("FAILED: no run finished", file=sys.stderr)
    ok = len(results) == len(dates) and all(r["verdict"] == "success" for r in results)
    return (0 if ok else 1), results


def _warehouse_behind(url: str) -> str | None:
    """Why the DAGs' tasks would refuse this warehouse (not at this healthops'
    revision: they never change DDL), or None."""
    from healthops.errors import ConfigurationError
    from healthops.warehouse.connection import connect
    from healthops.warehouse.migrate import require_current

    with connect(url, autocommit=True) as conn:
        try:
            require_current(conn)
        except ConfigurationError as e:
            return str(e)
    return None


def _run(first: date, last: date, send: bool = False) -> tuple[int, list[dict]]:
    from healthops.orchestration import DAG_ID

    if last < first:
        raise SystemExit(f"--to {last} is before --date {first}")
    dates = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    notice = _history_notice(["daily_census"], [d.isoformat() for d in dates], send)
    if notice:
        print(notice, flush=True)
    return _run_dag(DAG_ID, dates, [d.isoformat() for d in dates], send, "nightly", census_nights=True)


def cmd_run(args) -> int:
    rc, _ = _run(args.date, args.to or args.date, send=args.send)
    return rc


def _month(s: str) -> date:
    from healthops.reports.periods import Month

    try:
        return Month.parse(s).first
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {s!r}") from None


def _run_monthly(months: list[date], send: bool = False) -> int:
    """The monthly reports DAG through Airflow, one run per month (logical date: the 1st)."""
    from healthops.orchestration import MONTHLY_DAG_ID
    from healthops.reports.catalog import load_catalog

    labels = [f"{m:%Y-%m}" for m in months]
    monthly = [r for r, e in load_catalog()["reports"].items() if e.get("period") == "month"]
    notice = _history_notice(monthly, labels, send) if monthly else None
    if notice:
        print(notice, flush=True)
    rc, _ = _run_dag(MONTHLY_DAG_ID, months, labels, send, "monthly reports")
    return rc


def cmd_reports_sent(args) -> int:
    from healthops.reports.publish import archived_messages, sent_messages

    with _audit_connection() as conn:
        if args.archived:
            rows = archived_messages(conn, report=args.report, since=args.since)
        else:
            rows = sent_messages(conn, report=args.report, since=args.since)
            (n_archived,) = conn.execute(
                "select count(*) from reporting.messages where delivery = 'archived'"
            ).fetchone()
    what = "archived report messages (not emailed)" if args.archived else "report messages sent"
    if not rows:
        print(
            f"no {what}"
            + (f" for {args.report}" if args.report else "")
            + (f" since {args.since}" if args.since else "")
        )
        return 0
    when = "archived at (UTC)" if args.archived else "sent at (UTC)"
    print(f"{when:<17} {'report':<20} {'period':<10} {'rev':>3}  {'recipient':<34} message id")
    for r in rows:
        print(
            f"{r['sent_at']:%Y-%m-%d %H:%M}  {r['report_id']:<20} {r['period']:<10} {r['revision']:>3}  "
            f"{r['recipient']:<34} {r['message_id']}" + ("" if r["eml_sha256"] else "  (not archived)")
        )
    print(
        f"{len(rows)} message(s). {'Email' if args.archived else 'Resend'} one: "
        "healthops reports resend MESSAGE_ID [--to ADDRESS]"
    )
    if not args.archived and n_archived:
        print(f"{n_archived} more archived without emailing (history periods): healthops reports sent --archived")
    return 0


def cmd_reports_resend(args) -> int:
    from healthops.reports.delivery import SmtpSettings
    from healthops.reports.publish import resend

    with smtp_relay() as (smtp_url, outbox_dir), _audit_connection(step="reporter") as conn:
        try:
            done = resend(conn, args.message_id, SmtpSettings.from_url(smtp_url), to=args.to, by=args.by)
        except LookupError as e:
            print(str(e), file=sys.stderr)
            return 1
        except (OSError, smtplib.SMTPException) as e:  # recorded 'failed' in reporting.resends
            print(f"resend of {args.message_id} failed ({type(e).__name__}: {e}); recorded as failed", file=sys.stderr)
            return 1
    print(f"resent {done['message_id']} to {done['recipient']}" + (f" (outbox: {outbox_dir})" if outbox_dir else ""))
    return 0


def cmd_reports_monthly(args) -> int:
    from healthops.reports.periods import months_between

    last = args.to or args.month
    if last < args.month:
        raise SystemExit(f"--to {last:%Y-%m} is before --month {args.month:%Y-%m}")
    return _run_monthly([m.first for m in months_between(args.month, last)], send=args.send)


def cmd_warehouse_url(args) -> int:
    from healthops.warehouse.connection import warehouse_url

    print(warehouse_url())
    return 0


def cmd_warehouse_stop(args) -> int:
    from healthops.warehouse.connection import embedded_server

    stopped = embedded_server().stop()
    print("embedded warehouse stopped" if stopped else "embedded warehouse was not running")
    return 0


def cmd_warehouse_status(args) -> int:
    """The warehouse's schema revision against this healthops' (exit 1 when behind);
    for the embedded warehouse, whether it runs (a stopped one is not started)."""
    from healthops.warehouse.connection import embedded_server, warehouse_url
    from healthops.warehouse.migrate import status

    if not os.environ.get("HEALTHOPS_WAREHOUSE_URL"):
        server = embedded_server()
        if not server.is_running():
            print("embedded warehouse: stopped (`healthops warehouse-url` starts it)")
            return 0
        print("embedded warehouse: running")
    st = status(warehouse_url())
    print(st.describe())
    return 0 if st.up_to_date else 1


def cmd_warehouse_migrate(args) -> int:
    """Bring the warehouse's own tables (raw, audit, reporting), triggers and roles to
    this healthops' revision. The deployment and the demo run it before any DAG."""
    from healthops.errors import ConfigurationError
    from healthops.warehouse.migrate import migrate

    with warehouse() as url:
        try:
            result = migrate(url)
        except ConfigurationError as e:
            print(f"migration failed: {e}", file=sys.stderr)
            return 2
    print(result.describe())
    return 0


def cmd_demo(args) -> int:
    from healthops.synthetic.adt_feed import generate

    t0 = time.monotonic()
    start = args.start
    last = start + timedelta(days=args.days - 1)
    summary = generate(config.landing(), start, args.days, seed=args.seed)
    print(
        f"Generated {summary.get('messages', '?')} ADT messages in {summary.get('files', '?')} files "
        f"for {start} .. {last} under {config.landing() / 'adt'}",
        flush=True,
    )
    with warehouse() as url:  # one start of the embedded warehouse for the whole demo
        from healthops.synthetic.workforce import generate_workforce
        from healthops.warehouse.migrate import migrate

        tk_url = os.environ.get("HEALTHOPS_TIMEKEEPING_URL") or embedded_timekeeping(url, create=True)
        os.environ["HEALTHOPS_TIMEKEEPING_URL"] = tk_url
        staff = generate_workforce(config.landing(), tk_url, start, args.days, seed=args.seed)
        print(
            f"Generated {staff['workers']} workers' HR snapshots under {config.landing() / 'hr'} and "
            f"{staff['punches']} punches, {staff['pay_lines']} pay lines ({staff['edits']} timecard edits) "
            "in the timekeeping database",
            flush=True,
        )
        print(migrate(url).describe(), flush=True)  # as a deployment does before its DAGs run
        # The demo's fixed dates lie in the past: --send, so its emails are there to read.
        rc, results = _run(start, last, send=True)
        if rc == 0:  # the monthly reports of the months the demo touched (the last one is month to date)
            months = sorted({start.replace(day=1), last.replace(day=1)})
            rc = _run_monthly(months, send=True)
        _print_summary(url, start, last)
        if rc == 0:
            print(f"dbt docs (models, PHI meta, each report's lineage): {_generate_docs(url)}")
    print(f"\nDemo finished in {time.monotonic() - t0:.0f} s" + ("" if rc == 0 else " WITH FAILURES"))
    return rc


def _generate_docs(url: str) -> Path:
    from healthops.warehouse.dbt_runner import generate_docs

    return generate_docs(url, config.out() / "dbt_docs")


def cmd_docs(args) -> int:
    with warehouse() as url:
        print(_generate_docs(url))
    return 0


def _print_summary(url: str, first: date, last: date) -> None:
    from healthops.warehouse.connection import connect

    with connect(url) as conn:
        b = conn.execute(
            """select count(*), coalesce(sum(records_in),0), coalesce(sum(records_loaded),0),
                      coalesce(sum(records_rejected),0), coalesce(sum(records_duplicate),0)
               from audit.load_batches where received_date between %s and %s""",
            (first, last),
        ).fetchone()
        reasons = conn.execute(
            """select reason_category, count(*) from raw.rejected
               where received_date between %s and %s group by 1 order by 2 desc, 1""",
            (first, last),
        ).fetchall()
        census = conn.execute(
            """select census_date, sum(midnight_census), sum(admissions), sum(discharges), sum(patient_days)
               from marts.fct_census_daily where census_date between %s and %s
               group by 1 order by 1""",
            (first, last),
        ).fetchall()
        runs = conn.execute(
            """select count(*), count(*) filter (where success) from audit.validation_runs
               where logical_date between %s and %s""",
            (first, last),
        ).fetchone()
        sent = conn.execute(
            """select count(distinct (report_id, period, message_id)), count(*) from reporting.deliveries
               where state = 'sent' and (period between %s and %s or period between %s and %s)""",
            (first.isoformat(), last.isoformat(), f"{first:%Y-%m}", f"{last:%Y-%m}"),
        ).fetchone()
    print("\n== healthops demo summary ==")
    print(
        f"ADT files loaded: {b[0]}; messages in {b[1]} = loaded {b[2]} + rejected {b[3]} + duplicate {b[4]} "
        "(resent copies, kept in raw.duplicates)"
    )
    for why, n in reasons:
        print(f"   rejected: {n:4d}  {why}")
    print("Census (all inpatient units):  date        midnight  admits  discharges  patient days")
    for d, mc, a, dc, pd in census:
        print(f"                               {d}  {mc:8d}  {a:6d}  {dc:10d}  {pd:12d}")
    print(f"Data-quality validations: {runs[0]} run(s), {runs[1]} passed (results in audit.validation_runs)")
    print(f"Report emails delivered: {sent[0]} message(s), {sent[1]} recipient deliveries")
    print(f"Reports (HTML + PDF): {config.out() / 'reports'}")
    print(f"Delivered emails (.eml): {config.out() / 'outbox'}")
    print(
        "Warehouse: `healthops warehouse-url` starts it and prints its URL (psql, BI tools); "
        "`healthops warehouse stop` stops it."
    )


# -- audit: the auditors' commands ---------------------------------------------------
@contextlib.contextmanager
def _audit_connection(url: str | None = None, step: str = "auditor"):
    """A connection to the warehouse (``url``, else the configured or embedded one) for
    the audit and report-archive commands, logged in as the auditor role (``step``:
    ``reporter`` for a resend, which writes the delivery ledger); a clear message
    (exit 2) when the warehouse is not at this healthops' revision or the role has no
    password set."""
    from healthops.errors import ConfigurationError
    from healthops.warehouse.connection import connect
    from healthops.warehouse.migrate import require_current
    from healthops.warehouse.roles import step_url

    with contextlib.nullcontext(url) if url else warehouse() as url:
        try:
            role_url = step_url(url, step)
        except ConfigurationError as e:
            print(e, file=sys.stderr)
            raise SystemExit(2) from None
        with connect(role_url) as conn:
            try:
                require_current(conn)
            except ConfigurationError as e:
                print(e, file=sys.stderr)
                raise SystemExit(2) from None
            yield conn


def cmd_audit_verify(args) -> int:
    """The chains; with --against, also every head a heads file recorded (a chain
    recomputed by a superuser passes the first check, not the second)."""
    from healthops.errors import ConfigurationError
    from healthops.pipeline import audit_heads_key
    from healthops.quality.audit_heads import verify_file
    from healthops.quality.audit_trail import verify

    if args.against and not args.against.is_file():
        print(f"no heads file {args.against}", file=sys.stderr)
        return 2
    with warehouse() as url:
        try:
            key = audit_heads_key(url) if args.against else None
        except ConfigurationError as e:
            print(e, file=sys.stderr)
            return 2
        with _audit_connection(url) as conn:
            result = verify(conn)
            against = verify_file(conn, args.against, key) if args.against else None
    if not result.ok:
        print(f"chain BROKEN: {len(result.problems)} problem(s) in {result.rows_checked} rows checked")
        for p in result.problems:
            print(f"  {p}")
    else:
        print(f"chain intact: {result.rows_checked} rows")
        for table, n in result.rows_by_table.items():
            seq, h = result.heads.get(table, (None, None))
            print(f"  {table:24s} {n:7d} rows" + (f"  head seq {seq}  {h}" if seq else "  (empty)"))
    if against is not None:
        _print_heads_check(against)
    return 0 if result.ok and (against is None or against.ok) else 1


HEADS_PROBLEMS_SHOWN = 50  # a chain recomputed early fails every later night's line: the first ones say it


def _print_heads_check(check) -> None:
    from healthops.quality.audit_heads import describe_records

    checked = f"{check.lines} line(s), {describe_records(check)}"
    if check.ok:
        print(f"heads file intact: {check.path}: {checked}; every HMAC and link verified")
        print(
            f"chain extends every recorded head: {check.heads_checked} head(s) checked in "
            + (", ".join(check.tables) or "no table")
        )
        return
    print(f"heads file check FAILED: {check.path}: {checked}; {len(check.problems)} problem(s)")
    for p in check.problems[:HEADS_PROBLEMS_SHOWN]:
        print(f"  {p}")
    if len(check.problems) > HEADS_PROBLEMS_SHOWN:
        print(f"  ... and {len(check.problems) - HEADS_PROBLEMS_SHOWN} more")


def cmd_audit_findings(args) -> int:
    from healthops.quality.audit_trail import findings

    with _audit_connection() as conn:
        rows = findings(conn, since=args.since, rule=args.rule, include_reviewed=args.all)
    what = "findings" if args.all else "open findings"
    if not rows:
        print(
            f"no {what}"
            + (f" since {args.since}" if args.since else "")
            + (f" of rule {args.rule}" if args.rule else "")
        )
        return 0
    header = ("finding", "logical date", "rule", "severity", "violating", "status", "description")
    table = []
    for f in rows:
        violating = (
            "-"
            if f.rows_violating is None
            else (f"{f.rows_violating}" + (f"/{f.rows_evaluated}" if f.rows_evaluated is not None else ""))
        )
        status = f.status if f.result_status == "failed" else f"{f.status} ({f.result_status})"
        desc = f.description if len(f.description) <= 70 else f.description[:67] + "..."
        table.append((f.finding_id, f.logical_date.isoformat(), f.rule_id, f.severity, violating, status, desc))
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    for r in (header, *table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"{len(rows)} {what if len(rows) != 1 else what[:-1]}")
    return 0


def cmd_audit_review(args) -> int:
    from healthops.quality.audit_trail import review

    with _audit_connection() as conn:
        try:
            r = review(conn, args.finding, args.by, args.note)
        except (LookupError, ValueError) as e:
            print(f"review not recorded: {e.args[0] if e.args else e}", file=sys.stderr)
            return 2
    print(
        f"{r.review_id}: review of {r.finding_id} by {r.reviewed_by} recorded "
        f"(audit.reviews seq {r.chain_seq}, {r.row_hash[:12]})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="healthops", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a deterministic synthetic ADT feed under $HEALTHOPS_LANDING")
    g.add_argument("--days", type=int, required=True)
    g.add_argument("--start", type=_date, help="first day (default: DAYS days before today)")
    g.add_argument("--seed", type=int, default=7)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="run the nightly DAG through Airflow for each logical date")
    r.add_argument("--date", type=_date, required=True)
    r.add_argument("--to", type=_date, help="last logical date (inclusive)")
    r.add_argument(
        "--send",
        action="store_true",
        help="email the reports of dates older than the revision window too (default: archive them)",
    )
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("warehouse-url", help="print the warehouse URL, starting the embedded one if needed")
    w.set_defaults(func=cmd_warehouse_url)
    ws = sub.add_parser("warehouse", help="the warehouse's own tables (migrate, status); the embedded server (stop)")
    wsub = ws.add_subparsers(dest="warehouse_command", required=True)
    wm = wsub.add_parser(
        "migrate",
        help="create or upgrade healthops' raw, audit and reporting tables, triggers "
        "and roles to this release (run before the DAGs; safe to repeat)",
    )
    wm.set_defaults(func=cmd_warehouse_migrate)
    wst = wsub.add_parser("status", help="the warehouse's schema revision against this release's (exit 1 if behind)")
    wst.set_defaults(func=cmd_warehouse_status)
    wsp = wsub.add_parser("stop", help="stop the embedded warehouse")
    wsp.set_defaults(func=cmd_warehouse_stop)

    p_docs = sub.add_parser(
        "docs",
        help="generate the dbt documentation site (models, PHI meta, report lineage) under $HEALTHOPS_OUT/dbt_docs",
    )
    p_docs.set_defaults(func=cmd_docs)
    d = sub.add_parser("demo", help="generate a small hospital's feed and run every night of it")
    d.add_argument("--days", type=int, default=14)
    d.add_argument("--start", type=_date, default=date(2026, 11, 2))
    d.add_argument("--seed", type=int, default=7)
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("reports", help="recurring reports")
    rsub = rp.add_subparsers(dest="reports_command", required=True)
    rm = rsub.add_parser("monthly", help="run the monthly reports DAG through Airflow for a month")
    rm.add_argument("--month", type=_month, required=True, help="YYYY-MM")
    rm.add_argument("--to", type=_month, help="last month (inclusive)")
    rm.add_argument(
        "--send",
        action="store_true",
        help="email the reports of months older than the revision window too (default: archive them)",
    )
    rm.set_defaults(func=cmd_reports_monthly)
    rs = rsub.add_parser("sent", help="list the report messages sent (the delivery ledger and archive)")
    rs.add_argument("--report", help="a report id of the catalog, e.g. daily_census")
    rs.add_argument("--since", type=_date, help="sent on or after this day (YYYY-MM-DD)")
    rs.add_argument(
        "--archived",
        action="store_true",
        help="list the messages archived without emailing (history periods of a backfill) instead",
    )
    rs.set_defaults(func=cmd_reports_sent)
    rr = rsub.add_parser("resend", help="send an archived message again, byte for byte")
    rr.add_argument("message_id", help="as listed by `healthops reports sent`")
    rr.add_argument("--to", help="another address (default: the original recipient)")
    rr.add_argument("--by", help="who asked for the resend (kept with it)")
    rr.set_defaults(func=cmd_reports_resend)

    a = sub.add_parser("audit", help="the audit trail: verify it, list findings, record reviews")
    asub = a.add_subparsers(dest="audit_command", required=True)
    av = asub.add_parser("verify", help="check the audit history's hash chains; exit 1 naming a broken row")
    av.add_argument(
        "--against",
        type=Path,
        metavar="FILE",
        help="also check a heads file ($HEALTHOPS_OUT/audit/heads/heads.jsonl or a copy kept elsewhere): its "
        "HMACs and links, and that every head it recorded is still in its chain (key: HEALTHOPS_AUDIT_HMAC_KEY)",
    )
    av.set_defaults(func=cmd_audit_verify)
    af = asub.add_parser("findings", help="list open findings (rule results that did not pass, not yet reviewed)")
    af.add_argument("--since", type=_date, help="logical dates from this day on (YYYY-MM-DD)")
    af.add_argument("--rule", help="one rule id, e.g. CEN-011")
    af.add_argument("--all", action="store_true", help="include reviewed findings")
    af.set_defaults(func=cmd_audit_findings)
    ar = asub.add_parser("review", help="record a review of a finding")
    ar.add_argument("finding", help="finding id, e.g. F-000123")
    ar.add_argument("--by", required=True, help="the reviewer's name")
    ar.add_argument("--note", required=True, help="what was found and decided")
    ar.set_defaults(func=cmd_audit_review)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
