"""The delivery ledger (``reporting.deliveries``): a report, period, recipient and
content version is sent once. The content version is a hash of the figures in the
report's context, not of the rendered bytes (a PDF carries its generation time)."""

from __future__ import annotations

import hashlib
import json
import logging

log = logging.getLogger(__name__)


def content_version(context: dict) -> str:
    figures = {k: v for k, v in context.items() if k not in ("generated_at", "data_docs_url")}
    blob = json.dumps(figures, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def send_once(
    conn, report_id: str, period: str, rendered, context: dict, entry: dict, smtp, dag_run_id: str | None = None
) -> dict:
    """Send ``rendered`` to the catalog entry's recipients who have not yet received
    this content version for this period. One message to all of them; a ledger row
    per recipient, written in the same transaction that holds the lock, after the
    SMTP server accepted the message."""
    from healthops.reports.delivery import build_message, send

    version = content_version(context)
    recipients = list(entry["recipients"])
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"deliver:{report_id}:{period}",))
        already = {
            r
            for (r,) in conn.execute(
                """select recipient from reporting.deliveries
               where report_id = %s and period = %s and content_sha256 = %s""",
                (report_id, period, version),
            ).fetchall()
        }
        pending = [r for r in recipients if r not in already]
        if not pending:
            log.info("%s %s: already delivered to all %d recipients; nothing sent", report_id, period, len(recipients))
            return {"sent_to": [], "skipped": sorted(already), "content_sha256": version}
        message = build_message(rendered, entry.get("sender", "healthops@localhost"), pending)
        send(message, smtp)
        for r in pending:
            conn.execute(
                """insert into reporting.deliveries
                       (report_id, period, recipient, content_sha256, message_id, subject, dag_run_id)
                   values (%s, %s, %s, %s, %s, %s, %s)""",
                (report_id, period, r, version, message["Message-ID"], message["Subject"], dag_run_id),
            )
    log.info("%s %s: sent to %s", report_id, period, ", ".join(pending))
    return {"sent_to": pending, "skipped": sorted(already), "content_sha256": version}
