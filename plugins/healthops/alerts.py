"""The e-mail data engineers get when a nightly run fails.

``notify_run_failure`` is the nightly DAG's ``on_failure_callback``: Airflow calls
it once per failed DAG run (by the dag-processor in production, by ``dag.test()``
in the demo and tests), with the last failed task instance in the context. It
also takes a ``RunFailure`` built by hand, so it runs and is tested without
Airflow.

What the message says, and what it never says:

- the failing task, the Airflow run id, the logical date, where the log is;
- the error: Airflow does not pass the exception to DAG-level callbacks, so it
  is the context's ``exception`` when there is one (a task-level callback), else
  the last error of the log file when this machine can read it (the run's log
  under ``healthops run``, the task's file under base_log_folder), else, for a
  blocking data-quality failure, the failed blocking rules;
- the PHI scan of the reports runs over the subject and body before sending; a hit
  never stops an alert: the identifiers are replaced by ``[redacted]`` and the alert
  says so (``scanned``);
- for a data-quality failure, the failed rules of that run from
  ``audit.rule_results``: rule id, severity, violating and evaluated counts, and
  the reviewed rule's description. No values of rows: the message carries no PHI
  (``detail`` with its partial lists and evidence rows is left out on purpose).

Recipients: ``alerts.data_engineers`` of the report catalog. The Message-ID is a
hash of the run id, so a callback that runs twice for a run (a dag-processor
restart) sends a message a relay or mail store can de-duplicate.

When the relay is down (or refuses), the alert is not lost with the mail: its text
(the same text the e-mail carries, no PHI) is logged at ERROR, so it is in the Airflow
task log, and written to ``$HEALTHOPS_OUT/alerts/<dag>.<run>.txt`` (one file per
alert, owner-only), where an operator sees it without mail; then the send error is
raised as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Callable, Mapping

from healthops.pipeline import QUALITY_TASK

log = logging.getLogger(__name__)

RUN_LOG_ENV = "HEALTHOPS_RUN_LOG"  # set by `healthops run`: the file the whole Airflow run logs to
MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class RunFailure:
    dag_id: str
    run_id: str
    logical_date: date | None
    task_id: str | None
    exception: str | None = None
    log_url: str | None = None
    log_file: str | None = None
    reason: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> "RunFailure":
        """From an Airflow callback context (DAG- or task-level)."""
        from healthops.pipeline import receipt_date

        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_run = context.get("dag_run")
        logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
        exc = context.get("exception")
        return cls(
            dag_id=getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?",
            run_id=context.get("run_id") or getattr(ti, "run_id", None) or "?",
            logical_date=receipt_date(logical) if logical else None,
            task_id=getattr(ti, "task_id", None),
            exception=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else (exc or None),
            log_url=_safe(lambda: ti.log_url) if ti is not None else None,
            log_file=os.environ.get(RUN_LOG_ENV) or _task_log_file(ti),
            reason=context.get("reason"),
        )


@dataclass
class FailedRule:
    rule_id: str
    severity: str
    rows_violating: int | None
    rows_evaluated: int | None
    suite_name: str
    description: str = ""


@dataclass
class Alert:
    subject: str
    text: str
    recipients: list[str]
    failed_rules: list[FailedRule] = field(default_factory=list)
    message_id: str = ""
    redacted: int = 0  # identifiers the PHI scan replaced by "[redacted]"


def notify_run_failure(
    context: Mapping[str, Any] | RunFailure, *, url: str | None = None, smtp=None, catalog: dict | None = None
) -> Alert:
    """Send the failure e-mail for a failed run to the data engineers; returns it.
    ``url``, ``smtp``, ``catalog`` default to the task's warehouse, the
    ``smtp_default`` connection (or HEALTHOPS_SMTP_URL) and the report catalog."""
    from healthops.pipeline import smtp_settings
    from healthops.reports.catalog import load_catalog
    from healthops.reports.delivery import send

    failure = context if isinstance(context, RunFailure) else RunFailure.from_context(context)
    catalog = catalog if catalog is not None else load_catalog()
    recipients = data_engineers(catalog)
    rules, audit_error = _failed_rules(failure, url)
    alert = scanned(failure, rules, recipients, audit_error, url)
    sender = (catalog.get("defaults") or {}).get("sender") or "healthops@localhost"
    message = build_message(alert, sender, failure)
    try:
        send(message, smtp or smtp_settings())
    except Exception as exc:
        path = write_alert_file(alert, failure)
        log.error(
            "failure alert for %s %s could NOT be mailed (%s: %s); written to %s:\n%s\n%s",
            failure.dag_id,
            failure.run_id,
            type(exc).__name__,
            exc,
            path,
            alert.subject,
            alert.text,
        )
        raise
    log.info("failure alert for %s %s sent to %s", failure.dag_id, failure.run_id, ", ".join(recipients))
    return alert


def alerts_dir() -> Path:
    from healthops import config

    return config.out() / "alerts"


def write_alert_file(alert: Alert, failure: RunFailure) -> Path:
    """The alert as a text file under ``$HEALTHOPS_OUT/alerts/`` (owner-only: 0700 folder,
    0600 file), named after the DAG and run: a second callback for the run rewrites it."""
    folder = alerts_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{failure.dag_id}.{failure.run_id}")
    path = folder / f"{safe}.txt"
    body = (
        f"Subject: {alert.subject}\nTo: {', '.join(alert.recipients)}\nMessage-ID: {alert.message_id}\n\n{alert.text}"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(body)
    return path


def data_engineers(catalog: Mapping) -> list[str]:
    alerts = catalog.get("alerts") or {}
    recipients = alerts.get("data_engineers") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise ValueError(
            f"{catalog.get('path', 'report catalog')}: alerts.data_engineers must list "
            "the e-mail addresses that receive run failures"
        )
    return list(recipients)


def scanned(
    failure: RunFailure, rules: list[FailedRule], recipients: list[str], audit_error: str | None, url: str | None
) -> Alert:
    """The alert, through the reports' PHI scan (``healthops.reports.phi``): an error can
    quote a message (a name, an MRN). An alert must always go out, so a hit never stops
    it: the identifiers the warehouse knows (``phi.redact``, the run's own date kept) are
    replaced by ``[redacted]`` in the subject and body. When the warehouse cannot be asked
    (it may be why the run failed, or it lacks the scan's function), the error text is
    redacted by look instead (``phi.redact_likely_identifiers``: long numbers, HL7
    components, quoted values). Either way the alert says how many were redacted."""
    from healthops.pipeline import step_url
    from healthops.reports import phi
    from healthops.warehouse.connection import connect

    alert = compose(failure, rules, recipients, audit_error=audit_error)
    keep = [failure.logical_date] if failure.logical_date else []
    try:
        # as the auditor, like the rules it reads: it may ask the scan's function, not read raw
        with connect(step_url("auditor", url), connect_timeout=10) as conn:
            alert.subject, in_subject = phi.redact(conn, alert.subject, keep)
            alert.text, in_text = phi.redact(conn, alert.text, keep)
        alert.redacted = in_subject + in_text
        how = "patient identifiers known to the warehouse"
    except Exception as exc:
        log.warning(
            "failure alert: the PHI scan could not ask the warehouse (%s); what looks like an identifier in the "
            "error is redacted",
            type(exc).__name__,
        )
        alert = compose(failure, rules, recipients, audit_error=audit_error, scrub=phi.redact_likely_identifiers)
        how = "they look like patient identifiers; the warehouse could not be asked which are"
    if alert.redacted:
        alert.text += (
            f"\nPHI scan: {alert.redacted} value(s) replaced by [redacted] ({how}); the run's log has the full error.\n"
        )
        log.warning("failure alert for %s %s: %d value(s) redacted", failure.dag_id, failure.run_id, alert.redacted)
    return alert


def compose(
    failure: RunFailure,
    rules: list[FailedRule],
    recipients: list[str],
    audit_error: str | None = None,
    scrub: Callable[[str], tuple[str, int]] | None = None,
) -> Alert:
    """The alert's subject and text. ``scrub``: applied to the error and the reason (the
    parts that may quote data), returning (text, how many values it redacted)."""
    redacted = 0

    def clean(value: str | None) -> str | None:
        nonlocal redacted
        if value is None or scrub is None:
            return value
        value, n = scrub(value)
        redacted += n
        return value

    day = failure.logical_date.isoformat() if failure.logical_date else "?"
    task = failure.task_id or "(no task failed: " + (clean(failure.reason) or "unknown") + ")"
    subject = f"[healthops] nightly census FAILED for {day}: {task}"
    blocking = [r for r in rules if r.severity == "blocking"]
    error = clean(failure.exception or (last_error(Path(failure.log_file)) if failure.log_file else None))
    if not error and failure.task_id == QUALITY_TASK and blocking:
        error = (
            "BlockingQualityFailure: blocking data-quality rules failed for "
            f"{day}: {', '.join(r.rule_id for r in blocking)}; reports are held back"
        )
    lines = [
        f"The nightly census run for {day} failed{f' in task {failure.task_id}' if failure.task_id else ''}.",
        "",
        f"DAG:          {failure.dag_id}",
        f"Run id:       {failure.run_id}",
        f"Logical date: {day}",
        f"Failed task:  {task}",
        f"Log:          {failure.log_url or '(unknown)'}",
    ]
    if failure.log_file:
        lines.append(f"Log file:     {failure.log_file}")
    lines += [
        "",
        "Error:",
        "  "
        + (error or "(Airflow passes no exception to a run-level callback; see the log)").replace("\n", "\n  ")[
            :MAX_ERROR_CHARS
        ],
    ]
    if rules:
        lines += ["", "Data-quality rules that failed in this run (audit.rule_results; ids and counts only):"]
        for r in rules:
            counts = "violating rows: " + ("?" if r.rows_violating is None else str(r.rows_violating))
            if r.rows_evaluated is not None:
                counts += f" of {r.rows_evaluated} evaluated"
            lines.append(f"  {r.rule_id} [{r.severity}] {r.suite_name}: {counts}")
            if r.description:
                lines.append(f"      {r.description}")
    if audit_error:
        lines += ["", f"The run's data-quality results could not be read: {audit_error}"]
    if failure.task_id == QUALITY_TASK or blocking:
        lines += ["", "Reports that depend on the census were not published for this date."]
    lines += [
        "",
        "Re-run the date after fixing the cause: `healthops run --date " + day + "` "
        "(or clear the run in Airflow); every step is idempotent.",
        "",
        "This message carries no patient-identifying information.",
    ]
    return Alert(
        subject=subject, text="\n".join(lines) + "\n", recipients=recipients, failed_rules=rules, redacted=redacted
    )


def build_message(alert: Alert, sender: str, failure: RunFailure) -> EmailMessage:
    from healthops.reports.delivery import normalise_recipients

    sender_addr = parseaddr(sender)[1]
    domain = sender_addr.rsplit("@", 1)[1] if "@" in sender_addr else "healthops.localhost"
    digest = hashlib.sha256(f"{failure.dag_id}\n{failure.run_id}".encode()).hexdigest()[:16]
    alert.message_id = f"<alert.{failure.dag_id}.{digest}@{domain}>"
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = sender
    msg["To"] = ", ".join(normalise_recipients(alert.recipients))
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = alert.message_id
    msg["X-Healthops-Alert"] = "run-failure"
    msg["X-Healthops-Run-Id"] = failure.run_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(alert.text)
    return msg


def _failed_rules(failure: RunFailure, url: str | None) -> tuple[list[FailedRule], str | None]:
    """The failed rules of the run's validations (none when it never got there)."""
    from healthops.pipeline import step_url
    from healthops.quality.rules import rule_descriptions
    from healthops.warehouse.connection import connect

    try:
        # read as the auditor: the alert needs the audit results, nothing else
        with connect(step_url("auditor", url), connect_timeout=10) as conn:
            rows = conn.execute(
                """select r.rule_id, r.severity, r.rows_violating, r.rows_evaluated, v.suite_name
                   from audit.rule_results r join audit.validation_runs v using (validation_run_id)
                   where v.dag_run_id = %s and not r.success
                   order by r.severity = 'blocking' desc, r.rule_id, v.run_at""",
                (failure.run_id,),
            ).fetchall()
    except Exception as exc:  # the warehouse may be why the run failed: still send the alert
        log.warning("failure alert: could not read audit.rule_results for %s: %s", failure.run_id, exc)
        return [], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    try:
        descriptions = rule_descriptions()
    except Exception:  # a broken rule file must not cost the alert
        log.warning("failure alert: rule descriptions unavailable", exc_info=True)
        descriptions = {}
    return [
        FailedRule(rule_id, severity, violating, evaluated, suite, descriptions.get(rule_id, ""))
        for rule_id, severity, violating, evaluated, suite in rows
    ], None


def last_error(path: Path) -> str | None:
    """The last error a log file records: Airflow 3's JSON task logs
    (``error_detail``) or a printed traceback's last line. A run stops at its first
    failed task, so in a log of the whole run the last error is that task's."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 2_000_000))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    found = None
    for i, line in enumerate(lines):
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            for detail in rec.get("error_detail") or []:
                if isinstance(detail, dict) and detail.get("exc_type"):
                    found = f"{detail['exc_type']}: {detail.get('exc_value', '')}"
        elif (
            line
            and not line[0].isspace()
            and ": " in line
            and i > 0
            and lines[i - 1].startswith("  ")
            and (line.split(":", 1)[0].rsplit(".", 1)[-1].endswith(("Error", "Exception", "Failure")))
        ):
            found = line.strip()  # the last line of a printed traceback
    return found


def _task_log_file(ti) -> str | None:
    """The task's local log file under Airflow's base_log_folder, when it exists here."""
    if ti is None:
        return None
    try:
        from airflow.configuration import conf

        base = Path(conf.get("logging", "base_log_folder"))
        attempt = max(int(getattr(ti, "try_number", 1) or 1), 1)
        map_index = getattr(ti, "map_index", -1)
        path = base / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
        if map_index is not None and map_index >= 0:
            path = path / f"map_index={map_index}"
        path = path / f"attempt={attempt}.log"
        return str(path) if path.exists() else None
    except Exception:
        return None


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None
