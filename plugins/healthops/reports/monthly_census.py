"""The monthly census and utilization summary (for the CNO and the CFO), as a report
kind (see ``healthops.reports.kinds``).

One report per month ("YYYY-MM"), for every facility or for the one a recipient's
filter names ({"facility": "NGH"}). Per facility: the month's average daily census
(ADC), occupancy, average length of stay (ALOS), admissions, discharges and patient
days, for the facility's inpatient units together (the emergency department is not
one) and for each unit, with the change against the previous month and the same
month a year before; the last 12 months of ADC, occupancy and ALOS as line charts;
and how many days of the month the data cover, so a month to date is never read as
a full month.

Every figure comes from the reporting layer (dbt ``models/reporting/census``):
``rpt_monthly_census_units`` (facility x unit x month, the facility's inpatient total
as unit ``ALL``: the month's figures, the month before's and the year before's, and
the changes) and ``rpt_monthly_census_trend`` (facility x month: coverage, the
facility's trend figures, whether counts may be compared). This module selects rows
from them, suppresses small cells, formats, charts and renders; periods are
``healthops.reports.periods.Month``.

Small cells (``entry["suppress_small_cells"]``): admissions and discharges from 1 to
10 are shown as ``<11`` in every month the report shows (this month, the previous
month, a year before, the trend), with ALOS (derived from discharges) and every
change to or from them suppressed with them; the facility total is suppressed when
it is small itself, and a second inpatient unit cell is suppressed wherever the total
would reveal a single hidden one (``phi.suppress_table``). This happens in
``build_context`` on the selected rows, before any chart, text or CSV is made from
them.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from healthops.reports.periods import Month
from healthops.reports.phi import SUPPRESSED, suppress_table
from healthops.reports.render import (
    UNIT_TYPE_LABELS,
    Chart,
    RenderedReport,
    generated_label,
    render_document,
    safe_token,
)

REPORT_ID = "monthly_census"
UNITS = "rpt_monthly_census_units"
TREND = "rpt_monthly_census_trend"
TREND_MONTHS = 12
# Display order of units: by acuity (the order of render.UNIT_TYPE_LABELS), then code.
_TYPE_ORDER = {t: i for i, t in enumerate(UNIT_TYPE_LABELS)}
MINUS = "\u2212"


# ----------------------------------------------------------------------------- formatting
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


def _shown(value: Any) -> bool:
    return value is not None and value != SUPPRESSED


def _short_day(d: date) -> str:
    return f"{d:%b} {d.day}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def _beds(value: Any) -> Any:
    """Average staffed beds (or their change): a whole number when it is one."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
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
FIGURE_NAMES = {
    "adc": "ADC",
    "occupancy": "occupancy %",
    "alos": "ALOS days",
    "admissions": "admissions",
    "discharges": "discharges",
    "patient_days": "patient days",
    "staffed_beds": "staffed beds",
}
# the report's measure keys -> the models' columns
COLUMNS = {
    "adc": "average_daily_census",
    "occupancy": "occupancy_pct",
    "alos": "average_length_of_stay",
    "admissions": "admissions",
    "discharges": "discharges",
    "patient_days": "patient_days",
    "staffed_beds": "staffed_beds",
}
COUNTS = ("admissions", "discharges", "patient_days")
COMPARED = {"prev_month": "prev", "prev_year": "year_ago"}  # the models' suffix -> the context's name
UNIT_COLUMNS = [
    "unit_code",
    "unit_name",
    "unit_type",
    "is_facility_total",
    "is_inpatient_unit",
    "days_with_data",
    *COLUMNS.values(),
    *(f"has_{s}" for s in COMPARED),
    *(f"{c}_{s}" for s in COMPARED for c in COLUMNS.values()),
    *(f"{c}_change_{s}" for s in COMPARED for c in COLUMNS.values()),
    *(f"{c}_change_pct_{s}" for s in COMPARED for c in COLUMNS.values() if c != "occupancy_pct"),
]
TREND_COLUMNS = [
    "month_start",
    "days_in_month",
    "has_data",
    "days_with_data",
    "is_complete_month",
    "first_day_with_data",
    "last_day_with_data",
    "days_missing_within",
    "average_daily_census",
    "occupancy_pct",
    "average_length_of_stay",
    "discharges",
]
HEAD_COLUMNS = [
    "facility_code",
    "facility_name",
    *TREND_COLUMNS,
    *(f"{s}_{c}" for s in COMPARED for c in ("has_data", "days_with_data", "days_in_month")),
    "prev_month_is_complete",
    "prev_year_is_complete",
    "counts_comparable_prev_month",
    "counts_comparable_prev_year",
]


def _changes_of(column: str, suffix: str) -> list[str]:
    """The change columns computed from ``column`` + ``suffix`` (the month's value when
    ``suffix`` is empty, else the month before's or the year before's)."""
    against = [suffix[1:]] if suffix else list(COMPARED)
    return [f"{column}_change{pct}_{s}" for s in against for pct in ("", "_pct")]


def _suppressed_with(suffix: str) -> dict[str, list[str]]:
    """What is hidden with a suppressed count: ALOS with discharges, and every change
    computed from a hidden value."""
    alos = f"average_length_of_stay{suffix}"
    return {
        f"admissions{suffix}": _changes_of("admissions", suffix),
        f"discharges{suffix}": [
            alos,
            *_changes_of("discharges", suffix),
            *_changes_of("average_length_of_stay", suffix),
        ],
    }


def suppress_unit_rows(rows: list[dict]) -> int:
    """Small-cell suppression of one facility's month (its ``rpt_monthly_census_units``
    rows), in place, for this month's counts and for the month before's and the year
    before's: the facility total first (it is shown too, so it cannot stay exact when it
    is small), then its inpatient units with complementary suppression against it, then
    the units not in the total (the ED) on their own. Returns the cells suppressed."""
    total = next((r for r in rows if r["is_facility_total"]), None)
    inpatient = [r for r in rows if r["is_inpatient_unit"] and not r["is_facility_total"]]
    others = [r for r in rows if not r["is_inpatient_unit"]]
    n = 0
    for suffix in ("", *(f"_{s}" for s in COMPARED)):
        counts, derived = [f"admissions{suffix}", f"discharges{suffix}"], _suppressed_with(suffix)
        if total is not None:
            n += suppress_table([total], counts, derived=derived)
        n += suppress_table(inpatient, counts, total=total, derived=derived)
        n += suppress_table(others, counts, derived=derived)
    return n


def _cell(row: Mapping, suffix: str = "") -> dict[str, Any]:
    """One month of a unit row (``suffix`` "", "_prev_month" or "_prev_year") in the
    report's terms."""
    cell = {k: row[f"{c}{suffix}"] for k, c in COLUMNS.items()}
    cell["staffed_beds"] = _beds(cell["staffed_beds"])
    if not suffix:
        cell["days_with_data"] = row["days_with_data"]
    return cell


def _change(row: Mapping, key: str, against: str, comparable_counts: bool) -> dict[str, Any]:
    """The model's change of one measure to this month from ``against`` ("prev_month",
    "prev_year"): {"value", "pct", "note"}; no value where either side is not shown."""
    col = COLUMNS[key]
    if not row[f"has_{against}"]:
        return {"value": None, "pct": None, "note": "no data"}
    a, b = row[col], row[f"{col}_{against}"]
    if not _shown(a) or not _shown(b):
        note = "suppressed" if SUPPRESSED in (a, b) else "no data"
        return {"value": None, "pct": None, "note": note}
    if key in COUNTS and not comparable_counts:
        return {"value": None, "pct": None, "note": "partial month"}
    value = row[f"{col}_change_{against}"]
    return {
        "value": _beds(value) if key == "staffed_beds" else value,
        "pct": row.get(f"{col}_change_pct_{against}"),
        "note": "",
    }


def _compared(row: Mapping, comparable: Mapping[str, bool]) -> dict[str, Any]:
    """A unit (or the facility total) for the month, the month before and a year before."""
    out: dict[str, Any] = {"current": _cell(row)}
    for against, name in COMPARED.items():
        out[name] = _cell(row, f"_{against}") if row[f"has_{against}"] else None
        out[f"vs_{name}"] = {k: _change(row, k, against, comparable[against]) for k, *_ in MEASURES}
    return out


# ----------------------------------------------------------------------------- the kind
class MonthlyCensus:
    period = "month"
    filter_keys = ("facility",)
    required_filter = ()
    models = (TREND, UNITS)
    trend_months = TREND_MONTHS

    # -- context -----------------------------------------------------------------------
    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict[str, Any]:
        from healthops import config

        month = Month.parse(period)
        n_trend = int(entry.get("trend_months") or self.trend_months)
        prev, year_ago = month.shift(-1), month.shift(-12)
        facility = (flt or {}).get("facility") or None
        suppress = bool(entry.get("suppress_small_cells"))

        fac_where: dict[str, Any] = {"facility_code": facility} if facility else {}
        heads = reader.select(
            TREND, HEAD_COLUMNS, {**fac_where, "month_start": month.first}, order_by=["facility_code"]
        )
        if not any(h["has_data"] for h in heads):
            raise LookupError(f"{TREND} has no data for {month.key}" + (f" (facility {facility})" if facility else ""))

        facilities, suppressed_cells = [], 0
        for head in heads:
            fac = head["facility_code"]
            rows = (
                reader.select(
                    UNITS, UNIT_COLUMNS, {"facility_code": fac, "month_start": month.first}, order_by=["unit_code"]
                )
                if head["has_data"]
                else []
            )
            trend = reader.select(
                TREND,
                TREND_COLUMNS,
                {"facility_code": fac, "month_start": ("between", (month.shift(-(n_trend - 1)).first, month.first))},
                order_by=["month_start"],
            )
            if suppress:
                suppressed_cells += suppress_unit_rows(rows)
                for point in trend:
                    suppressed_cells += suppress_table(
                        [point], ["discharges"], derived={"discharges": ["average_length_of_stay"]}
                    )
            facilities.append(_facility(head, month, prev, year_ago, rows, trend))
        return {
            "report_id": REPORT_ID,
            "period": month.key,
            "month": month,
            "period_label": month.label,
            "prev": prev,
            "year_ago": year_ago,
            "trend_months": [month.shift(-i) for i in range(n_trend - 1, -1, -1)],
            "facility_filter": facility,
            "scope_name": heads[0]["facility_name"] if facility else "All facilities",
            "facilities": facilities,
            "incomplete": [f["facility_code"] for f in facilities if f["has_data"] and not f["coverage"]["complete"]],
            "suppress_small_cells": suppress,
            "suppressed_cells": suppressed_cells,
            "generated_at": datetime.now(ZoneInfo(config.facility_tz())),
        }

    # -- figures -----------------------------------------------------------------------
    def figures(self, context: dict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        month: Month = context["month"]
        for f in context["facilities"]:
            fac = f["facility_code"]
            for m, cov in (
                (month, f["coverage"]),
                (context["prev"], f["prev_coverage"]),
                (context["year_ago"], f["year_ago_coverage"]),
            ):
                if cov["has_data"] or m == month:
                    out[f"{fac} {m.key} days with data"] = f"{cov['days_with_data']} of {cov['days_in_month']}"
            rows = [("total", f["total"])] if f["has_data"] else []
            for label, row in rows + [(u["unit_code"], u) for u in f["units"]]:
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
                    f"{p['coverage']['days_with_data']} of {p['coverage']['days_in_month']}"
                )
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
        subject = entry["subject"].format_map(
            {
                "report_name": report_name,
                "period_label": month.label,
                "period": month.key,
                "facility_name": scope,
                "facility_code": facility_code,
            }
        )
        partial = [f for f in context["facilities"] if f["has_data"] and not f["coverage"]["complete"]]
        if partial:
            subject = f"[MONTH TO DATE: {_mtd_short(partial)}] {subject}"
        if revision:
            subject = revision.subject_prefix + subject
        stem = f"{REPORT_ID}_{safe_token(facility_code)}_{month.key}"

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
            "generated_at_label": generated_label(generated_at),
            "generated_at_iso": generated_at.isoformat(),
            "revision": revision,
            "measures": MEASURES,
            "fmt": fmt,
            "fmt_change": fmt_change,
            "SUPPRESSED": SUPPRESSED,
        }
        html_email, html_browser, pdf, pages, images = render_document(
            template_name=entry["template"],
            base=base,
            charts_=charts_,
            token=f"{facility_code}.{month.key}",
            templates_dir=None,
        )
        attachments: dict[str, tuple[bytes, str]] = {}
        if "csv" in entry.get("formats", []):
            attachments[f"{stem}.csv"] = (unit_csv(context), "text/csv")
        text = (f"REVISED: {revision.summary}\n\n" if revision else "") + _plain_text(
            context, title, stem, csv_name=f"{stem}.csv" if attachments else None
        )
        return RenderedReport(
            subject=subject,
            html=html_email,
            pdf=pdf,
            images=images,
            filename_stem=stem,
            text=text,
            html_standalone=html_browser,
            report=REPORT_ID,
            period=month.key,
            facility_code=facility_code,
            generated_at=generated_at,
            pdf_pages=pages,
            attachments=attachments,
            meta={
                "title": title,
                "sender": entry.get("sender"),
                "recipients": list(entry.get("recipients") or []),
                "incomplete": context["incomplete"],
                "suppressed_cells": context["suppressed_cells"],
            },
        )


def _facility(
    head: Mapping, month: Month, prev: Month, year_ago: Month, rows: list[dict], trend: list[dict]
) -> dict[str, Any]:
    """One facility's section: its ``rpt_monthly_census_trend`` row for the month
    (``head``), its unit rows and its trend rows, in the report's terms."""
    cov = _month_coverage(head)
    prev_cov = _coverage(
        prev,
        head["prev_month_has_data"],
        head["prev_month_days_with_data"],
        head["prev_month_days_in_month"],
        head["prev_month_is_complete"],
    )
    ya_cov = _coverage(
        year_ago,
        head["prev_year_has_data"],
        head["prev_year_days_with_data"],
        head["prev_year_days_in_month"],
        head["prev_year_is_complete"],
    )
    comparable = {"prev_month": head["counts_comparable_prev_month"], "prev_year": head["counts_comparable_prev_year"]}
    total = next((r for r in rows if r["is_facility_total"]), None)
    units = []
    for r in rows:
        if r["is_facility_total"]:
            continue
        units.append(
            {
                "unit_code": r["unit_code"],
                "unit_name": r["unit_name"],
                "unit_type": r["unit_type"],
                "type_label": UNIT_TYPE_LABELS.get(r["unit_type"], r["unit_type"].replace("_", " ").capitalize()),
                "inpatient": r["is_inpatient_unit"],
                **_compared(r, comparable),
            }
        )
    units.sort(key=lambda u: (not u["inpatient"], _TYPE_ORDER.get(u["unit_type"], 99), u["unit_code"]))
    points = [
        {
            "month": Month.parse(p["month_start"]),
            "has_data": p["has_data"],
            "coverage": _month_coverage(p),
            "adc": p["average_daily_census"],
            "occupancy": p["occupancy_pct"],
            "alos": p["average_length_of_stay"],
        }
        for p in trend
    ]
    return {
        "facility_code": head["facility_code"],
        "facility_name": head["facility_name"],
        "has_data": total is not None,
        "trend_rows": _trend_rows(points),
        "coverage": cov,
        "prev_coverage": prev_cov,
        "year_ago_coverage": ya_cov,
        # the † note: counts of two months with data that are not compared
        "counts_vs_prev": not prev_cov["has_data"] or comparable["prev_month"],
        "counts_vs_year_ago": not ya_cov["has_data"] or comparable["prev_year"],
        "total": _compared(total, comparable) if total is not None else None,
        "units": units,
        "trend": points,
    }


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


def _coverage(
    m: Month,
    has_data: bool,
    days_with_data: int,
    days_in_month: int,
    complete: bool,
    first: date | None = None,
    last: date | None = None,
    missing_within: int | None = None,
) -> dict:
    """How much of month ``m`` the data cover (rpt_monthly_census_trend), and the
    sentence that says so when it is not all of it."""
    cov: dict[str, Any] = {
        "month": m,
        "has_data": has_data,
        "days_with_data": days_with_data,
        "days_in_month": days_in_month,
        "complete": complete,
        "first": first,
        "last": last,
        "label": "",
    }
    if not has_data:
        cov["label"] = f"No census data for {m.label}."
    elif not complete:
        n = f"Data for {days_with_data} of {days_in_month} days of {m.label}"
        if first:
            span = f"{_short_day(first)}–{last.day}" if first != last else _short_day(first)
            gaps = (
                f", {missing_within} day{'s' if missing_within != 1 else ''} missing in between"
                if missing_within
                else ""
            )
            cov["label"] = f"{n} ({span}{gaps})."
        else:
            cov["label"] = f"{n}."
    return cov


def _month_coverage(row: Mapping) -> dict[str, Any]:
    """The coverage of a ``rpt_monthly_census_trend`` row's month."""
    return _coverage(
        Month.parse(row["month_start"]),
        row["has_data"],
        row["days_with_data"],
        row["days_in_month"],
        row["is_complete_month"],
        row["first_day_with_data"],
        row["last_day_with_data"],
        row["days_missing_within"],
    )


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
ADC_COLOR = "#0072B2"  # Okabe-Ito blue
OCC_COLOR = "#009E73"  # bluish green
ALOS_COLOR = "#D55E00"  # vermillion


def trend_chart(facility_name: str, trend: list[dict]) -> bytes:
    """Small multiples, one panel per measure (ADC, occupancy %, ALOS days), one
    point per month. A month without data (or with ALOS suppressed) breaks the line;
    a month the data do not cover in full is drawn as a hollow marker."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from healthops.reports.charts import (
        DPI,
        MUTED_COLOR,
        RC_PARAMS,
        TEXT_COLOR,
        WIDTH_IN,
        chart_title,
        empty_chart,
        to_png,
    )

    months = [p["month"] for p in trend]
    title = f"{facility_name}: last {len(months)} months"
    if not any(p["has_data"] for p in trend):
        return empty_chart(title, "No census data in these months")
    labels = [
        (f"{m.first:%b}\n{m.first:%Y}" if i == 0 or m.first.month == 1 else f"{m.first:%b}")
        for i, m in enumerate(months)
    ]
    panels = [
        ("adc", "ADC (patients)", ADC_COLOR, "{}"),
        ("occupancy", "Occupancy (%)", OCC_COLOR, "{}%"),
        ("alos", "ALOS (days)", ALOS_COLOR, "{}"),
    ]
    with matplotlib.rc_context(RC_PARAMS):
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
                ax.plot(
                    *zip(*part),
                    linestyle="none",
                    marker="o",
                    markersize=6,
                    markerfacecolor="white",
                    markeredgecolor=color,
                    markeredgewidth=1.6,
                    zorder=4,
                )
            values = [y for y in ys if y == y]
            if values:
                lo, hi = min(values), max(values)
                span = max(hi - lo, abs(hi) * 0.05, 0.5)
                ax.set_ylim(max(0.0, lo - span * 0.45), hi + span * 0.6)
                last = max(i for i, y in enumerate(ys) if y == y)
                ax.annotate(
                    fmt_.format(trend[last][key]),
                    (xs[last], ys[last]),
                    xytext=(0, 7),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=9,
                    fontweight="bold",
                    color=TEXT_COLOR,
                )
            else:
                ax.set_ylim(0, 1)
                ax.text(
                    0.5,
                    0.5,
                    "No values to show",
                    ha="center",
                    va="center",
                    color=MUTED_COLOR,
                    transform=ax.transAxes,
                    fontsize=9,
                )
            ax.set_ylabel(ylabel, fontsize=9)
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(axis="y", color="#EEF0F2", zorder=0)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", labelsize=8.5)
        axes[-1].set_xticks(xs, labels, fontsize=8)
        axes[-1].set_xlim(-0.5, len(xs) - 0.5)
        chart_title(fig, title)
        if any(not p["coverage"]["complete"] for p in trend if p["has_data"]):
            handle = Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=6,
                markerfacecolor="white",
                markeredgecolor=MUTED_COLOR,
                markeredgewidth=1.6,
                label="Month not fully covered by data",
            )
            axes[0].legend(
                handles=[handle],
                loc="lower left",
                bbox_to_anchor=(0, 1.0),
                fontsize=8,
                frameon=False,
                handlelength=1.0,
                borderaxespad=0.2,
            )
        return to_png(fig)


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
    head = (
        f"Line charts of {facility_name}'s inpatient census by month, {first.short} to {last.short}: "
        "average daily census, occupancy and average length of stay."
    )
    if not with_data:
        return head + " No census data in these months.", ""
    parts = []
    for key, name, unit in (
        ("adc", "Average daily census", ""),
        ("occupancy", "Occupancy", "%"),
        ("alos", "ALOS", " days"),
    ):
        pts = [(p["month"], p[key]) for p in with_data if _shown(p[key])]
        if not pts:
            parts.append(f"{name}: no values shown.")
            continue
        (lo_m, lo_v), (hi_m, hi_v) = _extremes(pts)
        end_m, end_v = pts[-1]
        parts.append(
            f"{name}: lowest {lo_v}{unit} in {lo_m.short}, highest {hi_v}{unit} in {hi_m.short}, "
            f"{end_v}{unit} in {end_m.short}."
        )
    alt = head + " " + " ".join(parts)
    notes = []
    suppressed = [p["month"].short for p in with_data if p["alos"] == SUPPRESSED]
    if suppressed:
        notes.append(f"ALOS not shown for {', '.join(suppressed)} (fewer than 11 discharges).")
    partial = [p for p in with_data if not p["coverage"]["complete"]]
    if partial:
        notes.append(
            "; ".join(
                f"{p['month'].short} covers {p['coverage']['days_with_data']} of {p['coverage']['days_in_month']} days"
                for p in partial
            )
            + " (hollow markers)."
        )
    missing = len(trend) - len(with_data)
    if missing:
        notes.append(f"{missing} month{'s' if missing != 1 else ''} without data: the lines are broken there.")
    caption = " ".join(notes)
    return (alt + (" " + caption if caption else "")), caption


# ----------------------------------------------------------------------------- csv, text
CSV_MEASURES = [
    ("average_daily_census", "adc"),
    ("occupancy_pct", "occupancy"),
    ("average_length_of_stay", "alos"),
    ("admissions", "admissions"),
    ("discharges", "discharges"),
    ("patient_days", "patient_days"),
    ("staffed_beds", "staffed_beds"),
]


def unit_csv(context: dict) -> bytes:
    """The unit table: one row per facility and unit (the facility's inpatient total
    as unit ``ALL`` first), this month's figures, then the previous month's and the
    same month a year before (suppressed cells as ``<11``; empty = no data)."""
    month: Month = context["month"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    head = [
        "facility_code",
        "facility_name",
        "month",
        "unit_code",
        "unit_name",
        "unit_type",
        "days_with_data",
        "days_in_month",
        *(c for c, _ in CSV_MEASURES),
    ]
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
            w.writerow(
                [
                    f["facility_code"],
                    f["facility_name"],
                    month.key,
                    code,
                    name,
                    unit_type,
                    cur["days_with_data"] if cur else "",
                    f["coverage"]["days_in_month"],
                    *values(cur),
                    *values(r["prev"]),
                    *values(r["year_ago"]),
                ]
            )
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
            lines.append(
                f"  {label}: {fmt(cur, suffix)}"
                f"  (vs {prev.short}: {_change_text(t['vs_prev'][key], ch_suffix)};"
                f" vs {ya.short}: {_change_text(t['vs_year_ago'][key], ch_suffix)})"
            )
        lines.append("  By unit: ADC, occupancy, ALOS, admissions, discharges, patient days")
        width = max([len(u["unit_name"]) for u in f["units"]] + [10])
        for u in f["units"]:
            c = u["current"]
            occ = fmt(c["occupancy"], "%")
            lines.append(
                f"    {u['unit_name']:<{width}}  {fmt(c['adc']):>7}  {occ:>7}  {fmt(c['alos']):>6}"
                f"  {fmt(c['admissions']):>6}  {fmt(c['discharges']):>6}  {fmt(c['patient_days']):>7}"
            )
        lines.append("")
    if context["suppress_small_cells"]:
        lines.append(
            "Admissions and discharges from 1 to 10 are shown as <11 (CMS cell-size suppression), with "
            "the ALOS computed from them; a second cell is hidden where a total would reveal one."
        )
    lines += [
        f"The full report, with trend charts, is the HTML part of this message and the attached PDF "
        f"({stem}.pdf)." + (f" The unit table is attached as {csv_name}." if csv_name else ""),
        f"Generated {generated_label(context['generated_at'])} by healthops. Aggregates only: "
        "no patient-identifying information.",
    ]
    return "\n".join(lines) + "\n"


KIND = MonthlyCensus()
