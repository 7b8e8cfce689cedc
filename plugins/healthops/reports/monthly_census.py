"""The monthly census and utilization summary (for the CNO and the CFO), as a report
kind (see ``healthops.reports.kinds``).

One report per month ("YYYY-MM"), for every facility or for the one a recipient's
filter names ({"facility": "NGH"}). Per facility: the month's average daily census
(ADC), occupancy, average length of stay (ALOS), admissions, discharges and patient
days, for the facility (the mart's ``unit_code = 'ALL'``: its inpatient units) and
for each unit, with the change against the previous month and the same month a year
before; the last 12 months of ADC, occupancy and ALOS as line charts; and how many
days of the month the data cover, so a month to date is never read as a full month.

Data: ``marts.fct_census_period`` (month and day rows) and ``marts.dim_units``, read
through the allow-list reader only. The figures are the mart's (docs/definitions.md#census-and-utilization):
ADC = patient days ÷ days with data, occupancy = ADC ÷ average staffed beds, ALOS =
inpatient days of the stays discharged in the month ÷ discharges. Shown here:
ADC and ALOS as the mart rounds them (2 decimals), occupancy as a percentage with one
decimal rounded half up; a change is the difference of the values shown.

Comparisons. Rates (ADC, occupancy, ALOS) are compared whenever both months have
data. Counts (admissions, discharges, patient days) of a month the data do not cover
in full are not compared with another month (a month to date against a full month
would read as a collapse): the cell says so.

Small cells (``entry["suppress_small_cells"]``): admissions and discharges from 1 to
10 are shown as ``<11`` in every month the report uses (this month, the previous
month, a year before, the trend), with ALOS (derived from discharges) suppressed
with them; the facility total is suppressed when it is small itself, and a second
unit cell is suppressed wherever the total would reveal a single hidden one
(``phi.suppress_table``). This happens in ``build_context``, before any figure,
change, chart, text or CSV is made from the rows, and a change is only shown between
two values that are both shown.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from healthops.reports.periods import Month
from healthops.reports.phi import SUPPRESSED, suppress_table
from healthops.reports.render import (
    UNIT_TYPE_LABELS,
    Chart,
    RenderedReport,
    _generated_label,
    _safe_token,
    render_document,
)

REPORT_ID = "monthly_census"
PERIOD_TABLE = "marts.fct_census_period"
UNITS_TABLE = "marts.dim_units"
PERIOD_COLUMNS = ["facility_code", "unit_code", "period_start", "days_in_period", "patient_days", "admissions",
                  "discharges", "average_daily_census", "staffed_beds", "occupancy", "average_length_of_stay"]
UNIT_COLUMNS = ["facility_code", "unit_code", "unit_name", "unit_type", "is_inpatient_unit", "staffed_beds"]
TOTAL = "ALL"  # the mart's unit_code of a facility's inpatient units together
COUNT_COLUMNS = ["admissions", "discharges"]  # patient counts: small-cell suppression
DERIVED = {"discharges": ["alos"]}  # ALOS is computed from discharges: hidden with them
TREND_MONTHS = 12
# Display order of units: by acuity (the order of render.UNIT_TYPE_LABELS), then code.
_TYPE_ORDER = {t: i for i, t in enumerate(UNIT_TYPE_LABELS)}
MINUS = "\u2212"


# ----------------------------------------------------------------------------- formatting
def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def occupancy_pct(fraction: Any) -> Decimal | None:
    """The mart's occupancy (a fraction) as a percentage, one decimal, half up."""
    if fraction is None:
        return None
    return (Decimal(fraction) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def fmt(value: Any, suffix: str = "") -> str:
    """A cell: ``—`` for no value, ``<11`` as is, thousands separators for counts."""
    if value is None:
        return "—"
    if value == SUPPRESSED:
        return SUPPRESSED
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return f"{value}{suffix}"


def fmt_change(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    text = f"{abs(value):,}"
    sign = "+" if value > 0 else (MINUS if value < 0 else "±")
    return f"{sign}{text}{suffix}"


def _pct_change(new: Any, old: Any) -> Decimal | None:
    if not _shown(new) or not _shown(old) or not old:
        return None
    return ((Decimal(new) - Decimal(old)) * 100 / Decimal(old)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _shown(value: Any) -> bool:
    return value is not None and value != SUPPRESSED


def _short_day(d: date) -> str:
    return f"{d:%b} {d.day}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


# ----------------------------------------------------------------------------- measures
# (key, label, unit suffix in text, is a count, change suffix)
MEASURES = [
    ("adc", "Average daily census", "", False, ""),
    ("occupancy", "Occupancy", "%", False, " pts"),
    ("alos", "Average length of stay (days)", "", False, ""),
    ("admissions", "Admissions", "", True, ""),
    ("discharges", "Discharges", "", True, ""),
    ("patient_days", "Patient days", "", True, ""),
    ("staffed_beds", "Staffed beds (average)", "", False, ""),
]
FIGURE_NAMES = {"adc": "ADC", "occupancy": "occupancy %", "alos": "ALOS days", "admissions": "admissions",
                "discharges": "discharges", "patient_days": "patient days", "staffed_beds": "staffed beds"}


def _cell(row: Mapping) -> dict[str, Any]:
    """One mart row (a unit or the facility, one month) in display terms."""
    return {
        "days_with_data": _int(row["days_in_period"]),
        "adc": _dec(row["average_daily_census"]),
        "occupancy": occupancy_pct(row["occupancy"]),
        "alos": _dec(row["average_length_of_stay"]),
        "admissions": _int(row["admissions"]),
        "discharges": _int(row["discharges"]),
        "patient_days": _int(row["patient_days"]),
        "staffed_beds": _beds(row["staffed_beds"]),
    }


def _beds(value: Any) -> int | Decimal | None:
    """Average staffed beds: a whole number when the bed base did not change."""
    if value is None:
        return None
    d = Decimal(value)
    return int(d) if d == d.to_integral_value() else d


def _change(key: str, cur: dict | None, old: dict | None, comparable_counts: bool) -> dict[str, Any]:
    """The change of one measure from ``old`` to ``cur``: {"value", "pct", "note"}."""
    if cur is None or old is None:
        return {"value": None, "pct": None, "note": "no data"}
    a, b = cur.get(key), old.get(key)
    if not _shown(a) or not _shown(b):
        note = "suppressed" if SUPPRESSED in (a, b) else "no data"
        return {"value": None, "pct": None, "note": note}
    is_count = key in ("admissions", "discharges", "patient_days")
    if is_count and not comparable_counts:
        return {"value": None, "pct": None, "note": "partial month"}
    delta = a - b
    return {"value": delta, "pct": None if key == "occupancy" else _pct_change(a, b), "note": ""}


# ----------------------------------------------------------------------------- the kind
class MonthlyCensus:
    period = "month"
    filter_keys = ("facility",)
    required_filter = ()
    trend_months = TREND_MONTHS

    # -- context -----------------------------------------------------------------------
    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        from healthops import config
        from healthops.census.units import facility_names

        month = Month.parse(period)
        n_trend = int(entry.get("trend_months") or self.trend_months)
        prev, year_ago = month.shift(-1), month.shift(-12)
        first_needed = min(month.shift(-(n_trend - 1)), year_ago)
        facility = (flt or {}).get("facility") or None
        suppress = bool(entry.get("suppress_small_cells"))

        fac_where: dict[str, Any] = {"facility_code": facility} if facility else {}
        units_ref = reader.select(UNITS_TABLE, UNIT_COLUMNS, fac_where, order_by=["facility_code", "unit_code"])
        rows = reader.select(PERIOD_TABLE, PERIOD_COLUMNS,
                             {**fac_where, "period_type": "month",
                              "period_start": ("between", (first_needed.first, month.first))},
                             order_by=["facility_code", "period_start", "unit_code"])
        day_rows = reader.select(PERIOD_TABLE, ["facility_code", "period_start"],
                                 {**fac_where, "period_type": "day", "unit_code": TOTAL,
                                  "period_start": ("between", (month.first, month.last))},
                                 order_by=["facility_code", "period_start"])
        if not any(Month.parse(r["period_start"]) == month for r in rows):
            raise LookupError(f"{PERIOD_TABLE} has no rows for {month.key}"
                              + (f" (facility {facility})" if facility else ""))

        names = facility_names()
        ref: dict[tuple[str, str], dict] = {(u["facility_code"], u["unit_code"]): u for u in units_ref}
        # (facility, unit, month) -> display cell
        cells: dict[tuple[str, str, Month], dict[str, Any]] = {}
        for r in rows:
            cells[(r["facility_code"], r["unit_code"], Month.parse(r["period_start"]))] = _cell(r)
        days_by_fac: dict[str, list[date]] = {}
        for r in day_rows:
            days_by_fac.setdefault(r["facility_code"], []).append(r["period_start"])

        codes = sorted({f for f, _ in ref} | {f for f, _, _ in cells})
        months_used = sorted({m for _, _, m in cells})
        suppressed_cells = 0
        if suppress:
            for fac in codes:
                for m in months_used:
                    suppressed_cells += _suppress_month(cells, fac, m)

        reader.note("reference data facilities.facility_name", [names.get(c, c) for c in codes])
        facilities = []
        for fac in codes:
            facilities.append(self._facility(fac, names.get(fac, fac), month, prev, year_ago, n_trend, cells, ref,
                                             sorted(days_by_fac.get(fac, []))))
        incomplete = [f for f in facilities if f["has_data"] and not f["coverage"]["complete"]]
        return {
            "report_id": REPORT_ID,
            "period": month.key,
            "month": month,
            "period_label": month.label,
            "prev": prev,
            "year_ago": year_ago,
            "trend_months": [month.shift(-i) for i in range(n_trend - 1, -1, -1)],
            "facility_filter": facility,
            "scope_name": names.get(facility, facility) if facility else "All facilities",
            "facilities": facilities,
            "incomplete": [f["facility_code"] for f in incomplete],
            "suppress_small_cells": suppress,
            "suppressed_cells": suppressed_cells,
            "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
        }

    def _facility(self, fac, name, month, prev, year_ago, n_trend, cells, ref, days) -> dict[str, Any]:
        cur_total = cells.get((fac, TOTAL, month))
        cov = _coverage(month, cur_total, days)
        prev_cov = _coverage(prev, cells.get((fac, TOTAL, prev)), None)
        ya_cov = _coverage(year_ago, cells.get((fac, TOTAL, year_ago)), None)
        # counts are compared only between two months the data cover in full
        counts_vs_prev = not prev_cov["has_data"] or (cov["complete"] and prev_cov["complete"])
        counts_vs_ya = not ya_cov["has_data"] or (cov["complete"] and ya_cov["complete"])

        def compare(unit: str) -> dict[str, Any]:
            cur, p, y = (cells.get((fac, unit, m)) for m in (month, prev, year_ago))
            return {
                "current": cur, "prev": p, "year_ago": y,
                "vs_prev": {k: _change(k, cur, p, counts_vs_prev) for k, *_ in MEASURES},
                "vs_year_ago": {k: _change(k, cur, y, counts_vs_ya) for k, *_ in MEASURES},
            }

        unit_codes = {u for f, u, m in cells if f == fac and u != TOTAL and m == month}
        units = []
        for code in unit_codes:
            u = ref.get((fac, code))
            unit_type = u["unit_type"] if u else "unknown"
            units.append({
                "unit_code": code,
                "unit_name": u["unit_name"] if u else f"{code} (not in reference data)",
                "unit_type": unit_type,
                "type_label": UNIT_TYPE_LABELS.get(unit_type, unit_type.replace("_", " ").capitalize()),
                "inpatient": bool(u["is_inpatient_unit"]) if u else True,
                "in_reference": u is not None,
                **compare(code),
            })
        units.sort(key=lambda r: (not r["inpatient"], _TYPE_ORDER.get(r["unit_type"], 99), r["unit_code"]))
        trend = []
        for i in range(n_trend - 1, -1, -1):
            m = month.shift(-i)
            c = cells.get((fac, TOTAL, m))
            trend.append({"month": m, "has_data": c is not None,
                          "coverage": _coverage(m, c, days if m == month else None),
                          "adc": c["adc"] if c else None, "occupancy": c["occupancy"] if c else None,
                          "alos": c["alos"] if c else None})
        return {
            "facility_code": fac,
            "facility_name": name,
            "has_data": cur_total is not None,
            "trend_rows": _trend_rows(trend),
            "coverage": cov,
            "prev_coverage": prev_cov,
            "year_ago_coverage": ya_cov,
            "counts_vs_prev": counts_vs_prev,
            "counts_vs_year_ago": counts_vs_ya,
            "total": compare(TOTAL),
            "units": units,
            "trend": trend,
        }

    # -- figures -----------------------------------------------------------------------
    def figures(self, context: dict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        month: Month = context["month"]
        for f in context["facilities"]:
            fac = f["facility_code"]
            for m, cov in ((month, f["coverage"]), (context["prev"], f["prev_coverage"]),
                           (context["year_ago"], f["year_ago_coverage"])):
                if cov["has_data"] or m == month:
                    out[f"{fac} {m.key} days with data"] = f"{cov['days_with_data']} of {cov['days_in_month']}"
            for label, row in [("total", f["total"])] + [(u["unit_code"], u) for u in f["units"]]:
                for m, which in ((month, "current"), (context["prev"], "prev"), (context["year_ago"], "year_ago")):
                    cell = row[which]
                    if cell is None:
                        continue
                    for k, *_ in MEASURES:
                        out[f"{fac} {label} {m.key} {FIGURE_NAMES[k]}"] = _jsonable(cell[k])
            for p in f["trend"]:
                if not p["has_data"]:
                    continue
                out[f"{fac} {p['month'].key} days with data"] = (
                    f"{p['coverage']['days_with_data']} of {p['coverage']['days_in_month']}")
                for k in ("adc", "occupancy", "alos"):
                    out[f"{fac} total {p['month'].key} {FIGURE_NAMES[k]}"] = _jsonable(p[k])
        return out

    # -- render ------------------------------------------------------------------------
    def render(self, context: dict, entry: dict, revision=None) -> RenderedReport:
        month: Month = context["month"]
        report_name = entry.get("name") or "Monthly census and utilization"
        scope = context["scope_name"]
        facility_code = context["facility_filter"] or "ALL"
        period_label = month.label + _coverage_suffix(context)
        title = f"{report_name} — {scope} — {month.label}"
        subject = entry["subject"].format_map({
            "report_name": report_name, "period_label": month.label, "period": month.key,
            "facility_name": scope, "facility_code": facility_code,
        })
        partial = [f for f in context["facilities"] if f["has_data"] and not f["coverage"]["complete"]]
        if partial:
            subject = f"[MONTH TO DATE: {_mtd_short(partial)}] {subject}"
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"{REPORT_ID}_{_safe_token(facility_code)}_{month.key}"

        charts_ = []
        for f in context["facilities"]:
            if not f["has_data"]:
                continue
            png = trend_chart(f["facility_name"], f["trend"])
            alt, caption = trend_alt(f["facility_name"], f["trend"])
            charts_.append(Chart(f"trend-{f['facility_code']}", png, alt, caption))
        generated_at = context["generated_at"]
        base = {
            **context,
            "title": title,
            "report_name": report_name,
            "facility_name": scope,
            "period_label": period_label,
            "generated_at_label": _generated_label(generated_at),
            "generated_at_iso": generated_at.isoformat(),
            "revision": revision,
            "measures": MEASURES,
            "fmt": fmt,
            "fmt_change": fmt_change,
            "SUPPRESSED": SUPPRESSED,
        }
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry["template"], base=base, charts_=charts_,
            token=f"{facility_code}.{month.key}", templates_dir=None)
        attachments: dict[str, tuple[bytes, str]] = {}
        if "csv" in entry.get("formats", []):
            attachments[f"{stem}.csv"] = (unit_csv(context), "text/csv")
        text = (f"REVISED: {revision.summary}\n\n" if revision else "") + _plain_text(
            context, title, stem, csv_name=f"{stem}.csv" if attachments else None)
        return RenderedReport(
            subject=subject, html=html_email, pdf=pdf, images=images, filename_stem=stem, text=text,
            html_standalone=html_browser, report=REPORT_ID, period=month.key, facility_code=facility_code,
            generated_at=generated_at, pdf_pages=pages, attachments=attachments,
            meta={"title": title, "sender": entry.get("sender"), "recipients": list(entry.get("recipients") or []),
                  "incomplete": context["incomplete"], "suppressed_cells": context["suppressed_cells"]},
        )


def _trend_rows(trend: list[dict]) -> list[dict]:
    """The trend table: one row per month with data; a run of months without data
    as one row ("Nov 2025 – Aug 2026")."""
    rows: list[dict] = []
    for p in trend:
        if p["has_data"]:
            rows.append(p)
        elif rows and rows[-1].get("gap"):
            rows[-1]["to"] = p["month"]
            rows[-1]["months"] += 1
        else:
            rows.append({"gap": True, "from": p["month"], "to": p["month"], "months": 1})
    for r in rows:
        if r.get("gap"):
            r["label"] = r["from"].short if r["months"] == 1 else f"{r['from'].short} – {r['to'].short}"
    return rows


def _suppress_month(cells: dict, fac: str, m: Month) -> int:
    """Small-cell suppression of one facility's month: the facility total first (it
    is shown too, so it cannot stay exact when it is small), then its units, with
    complementary suppression against the total."""
    total = cells.get((fac, TOTAL, m))
    units = [c for (f, u, mm), c in sorted(cells.items(), key=lambda kv: kv[0][1])
             if f == fac and mm == m and u != TOTAL]
    n = 0
    if total is not None:
        n += suppress_table([total], COUNT_COLUMNS, derived=DERIVED)
    if units:
        n += suppress_table(units, COUNT_COLUMNS, total=total, derived=DERIVED)
    return n


def _coverage(m: Month, total: dict | None, days: list[date] | None) -> dict[str, Any]:
    """How much of month ``m`` the data cover. With the month's ``days`` (the mart's
    day rows) the first and last day and the gaps are known; otherwise the count
    (``days_in_period``, the days the mart holds) only."""
    n = total["days_with_data"] if total else 0
    if days:
        n = len(days)
    cov: dict[str, Any] = {"month": m, "has_data": total is not None, "days_with_data": n, "days_in_month": m.day_count,
                           "complete": total is not None and n >= m.day_count, "first": None, "last": None,
                           "missing": [], "label": ""}
    if days:
        present = set(days)
        cov["first"], cov["last"] = min(days), max(days)
        cov["missing"] = [d for d in (m.first + timedelta(i) for i in range(m.day_count)) if d not in present]
    if total is None:
        cov["label"] = f"No census data for {m.label}."
    elif not cov["complete"]:
        if cov["first"]:
            gaps = [d for d in cov["missing"] if cov["first"] < d < cov["last"]]
            span = (f"{_short_day(cov['first'])}–{cov['last'].day}" if cov["first"] != cov["last"]
                    else _short_day(cov["first"]))
            cov["label"] = (f"Data for {n} of {m.day_count} days of {m.label} ({span}"
                            + (f", {len(gaps)} day{'s' if len(gaps) != 1 else ''} missing in between" if gaps else "")
                            + ").")
        else:
            cov["label"] = f"Data for {n} of {m.day_count} days of {m.label}."
    return cov


def _mtd_short(partial: list[dict]) -> str:
    counts = {(f["coverage"]["days_with_data"], f["coverage"]["days_in_month"]) for f in partial}
    if len(counts) == 1:
        n, total = counts.pop()
        return f"{n} of {total} days"
    return "days missing"


def _coverage_suffix(context: dict) -> str:
    partial = [f for f in context["facilities"] if f["has_data"] and not f["coverage"]["complete"]]
    if not partial:
        return ""
    covs = {f["coverage"]["days_with_data"] for f in partial}
    if len(covs) == 1 and len(partial) == len([f for f in context["facilities"] if f["has_data"]]):
        return f" to date ({covs.pop()} of {context['month'].day_count} days)"
    return " (incomplete: days without data, see each facility)"


# ----------------------------------------------------------------------------- charts
ADC_COLOR = "#0072B2"     # Okabe-Ito blue
OCC_COLOR = "#009E73"     # bluish green
ALOS_COLOR = "#D55E00"    # vermillion


def trend_chart(facility_name: str, trend: list[dict]) -> bytes:
    """Small multiples, one panel per measure (ADC, occupancy %, ALOS days), one
    point per month. A month without data (or with ALOS suppressed) breaks the line;
    a month the data do not cover in full is drawn as a hollow marker."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from healthops.reports.charts import _RC, DPI, MUTED_COLOR, TEXT_COLOR, WIDTH_IN, _empty_chart, _title, _to_png

    months = [p["month"] for p in trend]
    title = f"{facility_name}: last {len(months)} months"
    if not any(p["has_data"] for p in trend):
        return _empty_chart(title, "No census data in these months")
    labels = [(f"{m.first:%b}\n{m.first:%Y}" if i == 0 or m.first.month == 1 else f"{m.first:%b}")
              for i, m in enumerate(months)]
    panels = [("adc", "ADC (patients)", ADC_COLOR, "{}"), ("occupancy", "Occupancy (%)", OCC_COLOR, "{}%"),
              ("alos", "ALOS (days)", ALOS_COLOR, "{}")]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 5.0), dpi=DPI, layout="constrained")
        axes = fig.subplots(3, 1, sharex=True)
        xs = list(range(len(months)))
        for ax, (key, ylabel, color, fmt_) in zip(axes, panels):
            ys = [float(p[key]) if _shown(p[key]) else float("nan") for p in trend]
            ax.plot(xs, ys, color=color, linewidth=2, zorder=2)
            full = [(x, y) for x, y, p in zip(xs, ys, trend) if y == y and p["coverage"]["complete"]]
            part = [(x, y) for x, y, p in zip(xs, ys, trend) if y == y and not p["coverage"]["complete"]]
            if full:
                ax.plot(*zip(*full), linestyle="none", marker="o", markersize=4.5, color=color, zorder=3)
            if part:
                ax.plot(*zip(*part), linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                        markeredgecolor=color, markeredgewidth=1.6, zorder=4)
            values = [y for y in ys if y == y]
            if values:
                lo, hi = min(values), max(values)
                span = max(hi - lo, abs(hi) * 0.05, 0.5)
                ax.set_ylim(max(0.0, lo - span * 0.45), hi + span * 0.6)
                last = max(i for i, y in enumerate(ys) if y == y)
                ax.annotate(fmt_.format(trend[last][key]), (xs[last], ys[last]), xytext=(0, 7),
                            textcoords="offset points", ha="center", va="bottom", fontsize=9, fontweight="bold",
                            color=TEXT_COLOR)
            else:
                ax.set_ylim(0, 1)
                ax.text(0.5, 0.5, "No values to show", ha="center", va="center", color=MUTED_COLOR,
                        transform=ax.transAxes, fontsize=9)
            ax.set_ylabel(ylabel, fontsize=9)
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(axis="y", color="#EEF0F2", zorder=0)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", labelsize=8.5)
        axes[-1].set_xticks(xs, labels, fontsize=8)
        axes[-1].set_xlim(-0.5, len(xs) - 0.5)
        _title(fig, title)
        if any(not p["coverage"]["complete"] for p in trend if p["has_data"]):
            handle = Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                            markeredgecolor=MUTED_COLOR, markeredgewidth=1.6, label="Month not fully covered by data")
            axes[0].legend(handles=[handle], loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False,
                           handlelength=1.0, borderaxespad=0.2)
        return _to_png(fig)


def _extremes(points: list[tuple[Month, Any]]) -> tuple[tuple[Month, Any], tuple[Month, Any]]:
    low = min(points, key=lambda p: (p[1], p[0]))
    high = max(points, key=lambda p: (p[1], p[0]))
    return low, high


def trend_alt(facility_name: str, trend: list[dict]) -> tuple[str, str]:
    """Alt text (every value a reader needs: lowest, highest and latest of each
    measure, months without data, months not fully covered) and a caption."""
    if not trend:
        return f"Line charts of {facility_name}'s monthly census: no months to show.", ""
    first, last = trend[0]["month"], trend[-1]["month"]
    with_data = [p for p in trend if p["has_data"]]
    head = (f"Line charts of {facility_name}'s inpatient census by month, {first.short} to {last.short}: "
            "average daily census, occupancy and average length of stay.")
    if not with_data:
        return head + " No census data in these months.", ""
    parts = []
    for key, name, unit in (("adc", "Average daily census", ""), ("occupancy", "Occupancy", "%"),
                            ("alos", "ALOS", " days")):
        pts = [(p["month"], p[key]) for p in with_data if _shown(p[key])]
        if not pts:
            parts.append(f"{name}: no values shown.")
            continue
        (lo_m, lo_v), (hi_m, hi_v) = _extremes(pts)
        end_m, end_v = pts[-1]
        parts.append(f"{name}: lowest {lo_v}{unit} in {lo_m.short}, highest {hi_v}{unit} in {hi_m.short}, "
                     f"{end_v}{unit} in {end_m.short}.")
    alt = head + " " + " ".join(parts)
    notes = []
    suppressed = [p["month"].short for p in with_data if p["alos"] == SUPPRESSED]
    if suppressed:
        notes.append(f"ALOS not shown for {', '.join(suppressed)} (fewer than 11 discharges).")
    partial = [p for p in with_data if not p["coverage"]["complete"]]
    if partial:
        notes.append("; ".join(f"{p['month'].short} covers {p['coverage']['days_with_data']} of "
                               f"{p['coverage']['days_in_month']} days" for p in partial)
                     + " (hollow markers).")
    missing = len(trend) - len(with_data)
    if missing:
        notes.append(f"{missing} month{'s' if missing != 1 else ''} without data: the lines are broken there.")
    caption = " ".join(notes)
    return (alt + (" " + caption if caption else "")), caption


# ----------------------------------------------------------------------------- csv, text
CSV_MEASURES = [("average_daily_census", "adc"), ("occupancy_pct", "occupancy"),
                ("average_length_of_stay", "alos"), ("admissions", "admissions"), ("discharges", "discharges"),
                ("patient_days", "patient_days"), ("staffed_beds", "staffed_beds")]


def unit_csv(context: dict) -> bytes:
    """The unit table: one row per facility and unit (the facility's inpatient total
    as unit ``ALL`` first), this month's figures, then the previous month's and the
    same month a year before (suppressed cells as ``<11``; empty = no data)."""
    month: Month = context["month"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    head = ["facility_code", "facility_name", "month", "unit_code", "unit_name", "unit_type", "days_with_data",
            "days_in_month", *(c for c, _ in CSV_MEASURES)]
    for suffix in ("prev_month", "prev_year"):
        head += [f"{c}_{suffix}" for c, _ in CSV_MEASURES]
    w.writerow(head)

    def values(cell):
        return [("" if cell is None or cell[k] is None else _jsonable(cell[k])) for _, k in CSV_MEASURES]

    for f in context["facilities"]:
        if not f["has_data"]:
            continue
        rows = [("ALL", "All inpatient units", "", f["total"])]
        rows += [(u["unit_code"], u["unit_name"], u["unit_type"], u) for u in f["units"]]
        for code, name, unit_type, r in rows:
            cur = r["current"]
            w.writerow([f["facility_code"], f["facility_name"], month.key, code, name, unit_type,
                        cur["days_with_data"] if cur else "", f["coverage"]["days_in_month"],
                        *values(cur), *values(r["prev"]), *values(r["year_ago"])])
    return buf.getvalue().encode("utf-8")


def _change_text(ch: dict, suffix: str = "") -> str:
    return fmt_change(ch["value"], suffix) if ch["value"] is not None else ch["note"]


def _plain_text(context: dict, title: str, stem: str, csv_name: str | None = None) -> str:
    prev, ya = context["prev"], context["year_ago"]
    lines = [title, "=" * len(title), ""]
    for f in context["facilities"]:
        lines.append(f"{f['facility_name']} ({f['facility_code']})")
        if not f["has_data"]:
            lines += [f"  {f['coverage']['label']}", ""]
            continue
        if not f["coverage"]["complete"]:
            lines.append(f"  !! MONTH TO DATE: {f['coverage']['label']} Counts are not compared with full months.")
        t = f["total"]
        for key, label, suffix, _count, ch_suffix in MEASURES:
            cur = t["current"][key]
            lines.append(f"  {label}: {fmt(cur, suffix)}"
                         f"  (vs {prev.short}: {_change_text(t['vs_prev'][key], ch_suffix)};"
                         f" vs {ya.short}: {_change_text(t['vs_year_ago'][key], ch_suffix)})")
        lines.append("  By unit: ADC, occupancy, ALOS, admissions, discharges, patient days")
        width = max([len(u["unit_name"]) for u in f["units"]] + [10])
        for u in f["units"]:
            c = u["current"]
            occ = fmt(c["occupancy"], "%")
            lines.append(f"    {u['unit_name']:<{width}}  {fmt(c['adc']):>7}  {occ:>7}  {fmt(c['alos']):>6}"
                         f"  {fmt(c['admissions']):>6}  {fmt(c['discharges']):>6}  {fmt(c['patient_days']):>7}")
        lines.append("")
    if context["suppress_small_cells"]:
        lines.append("Admissions and discharges from 1 to 10 are shown as <11 (CMS cell-size suppression), with "
                     "the ALOS computed from them; a second cell is hidden where a total would reveal one.")
    lines += [f"The full report, with trend charts, is the HTML part of this message and the attached PDF "
              f"({stem}.pdf)." + (f" The unit table is attached as {csv_name}." if csv_name else ""),
              f"Generated {_generated_label(context['generated_at'])} by healthops. Aggregates only: "
              "no patient-identifying information."]
    return "\n".join(lines) + "\n"


KIND = MonthlyCensus()
