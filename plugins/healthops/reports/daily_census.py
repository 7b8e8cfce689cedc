"""The daily census as a report kind (see ``healthops.reports.kinds``).

One report per facility and day; a recipient's filter names the facility and,
for a nurse manager, her units: she receives those units only, with their own
totals and trend. Data: ``marts.fct_census_daily`` through the allow-list reader,
unit names and types from the reference data, and the date's rule results from
the audit trail (ids, statuses, severities).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from typing import Any

from healthops.reports.render import RenderedReport, render_daily_census

CENSUS_COLUMNS = ["unit_code", "midnight_census", "admissions", "discharges", "transfers_in", "transfers_out",
                  "patient_days", "staffed_beds"]


def latest_rule_results(conn, report_date: date) -> list[tuple[str, bool, str]]:
    """(rule id, passed, severity) of the date's latest validation run of each suite."""
    return conn.execute(
        """select r.rule_id, r.success, r.severity
           from audit.rule_results r
           join (select distinct on (suite_name) validation_run_id
                 from audit.validation_runs where logical_date = %s
                 order by suite_name, run_at desc) latest using (validation_run_id)
           order by r.rule_id""", (report_date,)).fetchall()


class DailyCensus:
    period = "day"
    filter_keys = ("facility", "units")
    required_filter = ("facility",)
    trend_days = 14

    def facilities_with_data(self, reader, period: str) -> set[str]:
        """The facilities the mart has a census for on the day (each needs an audience)."""
        rows = reader.select("marts.fct_census_daily", ["facility_code"],
                             {"census_date": date.fromisoformat(period)})
        return {r["facility_code"] for r in rows}

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        from healthops.census.units import load_units
        from healthops.pipeline import facility_name, rule_descriptions
        from healthops.quality.data_docs import site_url

        report_date = date.fromisoformat(period)
        facility = flt["facility"]
        units_filter = list(flt.get("units") or [])
        trend_days = int(entry.get("trend_days") or self.trend_days)
        where: dict[str, Any] = {"facility_code": facility, "census_date": report_date}
        if units_filter:
            where["unit_code"] = ("in", units_filter)
        rows = reader.select("marts.fct_census_daily", CENSUS_COLUMNS, where, order_by=["unit_code"])
        if not rows:
            raise LookupError(f"marts.fct_census_daily has no rows for {facility} on {report_date}"
                              + (f" (units {', '.join(units_filter)})" if units_filter else ""))
        ref = {(u["facility_code"], u["unit_code"]): u for u in load_units()}
        units = []
        for r in rows:
            u = ref.get((facility, r["unit_code"]), {})
            units.append({**r, "unit_name": u.get("unit_name", f"{r['unit_code']} (not in reference data)"),
                          "unit_type": u.get("unit_type", "unknown")})
        reader.note("reference data units.unit_name", [u["unit_name"] for u in units])
        trend_where: dict[str, Any] = {"facility_code": facility, "census_date": (
            "between", (report_date - timedelta(days=trend_days - 1), report_date))}
        if units_filter:
            trend_where["unit_code"] = ("in", units_filter)
        trend_rows = reader.select("marts.fct_census_daily", ["census_date", "unit_code", "midnight_census"],
                                   trend_where, order_by=["census_date"])
        inpatient = {u["unit_code"] for u in load_units() if u["facility_code"] == facility
                     and u["unit_type"] != "emergency"}
        by_day: dict[date, int] = {}
        for t in trend_rows:
            if t["unit_code"] in inpatient:
                by_day[t["census_date"]] = by_day.get(t["census_date"], 0) + int(t["midnight_census"])
        descriptions = rule_descriptions()
        quality = [{"rule": rule, "status": "passed" if ok else "failed", "severity": sev,
                    "detail": descriptions.get(rule, "")}
                   for rule, ok, sev in latest_rule_results(reader.conn, report_date)]
        return {
            "facility_code": facility,
            "facility_name": facility_name(facility),
            "units_filter": units_filter,
            "report_date": report_date,
            "generated_at": datetime.now(timezone.utc),
            "units": units,
            "trend": [{"census_date": d, "midnight_census": n} for d, n in sorted(by_day.items())],
            "quality": quality,
            "data_docs_url": site_url(),
        }

    def figures(self, context: dict) -> dict[str, Any]:
        d = context["report_date"].isoformat()
        out: dict[str, Any] = {}
        for u in context["units"]:
            for k in CENSUS_COLUMNS[1:]:
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
            w.writerow(["facility_code", "census_date", "unit_code", "unit_name", *CENSUS_COLUMNS[1:]])
            for u in context["units"]:
                w.writerow([context["facility_code"], context["report_date"].isoformat(), u["unit_code"],
                            u["unit_name"], *(u[k] for k in CENSUS_COLUMNS[1:])])
            rendered.attachments[f"{rendered.filename_stem}.csv"] = (buf.getvalue().encode(), "text/csv")
        return rendered


KIND = DailyCensus()
