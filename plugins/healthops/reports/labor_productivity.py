"""The weekly labor productivity report as a report kind (see ``healthops.reports.kinds``).

One report per facility and ISO week (Monday to Sunday, period key ``YYYY-Www``),
published by the nightly run of the week's Sunday (``periods.period_of``): per unit,
nursing hours per patient day (total and RN) against the hospital's targets, overtime
hours and %, contract (agency) share, paid FTEs against budgeted FTEs, each beside
the week before. Every figure is a column of ``rpt_labor_productivity_weekly``; a
facility-wide recipient also gets the facility's total row (computed there as a ratio
of sums); a nurse manager gets her units only (NHPPD of a subset of units is no sum of
rows, so there is no total row for her).

Small cells: to the units' own managers the counts are exact (the catalog's rule);
with ``suppress_small_cells`` (a copy for executives or finance) patient days of 1-10
and the NHPPD computed from them are shown as "<11".
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from healthops import config
from healthops.reports import phi
from healthops.reports.periods import Week
from healthops.reports.render import RenderedReport, generated_label, render_document, safe_token

WEEKLY = "rpt_labor_productivity_weekly"
COLUMNS = [
    "facility_name",
    "unit_code",
    "unit_name",
    "is_facility_total",
    "days_covered",
    "patient_days",
    "rn_hours",
    "nursing_hours",
    "contract_hours",
    "overtime_hours",
    "productive_paid_hours",
    "paid_hours",
    "nhppd_total",
    "nhppd_rn",
    "nhppd_total_target",
    "nhppd_rn_target",
    "overtime_pct",
    "contract_pct",
    "paid_fte",
    "budgeted_fte",
    "fte_variance",
    "prior_patient_days",
    "prior_nhppd_total",
    "prior_nhppd_rn",
    "prior_overtime_hours",
    "prior_overtime_pct",
    "prior_contract_pct",
    "prior_paid_fte",
    "nhppd_total_change",
    "nhppd_rn_change",
    "overtime_pct_change",
    "contract_pct_change",
    "paid_fte_change",
]
FIGURES = [
    "patient_days",
    "nursing_hours",
    "rn_hours",
    "nhppd_total",
    "nhppd_rn",
    "overtime_hours",
    "overtime_pct",
    "contract_pct",
    "paid_fte",
    "budgeted_fte",
    "fte_variance",
]
CSV_COLUMNS = [
    "unit_code",
    "unit_name",
    "days_covered",
    "patient_days",
    "nursing_hours",
    "rn_hours",
    "nhppd_total",
    "nhppd_total_target",
    "nhppd_rn",
    "nhppd_rn_target",
    "overtime_hours",
    "overtime_pct",
    "contract_hours",
    "contract_pct",
    "paid_hours",
    "paid_fte",
    "budgeted_fte",
    "fte_variance",
    "prior_patient_days",
    "prior_nhppd_total",
    "prior_nhppd_rn",
    "prior_overtime_hours",
    "prior_overtime_pct",
    "prior_contract_pct",
    "prior_paid_fte",
]
# patient days, and the columns computed from them (suppressed with them)
DERIVED = {"patient_days": ["nhppd_total", "nhppd_rn"], "prior_patient_days": ["prior_nhppd_total", "prior_nhppd_rn"]}


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return f"{Decimal(value):,.{digits}f}{suffix}"


def _signed(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None or isinstance(value, str):
        return "—" if value is None else value
    return ("+" if value > 0 else "") + _fmt(value, digits, suffix)


class LaborProductivityWeekly:
    period = "week"
    filter_keys = ("facility", "units")
    required_filter = ("facility",)
    models = (WEEKLY,)
    optional_source = True  # timekeeping

    def facilities_with_data(self, reader, period: str) -> set[str]:
        rows = reader.select(WEEKLY, ["facility_code"], {"week_key": Week.parse(period).key})
        return {r["facility_code"] for r in rows}

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        week = Week.parse(period)
        facility = flt["facility"]
        units_filter = list(flt.get("units") or [])
        where: dict[str, Any] = {"facility_code": facility, "week_key": week.key}
        if units_filter:
            where["unit_code"] = ("in", units_filter)
        rows = reader.select(WEEKLY, COLUMNS, where, order_by=["is_facility_total", "unit_code"])
        units = [r for r in rows if not r["is_facility_total"]]
        if not units:
            raise LookupError(
                f"{WEEKLY} has no rows for {facility} in {week.key}"
                + (f" (units {', '.join(units_filter)})" if units_filter else "")
            )
        total = next((r for r in rows if r["is_facility_total"]), None)
        if entry.get("suppress_small_cells"):
            phi.suppress_table(units, list(DERIVED), total, derived=DERIVED)
            if total is not None:
                phi.suppress_table([total], list(DERIVED), derived=DERIVED)
        return {
            "facility_code": facility,
            "facility_name": units[0]["facility_name"],
            "units_filter": units_filter,
            "week": week,
            "prior_week": week.shift(-1),
            "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
            "units": units,
            "total": total,
        }

    def figures(self, context: dict) -> dict[str, Any]:
        key = context["week"].key
        out: dict[str, Any] = {}
        for r in context["units"] + ([context["total"]] if context["total"] else []):
            label = "total" if r["is_facility_total"] else r["unit_code"]
            for k in FIGURES:
                out[f"{label} {k.replace('_', ' ')} {key}"] = _jsonable(r[k])
        return out

    @staticmethod
    def _display(r: dict) -> dict:
        def below(value, target):
            return not isinstance(value, str) and value is not None and target is not None and value < target

        return {
            **r,
            "patient_days_label": _fmt(r["patient_days"]),
            "nhppd_total_label": _fmt(r["nhppd_total"]),
            "nhppd_rn_label": _fmt(r["nhppd_rn"]),
            "prior_nhppd_total_label": _fmt(r["prior_nhppd_total"]),
            "prior_nhppd_rn_label": _fmt(r["prior_nhppd_rn"]),
            "target_total_label": _fmt(r["nhppd_total_target"]),
            "target_rn_label": _fmt(r["nhppd_rn_target"]),
            "below_total": below(r["nhppd_total"], r["nhppd_total_target"]),
            "below_rn": below(r["nhppd_rn"], r["nhppd_rn_target"]),
            "overtime_hours_label": _fmt(r["overtime_hours"], 1),
            "overtime_pct_label": _fmt(r["overtime_pct"], 1, "%"),
            "prior_overtime_pct_label": _fmt(r["prior_overtime_pct"], 1, "%"),
            "contract_pct_label": _fmt(r["contract_pct"], 1, "%"),
            "prior_contract_pct_label": _fmt(r["prior_contract_pct"], 1, "%"),
            "paid_fte_label": _fmt(r["paid_fte"]),
            "prior_paid_fte_label": _fmt(r["prior_paid_fte"]),
            "budgeted_fte_label": _fmt(r["budgeted_fte"]),
            "fte_variance_label": _signed(r["fte_variance"]),
            "over_budget": r["fte_variance"] is not None and r["fte_variance"] > 0,
            "partial": r["days_covered"] < 7,
        }

    def render(self, context: dict, entry: dict, revision=None) -> RenderedReport:
        week: Week = context["week"]
        report_name = entry.get("name") or "Labor productivity, weekly"
        units_filter = context["units_filter"]
        scope = context["facility_name"] + (f" ({', '.join(units_filter)})" if units_filter else "")
        subject = entry["subject"].format_map(
            {
                "facility_code": context["facility_code"],
                "facility_name": scope,
                "report_name": report_name,
                "period": week.key,
                "period_label": week.label,
            }
        )
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"labor_productivity_{safe_token(context['facility_code'])}_{week.key}" + (
            f"_{safe_token('-'.join(units_filter))}" if units_filter else ""
        )
        rows = [self._display(r) for r in context["units"]]
        total = self._display(context["total"]) if context["total"] else None
        base = {
            **context,
            "title": f"{report_name} — {scope} — {week.key}",
            "report_name": report_name,
            "facility_name": scope,
            "period_label": week.label,
            "prior_label": context["prior_week"].short,
            "generated_at_label": generated_label(context["generated_at"]),
            "generated_at_iso": context["generated_at"].isoformat(),
            "revision": revision,
            "rows": rows,
            "total_row": total,
        }
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry["template"], base=base, charts_=[], token=f"{context['facility_code']}-{week.key}"
        )
        attachments = {}
        if "csv" in entry.get("formats", []):
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(["facility_code", "week", "week_start", *CSV_COLUMNS])
            for r in context["units"] + ([context["total"]] if context["total"] else []):
                w.writerow(
                    [context["facility_code"], week.key, week.first.isoformat()]
                    + ["" if r[k] is None else r[k] for k in CSV_COLUMNS]
                )
            attachments[f"{stem}.csv"] = (buf.getvalue().encode(), "text/csv")
        lines = [base["title"], f"{week.label}; the week before in brackets.", ""]
        for r in rows + ([total] if total else []):
            lines.append(
                f"  - {r['unit_name']}: NHPPD {r['nhppd_total_label']} ({r['prior_nhppd_total_label']}), "
                f"RN {r['nhppd_rn_label']} ({r['prior_nhppd_rn_label']}), overtime {r['overtime_hours_label']} h "
                f"{r['overtime_pct_label']} ({r['prior_overtime_pct_label']}), agency {r['contract_pct_label']} "
                f"({r['prior_contract_pct_label']}), paid FTE {r['paid_fte_label']} vs budget "
                f"{r['budgeted_fte_label']} ({r['fte_variance_label']})"
            )
        lines += [
            "",
            f"The full report is the HTML part of this message and the attached PDF ({stem}.pdf); the table is "
            f"attached as {stem}.csv.",
            f"Generated {base['generated_at_label']} by healthops. "
            "Aggregates only: no patient-identifying information.",
        ]
        return RenderedReport(
            subject=subject,
            html=html_email,
            pdf=pdf,
            images=images,
            filename_stem=stem,
            text=(f"REVISED: {revision.summary}\n\n" if revision else "") + "\n".join(lines) + "\n",
            html_standalone=html_browser,
            report=entry.get("id", "labor_productivity_weekly"),
            period=week.key,
            facility_code=context["facility_code"],
            generated_at=context["generated_at"],
            pdf_pages=pages,
            attachments=attachments,
            meta={"title": base["title"], "sender": entry["sender"], "recipients": list(entry["recipients"])},
        )


KIND = LaborProductivityWeekly()
