"""The monthly data-quality and records governance report, for the HIM director.

One question: is the record of patient movement complete, timely and correct?

- **Complete.** Files and messages received per day (``audit.load_batches``: in =
  loaded + rejected + duplicate per file; a duplicate is a resent copy of a message
  already loaded, kept in ``raw.duplicates``, not a rejection), days of the month with
  no file at all, and whether the quarantine (``raw.rejected``) holds every rejection
  the batches counted. Facilities whose census is built but that no report recipient
  covers yet (onboarding) are named, so nobody is left without their report unseen.
- **Timely.** How long after the day of receipt each file was loaded.
- **Correct.** Rejected messages by reason category (``raw.rejected``: the reason
  text up to its first ``:``, see ``healthops.sources.adt`` README "Rejection
  reasons"; only ``received_date``, ``source`` and ``reason`` are read, never
  ``raw_text``, which holds the message and its PHI); the month's data-quality
  checks by Kahn category (``audit.validation_runs`` + ``audit.rule_results``, each
  suite and day counted once, by its latest run); the rules that failed most.
- **Records governance.** From ``marts.fct_encounters`` (counts only, never
  ``encounter_key`` or ``patient_key``): encounters begun, admitted, discharged and
  cancelled in the month, and encounters still open long after they began: the
  usual sign of a discharge (A03) the EHR never sent.

Everything is read through the report's ``phi.MartReader`` (allow-listed columns).
A recipient's ``facility`` filter narrows the encounter counts only: the ADT feed,
its rejections and the data-quality checks are feed-level, and the report says so.

Charts are drawn here with the shared look of ``healthops.reports.charts``.
"""
from __future__ import annotations

import csv
import io
import re
import textwrap
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from healthops import config

# The shared look: rc settings, PNG writer, title and Okabe-Ito colours of the report charts.
from healthops.reports.charts import (
    _RC,
    BEDS_EDGE,
    CENSUS_COLOR,
    DPI,
    MUTED_COLOR,
    NON_INPATIENT_COLOR,
    OVER_COLOR,
    TEXT_COLOR,
    WIDTH_IN,
    _empty_chart,
    _title,
    _to_png,
)
from healthops.reports.periods import Month
from healthops.reports.render import Chart, RenderedReport, _generated_label, _safe_token, render_document

REPORT_ID = "dq_governance"
DEFAULT_TEMPLATE = "dq_governance.html.j2"
DEFAULT_NAME = "Data quality and records governance"
KAHN_CATEGORIES = ("conformance", "completeness", "plausibility")  # Kahn et al. 2016
KAHN_MEANING = {
    "conformance": "values follow the formats, codes and rules of the data model",
    "completeness": "the data that should be there is there",
    "plausibility": "values are believable: in range, unique, consistent with each other",
}
UNCATEGORIZED = "uncategorized"
SEVERITY_ORDER = {"blocking": 0, "warning": 1, "info": 2}
TOP_RULES = 10  # failing rules listed; the compliance report lists every rule
MAX_REASONS_CHARTED = 8  # the rest are drawn as one "other reasons" bar (the table lists all)
DEFAULT_OPEN_AFTER_DAYS = 30  # an encounter open this long after its first event: possible missing A03

BATCH_COLUMNS = ["source", "received_date", "file_path", "file_sha256", "records_in", "records_loaded",
                 "records_rejected", "records_duplicate", "loaded_at"]
# never reason or raw_text: they may quote the message (PHI)
REJECTED_COLUMNS = ["received_date", "source", "reason_category"]
RUN_COLUMNS = ["validation_run_id", "suite_name", "logical_date", "run_at", "success"]
RESULT_COLUMNS = ["validation_run_id", "rule_id", "severity", "status", "rows_evaluated", "rows_violating",
                  "domain", "kahn_category"]
# first_event_at dates the encounters that never became inpatient (ED, outpatient,
# observation) and the cancelled ones; read only where the allow-list holds it.
ENCOUNTER_COLUMNS = ["facility_code", "encounter_status", "first_event_at", "admit_at", "discharge_at",
                     "length_of_stay_days"]

NO_DATA_COLOR = "#EEF0F2"  # a day without a file, in the daily chart

__all__ = ["KIND", "DqGovernance", "reason_category", "rejections_csv", "rejections_by_reason_chart",
           "daily_messages_chart"]


# -- helpers ----------------------------------------------------------------------------
def _pct(num: int, den: int, places: str = "0.1") -> Decimal | None:
    """num ÷ den as a percentage, rounded half up (None when den is 0)."""
    if not den:
        return None
    return (Decimal(num) * 100 / Decimal(den)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _pct_label(value: Decimal | None) -> str:
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
        out.append(_short(start) if start == prev else f"{_short(start)}–{prev.day}"
                   if start.month == prev.month else f"{_short(start)}–{_short(prev)}")
        if d is not None:
            start = prev = d
    return ", ".join(out)


_PARENS = re.compile(r"\s*\([^()]*\)")
_QUOTED = re.compile(r"\s*'[^']*'")


def reason_category(reason: str) -> str:
    """The reason's category: its text before the first ``:``, without the values the
    parser quotes or adds in brackets (``unknown trigger event 'A99' (MSH-9 '...')`` ->
    ``unknown trigger event``; ``PV1-3 assigned unit missing (required for A01)`` ->
    ``PV1-3 assigned unit missing``), so one kind of problem is one row whatever the
    message said. The rest of the reason (which may quote the message) is not shown."""
    head = str(reason).split(":", 1)[0]
    head = _QUOTED.sub("", _PARENS.sub("", head))
    head = " ".join(head.split()).rstrip(" ;,.")
    return head or "unspecified"


def _allowed(reader, table: str, column: str) -> bool:
    allowed = getattr(reader, "allowed", None) or {}
    return column in allowed.get(table, ())


def _local_date(ts: datetime | None, tz: ZoneInfo) -> date | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(tz).date()


# -- the context --------------------------------------------------------------------------
class DqGovernance:
    """The report kind (``healthops.reports.kinds``)."""

    period = "month"
    filter_keys = ("facility",)
    required_filter = ()

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        from healthops.pipeline import facility_name
        from healthops.quality.rules import rule_descriptions
        from healthops.reports.catalog import load_catalog
        from healthops.reports.publish import facilities_without_audience

        month = Month.parse(period)
        first, last = month.first, month.last
        days = month.days
        tz = ZoneInfo(config.facility_tz())
        facility = (flt or {}).get("facility") or None
        open_after = int(entry.get("open_encounter_days") or DEFAULT_OPEN_AFTER_DAYS)

        # -- the feed: files and messages --------------------------------------------------
        batches = reader.select("audit.load_batches", BATCH_COLUMNS, {"received_date": ("between", (first, last))},
                                order_by=["received_date", "source", "file_path", "loaded_at"])
        per_day: dict[date, dict[str, int]] = {}
        lags: list[int] = []
        for b in batches:
            d = per_day.setdefault(b["received_date"], {"files": 0, "in": 0, "loaded": 0, "rejected": 0,
                                                        "duplicate": 0})
            d["files"] += 1
            d["in"] += int(b["records_in"])
            d["loaded"] += int(b["records_loaded"])
            d["rejected"] += int(b["records_rejected"])
            d["duplicate"] += int(b["records_duplicate"])
            loaded_on = _local_date(b["loaded_at"], tz)
            if loaded_on is not None:
                lags.append((loaded_on - b["received_date"]).days)
        n_in = sum(d["in"] for d in per_day.values())
        n_loaded = sum(d["loaded"] for d in per_day.values())
        n_rejected = sum(d["rejected"] for d in per_day.values())
        n_duplicate = sum(d["duplicate"] for d in per_day.values())
        missing_days = [d for d in days if d not in per_day]
        daily = []
        for d in days:
            c = per_day.get(d)
            daily.append({"date": d, "has_data": c is not None, "files": c["files"] if c else 0,
                          "messages_in": c["in"] if c else 0, "loaded": c["loaded"] if c else 0,
                          "rejected": c["rejected"] if c else 0, "duplicate": c["duplicate"] if c else 0,
                          "rejection_rate": _pct(c["rejected"], c["in"], "0.01") if c else None})
        late_files = sum(1 for lag in lags if lag > 1)

        # -- rejections by reason (the quarantine) -------------------------------------------
        rejected = reader.select("raw.rejected", REJECTED_COLUMNS, {"received_date": ("between", (first, last))},
                                 order_by=["received_date", "source"])
        by_cat: Counter[str] = Counter()
        cat_days: dict[str, set[date]] = defaultdict(set)
        by_day_cat: Counter[tuple[date, str, str]] = Counter()
        for r in rejected:
            cat = reason_category(r["reason_category"])
            by_cat[cat] += 1
            cat_days[cat].add(r["received_date"])
            by_day_cat[(r["received_date"], r["source"], cat)] += 1
        quarantined = len(rejected)
        reasons = [{"category": cat, "count": n, "share": _pct(n, quarantined), "days": len(cat_days[cat]),
                    "first_day": min(cat_days[cat]), "last_day": max(cat_days[cat])}
                   for cat, n in sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))]
        rejections_by_day = [{"date": d, "source": s, "category": c, "count": n}
                             for (d, s, c), n in sorted(by_day_cat.items())]

        # -- data-quality checks: each suite and day by its latest run ------------------------
        runs = reader.select("audit.validation_runs", RUN_COLUMNS, {"logical_date": ("between", (first, last))},
                             order_by=["logical_date", "suite_name", "run_at"])
        latest: dict[tuple[str, date], dict] = {}
        for run in runs:
            key = (run["suite_name"], run["logical_date"])
            cur = latest.get(key)
            if cur is None or (run["run_at"], str(run["validation_run_id"])) > (cur["run_at"],
                                                                               str(cur["validation_run_id"])):
                latest[key] = run
        run_of = {run["validation_run_id"]: key for key, run in latest.items()}
        results = []
        if run_of:
            results = reader.select("audit.rule_results", RESULT_COLUMNS,
                                    {"validation_run_id": ("in", list(run_of))}, order_by=["rule_id"])
        kahn_counts: dict[str, Counter] = {c: Counter() for c in KAHN_CATEGORIES}
        per_rule: dict[str, dict[str, Any]] = {}
        for res in results:
            suite, day = run_of[res["validation_run_id"]]
            status = res["status"] or "error"  # no verdict recorded: not a pass
            cat = (res["kahn_category"] or UNCATEGORIZED).strip().lower()
            kc = kahn_counts.setdefault(cat, Counter())
            kc["checks"] += 1
            kc[status] += 1
            rule = per_rule.setdefault(res["rule_id"], {
                "rule_id": res["rule_id"], "category": cat, "severity": res["severity"], "domain": res["domain"],
                "suite": suite, "days_run": 0, "days_failed": 0, "days_error": 0, "worst": None, "failed_days": []})
            rule["days_run"] += 1
            if status != "passed":
                rule["days_failed"] += 1
                rule["failed_days"].append(day)
                if status == "error":
                    rule["days_error"] += 1
                v = res["rows_violating"]
                if v is not None and (rule["worst"] is None or int(v) > rule["worst"]["rows_violating"]):
                    rule["worst"] = {"date": day, "rows_violating": int(v),
                                     "rows_evaluated": None if res["rows_evaluated"] is None
                                     else int(res["rows_evaluated"])}
        kahn = []
        for cat, c in kahn_counts.items():
            kahn.append({"category": cat, "meaning": KAHN_MEANING.get(cat, "rules without a Kahn category"),
                         "checks": c["checks"], "passed": c["passed"], "failed": c["failed"],
                         "not_evaluated": c["error"], "pass_rate": _pct(c["passed"], c["checks"])})
        kahn_total = {"checks": sum(k["checks"] for k in kahn), "passed": sum(k["passed"] for k in kahn),
                      "failed": sum(k["failed"] for k in kahn),
                      "not_evaluated": sum(k["not_evaluated"] for k in kahn)}
        kahn_total["pass_rate"] = _pct(kahn_total["passed"], kahn_total["checks"])
        failing = sorted((r for r in per_rule.values() if r["days_failed"]),
                         key=lambda r: (-r["days_failed"], SEVERITY_ORDER.get(r["severity"], 9),
                                        -(r["worst"]["rows_violating"] if r["worst"] else 0), r["rule_id"]))
        descriptions = rule_descriptions()
        top_rules = []
        for r in failing[:TOP_RULES]:
            top_rules.append({**{k: v for k, v in r.items() if k != "failed_days"},
                              "description": descriptions.get(r["rule_id"],
                                                               "Not in the current rule catalog (retired or renamed)."),
                              "failed_days_label": _day_ranges(sorted(r["failed_days"]))})
        reader.note("rule catalog", [r["description"] for r in top_rules])
        suites = []
        for suite in sorted({s for s, _ in latest}):
            suite_days = sorted(d for s, d in latest if s == suite)
            suites.append({"suite": suite, "days": len(suite_days),
                           "days_passed": sum(1 for d in suite_days if latest[(suite, d)]["success"])})
        validation = {"runs": len(runs), "superseded": len(runs) - len(latest), "latest_runs": len(latest),
                      "days_validated": len({d for _, d in latest}), "suites": suites,
                      "rules_failed": len(failing),
                      "blocking_rules_failed": sum(1 for r in failing if r["severity"] == "blocking")}

        # -- records governance: encounters ---------------------------------------------------
        governance = self._encounter_counts(reader, facility, first, last, open_after, entry)

        # -- facilities on the feed that no report recipient covers (onboarding) ----------------
        on_feed = {r["facility_code"] for r in reader.select(
            "marts.fct_census_daily", ["facility_code"], {"census_date": ("between", (first, last))})}
        if facility:
            on_feed &= {facility}
        no_audience = [{"facility_code": f, "facility_name": facility_name(f), "reports": reports}
                       for f, reports in sorted(facilities_without_audience(load_catalog(), on_feed).items())]
        reader.note("reference data facility name", [a["facility_name"] for a in no_audience])

        # -- what needs the director's attention ---------------------------------------------
        attention = []
        level = None
        if quarantined != n_rejected:
            level = "error"
            attention.append(f"The quarantine holds {quarantined} rejected message{'s' if quarantined != 1 else ''} "
                             f"for the month but the load batches counted {n_rejected}: rejected messages are "
                             "missing from raw.rejected (or were counted twice).")
        if missing_days:
            level = level or "warning"
            attention.append(f"No ADT file was received on {len(missing_days)} of {len(days)} days "
                             f"({_day_ranges(missing_days)}).")
        if late_files:
            level = level or "warning"
            attention.append(f"{late_files} file{'s were' if late_files != 1 else ' was'} loaded more than a day "
                             "after receipt.")
        if validation["blocking_rules_failed"]:
            level = level or "warning"
            attention.append(f"{validation['blocking_rules_failed']} blocking data-quality rule"
                             f"{'s' if validation['blocking_rules_failed'] != 1 else ''} failed on at least one day.")
        for a in no_audience:
            level = level or "warning"
            attention.append(f"{a['facility_name']} ({a['facility_code']}) is on the feed but has no recipient of "
                             f"{', '.join(a['reports'])} in the report catalog: its data is loaded, built and "
                             "checked, and no one receives its report.")
        stale = [g for g in governance if g["key"].startswith("open_") and g["count"] not in (0, None)]
        if stale:
            level = level or "warning"
            attention.append("Encounters still open more than "
                             f"{open_after} days after they began: possible missing discharges (A03).")

        name = facility_name(facility) if facility else "All facilities"
        reader.note("reference data facility name", [name])
        return {
            "report_id": REPORT_ID,
            "period": month.key,
            "period_label": month.label,
            "period_first": first,
            "period_last": last,
            "facility_code": facility,
            "facility_name": name,
            "generated_at": datetime.now(tz),
            "open_after_days": open_after,
            "summary": {
                "files": sum(d["files"] for d in per_day.values()),
                "messages_in": n_in,
                "messages_loaded": n_loaded,
                "messages_rejected": n_rejected,
                "messages_duplicate": n_duplicate,
                "rejection_rate": _pct(n_rejected, n_in, "0.01"),
                "days_with_data": len(per_day),
                "days_in_month": len(days),
                "missing_days": missing_days,
                "missing_days_label": _day_ranges(missing_days),
                "quarantined": quarantined,
                "quarantine_reconciles": quarantined == n_rejected,
                "files_loaded_late": late_files,
                "max_load_lag_days": max(lags) if lags else None,
            },
            "daily": daily,
            "reasons": reasons,
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

    @staticmethod
    def _encounter_counts(reader, facility, first: date, last: date, open_after: int,
                          entry: dict) -> list[dict[str, Any]]:
        table = "marts.fct_encounters"
        start, end = datetime.combine(first, time.min), datetime.combine(last, time.max)
        base: dict[str, Any] = {"facility_code": facility} if facility else {}
        cutoff = datetime.combine(last + timedelta(days=1), time.min) - timedelta(days=open_after)
        has_first = _allowed(reader, table, "first_event_at")
        rows: list[dict[str, Any]] = []

        def add(key, label, count, note=""):
            figure = "Encounters cancelled" if key == "cancelled" else label
            rows.append({"key": key, "label": label, "figure": figure, "count": count, "note": note})

        if has_first:
            begun = reader.select(table, ["encounter_status"], {**base, "first_event_at": ("between", (start, end))})
            add("begun", "Encounters begun", len(begun), "first ADT event in the month")
            add("cancelled", "of which cancelled", sum(1 for r in begun if r["encounter_status"] == "cancelled"),
                "every movement voided (A11, A12, A13)")
        admitted = reader.select(table, ["encounter_status"], {**base, "admit_at": ("between", (start, end))})
        add("admitted", "Inpatient admissions", len(admitted))
        discharged = reader.select(table, ["length_of_stay_days"], {**base, "discharge_at": ("between", (start, end))})
        add("discharged", "Inpatient discharges", len(discharged), "the denominator of record completion")
        add("discharged_no_los", "Discharges without a length of stay",
            sum(1 for r in discharged if r["length_of_stay_days"] is None), "expected 0")
        if has_first:
            still_open = reader.select(table, ["admit_at"], {**base, "encounter_status": "in_house",
                                                             "first_event_at": ("<", cutoff)})
            inpatient = sum(1 for r in still_open if r["admit_at"] is not None and r["admit_at"] < cutoff)
            other = sum(1 for r in still_open if r["admit_at"] is None)
        else:
            still_open = reader.select(table, ["admit_at"], {**base, "encounter_status": "in_house",
                                                             "admit_at": ("<", cutoff)})
            inpatient, other = len(still_open), None
        add("open_inpatient", f"Inpatient stays open over {open_after} days", inpatient,
            f"admitted {open_after}+ days before month end, no discharge yet: a missing A03, or a long stay")
        if other is not None:
            add("open_other", f"Other encounters open over {open_after} days", other,
                "ED, outpatient or observation, no discharge yet: a missing A03")
        if entry.get("suppress_small_cells"):
            from healthops.reports import phi

            phi.suppress_table(rows, ["count"])
        return rows

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
                out[f"messages {d['date'].isoformat()}"] = (f"{d['messages_in']} in, {d['loaded']} loaded, "
                                                            f"{d['rejected']} rejected, {d['duplicate']} duplicate, "
                                                            f"{d['files']} files")
        v = context["validation"]
        out["validation runs (latest per suite and day / all)"] = f"{v['latest_runs']} / {v['runs']}"
        for k in context["kahn"]:
            out[f"{k['category']} checks passed"] = (f"{k['passed']} of {k['checks']} "
                                                     f"({_pct_label(k['pass_rate'])})")
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
        fields = {"report_name": report_name, "period_label": context["period_label"], "period": context["period"],
                  "facility_name": scope, "facility_code": context["facility_code"] or "ALL"}
        subject = str(entry.get("subject") or "{report_name} — {period_label}").format_map(fields)
        if context["facility_code"] and context["facility_code"] not in subject and scope not in subject:
            subject += f" — {scope}"
        if context["attention_level"] == "error":
            subject = "[ATTENTION] " + subject
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"{REPORT_ID}_{_safe_token(context['facility_code'] or 'ALL')}_{_safe_token(context['period'])}"
        charts_ = [
            Chart("reasons", rejections_by_reason_chart(context["reasons"], context["period_label"]),
                  _reasons_alt(context)),
            Chart("daily", daily_messages_chart(context["daily"], context["period_label"]), _daily_alt(context),
                  caption="Bars: messages received per day (loaded + rejected); grey band: no file received. "
                          "Line: the day's rejection rate."),
        ]
        base = {
            **context,
            "title": title,
            "report_name": report_name,
            "facility_name": scope,
            "feed_scope_note": _scope_note(context),
            "generated_at_label": _generated_label(context["generated_at"]),
            "generated_at_iso": context["generated_at"].isoformat(),
            "pct": _pct_label,
            "n": _n,
            "short_date": _short,
            "kahn_meaning": KAHN_MEANING,
            "revision": revision,
        }
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry.get("template") or DEFAULT_TEMPLATE, base=base, charts_=charts_,
            token=f"{REPORT_ID}-{context['facility_code'] or 'ALL'}-{context['period']}")
        attachments = {}
        csv_name = f"{stem}_rejections.csv" if "csv" in entry.get("formats", []) else None
        if csv_name:
            attachments[csv_name] = (rejections_csv(context), "text/csv")
        return RenderedReport(
            subject=subject, html=html_email, pdf=pdf, images=images, filename_stem=stem,
            text=((f"REVISED: {revision.summary}\n\n" if revision else "")
                  + _plain_text(context, title, stem, csv_name)),
            html_standalone=html_browser, report=REPORT_ID, period=context["period"],
            facility_code=context["facility_code"] or "ALL", generated_at=context["generated_at"], pdf_pages=pages,
            quality_failed=context["validation"]["rules_failed"], attachments=attachments,
            meta={"title": title, "sender": entry.get("sender"), "recipients": list(entry.get("recipients") or [])},
        )


KIND = DqGovernance()


# -- text parts -------------------------------------------------------------------------------
def _scope_note(context: dict[str, Any]) -> str:
    if context["facility_code"]:
        return (f"Encounter counts are for {context['facility_name']} only. Files, messages, rejections and "
                "data-quality checks are feed-level: they cover every facility of the ADT feed (a rejected "
                "message may not even name its facility).")
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
    reasons = context["reasons"]
    p = context["period_label"]
    if not reasons:
        return f"Bar chart of rejected messages by reason for {p}: no message was rejected."
    parts = [f"{r['category']} {r['count']} ({_pct_label(r['share'])})" for r in reasons[:MAX_REASONS_CHARTED]]
    rest = len(reasons) - MAX_REASONS_CHARTED
    return (f"Bar chart of rejected messages by reason for {p}, {context['summary']['quarantined']} in all: "
            + "; ".join(parts) + (f"; and {rest} more reasons, listed in the table." if rest > 0 else "."))


def _daily_alt(context: dict[str, Any]) -> str:
    s = context["summary"]
    p = context["period_label"]
    with_data = [d for d in context["daily"] if d["has_data"]]
    if not with_data:
        return f"Chart of messages received per day in {p}: no file was received this month."
    hi = max(with_data, key=lambda d: (d["rejection_rate"] or 0, d["date"]))
    lo = min(with_data, key=lambda d: (d["rejection_rate"] or 0, d["date"]))
    text = (f"Chart of messages received per day in {p}: {_n(s['messages_in'])} messages on {s['days_with_data']} "
            f"of {s['days_in_month']} days, {_n(s['messages_rejected'])} rejected ({_pct_label(s['rejection_rate'])}). "
            f"Daily rejection rate from {_pct_label(lo['rejection_rate'])} ({_short(lo['date'])}) to "
            f"{_pct_label(hi['rejection_rate'])} ({_short(hi['date'])}).")
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
        "", "Rejections by reason:",
    ]
    lines += [f"  - {r['category']}: {r['count']} ({_pct_label(r['share'])})" for r in context["reasons"]] or ["  none"]
    lines += ["", f"Data-quality checks ({v['latest_runs']} latest runs of {v['runs']}; each suite and day once):"]
    for k in context["kahn"]:
        lines.append(f"  - {k['category']}: {k['passed']} of {k['checks']} passed ({_pct_label(k['pass_rate'])})")
    lines += ["", "Rules that failed most:"]
    lines += [f"  - {r['rule_id']} [{r['severity']}] failed {r['days_failed']} of {r['days_run']} days: "
              f"{r['description']}" for r in context["top_rules"]] or ["  none"]
    lines += ["", "Records governance:"]
    lines += [f"  - {g['label']}: {g['count']}" for g in context["governance"]]
    lines += ["", f"The full report is the HTML part of this message and the attached PDF ({stem}.pdf)"
                  + (f"; rejections by day and reason are attached as {csv_name}." if csv_name else "."),
              f"Generated {_generated_label(context['generated_at'])} by healthops. Counts and codes only: "
              "no patient-identifying information."]
    return "\n".join(lines) + "\n"


# -- charts -----------------------------------------------------------------------------------
def rejections_by_reason_chart(reasons: Iterable[Mapping], period_label: str = "") -> bytes:
    """Horizontal bars, one per reason category (largest first), labelled with the
    count and its share of all rejections; past ``MAX_REASONS_CHARTED`` the rest are
    one "other reasons" bar."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    reasons = list(reasons)
    title = "Rejected messages by reason" + (f", {period_label}" if period_label else "")
    if not reasons:
        return _empty_chart(title, "No message was rejected")
    shown = [(r["category"], int(r["count"])) for r in reasons[:MAX_REASONS_CHARTED]]
    rest = reasons[MAX_REASONS_CHARTED:]
    if rest:
        shown.append((f"{len(rest)} other reasons", sum(int(r["count"]) for r in rest)))
    total = sum(int(r["count"]) for r in reasons)
    labels = ["\n".join(textwrap.wrap(c, 30)[:2]) for c, _ in shown]
    counts = [n for _, n in shown]
    extra_lines = sum(lab.count("\n") for lab in labels)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 0.9 + 0.27 * len(shown) + 0.08 * extra_lines), dpi=DPI,
                     layout="constrained")
        ax = fig.add_subplot()
        y = list(range(len(shown)))
        colors = [NON_INPATIENT_COLOR if rest and i == len(shown) - 1 else OVER_COLOR for i in y]
        ax.barh(y, counts, height=0.62, color=colors, zorder=2)
        xmax = max(counts)
        for yi, n in zip(y, counts):
            ax.text(n + xmax * 0.02, yi, f"{n}  ({_pct_label(_pct(n, total))})", va="center", ha="left",
                    fontsize=8.5, color=TEXT_COLOR)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax * 1.45)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5, steps=[1, 2, 5, 10]))
        ax.set_xlabel("Rejected messages")
        _title(fig, title)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#EEF0F2", zorder=0)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
        return _to_png(fig)


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
        return _empty_chart(title, "No file was received in this period")
    xs = [d["date"] for d in daily]
    loaded = [int(d["loaded"]) for d in daily]
    rejected = [int(d["rejected"]) for d in daily]
    rates = [float(d["rejection_rate"]) if d["has_data"] and d["rejection_rate"] is not None else float("nan")
             for d in daily]
    missing = [d["date"] for d in daily if not d["has_data"]]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.0), dpi=DPI, layout="constrained")
        ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        for a in (ax, ax2):
            for d in missing:
                a.axvspan(mdates.date2num(d) - 0.5, mdates.date2num(d) + 0.5, color=NO_DATA_COLOR, zorder=0,
                          linewidth=0)
        ax.bar(xs, loaded, width=0.75, color=CENSUS_COLOR, zorder=2)
        ax.bar(xs, rejected, width=0.75, bottom=loaded, color=OVER_COLOR, zorder=2)
        top = max((lo + rj for lo, rj in zip(loaded, rejected)), default=0)
        ax.set_ylim(0, max(top, 1) * 1.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4, steps=[1, 2, 5, 10]))
        ax.set_ylabel("Messages")
        handles = [Patch(facecolor=CENSUS_COLOR, label="Loaded"), Patch(facecolor=OVER_COLOR, label="Rejected")]
        if missing:
            handles.append(Patch(facecolor=NO_DATA_COLOR, edgecolor=BEDS_EDGE, label="No file received"))
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(handles), fontsize=8,
                  frameon=False, handlelength=1.2, columnspacing=1.2, borderaxespad=0.3)

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
        _title(fig, title)
        return _to_png(fig)
