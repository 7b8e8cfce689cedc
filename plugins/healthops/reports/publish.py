"""Publishing a catalog report for a period: the same steps for every report.

For each recipient of the catalog entry (with the recipient's filter):

1. build the context through the report's reader (``reader.ReportReader``), once per
   distinct filter, and take its figures; the content version is their hash;
2. compare with the ledger (``reporting.deliveries``): the same version already
   sent to this recipient means nothing to do (a retried task or a re-run date
   sends nothing); a different one means a revision, which lists the figures that
   changed. Earlier periods (``revise_days`` back for daily reports), and as many
   later ones (a night run after later nights were reported: a backfill out of
   order), are checked the same way, and only revisions of reports already sent go
   out for them;
3. render (once per distinct filter and revision), then run the PHI scan on every
   rendered report *before anything is sent*: one hit stops the whole report for
   the period and names the column;
4. send one message per recipient (To: that recipient only), exactly once, under an
   advisory lock per report, period and recipient: first commit the intent (a ledger
   row in state ``sending``) and archive the exact bytes (``reporting.messages``),
   then hand the message to the relay, then mark the row ``sent`` (time, the relay's
   reply). A relay that refuses or cannot be reached marks it ``failed``.

Mail exactly once (docs/architecture.md#delivery-ledger-states):

- a row left in ``sending`` (a crash between the relay's "250" and the update) may
  or may not have gone: the next attempt sends the archived bytes again under the
  same Message-ID (so the recipient's mail system can recognise and collapse a
  duplicate) and marks it ``sent``, ``reconciled``. A ``sent`` row is never sent again;
- owed periods: every run that emails first sends what earlier runs of the report
  left ``sending`` or ``failed`` (any period, however old: the recipients never got
  it), with the current figures; an unsent older version of the same period and
  recipient becomes ``superseded``.

History is not mail. A period older than the revision window of a run started on
``as_of`` (what a live run would no longer send or revise: for the daily census,
more than ``revise_days`` + 1 days back) is rendered, scanned and archived
(``reporting.messages`` with ``delivery = 'archived'``), not emailed, unless the
caller asks (``send=True``: ``healthops run --send``): a backfill of two years must
not put 2,900 reports into each manager's inbox. ``healthops reports resend`` can
still email any archived message.

Optional sources: a kind with ``optional_source`` (the staffing reports read timekeeping,
which a hospital may not have) sends nothing, and fails nothing, for a period in which
no facility has its data. A weekly kind gets the nightly run's day and publishes on
the week's Sunday only (``periods.period_of``).

Facilities without an audience: a facility with data for the period that no
recipient's filter covers (a hospital onboarding a facility before its managers are
in the catalog) is named in the outcome and logged; its data is loaded, built and
checked as usual, and the report does not fail for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from healthops import config
from healthops.errors import ConfigurationError, DataError, is_transient
from healthops.reports.periods import is_history, later_periods_to_check, period_of, periods_to_check

log = logging.getLogger(__name__)


def content_version(figures: dict[str, Any]) -> str:
    blob = json.dumps(figures, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Outcome:
    report_id: str
    sent: list[dict] = field(default_factory=list)  # {period, recipient, revision, message_id}
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # (period, recipient) already current
    no_data: list[tuple[str, str]] = field(default_factory=list)  # (period, recipient) whose slice has no data
    archived: list[dict] = field(default_factory=list)  # {period, recipient, revision, message_id}: not emailed
    no_audience: list[str] = field(default_factory=list)  # facilities with data that no recipient covers
    still_owed: list[tuple[str, str]] = field(default_factory=list)  # (period, recipient) owed, refused again
    emailed: bool = True  # False: a history period, archived only
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "report_id": self.report_id,
            "sent": self.sent,
            "unchanged": len(self.unchanged),
            "no_data": [r for _, r in self.no_data],
            "archived": self.archived,
            "no_audience": self.no_audience,
            "still_owed": [list(o) for o in self.still_owed],
            "emailed": self.emailed,
            "files": self.files,
        }


def audience_gaps(entry: dict, facilities) -> list[str]:
    """Facilities (of ``facilities``) that no recipient of the catalog entry covers: a
    recipient with no facility filter covers every facility."""
    covered = set()
    for d in entry.get("distribution") or []:
        facility = (d.get("filter") or {}).get("facility")
        if not facility:
            return []
        covered.add(facility)
    return sorted(set(facilities) - covered)


def facilities_without_audience(catalog: dict, facilities) -> dict[str, list[str]]:
    """{facility: [report ids whose recipients do not cover it]} over the whole catalog."""
    out: dict[str, list[str]] = {}
    for report_id, entry in catalog["reports"].items():
        for f in audience_gaps(entry, facilities):
            out.setdefault(f, []).append(report_id)
    return out


def _last_delivery(conn, report_id: str, period: str, recipient: str):
    """The last version the recipient was sent for the period (an unsent intent is not)."""
    return conn.execute(
        """select content_sha256, figures, revision, sent_at, message_id from reporting.deliveries
           where report_id = %s and period = %s and lower(recipient) = lower(%s) and state = 'sent'
           order by sent_at desc, revision desc limit 1""",
        (report_id, period, recipient),
    ).fetchone()


def owed_periods(conn, report_id: str) -> list[str]:
    """Periods of the report with a message not (known to be) sent: a ledger row left
    ``sending`` (a crash) or ``failed`` (the relay down or refusing), oldest first."""
    return [
        p
        for (p,) in conn.execute(
            """select distinct period from reporting.deliveries
               where report_id = %s and state in ('sending', 'failed') order by period""",
            (report_id,),
        ).fetchall()
    ]


def publish(
    report_id: str,
    period: str,
    *,
    url: str,
    smtp,
    dag_run_id: str | None = None,
    catalog: dict | None = None,
    revise: bool = True,
    send: bool | None = True,
    as_of: date | None = None,
    checks_url: str | None = None,
) -> Outcome:
    """Publish ``report_id`` for ``period`` (and revisions of earlier periods).

    ``url``: the reporter's login (reads ``rpt``, writes the ledger); ``checks_url``:
    the login the report's checks read with (``kind.checks``: the audit trail's
    verification reads every audit row, an auditor's read), default ``url``.

    ``send``: True (default) emails; False archives only; None decides by the period:
    a live one is emailed, a history one (older than the revision window of a run on
    ``as_of``, default today in the facility's zone) archived. The nightly and
    monthly DAGs pass None unless their run's ``send`` param is set."""
    from healthops.reports import phi
    from healthops.reports.catalog import load_catalog
    from healthops.reports.kinds import Revision, diff_figures, kind_for, run_checks
    from healthops.reports.reader import ReportReader
    from healthops.reports.render import write_outputs
    from healthops.warehouse.connection import connect

    catalog = catalog or load_catalog()
    if report_id not in catalog["reports"]:
        raise ConfigurationError(f"report {report_id!r} is not in the report catalog")
    entry = catalog["reports"][report_id]
    try:
        kind = kind_for(entry.get("builder", report_id))
    except KeyError as e:
        raise ConfigurationError(f"report {report_id}: {e.args[0]}") from None

    def reader_for():
        return ReportReader(conn, kind.models)

    for d in entry["distribution"]:
        missing = [k for k in kind.required_filter if not d["filter"].get(k)]
        extra = [k for k in d["filter"] if k not in kind.filter_keys]
        if missing or extra:
            raise ConfigurationError(
                f"report {report_id}: recipient {d['address']}: filter "
                + (f"needs {', '.join(missing)}" if missing else f"cannot use {', '.join(extra)}")
            )
    outcome = Outcome(report_id)
    # A nightly run passes its day: a weekly report is published by the night of the
    # week's last day (Sunday) and has nothing to do on the six others.
    reported = period_of(kind.period, period)
    if reported is None:
        log.info("%s: %s ends no %s: nothing to publish tonight", report_id, period, kind.period)
        outcome.emailed = False
        return outcome
    period = reported
    if send is None:
        send = not is_history(kind.period, entry, period, as_of or config.facility_today())
        if not send:
            log.info(
                "%s %s is older than the revision window of a run on %s: archived, not emailed",
                report_id,
                period,
                as_of or config.facility_today(),
            )
    outcome.emailed = send
    # History is archived for its own period only: revising what was never sent is moot.
    # Later periods too: a night run after later ones were sent (out of order) changes them.
    periods = (
        periods_to_check(kind.period, entry, period) + later_periods_to_check(kind.period, entry, period)
        if revise and send
        else [period]
    )
    with connect(url) as conn:
        from healthops.warehouse.migrate import require_current

        require_current(conn)  # the ledger and archive tables of this release
        checks = {}
        if getattr(kind, "checks", ()):  # e.g. the audit trail's verification (kinds.CHECKS)
            with connect(checks_url or url) as checks_conn:
                checks_conn.read_only = True
                checks = run_checks(kind, checks_conn)
        # What earlier runs could not send goes first (a run that only archives sends nothing).
        owed = owed_periods(conn, report_id) if send else []
        if owed:
            log.warning("%s: period(s) %s owed by earlier runs: sending them first", report_id, ", ".join(owed))
        periods = [p for p in owed if p not in periods] + periods
        plans = []  # (period, recipient, filter, context key, version, figures, revision, previous message)
        contexts: dict[tuple[str, str], tuple[dict, dict, Any] | None] = {}
        for p in periods:
            for d in entry["distribution"]:
                fkey = json.dumps(d["filter"], sort_keys=True)
                prev = _last_delivery(conn, report_id, p, d["address"])
                if p != period and prev is None and p not in owed:
                    continue  # an earlier period never sent to this recipient: not ours to send now
                if (p, fkey) not in contexts:
                    reader = reader_for()
                    try:
                        ctx = kind.build_context(reader, p, d["filter"], entry, **checks)
                    except LookupError as e:
                        # No data for this recipient's slice (a facility not on the feed, or not
                        # yet): nothing to report. A feed that went silent is the data-quality
                        # rules' business (feed gaps, source freshness), not a reason to fail
                        # every other recipient's report.
                        log.warning("%s %s: no data for %s's filter: %s", report_id, p, d["address"], e)
                        contexts[(p, fkey)] = None
                    else:
                        contexts[(p, fkey)] = (ctx, kind.figures(ctx), reader)
                if contexts[(p, fkey)] is None:
                    if p == period:
                        outcome.no_data.append((p, d["address"]))
                    continue
                ctx, figs, reader = contexts[(p, fkey)]
                version = content_version(figs)
                if prev is not None and prev[0] == version:
                    outcome.unchanged.append((p, d["address"]))
                    continue
                revision = None
                if prev is not None:
                    revision = Revision(
                        number=prev[2] + 1, previous_sent_at=prev[3], changes=diff_figures(prev[1] or {}, figs)
                    )
                plans.append((p, d, fkey, version, figs, revision, prev[4] if prev else None))

        facilities_of = getattr(kind, "facilities_with_data", None)
        if facilities_of is not None:
            outcome.no_audience = audience_gaps(entry, facilities_of(reader_for(), period))
            for f in outcome.no_audience:
                log.warning(
                    "%s %s: facility %s has data but no recipient in the report catalog: nothing is sent for it",
                    report_id,
                    period,
                    f,
                )
        if (
            entry["distribution"]
            and len(outcome.no_data) == len(entry["distribution"])
            and not outcome.no_audience
            and not (getattr(kind, "optional_source", False) and not facilities_of(reader_for(), period))
        ):
            raise DataError(
                f"{report_id} {period}: no data for any recipient (was the feed received and the marts built?)"
            )
        # Render once per (period, filter, revision number), and scan everything first.
        rendered_by: dict[tuple[str, str, int], Any] = {}
        for p, _, fkey, _, _, revision, _ in plans:
            key = (p, fkey, revision.number if revision else 0)
            if key not in rendered_by:
                ctx, _, reader = contexts[(p, fkey)]
                rendered = kind.render(ctx, entry, revision)
                phi.guard(conn, report_id, reader, rendered)
                rendered_by[key] = rendered
        conn.commit()

        for p, d, fkey, version, figs, revision, replaces in plans:
            rendered = rendered_by[(p, fkey, revision.number if revision else 0)]
            try:
                done = _send_one(
                    conn,
                    report_id,
                    p,
                    d,
                    rendered,
                    entry,
                    smtp,
                    version,
                    figs,
                    revision.number if revision else 0,
                    replaces,
                    dag_run_id,
                    deliver=send,
                )
            except Exception as e:
                if p not in owed or p == period or is_transient(e):
                    raise
                # An owed period the relay refuses for good (a 5xx) stays owed ('failed', its error
                # in the ledger), and does not hold back tonight's report for everyone else.
                log.error("%s %s: owed message to %s refused again: %s", report_id, p, d["address"], e)
                outcome.still_owed.append((p, d["address"]))
                continue
            if done:
                (outcome.sent if send else outcome.archived).append(done)
        for (p, _, _), rendered in rendered_by.items():
            if p == period:
                for k, v in write_outputs(rendered, config.out() / "reports").items():
                    outcome.files[f"{rendered.filename_stem}.{k}"] = str(v)
    if outcome.archived:
        log.info(
            "%s %s: %d report(s) archived, not emailed (older than the revision window; "
            "`healthops run --send` emails history)",
            report_id,
            period,
            len(outcome.archived),
        )
    elif outcome.sent:
        log.info(
            "%s %s: sent %d message(s) (%d revision(s)); %d recipient(s) already current",
            report_id,
            period,
            len(outcome.sent),
            sum(1 for s in outcome.sent if s["revision"]),
            len(outcome.unchanged),
        )
    else:
        log.info(
            "%s %s: nothing new to send (%d recipient(s) already current)", report_id, period, len(outcome.unchanged)
        )
    return outcome


def _send_one(
    conn,
    report_id,
    period,
    dist,
    rendered,
    entry,
    smtp,
    version,
    figs,
    revision,
    replaces,
    dag_run_id,
    deliver: bool = True,
) -> dict | None:
    """One recipient: lock, re-check the ledger, record the intent, send, mark it sent.
    ``deliver=False``: archive the message without sending it (a history period)."""
    from healthops.reports.delivery import build_message

    recipient = dist["address"]
    message = build_message(
        rendered, entry.get("sender", "healthops@localhost"), [recipient], version=version, replaces=replaces
    )
    eml = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    done = {"period": period, "recipient": recipient, "revision": revision, "message_id": message["Message-ID"]}
    if not deliver:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_lock_key(report_id, period, recipient),))
            if (
                conn.execute(
                    """select 1 from reporting.deliveries where report_id = %s and period = %s and state = 'sent'
                   and lower(recipient) = lower(%s) and content_sha256 = %s""",
                    (report_id, period, recipient, version),
                ).fetchone()
                or conn.execute(
                    """select 1 from reporting.messages where report_id = %s and period = %s and delivery = 'archived'
                   and lower(recipient) = lower(%s) and content_sha256 = %s""",
                    (report_id, period, recipient, version),
                ).fetchone()
            ):
                return None  # sent, or this version is archived already
            _archive(conn, message, eml, report_id, period, recipient, version, revision, dag_run_id, "archived")
        return done
    with _recipient_lock(conn, _lock_key(report_id, period, recipient)):
        intent = _record_intent(conn, message, eml, report_id, period, dist, version, figs, revision, dag_run_id)
        if intent is None:
            return None  # a concurrent or earlier attempt sent it
        accepted = _relay(conn, intent, report_id, period, recipient, version, smtp)
        mark_sent(conn, report_id, period, recipient, version, accepted.reply, intent.reconcile, dag_run_id)
    return dict(done, message_id=intent.message["Message-ID"], reconciled=intent.reconcile)


def _lock_key(report_id: str, period: str, recipient: str) -> str:
    return f"deliver:{report_id}:{period}:{recipient.lower()}"


class _recipient_lock:
    """A session advisory lock per report, period and recipient, held across the three
    transactions of a send (intent, relay, sent): two workers never send the same row."""

    def __init__(self, conn, key: str) -> None:
        self.conn, self.key = conn, key

    def __enter__(self):
        self.conn.execute("select pg_advisory_lock(hashtext(%s))", (self.key,))
        self.conn.commit()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.conn.rollback()
            self.conn.execute("select pg_advisory_unlock(hashtext(%s))", (self.key,))
            self.conn.commit()
        except Exception:  # a lost connection released its session locks with it
            log.debug("advisory unlock of %s failed", self.key, exc_info=True)


@dataclass
class _Intent:
    message: Any  # the EmailMessage to hand to the relay
    reconcile: bool  # the row was left 'sending': it may have gone already


def _record_intent(conn, message, eml, report_id, period, dist, version, figs, revision, dag_run_id):
    """Commit the ledger row in state 'sending' (and the archived bytes) before the relay
    hears of the message; None when this version was sent already. A row left 'sending'
    or 'failed' by an earlier attempt is taken up again, with the archived bytes (the same
    Message-ID, Date and boundaries: the very message that may have gone)."""
    from email import policy
    from email.parser import BytesParser

    recipient = dist["address"]
    with conn.transaction():
        row = conn.execute(
            """select state, message_id from reporting.deliveries where report_id = %s and period = %s
               and lower(recipient) = lower(%s) and content_sha256 = %s for update""",
            (report_id, period, recipient, version),
        ).fetchone()
        if row is not None and row[0] == "sent":
            return None
        # An older version of this period that never went out is replaced by this one.
        conn.execute(
            """update reporting.deliveries set state = 'superseded'
               where report_id = %s and period = %s and lower(recipient) = lower(%s) and content_sha256 <> %s
                 and state in ('sending', 'failed')""",
            (report_id, period, recipient, version),
        )
        if row is None:
            conn.execute(
                """insert into reporting.deliveries (report_id, period, recipient, content_sha256, message_id,
                       subject, dag_run_id, figures, revision, recipient_filter, state, sent_at, intent_at)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'sending', null, now())""",
                (
                    report_id,
                    period,
                    recipient,
                    version,
                    message["Message-ID"],
                    message["Subject"],
                    dag_run_id,
                    json.dumps(figs, default=str),
                    revision,
                    json.dumps(dist["filter"]),
                ),
            )
            _archive(conn, message, eml, report_id, period, recipient, version, revision, dag_run_id, "sent")
            return _Intent(message, reconcile=False)
        state, message_id = row
        conn.execute(
            """update reporting.deliveries set state = 'sending', attempts = attempts + 1, intent_at = now()
               where report_id = %s and period = %s and lower(recipient) = lower(%s) and content_sha256 = %s""",
            (report_id, period, recipient, version),
        )
        kept = conn.execute("select eml from reporting.messages where message_id = %s", (message_id,)).fetchone()
    if kept is not None:
        message = BytesParser(policy=policy.default).parsebytes(bytes(kept[0]))
    if state == "sending":
        log.warning(
            "%s %s: %s was left 'sending' by an earlier attempt (it may have gone): sending it again "
            "under the same Message-ID %s (reconciliation)",
            report_id,
            period,
            recipient,
            message_id,
        )
    else:
        log.info("%s %s: sending %s to %s, owed since a failed attempt", report_id, period, message_id, recipient)
    return _Intent(message, reconcile=state == "sending")


def _relay(conn, intent: _Intent, report_id, period, recipient, version, smtp):
    """Hand the message to the relay; a failure marks the row 'failed' (owed) and raises."""
    from healthops.reports.delivery import send_accepted

    try:
        return send_accepted(intent.message, smtp)
    except Exception as exc:
        conn.rollback()
        with conn.transaction():
            conn.execute(
                """update reporting.deliveries set state = 'failed', last_error = %s
                   where report_id = %s and period = %s and lower(recipient) = lower(%s) and content_sha256 = %s
                     and state = 'sending'""",
                (f"{type(exc).__name__}: {exc}"[:1000], report_id, period, recipient, version),
            )
        raise


def mark_sent(conn, report_id, period, recipient, version, reply: str, reconciled: bool, dag_run_id) -> None:
    """The relay accepted the message: the ledger row is 'sent', with the time and reply."""
    with conn.transaction():
        conn.execute(
            """update reporting.deliveries set state = 'sent', sent_at = now(), relay_response = %s,
                   reconciled = %s, last_error = null, dag_run_id = coalesce(%s, dag_run_id)
               where report_id = %s and period = %s and lower(recipient) = lower(%s) and content_sha256 = %s""",
            (reply, reconciled, dag_run_id, report_id, period, recipient, version),
        )


def _archive(
    conn,
    message,
    eml: bytes,
    report_id: str,
    period: str,
    recipient: str,
    version: str,
    revision: int,
    dag_run_id: str | None,
    delivery: str,
) -> None:
    """Keep the message byte for byte as handed to the SMTP server ("sent") or as it
    would have been ("archived": history, not emailed). A sent message already kept
    (a retried task) stays as it was."""
    conn.execute(
        """insert into reporting.messages (message_id, report_id, period, recipient, content_sha256, revision,
               subject, eml, eml_sha256, delivery, dag_run_id)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (message_id) do nothing""",
        (
            message["Message-ID"],
            report_id,
            period,
            recipient,
            version,
            revision,
            message["Subject"],
            eml,
            hashlib.sha256(eml).hexdigest(),
            delivery,
            dag_run_id,
        ),
    )


# -- the archive -------------------------------------------------------------------------
# The columns of a listed message (sent_messages, archived_messages), in query order.
MESSAGE_KEYS = (
    "sent_at",
    "report_id",
    "period",
    "recipient",
    "revision",
    "message_id",
    "subject",
    "eml_sha256",
    "eml_bytes",
    "content_sha256",
)


def sent_messages(conn, report: str | None = None, since: date | None = None) -> list[dict]:
    """Delivered messages, newest last: ledger rows joined to the archive."""
    rows = conn.execute(
        """select d.sent_at, d.report_id, d.period, d.recipient, d.revision, d.message_id, d.subject,
                  m.eml_sha256, length(m.eml), d.content_sha256
           from reporting.deliveries d left join reporting.messages m using (message_id)
           where d.state = 'sent' and (%(report)s::text is null or d.report_id = %(report)s::text
                  or d.report_id like %(report)s::text || '/%%')
             and (%(since)s::date is null or d.sent_at >= %(since)s::date)
           order by d.sent_at, d.report_id, d.period, d.recipient""",
        {"report": report, "since": since},
    ).fetchall()
    return [dict(zip(MESSAGE_KEYS, r)) for r in rows]


def archived_messages(conn, report: str | None = None, since: date | None = None) -> list[dict]:
    """Messages rendered and archived but never emailed (history periods), newest last,
    in the shape of ``sent_messages`` (``sent_at``: when it was archived)."""
    rows = conn.execute(
        """select created_at, report_id, period, recipient, revision, message_id, subject, eml_sha256,
                  length(eml), content_sha256
           from reporting.messages
           where delivery = 'archived'
             and (%(report)s::text is null or report_id = %(report)s::text)
             and (%(since)s::date is null or created_at >= %(since)s::date)
           order by created_at, report_id, period, recipient""",
        {"report": report, "since": since},
    ).fetchall()
    return [dict(zip(MESSAGE_KEYS, r)) for r in rows]


def resend(conn, message_id: str, smtp, to: str | None = None, by: str | None = None) -> dict:
    """Send an archived message again, byte for byte (to its recipient, or ``to``), with
    the ledger's order (reporting.resends, migration 0005): the resend is committed in
    state ``sending`` before the relay hears of it, then marked ``sent`` with the relay's
    reply, or ``failed`` with the error (which is raised). Commits its own transactions
    (whatever the caller had open is committed first)."""
    from email import policy
    from email.parser import BytesParser

    from healthops.reports.delivery import send_accepted

    row = conn.execute(
        "select eml, recipient, eml_sha256 from reporting.messages where message_id = %s", (message_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"no archived message {message_id!r} (see `healthops reports sent`)")
    eml, recipient, sha = bytes(row[0]), row[1], row[2]
    if hashlib.sha256(eml).hexdigest() != sha:
        raise RuntimeError(f"archived message {message_id} does not match its recorded sha256: not resent")
    message = BytesParser(policy=policy.default).parsebytes(eml)
    target = to or recipient
    if to:
        del message["To"]
        message["To"] = to
    message["Resent-To"] = target
    conn.commit()
    with conn.transaction():  # the intent, on record before the relay is contacted
        (resend_no,) = conn.execute(
            """insert into reporting.resends (message_id, recipient, resent_by, state, sent_at)
               values (%s, %s, %s, 'sending', null) returning resend_no""",
            (message_id, target, by),
        ).fetchone()
    try:
        accepted = send_accepted(message, smtp)
    except Exception as exc:
        conn.rollback()
        with conn.transaction():
            conn.execute(
                "update reporting.resends set state = 'failed', last_error = %s where resend_no = %s",
                (f"{type(exc).__name__}: {exc}"[:1000], resend_no),
            )
        raise
    with conn.transaction():
        conn.execute(
            "update reporting.resends set state = 'sent', sent_at = now(), relay_response = %s where resend_no = %s",
            (accepted.reply, resend_no),
        )
    return {"message_id": message_id, "recipient": target, "resend_no": resend_no, "relay_response": accepted.reply}
