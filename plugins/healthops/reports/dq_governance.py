"""The monthly data-quality and records governance report, for the HIM director.

One question: is the record of patient movement complete, timely and correct?

- **Complete.** Files and messages received per day (in = loaded + rejected +
  duplicate per file; a duplicate is a resent copy of a message already loaded, not a
  rejection), days of the month with no file at all, and whether the quarantine holds
  every rejection the load batches counted. Facilities whose census is built but that
  no report recipient covers yet (onboarding) are named, so nobody is left without
  their report unseen.
- **Timely.** Files loaded more than a day after their day of receipt.
- **Correct.** Rejected messages by reason category (``raw.rejected.reason_category``,
  the one definition of the category: the reason's kind without the values it quotes
  from the message); the month's data-quality checks by Kahn category, each suite and
  day counted once, by its latest run; the rules that failed most.
- **Records governance.** Encounter counts: begun, admitted, discharged and cancelled
  in the month, and encounters still open long after they began: the usual sign of a
  discharge (A03) the EHR never sent.

Every figure is computed in the reporting layer (``dbt_project/models/reporting/
governance/``, ``rpt_dq_*``; the kind's ``models`` are its dbt exposure). This module
only selects their rows through the report's ``ReportReader``, formats them,
suppresses small cells, charts and renders. A recipient's ``facility`` filter narrows
the encounter counts only (the sum of that facility's row): the ADT feed, its
rejections and the data-quality checks are feed-level, and the report says so.
Which facilities no recipient covers is catalog metadata
(``publish.facilities_without_audience``), checked here against the facilities the
warehouse built a census for.

Charts are drawn here with the shared look of ``healthops.reports.charts``.
"""

from __future__ import annotations

import csv
import io
import textwrap
from datetime import date, datetime
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from healthops import config

# The shared look: rc settings, PNG writer, title and Okabe-Ito colours of the report charts.
from healthops.reports.charts import (
    BEDS_EDGE,
    CENSUS_COLOR,
    DPI,
    MUTED_COLOR,
    NON_INPATIENT_COLOR,
    OVER_COLOR,
    RC_PARAMS,
    TEXT_COLOR,
    WIDTH_IN,
    chart_title,
    empty_chart,
    to_png,
)
from healthops.reports.periods import Month
from healthops.reports.render import Chart, RenderedReport, generated_label, render_document, safe_token

REPORT_ID = "dq_governance"
DEFAULT_TEMPLATE = "dq_governance.html.j2"
DEFAULT_NAME = "Data quality and records governance"

# The reporting models this report reads (its dbt exposure: models/reporting/exposures/dq_governance.yml).
FEED_MONTHS = "rpt_dq_feed_months"
FEED_DAYS = "rpt_dq_feed_days"
REJECTIONS_DAILY = "rpt_dq_rejections_daily"
REASONS = "rpt_dq_rejection_reasons"
REASON_BARS = "rpt_dq_rejection_reasons_chart"
KAHN = "rpt_dq_kahn_categories"
VALIDATION = "rpt_dq_validation_months"
SUITES = "rpt_dq_validation_suites"
FAILING_RULES = "rpt_dq_failing_rules"
ENCOUNTERS = "rpt_dq_encounter_counts"
ON_FEED = "rpt_dq_facilities_on_feed"

KAHN_MEANING = {  # Kahn et al. 2016; the categories themselves: healthops.quality.rules.KAHN_CATEGORIES
    "conformance": "values follow the formats, codes and rules of the data model",
    "completeness": "the data that should be there is there",
    "plausibility": "values are believable: in range, unique, consistent with each other",
}
UNCATEGORIZED_MEANING = "rules without a Kahn category"

FEED_COLUMNS = [
    "days_in_month",
    "days_with_data",
    "days_without_data",
    "files",
    "messages_in",
    "messages_loaded",
    "messages_rejected",
    "messages_duplicate",
    "rejection_rate_pct",
    "quarantined",
    "quarantine_reconciles",
    "files_loaded_late",
    "max_load_lag_days",
    "lowest_rate_date",
    "lowest_rate_pct",
    "highest_rate_date",
    "highest_rate_pct",
]
DAY_COLUMNS = [
    "received_date",
    "has_data",
    "files",
    "messages_in",
    "messages_loaded",
    "messages_rejected",
    "messages_duplicate",
    "rejection_rate_pct",
]
REASON_COLUMNS = ["reason_category", "rejected", "share_pct", "days_with_rejections", "first_day", "last_day"]
BAR_COLUMNS = ["label", "rejected", "share_pct", "is_other", "reasons_in_bar"]
KAHN_COLUMNS = ["kahn_category", "checks", "passed", "failed", "not_evaluated", "pass_rate_pct"]
VALIDATION_COLUMNS = [
    "validation_runs",
    "latest_runs",
    "superseded_runs",
    "days_validated",
    "checks",
    "passed",
    "failed",
    "not_evaluated",
    "pass_rate_pct",
    "rules_failed",
    "blocking_rules_failed",
    "rules_failed_not_listed",
]
RULE_COLUMNS = [
    "rule_id",
    "kahn_category",
    "severity",
    "domain",
    "suite_name",
    "days_run",
    "days_failed",
    "days_error",
    "failed_days",
    "worst_date",
    "worst_rows_violating",
    "worst_rows_evaluated",
]
# The records governance table: (key, rpt_dq_encounter_counts column, label, note); {n}: open_after_days.
GOVERNANCE = [
    ("begun", "encounters_begun", "Encounters begun", "first ADT event in the month"),
    ("cancelled", "encounters_cancelled", "of which cancelled", "every movement voided (A11, A12, A13)"),
    ("admitted", "admissions", "Inpatient admissions", ""),
    ("discharged", "discharges", "Inpatient discharges", "the denominator of record completion"),
    ("discharged_no_los", "discharges_without_los", "Discharges without a length of stay", "expected 0"),
    (
        "open_inpatient",
        "open_inpatient_stays",
        "Inpatient stays open over {n} days",
        "admitted {n}+ days before month end, no discharge yet: a missing A03, or a long stay",
    ),
    (
        "open_other",
        "open_other_encounters",
        "Other encounters open over {n} days",
        "ED, outpatient or observation, no discharge yet: a missing A03",
    ),
]

NO_DATA_COLOR = "#EEF0F2"  # a day without a file, in the daily chart

__all__ = ["KIND", "DqGovernance", "rejections_csv", "rejections_by_reason_chart", "daily_messages_chart"]


# -- helpers ----------------------------------------------------------------------------
def _pct_label(value: Any) -> str:
    """A percentage the model computed (rounded there), or "—" when it has none."""
    return "—" if value is None else f"{value}%"


def _n(value: Any) -> str:
    """A count with thousands separators (a suppressed cell stays as it is)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _short(d: date) -> str:
    return f"{d:%b} {d.day}"


def _day_ranges(days: list[date]) -> str:
    """Mar 4, Mar 9–11, Mar 20 (consecutive days collapsed)."""
    if not days:
        return ""
    out, start, prev = [], days[0], days[0]
    for d in days[1:] + [None]:
        if d is not None and (d - prev).days == 1:
            prev = d
            continue
        out.append(
            _short(start)
            if start == prev
            else f"{_short(start)}–{prev.day}"
            if start.month == prev.month
            else f"{_short(start)}–{_short(prev)}"
        )
        if d is not None:
            start = prev = d
    return ", ".join(out)


def _plural(n: Any, one: str, many: str) -> str:
    return one if n == 1 else many


def _check_counts(row: Mapping | None) -> dict[str, Any]:
    """A row of rpt_dq_kahn_categories or rpt_dq_validation_months as the template shows it
    (a Kahn category without checks this month: zeros, no pass rate)."""
    if row is None:
        return {"checks": 0, "passed": 0, "failed": 0, "not_evaluated": 0, "pass_rate": None}
    return {
        "checks": row["checks"],
        "passed": row["passed"],
        "failed": row["failed"],
        "not_evaluated": row["not_evaluated"],
        "pass_rate": row["pass_rate_pct"],
    }


# -- the context --------------------------------------------------------------------------
class DqGovernance:
    """The report kind (``healthops.reports.kinds``)."""

    period = "month"
    filter_keys = ("facility",)
    required_filter = ()
    models = (
        FEED_DAYS,
        FEED_MONTHS,
        REJECTIONS_DAILY,
        REASONS,
        REASON_BARS,
        KAHN,
        VALIDATION,
        SUITES,
        FAILING_RULES,
        ENCOUNTERS,
        ON_FEED,
    )

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        from healthops.quality.rules import KAHN_CATEGORIES, rule_descriptions
        from healthops.reports.catalog import load_catalog
        from healthops.reports.publish import facilities_without_audience

        month = Month.parse(period)
        in_month = {"month_start": month.first}
        facility = (flt or {}).get("facility") or None

        # -- the feed: files and messages --------------------------------------------------
        feeds = reader.select(FEED_MONTHS, FEED_COLUMNS, in_month)
        if not feeds:
            raise LookupError(f"{FEED_MONTHS} has no row for {month.key} (before the feed began, or to come)")
        feed = feeds[0]
        daily = [
            {
                "date": d["received_date"],
                "has_data": d["has_data"],
                "files": d["files"],
                "messages_in": d["messages_in"],
                "loaded": d["messages_loaded"],
                "rejected": d["messages_rejected"],
                "duplicate": d["messages_duplicate"],
                "rejection_rate": d["rejection_rate_pct"],
            }
            for d in reader.select(FEED_DAYS, DAY_COLUMNS, in_month, order_by=["received_date"])
        ]
        missing_days = [
            d["received_date"]
            for d in reader.select(
                FEED_DAYS, ["received_date"], {**in_month, "has_data": False}, order_by=["received_date"]
            )
        ]

        # -- rejections by reason (the quarantine) -------------------------------------------
        reasons = [
            {
                "category": r["reason_category"],
                "count": r["rejected"],
                "share": r["share_pct"],
                "days": r["days_with_rejections"],
                "first_day": r["first_day"],
                "last_day": r["last_day"],
            }
            for r in reader.select(REASONS, REASON_COLUMNS, in_month, order_by=["reason_rank"])
        ]
        reason_bars = [
            {
                "label": b["label"],
                "count": b["rejected"],
                "share": b["share_pct"],
                "is_other": b["is_other"],
                "reasons": b["reasons_in_bar"],
            }
            for b in reader.select(REASON_BARS, BAR_COLUMNS, in_month, order_by=["bar_order"])
        ]
        rejections_by_day = [
            {
                "date": r["received_date"],
                "source": r["source"],
                "category": r["reason_category"],
                "count": r["rejected"],
            }
            for r in reader.select(
                REJECTIONS_DAILY,
                ["received_date", "source", "reason_category", "rejected"],
                in_month,
                order_by=["received_date", "source", "reason_category"],
            )
        ]

        # -- data-quality checks: each suite and day by its latest run ------------------------
        (v,) = reader.select(VALIDATION, VALIDATION_COLUMNS, in_month)
        by_category = {
            k["kahn_category"]: k for k in reader.select(KAHN, KAHN_COLUMNS, in_month, order_by=["kahn_category"])
        }
        # the three Kahn categories always (a month without checks shows them at 0), then any other
        shown = [*KAHN_CATEGORIES, *(c for c in by_category if c not in KAHN_CATEGORIES)]
        kahn = [
            {"category": c, "meaning": KAHN_MEANING.get(c, UNCATEGORIZED_MEANING), **_check_counts(by_category.get(c))}
            for c in shown
        ]
        kahn_total = _check_counts(v)
        suites = [
            {"suite": s["suite_name"], "days": s["days_validated"], "days_passed": s["days_passed"]}
            for s in reader.select(
                SUITES, ["suite_name", "days_validated", "days_passed"], in_month, order_by=["suite_name"]
            )
        ]
        descriptions = rule_descriptions()
        top_rules = [
            {
                "rule_id": r["rule_id"],
                "category": r["kahn_category"],
                "severity": r["severity"],
                "domain": r["domain"],
                "suite": r["suite_name"],
                "days_run": r["days_run"],
                "days_failed": r["days_failed"],
                "days_error": r["days_error"],
                "worst": None
                if r["worst_date"] is None
                else {
                    "date": r["worst_date"],
                    "rows_violating": r["worst_rows_violating"],
                    "rows_evaluated": r["worst_rows_evaluated"],
                },
                "description": descriptions.get(r["rule_id"], "Not in the current rule catalog (retired or renamed)."),
                "failed_days_label": _day_ranges(list(r["failed_days"])),
            }
            for r in reader.select(
                FAILING_RULES, RULE_COLUMNS, {**in_month, "is_listed": True}, order_by=["failure_rank"]
            )
        ]
        reader.note("rule catalog", [r["description"] for r in top_rules])
        validation = {
            "runs": v["validation_runs"],
            "superseded": v["superseded_runs"],
            "latest_runs": v["latest_runs"],
            "days_validated": v["days_validated"],
            "suites": suites,
            "rules_failed": v["rules_failed"],
            "blocking_rules_failed": v["blocking_rules_failed"],
            "rules_not_listed": v["rules_failed_not_listed"],
        }

        # -- records governance: encounters ---------------------------------------------------
        scope = {**in_month, **({"facility_code": facility} if facility else {})}
        facilities = reader.select(
            ENCOUNTERS, ["facility_code", "facility_name", "open_after_days"], scope, order_by=["facility_code"]
        )
        if not facilities:
            raise LookupError(f"{ENCOUNTERS} has no row for facility {facility} in {month.key}")
        open_after = facilities[0]["open_after_days"]
        (counts,) = reader.sums(ENCOUNTERS, [col for _, col, _, _ in GOVERNANCE], scope)
        governance = [
            {
                "key": key,
                "label": label.format(n=open_after),
                "note": note.format(n=open_after),
                "figure": "Encounters cancelled" if key == "cancelled" else label.format(n=open_after),
                "count": counts[col],
            }
            for key, col, label, note in GOVERNANCE
        ]
        if entry.get("suppress_small_cells"):
            from healthops.reports import phi

            phi.suppress_table(governance, ["count"])

        # -- facilities on the feed that no report recipient covers (onboarding) ----------------
        on_feed = {
            r["facility_code"]: r["facility_name"]
            for r in reader.select(ON_FEED, ["facility_code", "facility_name"], scope)
        }
        no_audience = [
            {"facility_code": f, "facility_name": on_feed[f], "reports": reports}
            for f, reports in sorted(facilities_without_audience(load_catalog(), on_feed).items())
        ]

        # -- what needs the director's attention ---------------------------------------------
        attention = []
        level = None
        if not feed["quarantine_reconciles"]:
            level = "error"
            attention.append(
                f"The quarantine holds {feed['quarantined']} rejected "
                f"{_plural(feed['quarantined'], 'message', 'messages')} for the month but the load "
                f"batches counted {feed['messages_rejected']}: rejected messages are missing from "
                "raw.rejected (or were counted twice)."
            )
        if missing_days:
            level = level or "warning"
            attention.append(
                f"No ADT file was received on {feed['days_without_data']} of {feed['days_in_month']} "
                f"days ({_day_ranges(missing_days)})."
            )
        if feed["files_loaded_late"]:
            level = level or "warning"
            attention.append(
                f"{feed['files_loaded_late']} "
                f"{_plural(feed['files_loaded_late'], 'file was', 'files were')} loaded more than a day "
                "after receipt."
            )
        if validation["blocking_rules_failed"]:
            level = level or "warning"
            attention.append(
                f"{validation['blocking_rules_failed']} blocking data-quality "
                f"{_plural(validation['blocking_rules_failed'], 'rule', 'rules')} failed on at least "
                "one day."
            )
        for a in no_audience:
            level = level or "warning"
            attention.append(
                f"{a['facility_name']} ({a['facility_code']}) is on the feed but has no recipient of "
                f"{', '.join(a['reports'])} in the report catalog: its data is loaded, built and "
                "checked, and no one receives its report."
            )
        if any(g["key"].startswith("open_") and g["count"] not in (0, None) for g in governance):
            level = level or "warning"
            attention.append(
                "Encounters still open more than "
                f"{open_after} days after they began: possible missing discharges (A03)."
            )

        return {
            "report_id": REPORT_ID,
            "period": month.key,
            "period_label": month.label,
            "period_first": month.first,
            "period_last": month.last,
            "facility_code": facility,
            "facility_name": facilities[0]["facility_name"] if facility else "All facilities",
            "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
            "open_after_days": open_after,
            "summary": {
                "files": feed["files"],
                "messages_in": feed["messages_in"],
                "messages_loaded": feed["messages_loaded"],
                "messages_rejected": feed["messages_rejected"],
                "messages_duplicate": feed["messages_duplicate"],
                "rejection_rate": feed["rejection_rate_pct"],
                "days_with_data": feed["days_with_data"],
                "days_in_month": feed["days_in_month"],
                "missing_days": missing_days,
                "missing_days_label": _day_ranges(missing_days),
                "quarantined": feed["quarantined"],
                "quarantine_reconciles": feed["quarantine_reconciles"],
                "files_loaded_late": feed["files_loaded_late"],
                "max_load_lag_days": feed["max_load_lag_days"],
                "lowest_rate": {"date": feed["lowest_rate_date"], "rate": feed["lowest_rate_pct"]},
                "highest_rate": {"date": feed["highest_rate_date"], "rate": feed["highest_rate_pct"]},
            },
            "daily": daily,
            "reasons": reasons,
            "reason_bars": reason_bars,
            "rejections_by_day": rejections_by_day,
            "kahn": kahn,
            "kahn_total": kahn_total,
            "validation": validation,
            "top_rules": top_rules,
            "governance": governance,
            "no_audience": no_audience,
            "attention": attention,
            "attention_level": level,
        }

    # -- figures ---------------------------------------------------------------------------
    def figures(self, context: dict[str, Any]) -> dict[str, Any]:
        s = context["summary"]
        p = context["period_label"]
        out: dict[str, Any] = {
            "scope": context["facility_code"] or "ALL",
            f"files received {p}": s["files"],
            f"messages in {p}": s["messages_in"],
            f"messages loaded {p}": s["messages_loaded"],
            f"messages rejected {p}": s["messages_rejected"],
            f"duplicate messages (resent) {p}": s["messages_duplicate"],
            f"rejection rate {p}": _pct_label(s["rejection_rate"]),
            f"days with data {p}": f"{s['days_with_data']} of {s['days_in_month']}",
            f"rejected messages in quarantine {p}": s["quarantined"],
            f"files loaded more than a day after receipt {p}": s["files_loaded_late"],
        }
        for r in context["reasons"]:
            out[f"rejected: {r['category']}"] = r["count"]
        for d in context["daily"]:
            if d["has_data"]:
                out[f"messages {d['date'].isoformat()}"] = (
                    f"{d['messages_in']} in, {d['loaded']} loaded, "
                    f"{d['rejected']} rejected, {d['duplicate']} duplicate, "
                    f"{d['files']} files"
                )
        v = context["validation"]
        out["validation runs (latest per suite and day / all)"] = f"{v['latest_runs']} / {v['runs']}"
        for k in context["kahn"]:
            out[f"{k['category']} checks passed"] = f"{k['passed']} of {k['checks']} ({_pct_label(k['pass_rate'])})"
        for r in context["top_rules"]:
            out[f"{r['rule_id']} failed days"] = f"{r['days_failed']} of {r['days_run']}"
        for g in context["governance"]:
            out[f"{g['figure']} {p}"] = g["count"]
        for a in context["no_audience"]:
            out[f"no recipient for {a['facility_code']}"] = ", ".join(a["reports"])
        return out

    # -- render ----------------------------------------------------------------------------
    def render(self, context: dict[str, Any], entry: dict, revision=None) -> RenderedReport:
        report_name = entry.get("name") or DEFAULT_NAME
        scope = context["facility_name"]
        title = f"{report_name} — {scope} — {context['period_label']}"
        fields = {
            "report_name": report_name,
            "period_label": context["period_label"],
            "period": context["period"],
            "facility_name": scope,
            "facility_code": context["facility_code"] or "ALL",
        }
        subject = str(entry.get("subject") or "{report_name} — {period_label}").format_map(fields)
        if context["facility_code"] and context["facility_code"] not in subject and scope not in subject:
            subject += f" — {scope}"
        if context["attention_level"] == "error":
            subject = "[ATTENTION] " + subject
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"{REPORT_ID}_{safe_token(context['facility_code'] or 'ALL')}_{safe_token(context['period'])}"
        charts_ = [
            Chart(
                "reasons",
                rejections_by_reason_chart(context["reason_bars"], context["period_label"]),
                _reasons_alt(context),
            ),
            Chart(
                "daily",
                daily_messages_chart(context["daily"], context["period_label"]),
                _daily_alt(context),
                caption="Bars: messages received per day (loaded + rejected); grey band: no file received. "
                "Line: the day's rejection rate.",
            ),
        ]
        base = {
            **context,
            "title": title,
            "report_name": report_name,
            "facility_name": scope,
            "feed_scope_note": _scope_note(context),
            "generated_at_label": generated_label(context["generated_at"]),
            "generated_at_iso": context["generated_at"].isoformat(),
            "pct": _pct_label,
            "n": _n,
            "short_date": _short,
            "kahn_meaning": KAHN_MEANING,
            "revision": revision,
        }
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry.get("template") or DEFAULT_TEMPLATE,
            base=base,
            charts_=charts_,
            token=f"{REPORT_ID}-{context['facility_code'] or 'ALL'}-{context['period']}",
        )
        attachments = {}
        csv_name = f"{stem}_rejections.csv" if "csv" in entry.get("formats", []) else None
        if csv_name:
            attachments[csv_name] = (rejections_csv(context), "text/csv")
        return RenderedReport(
            subject=subject,
            html=html_email,
            pdf=pdf,
            images=images,
            filename_stem=stem,
            text=(
                (f"REVISED: {revision.summary}\n\n" if revision else "") + _plain_text(context, title, stem, csv_name)
            ),
            html_standalone=html_browser,
            report=REPORT_ID,
            period=context["period"],
            facility_code=context["facility_code"] or "ALL",
            generated_at=context["generated_at"],
            pdf_pages=pages,
            quality_failed=context["validation"]["rules_failed"],
            attachments=attachments,
            meta={"title": title, "sender": entry.get("sender"), "recipients": list(entry.get("recipients") or [])},
        )


KIND = DqGovernance()


# -- text parts -------------------------------------------------------------------------------
def _scope_note(context: dict[str, Any]) -> str:
    if context["facility_code"]:
        return (
            f"Encounter counts are for {context['facility_name']} only. Files, messages, rejections and "
            "data-quality checks are feed-level: they cover every facility of the ADT feed (a rejected "
            "message may not even name its facility)."
        )
    return "All figures cover every facility of the ADT feed."


def rejections_csv(context: dict[str, Any]) -> bytes:
    """Rejected messages by day of receipt, source and reason category (counts only;
    the category, never the reason's quoted message text)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["received_date", "source", "reason_category", "rejected"])
    for r in context["rejections_by_day"]:
        w.writerow([r["date"].isoformat(), r["source"], r["category"], r["count"]])
    return buf.getvalue().encode("utf-8")


def _reasons_alt(context: dict[str, Any]) -> str:
    bars = context["reason_bars"]
    p = context["period_label"]
    if not bars:
        return f"Bar chart of rejected messages by reason for {p}: no message was rejected."
    parts = [f"{b['label']} {b['count']} ({_pct_label(b['share'])})" for b in bars if not b["is_other"]]
    rest = [f"; and {b['reasons']} more reasons, listed in the table." for b in bars if b["is_other"]]
    return (
        f"Bar chart of rejected messages by reason for {p}, {context['summary']['quarantined']} in all: "
        + "; ".join(parts)
        + (rest[0] if rest else ".")
    )


def _daily_alt(context: dict[str, Any]) -> str:
    s = context["summary"]
    p = context["period_label"]
    if not s["days_with_data"]:
        return f"Chart of messages received per day in {p}: no file was received this month."
    lo, hi = s["lowest_rate"], s["highest_rate"]
    text = (
        f"Chart of messages received per day in {p}: {_n(s['messages_in'])} messages on {s['days_with_data']} "
        f"of {s['days_in_month']} days, {_n(s['messages_rejected'])} rejected ({_pct_label(s['rejection_rate'])}). "
        f"Daily rejection rate from {_pct_label(lo['rate'])} ({_short(lo['date'])}) to "
        f"{_pct_label(hi['rate'])} ({_short(hi['date'])})."
    )
    if s["missing_days"]:
        text += f" No file on {s['missing_days_label']}."
    return text


def _plain_text(context: dict[str, Any], title: str, stem: str, csv_name: str | None) -> str:
    s = context["summary"]
    v = context["validation"]
    lines = [title, "=" * len(title), ""]
    for a in context["attention"]:
        lines.append(f"!! {a}")
    if context["attention"]:
        lines.append("")
    lines += [
        f"{_n(s['files'])} file(s) on {s['days_with_data']} of {s['days_in_month']} days: {_n(s['messages_in'])} "
        f"messages in = {_n(s['messages_loaded'])} loaded + {_n(s['messages_rejected'])} rejected "
        f"+ {_n(s['messages_duplicate'])} duplicate (rejection rate {_pct_label(s['rejection_rate'])}).",
        _scope_note(context),
        "",
        "Rejections by reason:",
    ]
    lines += [f"  - {r['category']}: {r['count']} ({_pct_label(r['share'])})" for r in context["reasons"]] or ["  none"]
    lines += ["", f"Data-quality checks ({v['latest_runs']} latest runs of {v['runs']}; each suite and day once):"]
    for k in context["kahn"]:
        lines.append(f"  - {k['category']}: {k['passed']} of {k['checks']} passed ({_pct_label(k['pass_rate'])})")
    lines += ["", "Rules that failed most:"]
    lines += [
        f"  - {r['rule_id']} [{r['severity']}] failed {r['days_failed']} of {r['days_run']} days: {r['description']}"
        for r in context["top_rules"]
    ] or ["  none"]
    lines += ["", "Records governance:"]
    lines += [f"  - {g['label']}: {g['count']}" for g in context["governance"]]
    lines += [
        "",
        f"The full report is the HTML part of this message and the attached PDF ({stem}.pdf)"
        + (f"; rejections by day and reason are attached as {csv_name}." if csv_name else "."),
        f"Generated {generated_label(context['generated_at'])} by healthops. Counts and codes only: "
        "no patient-identifying information.",
    ]
    return "\n".join(lines) + "\n"


# -- charts -----------------------------------------------------------------------------------
def rejections_by_reason_chart(bars: Iterable[Mapping], period_label: str = "") -> bytes:
    """Horizontal bars (rpt_dq_rejection_reasons_chart: the largest reason categories
    first, then one "N other reasons" bar), labelled with the count and its share of
    all rejections."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    bars = list(bars)
    title = "Rejected messages by reason" + (f", {period_label}" if period_label else "")
    if not bars:
        return empty_chart(title, "No message was rejected")
    labels = ["\n".join(textwrap.wrap(b["label"], 30)[:2]) for b in bars]
    counts = [int(b["count"]) for b in bars]
    shown = bars
    extra_lines = sum(lab.count("\n") for lab in labels)
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 0.9 + 0.27 * len(shown) + 0.08 * extra_lines), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        y = list(range(len(shown)))
        colors = [NON_INPATIENT_COLOR if b["is_other"] else OVER_COLOR for b in bars]
        ax.barh(y, counts, height=0.62, color=colors, zorder=2)
        xmax = max(counts)
        for yi, n, b in zip(y, counts, bars):
            ax.text(
                n + xmax * 0.02,
                yi,
                f"{n}  ({_pct_label(b['share'])})",
                va="center",
                ha="left",
                fontsize=8.5,
                color=TEXT_COLOR,
            )
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax * 1.45)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5, steps=[1, 2, 5, 10]))
        ax.set_xlabel("Rejected messages")
        chart_title(fig, title)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#EEF0F2", zorder=0)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
        return to_png(fig)


def daily_messages_chart(daily: Iterable[Mapping], period_label: str = "") -> bytes:
    """Two panels over the days of the month: messages received per day (loaded and
    rejected, stacked) and the day's rejection rate. Days without a file are shaded
    grey in both panels and break the rate line, so a gap in the feed is visible."""
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    daily = sorted(daily, key=lambda d: d["date"])
    title = "Daily messages and rejection rate" + (f", {period_label}" if period_label else "")
    if not daily or not any(d["has_data"] for d in daily):
        return empty_chart(title, "No file was received in this period")
    xs = [d["date"] for d in daily]
    loaded = [int(d["loaded"]) for d in daily]
    rejected = [int(d["rejected"]) for d in daily]
    rates = [
        float(d["rejection_rate"]) if d["has_data"] and d["rejection_rate"] is not None else float("nan") for d in daily
    ]
    missing = [d["date"] for d in daily if not d["has_data"]]
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 3.0), dpi=DPI, layout="constrained")
        ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        for a in (ax, ax2):
            for d in missing:
                a.axvspan(
                    mdates.date2num(d) - 0.5, mdates.date2num(d) + 0.5, color=NO_DATA_COLOR, zorder=0, linewidth=0
                )
        ax.bar(xs, loaded, width=0.75, color=CENSUS_COLOR, zorder=2)
        ax.bar(xs, rejected, width=0.75, bottom=loaded, color=OVER_COLOR, zorder=2)
        top = max((lo + rj for lo, rj in zip(loaded, rejected)), default=0)
        ax.set_ylim(0, max(top, 1) * 1.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4, steps=[1, 2, 5, 10]))
        ax.set_ylabel("Messages")
        handles = [Patch(facecolor=CENSUS_COLOR, label="Loaded"), Patch(facecolor=OVER_COLOR, label="Rejected")]
        if missing:
            handles.append(Patch(facecolor=NO_DATA_COLOR, edgecolor=BEDS_EDGE, label="No file received"))
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=len(handles),
            fontsize=8,
            frameon=False,
            handlelength=1.2,
            columnspacing=1.2,
            borderaxespad=0.3,
        )

        ax2.plot(xs, rates, color=OVER_COLOR, linewidth=1.8, marker="o", markersize=3.2, zorder=3)
        finite = [r for r in rates if r == r]
        hi = max(finite) if finite else 0
        ax2.set_ylim(0, max(hi * 1.3, 1.0))
        ax2.yaxis.set_major_formatter(PercentFormatter(decimals=1 if max(hi, 1) < 5 else 0))
        ax2.yaxis.set_major_locator(MaxNLocator(nbins=3))
        ax2.set_ylabel("Rejected %")
        ax2.set_xlim(mdates.date2num(xs[0]) - 0.6, mdates.date2num(xs[-1]) + 0.6)
        ax2.xaxis.set_major_locator(mdates.DayLocator(bymonthday=[1, 5, 10, 15, 20, 25]))
        ax2.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short(mdates.num2date(x).date())))
        for a in (ax, ax2):
            a.spines[["top", "right"]].set_visible(False)
            a.grid(axis="y", color="#EEF0F2", zorder=1)
            a.set_axisbelow(True)
            a.yaxis.label.set_color(MUTED_COLOR)
        chart_title(fig, title)
        return to_png(fig)
