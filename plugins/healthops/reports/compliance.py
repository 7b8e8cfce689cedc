"""The monthly compliance and data-quality report, for auditors.

It answers the auditors' questions from the audit trail alone (never a mart row,
never PHI): which rules ran on which days, what failed and how many rows, why each
rule exists (its citation), which findings are still open, who reviewed what, and
where the evidence came from: each source file's SHA-256, the load batch it became,
and the validation runs of that day, with the hash-chain heads of the audit history
at the time the report was made.

Every figure comes from the reporting layer (``dbt_project/models/reporting/compliance``),
read through the ``ReportReader``; this module only selects, formats and renders:

- ``rpt_compliance_summary`` (one row per month): the opening counts;
- ``rpt_compliance_rule_days`` (day x rule): the grid, from the latest validation
  of each suite and day (a re-run supersedes the earlier run);
- ``rpt_compliance_rules`` (month x rule): days run and failed, the worst day,
  open and reviewed findings (findings count every run, re-runs too: each one is
  kept and can be reviewed);
- ``rpt_compliance_findings``, ``rpt_compliance_reviews``: the two lists;
- ``rpt_compliance_evidence_files`` (day x file) and ``rpt_compliance_lineage``
  (day x file x run): the lineage table and the lineage CSV, row for row.

Two things are not the warehouse's figures and come from elsewhere: the rule
catalog's reviewed wording (description, citation, owner, domain, category,
threshold) from the rule files (``healthops.quality.rules``), and the audit
trail's verification, a cryptographic check of the audit tables' hash chains done
in Python by design (``healthops.quality.audit_trail.verify``). The kind never runs
it: it declares ``checks = ("audit_trail",)`` and the publisher passes the result
to ``build_context`` (``healthops.reports.kinds.run_checks``).

The report's *figures* (what the delivery ledger versions, so a late review or a
re-validated day sends a revised report) are everything but the generation time
and the chain heads: the heads move with every night's run, in any month.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from healthops import config
from healthops.reports.catalog import load_catalog
from healthops.reports.periods import Month
from healthops.reports.render import (
    Chart,
    RenderedReport,
    generated_label,
    render_document,
    safe_token,
)

REPORT_ID = "compliance_monthly"
SUMMARY = "rpt_compliance_summary"
RULE_DAYS = "rpt_compliance_rule_days"
RULES = "rpt_compliance_rules"
FINDINGS = "rpt_compliance_findings"
REVIEWS = "rpt_compliance_reviews"
EVIDENCE = "rpt_compliance_evidence_files"
LINEAGE = "rpt_compliance_lineage"
# Findings listed one by one in the report; the rest are counted, and listed by
# `healthops audit findings --since <month>` (the CSV carries the lineage, not findings).
MAX_FINDINGS_LISTED = 40
SUMMARY_COLUMNS = [
    "validation_runs",
    "validation_runs_passed",
    "days_validated",
    "airflow_runs",
    "rules_failed",
    "blocking_rules_failed",
    "findings",
    "open_findings",
    "open_blocking_findings",
    "reviews",
    "files",
    "records_in",
    "records_loaded",
    "records_rejected",
    "records_duplicate",
]
RULE_COLUMNS = [
    "rule_id",
    "days_run",
    "days_failed",
    "worst_date",
    "worst_rows_violating",
    "worst_rows_evaluated",
    "last_date",
    "last_status",
    "open_findings",
    "reviewed_findings",
]
FINDING_COLUMNS = [
    "finding_id",
    "logical_date",
    "rule_id",
    "severity",
    "result_status",
    "rows_violating",
    "rows_evaluated",
    "violating_share",
    "validation_run_id",
]
REVIEW_COLUMNS = ["review_id", "finding_id", "rule_id", "logical_date", "reviewed_by", "reviewed_at", "note"]
EVIDENCE_COLUMNS = [
    "logical_date",
    "file_no",
    "is_first_of_day",
    "source",
    "file_path",
    "file_name",
    "file_sha256",
    "records_in",
    "records_loaded",
    "records_rejected",
    "records_duplicate",
    "batch_id",
    "validation_runs",
    "validation_runs_passed",
]
# The lineage CSV: (header, rpt_compliance_lineage column), in the CSV's order.
LINEAGE_CSV = [
    ("logical_date", "logical_date"),
    ("source", "source"),
    ("file_path", "file_path"),
    ("file_sha256", "file_sha256"),
    ("file_bytes", "file_bytes"),
    ("records_in", "records_in"),
    ("records_loaded", "records_loaded"),
    ("records_rejected", "records_rejected"),
    ("records_duplicate", "records_duplicate"),
    ("batch_id", "batch_id"),
    ("load_dag_run_id", "load_dag_run_id"),
    ("suite", "suite_name"),
    ("validation_run_id", "validation_run_id"),
    ("validation_dag_run_id", "validation_dag_run_id"),
    ("run_at_utc", "run_at"),
    ("passed", "passed"),
    ("code_version", "code_version"),
    ("rules_file", "rules_file"),
    ("rules_sha256", "rules_sha256"),
    ("audit_chain_seq", "audit_chain_seq"),
    ("audit_row_hash", "audit_row_hash"),
]
RETIRED = "Not in the current rule catalog (retired or renamed)."
# The summary's figures in the order a revision lists their changes.
FIGURE_ORDER = ["rules_in_catalog", *SUMMARY_COLUMNS[:3], "days_in_month", *SUMMARY_COLUMNS[3:]]


def compliance_context(reader, month: Month | str, audit_trail) -> dict[str, Any]:
    """Everything the report shows for ``month``: selected from the reporting models
    through ``reader`` (a ``ReportReader`` over ``ComplianceMonthly.models``), the
    rules' reviewed wording from the rule catalog, and ``audit_trail``, the audit
    trail's verification (a ``healthops.quality.audit_trail.VerifyResult``) that the
    publisher ran."""
    from healthops.quality.rules import load_catalog as load_rule_catalog

    month = Month.parse(month)
    this_month = {"report_month": month.first}
    summary = reader.select(SUMMARY, ["facilities_label", *SUMMARY_COLUMNS], this_month)
    if not summary:
        raise LookupError(f"{SUMMARY} has no row for {month.key} (before the audit history began)")
    (summary,) = summary
    facilities = summary.pop("facilities_label")
    catalog_rules = sorted((r for rf in load_rule_catalog() for r in rf.rules), key=lambda r: r.id)
    summary = {"rules_in_catalog": len(catalog_rules), **summary}

    stats = {r["rule_id"]: r for r in reader.select(RULES, RULE_COLUMNS, this_month, order_by=["rule_id"])}
    rules = [
        _rule_row(
            stats.get(r.id) or _not_run(r.id),
            r.description,
            r.severity,
            r.domain,
            r.kahn_category,
            r.citation,
            r.threshold,
            r.owner,
            in_catalog=True,
        )
        for r in catalog_rules
    ]
    known = {r.id for r in catalog_rules}
    rules += [
        _rule_row(s, RETIRED, "", "", "", "", None, "", in_catalog=False)  # results of a rule since retired
        for rule_id, s in stats.items()
        if rule_id not in known and s["days_run"]
    ]
    reader.note(
        "rule catalog",
        [v for r in rules if r["in_catalog"] for v in (r["description"], r["citation"], r["owner"], r["domain"])],
    )
    grid = reader.select(
        RULE_DAYS, ["rule_id", "logical_date", "cell_status"], this_month, order_by=["logical_date", "rule_id"]
    )
    open_findings = reader.select(
        FINDINGS,
        FINDING_COLUMNS,
        {**this_month, "status": "open"},
        order_by=["severity_rank", "logical_date", "rule_id", "chain_seq"],
    )
    reviews = reader.select(REVIEWS, REVIEW_COLUMNS, this_month, order_by=["review_no"])
    evidence = reader.select(EVIDENCE, EVIDENCE_COLUMNS, this_month, order_by=["logical_date", "file_no"])
    lineage = reader.select(
        LINEAGE, [c for _, c in LINEAGE_CSV], this_month, order_by=["logical_date", "file_no", "run_no"]
    )
    return {
        "report_id": REPORT_ID,
        "period": month.key,
        "period_label": month.label,
        "period_first": month.first,
        "period_last": month.last,
        "organization": f"All facilities: {facilities}" if facilities else "All facilities",
        "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
        "summary": {**summary, "days_in_month": month.day_count},
        "rules": rules,
        "days": month.days,
        "status": {(c["rule_id"], c["logical_date"]): c["cell_status"] for c in grid},
        "open_findings": open_findings,
        "reviews": reviews,
        "evidence": evidence,
        "lineage": lineage,
        "audit_trail": _verification(audit_trail),
    }


def _not_run(rule_id: str) -> dict[str, Any]:
    """A catalog rule with no result and no finding this month (its suite did not run)."""
    return {
        "rule_id": rule_id,
        "days_run": 0,
        "days_failed": 0,
        "worst_date": None,
        "worst_rows_violating": None,
        "worst_rows_evaluated": None,
        "last_date": None,
        "last_status": None,
        "open_findings": 0,
        "reviewed_findings": 0,
    }


def _rule_row(
    stats, description, severity, domain, category, citation, threshold, owner, *, in_catalog
) -> dict[str, Any]:
    """A row of the rules table: the month's figures (``rpt_compliance_rules``) with the
    rule's catalog wording."""
    return {
        **stats,
        "description": description,
        "severity": severity,
        "domain": domain,
        "category": category,
        "citation": citation,
        "threshold": threshold,
        "owner": owner,
        "in_catalog": in_catalog,
    }


def _verification(verified) -> dict[str, Any]:
    """The audit trail's verification as the report shows it: the verdict, the rows
    checked, each chain's head and the first problems."""
    return {
        "ok": verified.ok,
        "rows_checked": verified.rows_checked,
        "heads": {
            table.removeprefix("audit."): {"seq": seq, "row_hash": h} for table, (seq, h) in verified.heads.items()
        },
        "problems": [str(p) for p in verified.problems[:10]],
        "problem_count": len(verified.problems),
    }


def lineage_csv(context: dict[str, Any]) -> bytes:
    """The evidence chain in full, one row per (source file, validation run) of a day
    (``rpt_compliance_lineage``): file hash -> load batch -> validation runs, with
    every hash written out."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([header for header, _ in LINEAGE_CSV])
    for row in context["lineage"]:
        w.writerow([_csv_value(row[c]) for _, c in LINEAGE_CSV])
    return buf.getvalue().encode("utf-8")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _status_alt(context: dict[str, Any]) -> str:
    s = context["summary"]
    if not s["days_validated"]:
        return f"Grid of rule outcomes by day for {context['period_label']}: no validation ran this month."
    failed = [r for r in context["rules"] if r["days_failed"]]
    parts = [
        f"{r['rule_id']} failed on {r['days_failed']} of {r['days_run']} days ({r['severity'] or 'retired'})"
        for r in failed
    ]
    return (
        f"Grid of rule outcomes by day for {context['period_label']}: {len(context['rules'])} rules, "
        f"{s['days_validated']} of {s['days_in_month']} days validated. "
        + (
            "; ".join(parts) + "; every other rule passed every day it ran."
            if parts
            else "Every rule passed every day it ran."
        )
    )


def _plain_text(context: dict[str, Any], title: str, stem: str) -> str:
    s = context["summary"]
    lines = [title, "=" * len(title), ""]
    if not context["audit_trail"]["ok"]:
        lines += [
            f"!! The audit trail did NOT verify: {context['audit_trail']['problem_count']} problem(s); "
            "first: " + (context["audit_trail"]["problems"] or ["?"])[0],
            "",
        ]
    lines += [
        f"{s['days_validated']} of {s['days_in_month']} days validated: {s['validation_runs']} validation runs "
        f"({s['validation_runs_passed']} passed) of {s['rules_in_catalog']} catalog rules.",
        f"{s['rules_failed']} rule(s) failed on at least one day ({s['blocking_rules_failed']} blocking).",
        f"Findings: {s['findings']}, open {s['open_findings']} ({s['open_blocking_findings']} blocking); "
        f"reviews recorded: {s['reviews']}.",
        f"Evidence: {s['files']} source file(s), {s['records_in']} records in = {s['records_loaded']} loaded "
        f"+ {s['records_rejected']} rejected + {s['records_duplicate']} duplicate.",
        "",
        "Rules that failed this month:",
    ]
    failed = [r for r in context["rules"] if r["days_failed"]]
    for r in failed:
        lines.append(
            f"  - {r['rule_id']} [{r['severity'] or 'retired'}] failed {r['days_failed']} of "
            f"{r['days_run']} days; open findings {r['open_findings']}: {r['description']}"
        )
    if not failed:
        lines.append("  none")
    lines += [
        "",
        f"The full report, with the daily grid, findings, reviews and evidence lineage, is the HTML part "
        f"of this message and the attached PDF ({stem}.pdf); the lineage with every hash is attached "
        f"as {stem}_lineage.csv.",
        f"Generated {generated_label(context['generated_at'])} by healthops. Ids and counts only: "
        "no patient-identifying information.",
    ]
    return "\n".join(lines) + "\n"


def render_compliance(
    context: dict[str, Any], catalog: dict | None = None, templates_dir: str | Path | None = None, revision=None
) -> RenderedReport:
    from healthops.reports import charts

    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog["reports"][REPORT_ID]
    report_name = entry.get("name") or "Compliance and data-quality findings"
    title = f"{report_name} — {context['period_label']}"
    subject = entry["subject"].format_map(
        {"period_label": context["period_label"], "period": context["period"], "report_name": report_name}
    )
    s = context["summary"]
    if not context["audit_trail"]["ok"]:
        subject = f"[AUDIT TRAIL NOT VERIFIED] {subject}"
    elif s["open_blocking_findings"]:
        n = s["open_blocking_findings"]
        subject = f"[{n} open blocking finding{'s' if n != 1 else ''}] {subject}"
    if revision:
        subject = revision.subject_prefix + subject
    stem = f"{REPORT_ID}_{safe_token(context['period'])}"
    rule_ids = [r["rule_id"] for r in context["rules"]]
    grid = charts.rule_status_chart(rule_ids, context["days"], context["status"])
    base = {
        **context,
        "title": title,
        "report_name": report_name,
        "facility_name": context["organization"],
        "generated_at_label": generated_label(context["generated_at"]),
        "generated_at_iso": context["generated_at"].isoformat(),
        "max_findings": MAX_FINDINGS_LISTED,
        "revision": revision,
    }
    html_email, html_browser, pdf, pages, images = render_document(
        template_name=entry["template"],
        base=base,
        token=context["period"],
        templates_dir=templates_dir,
        charts_=[Chart("rule_status", grid, _status_alt(context))],
    )
    attachments = {}
    if "csv" in entry.get("formats", []):
        attachments[f"{stem}_lineage.csv"] = (lineage_csv(context), "text/csv")
    return RenderedReport(
        subject=subject,
        html=html_email,
        pdf=pdf,
        images=images,
        filename_stem=stem,
        text=(f"REVISED: {revision.summary}\n\n" if revision else "") + _plain_text(context, title, stem),
        html_standalone=html_browser,
        report=REPORT_ID,
        period=context["period"],
        facility_code="ALL",
        generated_at=context["generated_at"],
        pdf_pages=pages,
        quality_failed=s["open_findings"],
        attachments=attachments,
        meta={"title": title, "sender": entry["sender"], "recipients": list(entry["recipients"])},
    )


class ComplianceMonthly:
    """The report kind (``healthops.reports.kinds``): one report for the whole
    organisation, from the compliance reporting models (ids, counts, hashes) and the
    audit trail's verification, which the publisher runs (``checks``)."""

    period = "month"
    filter_keys = ()
    required_filter = ()
    models = (SUMMARY, RULE_DAYS, RULES, FINDINGS, REVIEWS, EVIDENCE, LINEAGE)
    checks = ("audit_trail",)

    def build_context(self, reader, period: str, flt: dict, entry: dict, *, audit_trail) -> dict[str, Any]:
        return compliance_context(reader, period, audit_trail)

    def figures(self, context: dict[str, Any]) -> dict[str, Any]:
        s = context["summary"]
        out: dict[str, Any] = {k.replace("_", " "): s[k] for k in FIGURE_ORDER}
        for r in context["rules"]:
            out[f"{r['rule_id']} failed days"] = f"{r['days_failed']} of {r['days_run']}"
            out[f"{r['rule_id']} open / reviewed findings"] = f"{r['open_findings']} / {r['reviewed_findings']}"
        for v in context["reviews"]:
            out[f"review {v['review_id']}"] = f"{v['finding_id']} by {v['reviewed_by']}"
        for f in context["evidence"]:
            if f["is_first_of_day"]:
                out[f"validation runs {f['logical_date'].isoformat()}"] = (
                    f"{f['validation_runs_passed']} of {f['validation_runs']} passed"
                )
            if f["file_no"]:
                out[f"file {f['file_name']} sha256"] = f["file_sha256"]
        out["audit trail verified"] = context["audit_trail"]["ok"]
        return out

    def render(self, context: dict[str, Any], entry: dict, revision=None) -> RenderedReport:
        return render_compliance(context, catalog={"reports": {REPORT_ID: entry}}, revision=revision)


KIND = ComplianceMonthly()
