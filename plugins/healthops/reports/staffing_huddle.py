"""The daily staffing huddle as a report kind (see ``healthops.reports.kinds``).

One report per facility and day, read at the morning huddle, often on a phone: the
units that were out of ratio lead (the subject names them, a banner states each one's
minutes and worst interval), then two narrow tables (ratio; census and hours), the
open workforce compliance findings (ids only) and one small-multiples chart of
patients against licensed-nurse capacity across the day's 96 intervals.

A recipient's filter names the facility and, for a nurse manager, her units: she
receives those units only, and only the findings that name them (findings that name
no unit go to the facility-wide recipients). Every figure comes from the reporting
layer: ``rpt_staffing_huddle_units`` (the table, its order and the CSV),
``rpt_staffing_huddle_intervals`` (the chart), ``rpt_staffing_findings`` (the list).

Figures (the ledger's content version): each unit's census, licensed nurses, time out
of ratio, worst interval and NHPPD. The findings are not figures: a review recorded
after the report went out is no late data about the day's staffing, and sends no
revision.

Small cells: the huddle goes to the units' own managers and house supervisors, who
staff by exact counts (the catalog's rule); with ``suppress_small_cells`` the census
and patient counts of 1-10 would be shown as "<11".
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from healthops import config
from healthops.reports import phi
from healthops.reports.render import Chart, RenderedReport, generated_label, render_document, safe_token

UNITS = "rpt_staffing_huddle_units"
INTERVALS = "rpt_staffing_huddle_intervals"
FINDINGS = "rpt_staffing_findings"
UNIT_COLUMNS = [
    "facility_name",
    "unit_code",
    "unit_name",
    "unit_type",
    "ratio_limit",
    "midnight_census",
    "patient_days",
    "patients_peak",
    "licensed_nurses_fewest",
    "licensed_nurses_typical",
    "intervals_out_of_ratio",
    "minutes_out_of_ratio",
    "is_out_of_ratio",
    "worst_interval_label",
    "worst_patients",
    "worst_licensed_nurses",
    "worst_minutes_out_of_ratio",
    "rn_hours",
    "nursing_hours",
    "nhppd_total",
    "nhppd_rn",
    "nhppd_total_target",
    "nhppd_rn_target",
    "nhppd_total_vs_target",
    "nhppd_rn_vs_target",
    "open_findings",
    "huddle_rank",
]
INTERVAL_COLUMNS = ["unit_code", "interval_start", "patients_peak", "licensed_capacity", "is_out_of_ratio"]
FINDING_COLUMNS = ["rule_id", "severity", "unit_code", "worker_id", "finding_time", "finding_id", "severity_rank"]
PATIENT_COUNTS = ["midnight_census", "patient_days", "patients_peak", "worst_patients"]
CSV_COLUMNS = [
    "unit_code",
    "unit_name",
    "ratio_limit",
    "midnight_census",
    "patient_days",
    "patients_peak",
    "licensed_nurses_fewest",
    "licensed_nurses_typical",
    "intervals_out_of_ratio",
    "minutes_out_of_ratio",
    "worst_interval_label",
    "worst_patients",
    "worst_licensed_nurses",
    "worst_minutes_out_of_ratio",
    "rn_hours",
    "nursing_hours",
    "nhppd_total",
    "nhppd_total_target",
    "nhppd_rn",
    "nhppd_rn_target",
    "open_findings",
]
FIGURES = [
    "midnight_census",
    "patient_days",
    "licensed_nurses_fewest",
    "licensed_nurses_typical",
    "intervals_out_of_ratio",
    "minutes_out_of_ratio",
    "worst_interval_label",
    "nhppd_total",
    "nhppd_rn",
]
FINDINGS_LISTED = 12


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, str)):
        return str(value)
    return f"{Decimal(value):.{digits}f}"


def _minutes(value: Any) -> str:
    """Minutes out of ratio as read aloud: "7 min", "1 h 5 min", "7.5 min"."""
    if value is None:
        return "—"
    m = Decimal(value)
    whole = m == m.to_integral_value()
    if m < 60:
        return f"{int(m) if whole else m} min"
    hours, rest = divmod(m, 60)
    rest_txt = str(int(rest)) if rest == rest.to_integral_value() else str(rest)
    return f"{int(hours)} h" + (f" {rest_txt} min" if rest else "")


def _time(value: Any) -> str:
    """An evidence key's time as the keys hold it (ISO text), shortened to minutes."""
    if value is None:
        return "—"
    text = str(value).replace("T", " ")
    return text[:16]


class StaffingHuddle:
    period = "day"
    filter_keys = ("facility", "units")
    required_filter = ("facility",)
    models = (UNITS, INTERVALS, FINDINGS)
    optional_source = True  # timekeeping: a hospital without it gets no huddle report, and no error

    def facilities_with_data(self, reader, period: str) -> set[str]:
        rows = reader.select(UNITS, ["facility_code"], {"census_date": date.fromisoformat(period)})
        return {r["facility_code"] for r in rows}

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        day = date.fromisoformat(period)
        facility = flt["facility"]
        units_filter = list(flt.get("units") or [])
        scope: dict[str, Any] = {"facility_code": facility, "census_date": day}
        if units_filter:
            scope["unit_code"] = ("in", units_filter)
        units = reader.select(UNITS, UNIT_COLUMNS, scope, order_by=["huddle_rank"])
        if not units:
            raise LookupError(
                f"{UNITS} has no rows for {facility} on {day}"
                + (f" (units {', '.join(units_filter)})" if units_filter else "")
            )
        intervals = reader.select(
            INTERVALS,
            INTERVAL_COLUMNS,
            {"facility_code": facility, "census_date": day, "unit_code": ("in", [u["unit_code"] for u in units])},
            order_by=["unit_code", "interval_start"],
        )
        where: dict[str, Any] = {
            "facility_code": ("in", [facility, "ALL"]),
            "logical_date": day,
            "finding_status": "open",
        }
        if units_filter:
            where["unit_code"] = ("in", units_filter)
        findings = reader.select(
            FINDINGS, FINDING_COLUMNS, where, order_by=["severity_rank", "rule_id", "unit_code", "finding_time"]
        )
        if entry.get("suppress_small_cells"):
            phi.suppress_table(units, PATIENT_COUNTS)
        by_unit: dict[str, list[dict]] = {}
        for r in intervals:
            by_unit.setdefault(r["unit_code"], []).append(r)
        return {
            "facility_code": facility,
            "facility_name": units[0]["facility_name"],
            "units_filter": units_filter,
            "report_date": day,
            "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
            "units": units,
            "intervals": by_unit,
            "findings": findings,
            "findings_listed": int(entry.get("findings_listed") or FINDINGS_LISTED),
        }

    def figures(self, context: dict) -> dict[str, Any]:
        d = context["report_date"].isoformat()
        out: dict[str, Any] = {}
        for u in context["units"]:
            for k in FIGURES:
                out[f"{u['unit_code']} {k.replace('_', ' ')} {d}"] = _jsonable(u[k])
        return out

    # -- rendering ----------------------------------------------------------------
    def _rows(self, context: dict) -> list[dict]:
        rows = []
        for u in context["units"]:
            ratio = f"1:{u['ratio_limit']}" if u["ratio_limit"] else "no ratio"
            worst = None
            if u["is_out_of_ratio"]:
                nurses = u["worst_licensed_nurses"]
                worst = (
                    f"{u['worst_interval_label']}: {u['worst_patients']} patients, "
                    f"{nurses} licensed nurse{'s' if nurses != 1 else ''}"
                )
            rows.append(
                {
                    **u,
                    "ratio_label": ratio,
                    "minutes_label": _minutes(u["minutes_out_of_ratio"]) if u["ratio_limit"] else "—",
                    "worst_label": worst,
                    "nhppd_total_label": _num(u["nhppd_total"]),
                    "nhppd_rn_label": _num(u["nhppd_rn"]),
                    "target_total_label": _num(u["nhppd_total_target"]),
                    "target_rn_label": _num(u["nhppd_rn_target"]),
                    "below_total": u["nhppd_total_vs_target"] is not None and u["nhppd_total_vs_target"] < 0,
                    "below_rn": u["nhppd_rn_vs_target"] is not None and u["nhppd_rn_vs_target"] < 0,
                    "nurses_label": f"{_num(u['licensed_nurses_fewest'])} / {_num(u['licensed_nurses_typical'])}",
                    # no patient and no nursing hour all day: one line, not a row of dashes
                    "idle": u["patients_peak"] == 0 and not u["is_out_of_ratio"] and not u["nursing_hours"],
                }
            )
        return rows

    def _chart(self, context: dict, rows: list[dict]) -> Chart:
        from healthops.reports import charts

        panels = []
        for r in (r for r in rows if not r["idle"]):
            label = f"{r['unit_name']} ({r['ratio_label']})"
            if r["is_out_of_ratio"]:
                n = r["intervals_out_of_ratio"]
                label += f": {r['minutes_label']} out of ratio in {n} interval{'s' if n != 1 else ''}"
            elif r["ratio_limit"]:
                label += ": in ratio all day"
            panels.append(
                {"unit_code": r["unit_code"], "label": label, "intervals": context["intervals"].get(r["unit_code"], [])}
            )
        out = [r for r in rows if r["is_out_of_ratio"]]
        alt = (
            f"Patients present against licensed nurses × ratio for {len(rows)} unit(s) across the day's "
            "15-minute intervals. "
            + (
                "Out of ratio: "
                + "; ".join(f"{r['unit_name']} {r['minutes_label']}, worst {r['worst_label']}" for r in out)
                if out
                else "Every unit was in ratio all day."
            )
        )
        return Chart("staffing_day", charts.staffing_day_chart(panels), alt)

    def render(self, context: dict, entry: dict, revision=None) -> RenderedReport:
        d: date = context["report_date"]
        rows = self._rows(context)
        out = [r for r in rows if r["is_out_of_ratio"]]
        report_name = entry.get("name") or "Staffing huddle"
        units_filter = context["units_filter"]
        scope = context["facility_name"] + (f" ({', '.join(units_filter)})" if units_filter else "")
        subject = entry["subject"].format_map(
            {
                "facility_code": context["facility_code"],
                "facility_name": scope,
                "report_date": d,
                "report_name": report_name,
                "period": d.isoformat(),
                "period_label": f"{d:%A}, {d:%B} {d.day}, {d.year}",
            }
        )
        if out:
            subject = f"[{', '.join(r['unit_code'] for r in out)} out of ratio] {subject}"
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"staffing_huddle_{safe_token(context['facility_code'])}_{d.isoformat()}" + (
            f"_{safe_token('-'.join(units_filter))}" if units_filter else ""
        )
        findings = context["findings"]
        listed = context["findings_listed"]
        period_label = f"{d:%A}, {d:%B} {d.day}, {d.year}"
        base = {
            **context,
            "title": f"{report_name} — {scope} — {d.isoformat()}",
            "report_name": report_name,
            "facility_name": scope,
            "period_label": period_label,
            "generated_at_label": generated_label(context["generated_at"]),
            "generated_at_iso": context["generated_at"].isoformat(),
            "revision": revision,
            "rows": [r for r in rows if not r["idle"]],
            "idle_rows": [r for r in rows if r["idle"]],
            "out_rows": out,
            "findings_shown": [{**f, "time_label": _time(f["finding_time"])} for f in findings[:listed]],
            "findings_more": max(0, len(findings) - listed),
            "findings_total": len(findings),
        }
        chart = self._chart(context, rows)
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry["template"], base=base, charts_=[chart], token=f"{context['facility_code']}-{d}"
        )
        attachments = {}
        if "csv" in entry.get("formats", []):
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(["facility_code", "census_date", *CSV_COLUMNS])
            for u in context["units"]:
                w.writerow(
                    [context["facility_code"], d.isoformat(), *("" if u[k] is None else u[k] for k in CSV_COLUMNS)]
                )
            attachments[f"{stem}.csv"] = (buf.getvalue().encode(), "text/csv")
        return RenderedReport(
            subject=subject,
            html=html_email,
            pdf=pdf,
            images=images,
            filename_stem=stem,
            text=(f"REVISED: {revision.summary}\n\n" if revision else "") + self._text(base, stem),
            html_standalone=html_browser,
            report=entry.get("id", "staffing_huddle"),
            period=d.isoformat(),
            facility_code=context["facility_code"],
            generated_at=context["generated_at"],
            pdf_pages=pages,
            attachments=attachments,
            meta={"title": base["title"], "sender": entry["sender"], "recipients": list(entry["recipients"])},
        )

    @staticmethod
    def _text(base: dict, stem: str) -> str:
        lines = [base["title"], ""]
        if base["out_rows"]:
            lines.append("Out of ratio:")
            for r in base["out_rows"]:
                lines.append(
                    f"  - {r['unit_name']}: {r['minutes_label']} in {r['intervals_out_of_ratio']} interval(s); "
                    f"worst {r['worst_label']}"
                )
        else:
            lines.append("Every unit was in ratio all day.")
        lines += ["", "By unit (licensed nurses fewest / typical; NHPPD total and RN against target):"]
        if base["idle_rows"]:
            lines.append(
                "  No patients and no nursing hours all day: " + ", ".join(r["unit_name"] for r in base["idle_rows"])
            )
        for r in base["rows"]:
            lines.append(
                f"  - {r['unit_name']}: census {_num(r['midnight_census'])}, nurses {r['nurses_label']}, "
                f"NHPPD {r['nhppd_total_label']} (target {r['target_total_label']}), "
                f"RN {r['nhppd_rn_label']} (target {r['target_rn_label']}), open findings {r['open_findings']}"
            )
        lines += ["", f"Open workforce findings: {base['findings_total'] or 'none'}"]
        for f in base["findings_shown"]:
            lines.append(f"  - {f['rule_id']} worker {f['worker_id'] or '—'} {f['unit_code'] or '—'} {f['time_label']}")
        if base["findings_more"]:
            lines.append(f"  and {base['findings_more']} more")
        lines += [
            "",
            f"The full report is the HTML part of this message and the attached PDF ({stem}.pdf); the unit table "
            f"is attached as {stem}.csv.",
            f"Generated {base['generated_at_label']} by healthops. Aggregates and staff ids only: "
            "no patient-identifying information.",
        ]
        return "\n".join(lines) + "\n"


KIND = StaffingHuddle()
