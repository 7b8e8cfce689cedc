"""Report charts: matplotlib figures rendered to PNG bytes.

Charts are drawn with the object-oriented API on an Agg canvas (no pyplot
global state, no display, safe in Airflow workers and threads). The look is
pinned by an explicit rc context and PNG metadata is stripped, so the same
input gives the same bytes with the same matplotlib version: re-running a
report date re-sends identical images.

Sizes: figures are 5.2 in wide at 150 DPI (780 px), shown at <= 640 px in the
e-mail and at natural size (5.2 in) in the PDF. The narrow figure keeps labels legible when
a phone scales the image down to ~400 px.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping

import matplotlib

# Explicit, before anything imports pyplot: reports run headless.
matplotlib.use("Agg", force=True)

import matplotlib.dates as mdates  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["census_by_unit_chart", "census_trend_chart", "rule_status_chart", "staffing_day_chart", "DPI"]

DPI = 150
WIDTH_IN = 5.2

# Colour-blind-safe choices (Okabe-Ito blue / vermillion) on neutral greys.
CENSUS_COLOR = "#0072B2"
OVER_COLOR = "#D55E00"
NON_INPATIENT_COLOR = "#8C8C8C"
BEDS_COLOR = "#E3E6EA"
BEDS_EDGE = "#B8BEC6"
TEXT_COLOR = "#1F2933"
MUTED_COLOR = "#5A6570"

RC_PARAMS = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical everywhere
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.edgecolor": BEDS_EDGE,
    "axes.labelcolor": TEXT_COLOR,
    "xtick.color": MUTED_COLOR,
    "ytick.color": TEXT_COLOR,
    "xtick.labelsize": 9,
    "ytick.labelsize": 10,
    "text.color": TEXT_COLOR,
    "svg.hashsalt": "healthops",
    "path.simplify": False,
}


def to_png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # metadata Software=None: no version string in the file, bytes depend only on the drawing.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _pct_label(census: int, beds: int) -> str:
    # Same rounding as the report table (half up, one decimal): the numbers must agree.
    pct = (Decimal(census) * 100 / Decimal(beds)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{pct}%"


def chart_title(fig: Figure, text: str) -> None:
    # Left-aligned to the figure, not the axes: long unit names push the axes right.
    fig.suptitle(text, x=0.012, ha="left", fontsize=12, fontweight="bold", color=TEXT_COLOR)


def empty_chart(title: str, message: str) -> bytes:
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 1.6), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        ax.set_axis_off()
        chart_title(fig, title)
        ax.text(0.5, 0.45, message, ha="center", va="center", color=MUTED_COLOR, transform=ax.transAxes)
        return to_png(fig)


def census_by_unit_chart(rows: Iterable[Mapping]) -> bytes:
    """Horizontal bars, one per unit: midnight census drawn over staffed beds.

    Each row needs ``unit_name``, ``staffed_beds`` and ``midnight_census``; an
    optional ``inpatient`` (default True) set to False draws the unit in grey
    (the ED: shown for context, not an inpatient unit). A census above staffed
    beds is drawn in vermillion. Units keep the order given, top to bottom.
    """
    rows = list(rows)
    title = "Midnight census vs staffed beds by unit"
    if not rows:
        return empty_chart(title, "No units reported")

    names = [str(r["unit_name"]) for r in rows]
    beds = [int(r["staffed_beds"] or 0) for r in rows]
    census = [int(r["midnight_census"] or 0) for r in rows]
    inpatient = [bool(r.get("inpatient", True)) for r in rows]
    colors = [
        NON_INPATIENT_COLOR if not ip else (OVER_COLOR if b and c > b else CENSUS_COLOR)
        for c, b, ip in zip(census, beds, inpatient)
    ]

    n = len(rows)
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 1.35 + 0.36 * n), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        y = list(range(n))
        ax.barh(y, beds, height=0.78, color=BEDS_COLOR, edgecolor=BEDS_EDGE, linewidth=0.8, zorder=1)
        ax.barh(y, census, height=0.46, color=colors, zorder=2)
        xmax = max(max(beds), max(census), 1)
        pad = xmax * 0.015
        for yi, c, b in zip(y, census, beds):
            label = f"{c} / {b}" + (f"  ({_pct_label(c, b)})" if b else "")
            ax.text(max(c, b) + pad, yi, label, va="center", ha="left", fontsize=9, color=TEXT_COLOR)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        # Room on the right for the "census / beds (pct)" labels.
        ax.set_xlim(0, xmax * 1.55)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        ax.set_xlabel("Patients at midnight / staffed beds")
        chart_title(fig, title)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#EEF0F2", zorder=0)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)

        handles = [
            Patch(facecolor=BEDS_COLOR, edgecolor=BEDS_EDGE, label="Staffed beds"),
            Patch(facecolor=CENSUS_COLOR, label="Midnight census"),
        ]
        if any(c > b and b and ip for c, b, ip in zip(census, beds, inpatient)):
            handles.append(Patch(facecolor=OVER_COLOR, label="Above staffed beds"))
        if not all(inpatient):
            handles.append(Patch(facecolor=NON_INPATIENT_COLOR, label="Not inpatient (ED)"))
        # Legend above the plot, never over a bar or its label.
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=len(handles) if len(handles) <= 3 else 2,
            fontsize=8,
            frameon=False,
            handlelength=1.2,
            columnspacing=1.2,
            borderaxespad=0.3,
        )
        return to_png(fig)


def census_trend_chart(points: Iterable[Mapping]) -> bytes:
    """Line of total midnight census per day (``census_date``, ``midnight_census``).

    Points are sorted by date; a missing day breaks the line rather than being
    bridged, so a gap in the data is visible as a gap. The last value is labelled.
    """
    pts = sorted(((p["census_date"], int(p["midnight_census"])) for p in points), key=lambda t: t[0])
    title = "Total inpatient midnight census"
    if pts:
        first, last = pts[0][0], pts[-1][0]
        title += f", {first:%b} {first.day} – {last:%b} {last.day}"
    if not pts:
        return empty_chart(title, "No trend data")

    # Break the line on missing dates (None values are not drawn).
    xs: list[date] = []
    ys: list[float | None] = []
    for i, (d, v) in enumerate(pts):
        if i and (d - pts[i - 1][0]).days > 1:
            xs.append(pts[i - 1][0] + (d - pts[i - 1][0]) / 2)
            ys.append(None)
        xs.append(d)
        ys.append(v)
    values = [v for _, v in pts]

    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 2.6), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        yplot = [float("nan") if v is None else v for v in ys]
        ax.plot(xs, yplot, color=CENSUS_COLOR, linewidth=2, marker="o", markersize=4, zorder=3)
        last_d, last_v = pts[-1]
        ax.plot([last_d], [last_v], marker="o", markersize=7, color=CENSUS_COLOR, zorder=4)
        ax.annotate(
            f"{last_v}",
            (last_d, last_v),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=10,
            fontweight="bold",
            color=TEXT_COLOR,
        )

        lo, hi = min(values), max(values)
        span = max(hi - lo, 4)
        ax.set_ylim(max(0, lo - span * 0.35), hi + span * 0.45)
        # Half a day of air at both ends so the first and last markers are not clipped.
        ax.set_xlim(mdates.date2num(pts[0][0]) - 0.5, mdates.date2num(last_d) + 0.5)
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (len(pts) + 6) // 7)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6, steps=[1, 2, 5, 10]))
        ax.set_ylabel("Patients at midnight")
        chart_title(fig, title)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#EEF0F2", zorder=0)
        ax.set_axisbelow(True)
        return to_png(fig)


# Rule outcome colours: Okabe-Ito bluish green (passed), orange (warning), vermillion
# (blocking), sky blue (info); a failed rule is also marked with a symbol, so the
# grid still reads in grey print or for a colour-blind reader.
RULE_STATUS_STYLE = {
    "passed": ("#CDEBDD", ""),
    "info": ("#9AD0F0", "i"),
    "warning": ("#E69F00", "!"),
    "blocking": ("#D55E00", "×"),
    "error": ("#7F1D1D", "?"),
}
NOT_RUN_COLOR = "#FFFFFF"


def rule_status_chart(rule_ids: list[str], days: list[date], status: Mapping[tuple[str, date], str]) -> bytes:
    """A grid, one row per rule and one column per day: the rule's outcome on that
    day's latest validation (``passed``, or the severity of a failure: ``info``,
    ``warning``, ``blocking``; ``error`` when it could not be evaluated). A day
    without a validation stays white."""
    title = "Rule outcomes by day"
    if days:
        title += f", {days[0]:%b} {days[0].day} – {days[-1]:%b} {days[-1].day}"
    if not rule_ids or not days:
        return empty_chart(title, "No validations in this period")
    from matplotlib.patches import Rectangle

    n_rules, n_days = len(rule_ids), len(days)
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(WIDTH_IN, 1.3 + 0.19 * n_rules), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        for yi, rule in enumerate(rule_ids):
            for xi, d in enumerate(days):
                state = status.get((rule, d))
                color, mark = RULE_STATUS_STYLE.get(state, (NOT_RUN_COLOR, ""))
                ax.add_patch(
                    Rectangle(
                        (xi, yi), 1, 1, facecolor=color, edgecolor="#FFFFFF" if state else "#E5E8EC", linewidth=0.8
                    )
                )
                if mark:
                    ax.text(
                        xi + 0.5,
                        yi + 0.52,
                        mark,
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="#FFFFFF" if state in ("blocking", "error") else TEXT_COLOR,
                        fontweight="bold",
                    )
        ax.set_xlim(0, n_days)
        ax.set_ylim(n_rules, 0)
        ax.set_yticks([i + 0.5 for i in range(n_rules)], rule_ids, fontsize=6.5)
        step = 1 if n_days <= 16 else 2 if n_days <= 31 else 7
        ticks = list(range(0, n_days, step))
        ax.set_xticks([i + 0.5 for i in ticks], [f"{days[i].day}" for i in ticks], fontsize=7)
        ax.set_xlabel(f"Day of {days[0]:%B %Y}" if days[0].month == days[-1].month else "Day")
        ax.tick_params(length=0)
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        chart_title(fig, title)
        handles = [
            Patch(facecolor=RULE_STATUS_STYLE[k][0], edgecolor=BEDS_EDGE, label=label)
            for k, label in (
                ("passed", "Passed"),
                ("info", "Failed: info"),
                ("warning", "Failed: warning"),
                ("blocking", "Failed: blocking"),
                ("error", "Not evaluated"),
            )
        ]
        handles.append(Patch(facecolor=NOT_RUN_COLOR, edgecolor=BEDS_EDGE, label="No validation"))
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=3,
            fontsize=7,
            frameon=False,
            handlelength=1.0,
            columnspacing=1.0,
            borderaxespad=0.3,
        )
        return to_png(fig)


CAPACITY_COLOR = "#1F2933"
PATIENTS_FILL = "#CFE3F2"


def staffing_day_chart(units: list[Mapping]) -> bytes:
    """Small multiples, one panel per unit (in the order given, top to bottom): the
    patients present (the interval's peak, a filled step) against the licensed-nurse
    capacity (the fewest licensed nurses × the unit's ratio, a dark step line) across
    the day's 15-minute intervals, out-of-ratio intervals shaded vermillion and
    ticked under the axis (so they read in grey print too).

    Each unit: ``unit_code``, ``label`` (the panel's title), ``intervals``: rows with
    ``interval_start`` (datetime), ``patients_peak``, ``licensed_capacity`` (None: no
    ratio, or no real time) and ``is_out_of_ratio``."""
    title = "Patients vs licensed-nurse capacity, by 15 minutes"
    units = [u for u in units if u["intervals"]]
    if not units:
        return empty_chart(title, "No staffing intervals")
    n = len(units)
    with matplotlib.rc_context(RC_PARAMS):
        # At most 8.6 in tall: a PDF page holds 9.45 in under its header, and a taller
        # image ran its legend into the page footer (seven units at 1.3 in each)
        panel = min(1.3, (8.6 - 0.95) / n)
        fig = Figure(figsize=(WIDTH_IN, 0.95 + panel * n), dpi=DPI, layout="constrained")
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        for ax, unit in zip(axes, units):
            rows = sorted(unit["intervals"], key=lambda r: r["interval_start"])
            day0 = rows[0]["interval_start"].replace(hour=0, minute=0, second=0, microsecond=0)
            xs = [(r["interval_start"] - day0).total_seconds() / 3600 for r in rows]
            patients = [float("nan") if r["patients_peak"] is None else r["patients_peak"] for r in rows]
            capacity = [float("nan") if r["licensed_capacity"] is None else r["licensed_capacity"] for r in rows]
            # steps over [start, start + 15 min): repeat the last value to close the day
            xs_step = xs + [xs[-1] + 0.25]
            ax.fill_between(xs_step, patients + patients[-1:], step="post", color=PATIENTS_FILL, linewidth=0)
            ax.step(xs_step, patients + patients[-1:], where="post", color=CENSUS_COLOR, linewidth=1.3)
            ax.step(xs_step, capacity + capacity[-1:], where="post", color=CAPACITY_COLOR, linewidth=1.2)
            top = max([v for v in patients + capacity if v == v] or [1])
            for x, r in zip(xs, rows):
                if r["is_out_of_ratio"]:
                    ax.axvspan(x, x + 0.25, color=OVER_COLOR, alpha=0.30, linewidth=0, zorder=0)
                    # a bar under the axis as well: the out-of-ratio stretches read in grey print
                    ax.plot(
                        [x, x + 0.25],
                        [-0.06, -0.06],
                        color=OVER_COLOR,
                        linewidth=3.5,
                        solid_capstyle="butt",
                        transform=ax.get_xaxis_transform(),
                        clip_on=False,
                    )
            ax.set_ylim(0, top * 1.3 + 1)  # air above the top tick for the panel's title
            ax.set_xlim(0, 24)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3, steps=[1, 2, 5, 10]))
            ax.tick_params(axis="y", labelsize=8)
            ax.set_title(str(unit["label"]), loc="left", fontsize=9, fontweight="bold", pad=5)
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(axis="x", color="#EEF0F2", zorder=0)
            ax.set_axisbelow(True)
        axes[-1].set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
        axes[-1].tick_params(axis="x", labelsize=8)
        chart_title(fig, title)
        handles = [
            Patch(facecolor=PATIENTS_FILL, edgecolor=CENSUS_COLOR, label="Patients (peak)"),
            Patch(facecolor="white", edgecolor=CAPACITY_COLOR, label="Nurses × ratio"),
            Patch(facecolor=OVER_COLOR, alpha=0.45, label="Out of ratio"),
        ]
        # Below the time axis: never over a panel, its title or the chart's title.
        fig.legend(
            handles=handles,
            loc="outside lower left",
            ncol=3,
            fontsize=8,
            frameon=False,
            handlelength=1.2,
            columnspacing=1.2,
        )
        return to_png(fig)
