"""Render reports from the catalog: HTML e-mail body, standalone HTML, PDF, charts.

The daily census context
------------------------
``render_daily_census(context)`` takes a plain dict built from the warehouse
marts (aggregates only, never PHI)::

    {
      "facility_code": "NGH",                        # str, used in file names and Message-IDs
      "facility_name": "Northgate General Hospital",
      "report_date":   date(2026, 11, 2),            # the census day (a date, or an ISO string)
      "generated_at":  datetime(..., tzinfo=...),    # timezone-aware; shown as given (facility time)
      "units": [                                     # one row per unit, in display order
        {"unit_code": "ICU", "unit_name": "Intensive Care Unit",
         "unit_type": "critical_care",               # the units seed's Title 22 category
         "is_inpatient_unit": True,
         "staffed_beds": 12, "midnight_census": 11,
         "admissions": 2, "discharges": 1, "transfers_in": 1, "transfers_out": 2,
         "patient_days": 11, "occupancy_pct": Decimal("91.7")},
        ...
      ],
      "totals": {"staffed_beds": 110, "midnight_census": 101, ..., "unit_count": 6,
                 "occupancy_pct": Decimal("91.8"),
                 "previous_day_census": 99, "census_change": 2},   # None: no day before
      "trend": [                                     # total inpatient midnight census per day,
        {"census_date": date(2026, 10, 20), "midnight_census": 148},   # usually the 14 days
        ...                                          # ending report_date (optional, may be [])
      ],
      "quality": [                                   # optional: check results for this run
        {"rule": "census_not_above_licensed_beds", "status": "passed" | "failed" | "error",
         "severity": "error" | "warn" | ..., "detail": "..."},
        ...
      ],
      "data_docs_url": "https://.../index.html",     # optional link to the evidence
    }

Counts may be ``int``, ``Decimal`` or numpy integers (they must be whole and
>= 0). Unknown extra keys are ignored.

Every figure is computed in the reporting layer (``rpt_daily_census_units``):
occupancy (``occupancy_pct``, ``None`` shows as ``—``), the inpatient flag, the
inpatient totals (``totals``: the sums of the inpatient rows, with
``occupancy_pct``, ``unit_count``, ``previous_day_census`` and ``census_change``)
and the trend. Here they are only checked and formatted:

- units that are not inpatient units (the emergency department) are listed after
  the totals row, under their own heading (their census is stated on its own line);
- the change of total census against the previous day, from ``totals``;
- the quality banner: shown when any check failed or could not be evaluated
  (status ``error``, shown as "not evaluated": never as a pass), naming each one;
  "error" style unless every failed check has a warning severity
  (``WARNING_SEVERITIES``), and the subject is prefixed with
  ``[DATA QUALITY: n failed]``. ``data_docs_url`` becomes the link
  "Data-quality details (Data Docs)" under the data-quality section.

Three HTML variants come from one template: ``email`` (images by ``cid:``),
``browser`` (standalone, images as ``data:`` URIs) and ``pdf`` (``data:`` URIs
plus print CSS), which WeasyPrint turns into the PDF.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping

import jinja2
from markupsafe import Markup

from healthops import config
from healthops.reports import charts
from healthops.reports.catalog import load_catalog

__all__ = [
    "RenderedReport",
    "render_daily_census",
    "render_document",
    "write_outputs",
    "DEFAULT_TEMPLATES_DIR",
]

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = config.REPORT_TEMPLATES_DIR

WARNING_SEVERITIES = frozenset({"warn", "warning", "info", "low"})
# A check's verdict (rpt_daily_quality_checks.status): "error" = could not be evaluated.
CHECK_STATUSES = ("passed", "failed", "error")

UNIT_TYPE_LABELS = {
    "critical_care": "Critical care",
    "post_anesthesia": "Post-anesthesia",
    "labor_delivery": "Labor & delivery",
    "emergency": "Emergency",
    "step_down": "Step-down",
    "telemetry": "Telemetry",
    "pediatrics": "Pediatrics",
    "antepartum": "Antepartum",
    "postpartum": "Postpartum",
    "other_specialty": "Other specialty",
    "medical_surgical": "Med/surg",
    "psychiatric": "Psychiatric",
    "well_baby_nursery": "Well-baby nursery",
}

UNIT_COUNT_FIELDS = (
    "staffed_beds",
    "midnight_census",
    "admissions",
    "discharges",
    "transfers_in",
    "transfers_out",
    "patient_days",
)
UNIT_FIELDS = ("unit_code", "unit_name", "unit_type", "is_inpatient_unit", "occupancy_pct") + UNIT_COUNT_FIELDS


@dataclass(frozen=True)
class RenderedReport:
    """One report for one facility and period, ready to write or send.

    ``html`` is the e-mail body (images referenced as ``cid:<key>``); ``images``
    maps each cid (without angle brackets) to ``(png_bytes, alt_text)``.
    """

    subject: str
    html: str
    pdf: bytes
    images: dict[str, tuple[bytes, str]]
    filename_stem: str
    text: str = ""  # text/plain summary for the e-mail
    html_standalone: str = ""  # data: URI images: opens in a browser
    report: str = "daily_census"  # catalog id
    period: str = ""  # ISO date (or period key) the report covers
    facility_code: str = ""
    generated_at: datetime | None = None
    pdf_pages: int = 0
    quality_failed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    # filename -> (bytes, MIME type), besides the PDF
    attachments: dict[str, tuple[bytes, str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: expected a whole number >= 0, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a whole number >= 0, got {value!r}") from None
    if number != value or number < 0:
        raise ValueError(f"{what}: expected a whole number >= 0, got {value!r}")
    return number


def _as_date(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{what}: expected a date, got a datetime {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"{what}: expected a date, got {value!r}")


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


def _long_date(d: date) -> str:
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


def _short_date(d: date) -> str:
    return f"{d:%b} {d.day}"


def _type_label(unit_type: str) -> str:
    return UNIT_TYPE_LABELS.get(unit_type, unit_type.replace("_", " ").capitalize())


def generated_label(ts: datetime) -> str:
    zone = ts.tzname() or ts.strftime("%z")
    return f"{ts:%Y-%m-%d %H:%M} {zone}".strip()


def safe_token(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", value).strip("-") or "x"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@contextlib.contextmanager
def _quiet_weasyprint() -> Iterator[None]:
    """WeasyPrint and fontTools log font-subsetting and CSS warnings per render; the
    report is still right, so keep them out of task logs (errors still show)."""
    names = ("weasyprint", "weasyprint.progress", "fontTools", "fontTools.subset", "fontTools.ttLib")
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def css_string(value: Any) -> Markup:
    """A quoted CSS string for values placed inside ``<style>`` (page margin boxes).

    Everything but ASCII letters and digits becomes a CSS hex escape, so quotes,
    backslashes, ``</style>`` or ``&`` in a facility name can neither break out of
    the string nor be mangled by HTML autoescaping (which does not apply in CSS).
    """
    out = []
    for ch in str(value):
        # A CSS escape swallows one following space, so spaces are escaped too.
        out.append(ch if ch.isascii() and ch.isalnum() else f"\\{ord(ch):06x}")
    return Markup('"' + "".join(out) + '"')


def _environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["css_string"] = css_string
    return env


# The fixed stamp of embedded font subsets (2000-01-01T00:00:00Z, any constant would do).
FONT_SUBSET_EPOCH = "946684800"


@contextlib.contextmanager
def _reproducible_fonts() -> Iterator[None]:
    """fontTools stamps each font subset it writes (the ``head`` table's modified time)
    with the clock, unless SOURCE_DATE_EPOCH is set (the reproducible-builds
    convention): without it two renders of the same report a second apart differ in
    their font streams, and so in their content hash. A caller's own value is kept."""
    if os.environ.get("SOURCE_DATE_EPOCH") is not None:
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = FONT_SUBSET_EPOCH
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def html_to_pdf(html: str, base_url: str | None = None) -> tuple[bytes, int]:
    """Render HTML with WeasyPrint; return (pdf_bytes, page_count). The same HTML gives
    the same bytes."""
    with _quiet_weasyprint(), _reproducible_fonts():
        import weasyprint  # heavy import (parses its UA stylesheets, logging): only when a PDF is made

        document = weasyprint.HTML(string=html, base_url=base_url).render()
        return document.write_pdf(), len(document.pages)


# --------------------------------------------------------------------------- daily census


def _percent(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a percentage, got {value!r}")
    return Decimal(str(value))


def _prepare_daily_census(context: Mapping) -> dict:
    """Check and format the context (every figure is already computed in the
    reporting layer: see ``healthops.reports.daily_census``)."""
    required = ("facility_code", "facility_name", "report_date", "generated_at", "units", "totals")
    missing = [k for k in required if k not in context]
    if missing:
        raise ValueError(f"daily census context is missing {missing}")
    facility_code = str(context["facility_code"])
    report_date = _as_date(context["report_date"], "report_date")
    generated_at = context["generated_at"]
    if not isinstance(generated_at, datetime) or generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be a timezone-aware datetime")

    units = list(context["units"] or [])
    if not units:
        raise ValueError("daily census context has no units")
    rows, seen = [], set()
    for i, unit in enumerate(units):
        absent = [k for k in UNIT_FIELDS if k not in unit]
        if absent:
            raise ValueError(f"units[{i}] is missing {absent}")
        code = str(unit["unit_code"])
        if code in seen:
            raise ValueError(f"unit_code {code!r} appears twice")
        seen.add(code)
        row = {k: _count(unit[k], f"units[{i}] ({code}).{k}") for k in UNIT_COUNT_FIELDS}
        row.update(unit_code=code, unit_name=str(unit["unit_name"]), unit_type=str(unit["unit_type"]))
        row["inpatient"] = bool(unit["is_inpatient_unit"])
        row["type_label"] = _type_label(row["unit_type"])
        occ = _percent(unit["occupancy_pct"], f"units[{i}] ({code}).occupancy_pct")
        row["occupancy"] = occ
        row["occupancy_label"] = _pct(occ)
        row["occupancy_class"] = "occ-over" if occ is not None and occ > 100 else ""
        rows.append(row)

    inpatient_rows = [r for r in rows if r["inpatient"]]
    other_rows = [r for r in rows if not r["inpatient"]]
    given = context["totals"]
    absent = [k for k in (*UNIT_COUNT_FIELDS, "unit_count", "occupancy_pct") if k not in given]
    if absent:
        raise ValueError(f"totals is missing {absent}")
    totals = {k: _count(given[k], f"totals.{k}") for k in (*UNIT_COUNT_FIELDS, "unit_count")}
    totals["occupancy"] = _percent(given["occupancy_pct"], "totals.occupancy_pct")
    totals["occupancy_label"] = _pct(totals["occupancy"])

    trend = sorted(
        (
            {
                "census_date": _as_date(p["census_date"], f"trend[{i}].census_date"),
                "midnight_census": _count(p["midnight_census"], f"trend[{i}].midnight_census"),
            }
            for i, p in enumerate(context.get("trend") or [])
        ),
        key=lambda p: p["census_date"],
    )
    change_label = None
    change, before = given.get("census_change"), given.get("previous_day_census")
    if change is not None and before is not None:
        delta = int(change)
        when = _long_date(report_date - timedelta(days=1)).split(",")[0]  # weekday name
        change_label = (
            f"unchanged from {when}"
            if delta == 0
            else f"{'up' if delta > 0 else 'down'} {abs(delta)} from {when} ({int(before)})"
        )

    quality = None
    checks = list(context.get("quality") or [])
    if checks:
        failed = []
        for i, q in enumerate(checks):
            status = str(q.get("status", "")).lower()
            if status not in CHECK_STATUSES:
                raise ValueError(f"quality[{i}].status must be one of {CHECK_STATUSES}, got {q.get('status')!r}")
            if status != "passed":
                failed.append(
                    {
                        "rule": str(q.get("rule", "")),
                        "status": status,
                        "severity": str(q.get("severity") or ""),
                        "detail": str(q.get("detail") or ""),
                    }
                )
        level = None
        if failed:
            level = "warning" if all(f["severity"].lower() in WARNING_SEVERITIES for f in failed) else "error"
        quality = {"failed": failed, "passed_count": len(checks) - len(failed), "total": len(checks), "level": level}

    other_census_label = None
    if other_rows:
        other_census_label = (
            "; ".join(
                f"{r['unit_name']}: {r['midnight_census']} patient{'s' if r['midnight_census'] != 1 else ''}"
                " at midnight"
                f" in {r['staffed_beds']} beds ({r['occupancy_label']})"
                for r in other_rows
            )
            + ". Not an inpatient unit: not counted above."
        )

    return {
        "facility_code": facility_code,
        "facility_name": str(context["facility_name"]),
        "report_date": report_date,
        "generated_at": generated_at,
        "inpatient_rows": inpatient_rows,
        "other_rows": other_rows,
        "totals": totals,
        "trend": trend,
        "quality": quality,
        "data_docs_url": context.get("data_docs_url") or None,
        "summary": {
            "census": totals["midnight_census"],
            "staffed_beds": totals["staffed_beds"],
            "occupancy_label": totals["occupancy_label"],
            "admissions": totals["admissions"],
            "discharges": totals["discharges"],
            "change_label": change_label,
            "other_census_label": other_census_label,
        },
    }


def _by_unit_alt(data: dict) -> str:
    parts = [
        f"{r['unit_name']} {r['midnight_census']} of {r['staffed_beds']} ({r['occupancy_label']})"
        for r in data["inpatient_rows"]
    ]
    parts += [
        f"{r['unit_name']} {r['midnight_census']} of {r['staffed_beds']}, not an inpatient unit"
        for r in data["other_rows"]
    ]
    return (
        "Bar chart of midnight census against staffed beds by unit on "
        f"{_long_date(data['report_date'])}: " + "; ".join(parts) + "."
    )


def _trend_alt(trend: list[dict]) -> tuple[str, str]:
    if not trend:
        return "Line chart of total inpatient midnight census: no trend data was available.", ""
    first, last = trend[0], trend[-1]
    low = min(trend, key=lambda p: (p["midnight_census"], p["census_date"]))
    high = max(trend, key=lambda p: (p["midnight_census"], p["census_date"]))
    span = (last["census_date"] - first["census_date"]).days + 1
    missing = span - len(trend)
    alt = (
        f"Line chart of total inpatient midnight census per day, {_short_date(first['census_date'])}"
        f" to {_short_date(last['census_date'])}, {last['census_date'].year}: "
        f"lowest {low['midnight_census']} on {_short_date(low['census_date'])}, "
        f"highest {high['midnight_census']} on {_short_date(high['census_date'])}, "
        f"{last['midnight_census']} on {_short_date(last['census_date'])}."
    )
    caption = ""
    if missing:
        alt += f" {missing} day{'s' if missing != 1 else ''} without data."
        caption = f"{missing} day{'s' if missing != 1 else ''} without data: the line is broken there."
    return alt, caption


def _plain_text(data: dict, title: str, stem: str) -> str:
    s = data["summary"]
    lines = [title, "=" * len(title), ""]
    q = data["quality"]
    if q and q["failed"]:
        lines += [
            f"!! {len(q['failed'])} data quality check(s) failed ({', '.join(f['rule'] for f in q['failed'])})"
            + (": figures may be incomplete or wrong." if q["level"] == "error" else ": warnings only."),
            "",
        ]
    lines.append(
        f"Inpatients at midnight: {s['census']} in {s['staffed_beds']} staffed beds, {s['occupancy_label']} occupancy."
    )
    line = f"Admissions {s['admissions']}, discharges {s['discharges']}"
    if s["change_label"]:
        line += f"; census {s['change_label']}"
    lines.append(line + ".")
    if s["other_census_label"]:
        lines.append(s["other_census_label"])
    lines += ["", "By unit: census / staffed beds (occupancy), admissions, discharges"]
    names = [r["unit_name"] for r in data["inpatient_rows"] + data["other_rows"]] + ["Inpatient total"]
    width = max(len(n) for n in names)
    for r in data["inpatient_rows"] + [None] + data["other_rows"]:
        if r is None:
            t = data["totals"]
            lines.append(
                f"  {'Inpatient total':<{width}}  {t['midnight_census']:>4} / {t['staffed_beds']:<4} "
                f"({t['occupancy_label']:>6})  adm {t['admissions']}, dis {t['discharges']}"
            )
            if data["other_rows"]:
                lines.append("  Not inpatient units (not in the total):")
            continue
        lines.append(
            f"  {r['unit_name']:<{width}}  {r['midnight_census']:>4} / {r['staffed_beds']:<4} "
            f"({r['occupancy_label']:>6})  adm {r['admissions']}, dis {r['discharges']}"
        )
    if q and q["failed"]:
        lines += ["", "Failed data quality checks:"]
        for f in q["failed"]:
            verdict = ", not evaluated" if f["status"] == "error" else ""
            lines.append(f"  - {f['rule']} [{f['severity'] or 'failed'}{verdict}]: {f['detail']}")
    if data["data_docs_url"]:
        lines.append(f"Data-quality details (Data Docs): {data['data_docs_url']}")
    lines += [
        "",
        f"The full report, with charts, is the HTML part of this message and the attached PDF ({stem}.pdf).",
        f"Generated {generated_label(data['generated_at'])} by healthops. "
        "Aggregates only: no patient-identifying information.",
    ]
    return "\n".join(lines) + "\n"


def render_daily_census(
    context: Mapping, templates_dir: str | os.PathLike | None = None, catalog: dict | None = None, revision=None
) -> RenderedReport:
    """Render the daily census for one facility and day (see the module docstring
    for ``context``). ``catalog`` defaults to ``load_catalog()``."""
    report_id = "daily_census"
    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog["reports"][report_id]
    templates_dir = Path(templates_dir or DEFAULT_TEMPLATES_DIR)
    data = _prepare_daily_census(context)
    d = data["report_date"]

    report_name = entry.get("name") or "Daily census"
    units_filter = [str(u) for u in (context.get("units_filter") or [])]
    scope = data["facility_name"] + (f" ({', '.join(units_filter)})" if units_filter else "")
    title = f"{report_name} — {scope} — {d.isoformat()}"
    subject = entry["subject"].format_map(
        {
            "facility_code": data["facility_code"],
            "facility_name": scope,
            "report_date": d,
            "report_name": report_name,
        }
    )
    q = data["quality"]
    if q and q["failed"]:
        subject = f"[DATA QUALITY: {len(q['failed'])} failed] {subject}"
    if revision:
        subject = revision.subject_prefix + subject
    slice_token = "-".join([data["facility_code"], *units_filter])
    stem = f"{report_id}_{safe_token(slice_token)}_{d.isoformat()}"

    chart_rows = data["inpatient_rows"] + data["other_rows"]
    by_unit_png = charts.census_by_unit_chart(chart_rows)
    trend_png = charts.census_trend_chart(data["trend"])
    trend_alt, trend_caption = _trend_alt(data["trend"])
    token = f"{safe_token(slice_token)}.{d.isoformat()}"
    cids = {"by_unit": f"census-by-unit.{token}@healthops", "trend": f"census-trend.{token}@healthops"}
    images = {
        cids["by_unit"]: (by_unit_png, _by_unit_alt(data)),
        cids["trend"]: (trend_png, trend_alt),
    }

    env = _environment(templates_dir)
    template = env.get_template(entry["template"])
    base = {
        **data,
        "facility_name": scope,
        "revision": revision,
        "title": title,
        "report_name": report_name,
        "period_label": _long_date(d),
        "report_date_label": _long_date(d),
        "generated_at_label": generated_label(data["generated_at"]),
        "generated_at_iso": data["generated_at"].isoformat(),
    }

    def variant(mode: str) -> str:
        def img(key: str) -> dict:
            cid = cids[key]
            png, alt = images[cid]
            src = f"cid:{cid}" if mode == "email" else _data_uri(png)
            return {"src": src, "alt": alt, "cid": cid, "caption": trend_caption if key == "trend" else ""}

        return template.render(
            **base, mode=mode, pdf=(mode == "pdf"), images={"by_unit": img("by_unit"), "trend": img("trend")}
        )

    html_email = variant("email")
    html_browser = variant("browser")
    pdf_bytes, pages = html_to_pdf(variant("pdf"), base_url=str(templates_dir))

    return RenderedReport(
        subject=subject,
        html=html_email,
        pdf=pdf_bytes,
        images=images,
        filename_stem=stem,
        text=(f"REVISED: {revision.summary}\n\n" if revision else "") + _plain_text(data, title, stem),
        html_standalone=html_browser,
        report=report_id,
        period=d.isoformat(),
        facility_code=data["facility_code"],
        generated_at=data["generated_at"],
        pdf_pages=pages,
        quality_failed=len(q["failed"]) if q else 0,
        meta={
            "title": title,
            "sender": entry["sender"],
            "recipients": list(entry["recipients"]),
            "totals": {k: v for k, v in data["totals"].items() if k != "occupancy"},
        },
    )


@dataclass(frozen=True)
class Chart:
    """A chart of a report: PNG bytes, the alt text a screen reader reads, a caption."""

    key: str  # the template's name for it: images[key]
    png: bytes
    alt: str
    caption: str = ""


def render_document(
    *,
    template_name: str,
    base: Mapping[str, Any],
    charts_: list[Chart],
    token: str,
    templates_dir: str | os.PathLike | None = None,
) -> tuple[str, str, bytes, int, dict]:
    """Render one template of the shared base layout three ways: the e-mail body
    (charts by ``cid:``), a standalone page and the PDF (charts as ``data:`` URIs).
    ``base`` is the template context (it must hold what base.html.j2 names);
    ``token`` makes the Content-IDs unique to the report and period.
    Returns (email html, standalone html, pdf bytes, pdf pages, images by cid)."""
    templates_dir = Path(templates_dir or DEFAULT_TEMPLATES_DIR)
    template = _environment(templates_dir).get_template(template_name)
    cids = {c.key: f"{safe_token(c.key)}.{safe_token(token)}@healthops" for c in charts_}
    images = {cids[c.key]: (c.png, c.alt) for c in charts_}

    def variant(mode: str) -> str:
        imgs = {
            c.key: {
                "src": f"cid:{cids[c.key]}" if mode == "email" else _data_uri(c.png),
                "alt": c.alt,
                "cid": cids[c.key],
                "caption": c.caption,
            }
            for c in charts_
        }
        return template.render(**base, mode=mode, pdf=(mode == "pdf"), images=imgs)

    pdf_bytes, pages = html_to_pdf(variant("pdf"), base_url=str(templates_dir))
    return variant("email"), variant("browser"), pdf_bytes, pages, images


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_outputs(rendered: RenderedReport, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``<stem>.html`` (standalone, images inlined) and ``<stem>.pdf`` under
    ``out_dir`` (created if needed); same name each run, replaced atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{rendered.filename_stem}.html", "pdf": out / f"{rendered.filename_stem}.pdf"}
    _atomic_write(paths["html"], (rendered.html_standalone or rendered.html).encode("utf-8"))
    _atomic_write(paths["pdf"], rendered.pdf)
    for name, (data, _mime) in rendered.attachments.items():
        paths[Path(name).suffix.lstrip(".") or name] = out / name
        _atomic_write(out / name, data)
    return paths
