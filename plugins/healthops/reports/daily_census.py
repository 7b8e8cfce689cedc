"""The daily census as a report kind (see ``healthops.reports.kinds``).

One report per facility and day; a recipient's filter names the facility and,
for a nurse manager, her units: she receives those units only, with their own
totals and trend. Every figure comes from the reporting layer: the unit rows from
``rpt_daily_census_units`` (names, types, the inpatient flag, occupancy, the day
before), the totals and trend as sums of its inpatient rows (``ReportReader.sums``),
the day's data-quality checks from ``rpt_daily_quality_checks``.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from typing import Any

from healthops.quality.data_docs import site_url
from healthops.quality.rules import rule_descriptions
from healthops.reports.render import RenderedReport, render_daily_census

UNITS = "rpt_daily_census_units"
CHECKS = "rpt_daily_quality_checks"
COUNT_COLUMNS = [
    "midnight_census",
    "admissions",
    "discharges",
    "transfers_in",
    "transfers_out",
    "patient_days",
    "staffed_beds",
]
UNIT_COLUMNS = ["unit_code", "unit_name", "unit_type", "is_inpatient_unit", *COUNT_COLUMNS, "occupancy_pct"]
TOTAL_COLUMNS = [*COUNT_COLUMNS, "occupancy_pct", "unit_count", "previous_day_census", "census_change"]


class DailyCensus:
    period = "day"
    filter_keys = ("facility", "units")
    required_filter = ("facility",)
    models = (UNITS, CHECKS)
    trend_days = 14

    def facilities_with_data(self, reader, period: str) -> set[str]:
        """The facilities the mart has a census for on the day (each needs an audience)."""
        rows = reader.select(UNITS, ["facility_code"], {"census_date": date.fromisoformat(period)})
        return {r["facility_code"] for r in rows}

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        report_date = date.fromisoformat(period)
        facility = flt["facility"]
        units_filter = list(flt.get("units") or [])
        trend_days = int(entry.get("trend_days") or self.trend_days)
        scope: dict[str, Any] = {"facility_code": facility}
        if units_filter:
            scope["unit_code"] = ("in", units_filter)
        day = {**scope, "census_date": report_date}
        units = reader.select(UNITS, ["facility_name", *UNIT_COLUMNS], day, order_by=["unit_code"])
        if not units:
            raise LookupError(
                f"{UNITS} has no rows for {facility} on {report_date}"
                + (f" (units {', '.join(units_filter)})" if units_filter else "")
            )
        (totals,) = reader.sums(UNITS, TOTAL_COLUMNS, {**day, "is_inpatient_unit": True})
        trend = reader.sums(
            UNITS,
            ["midnight_census"],
            {
                **scope,
                "is_inpatient_unit": True,
                "census_date": ("between", (report_date - timedelta(days=trend_days - 1), report_date)),
            },
            group_by=["census_date"],
        )
        checks = reader.select(
            CHECKS, ["rule_id", "status", "severity"], {"logical_date": report_date}, order_by=["rule_id"]
        )
        descriptions = rule_descriptions()
        quality = [
            {
                "rule": c["rule_id"],
                "status": c["status"],
                "severity": c["severity"],
                "detail": descriptions.get(c["rule_id"], ""),
            }
            for c in checks
        ]
        reader.note("rule catalog", [q["detail"] for q in quality])
        return {
            "facility_code": facility,
            "facility_name": units[0]["facility_name"],
            "units_filter": units_filter,
            "report_date": report_date,
            "generated_at": datetime.now(timezone.utc),
            "units": units,
            "totals": totals,
            "trend": trend,
            "quality": quality,
            "data_docs_url": site_url(),
        }

    def figures(self, context: dict) -> dict[str, Any]:
        d = context["report_date"].isoformat()
        out: dict[str, Any] = {}
        for u in context["units"]:
            for k in COUNT_COLUMNS:
                out[f"{u['unit_code']} {k.replace('_', ' ')} {d}"] = int(u[k])
        # The trend is context, not this day's figures: a late change to one day revises
        # that day's report, not the 14 reports whose trend lines show it.
        for q in context["quality"]:
            out[f"check {q['rule']}"] = q["status"]
        return out

    def render(self, context: dict, entry: dict, revision=None) -> RenderedReport:
        catalog = {"reports": {"daily_census": entry}}
        rendered = render_daily_census(context, catalog=catalog, revision=revision)
        if "csv" in entry.get("formats", []):
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow(["facility_code", "census_date", "unit_code", "unit_name", *COUNT_COLUMNS])
            for u in context["units"]:
                w.writerow(
                    [
                        context["facility_code"],
                        context["report_date"].isoformat(),
                        u["unit_code"],
                        u["unit_name"],
                        *(u[k] for k in COUNT_COLUMNS),
                    ]
                )
            rendered.attachments[f"{rendered.filename_stem}.csv"] = (buf.getvalue().encode(), "text/csv")
        return rendered


KIND = DailyCensus()
