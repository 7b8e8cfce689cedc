"""The monthly census and utilization report (healthops.reports.monthly_census) on a
real PostgreSQL: the two marts it reads as plain tables with hand-written rows (the
mart's own formulas applied by ``period_row``), then its figures against numbers
worked out by hand, small-cell suppression, the month-to-date note, the charts, PDF
and CSV, the figures as a content version and the facility filter; and once on marts
built by dbt from an HL7 feed, so the columns and types are the real ones."""
from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from healthops.reports import kinds
from healthops.reports.catalog import load_catalog
from healthops.reports.monthly_census import KIND
from healthops.reports.phi import SUPPRESSED, MartReader, allowed_columns
from healthops.warehouse.connection import connect

PNG = b"\x89PNG\r\n\x1a\n"
PERIOD_COLS = ["facility_code", "unit_code", "period_type", "period_start", "days_in_period", "patient_days",
               "observation_days", "admissions", "discharges", "average_daily_census", "staffed_beds", "occupancy",
               "average_length_of_stay"]
# exactly the columns the report reads; the catalog's allow-list must hold them (test_catalog_allows_the_columns)
ALLOWED = {
    "marts.fct_census_period": frozenset(["facility_code", "unit_code", "period_type", "period_start",
                                          "days_in_period", "patient_days", "admissions", "discharges",
                                          "average_daily_census", "staffed_beds", "occupancy",
                                          "average_length_of_stay"]),
    "marts.dim_units": frozenset(["facility_code", "unit_code", "unit_name", "unit_type", "is_inpatient_unit",
                                  "staffed_beds"]),
}
ENTRY = {"id": "monthly_census", "name": "Monthly census and utilization", "template": "monthly_census.html.j2",
         "subject": "{report_name} — {period_label}", "sender": "healthops <healthops@localhost>",
         "recipients": ["cno@example.org"], "formats": ["html", "pdf", "csv"], "suppress_small_cells": True}

DDL = """
create schema if not exists marts;
create table marts.dim_units (
    facility_code text, unit_code text, unit_name text, unit_type text, is_inpatient_unit boolean,
    staffed_beds integer, licensed_beds integer, cost_center text);
create table marts.fct_census_period (
    facility_code text, unit_code text, period_type text, period_start date, days_in_period integer,
    patient_days bigint, observation_days bigint, admissions bigint, discharges bigint,
    average_daily_census numeric(12,2), staffed_beds numeric(12,2), occupancy numeric(7,4),
    average_length_of_stay numeric(8,2));
"""
UNITS = [
    ("NGH", "ICU", "Intensive Care Unit", "critical_care", True, 12),
    ("NGH", "MS5", "Medical/Surgical 5 East", "medical_surgical", True, 32),
    ("NGH", "PSY", "Behavioral Health", "psychiatric", True, 14),
    ("NGH", "ED", "Emergency Department", "emergency", False, 30),
    ("SGH", "ICU", "Intensive Care Unit", "critical_care", True, 10),
    ("SGH", "ONC", "Oncology", "other_specialty", True, 18),
]
OCT, SEP, OCT_25, NOV = date(2026, 10, 1), date(2026, 9, 1), date(2025, 10, 1), date(2026, 11, 1)
# per facility and month: days with data, then per unit (beds, patient days, admissions, discharges,
# inpatient days of the stays discharged); 'ALL' is the sum, as in the mart
MONTHS = {
    ("NGH", OCT): (31, {"ICU": (12, 341, 40, 39, 156), "MS5": (32, 868, 200, 198, 891),
                        "PSY": (14, 124, 5, 3, 31)}),
    ("NGH", SEP): (30, {"ICU": (12, 300, 35, 36, 144), "MS5": (32, 810, 190, 185, 814),
                        "PSY": (14, 150, 12, 12, 96)}),
    ("NGH", OCT_25): (31, {"ICU": (12, 310, 30, 31, 124), "MS5": (32, 775, 180, 178, 801),
                           "PSY": (14, 155, 11, 11, 110)}),
    ("SGH", OCT): (31, {"ICU": (10, 248, 25, 24, 96), "ONC": (18, 465, 30, 31, 186)}),
    ("SGH", SEP): (30, {"ICU": (10, 240, 24, 24, 100), "ONC": (18, 450, 30, 30, 170)}),
}


def q(value, places):
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def period_row(fac, unit, start, days, beds, pd, adm, dis, dsd, period_type="month"):
    """A fct_census_period row by the mart's formulas (fct_census_period.sql)."""
    return (fac, unit, period_type, start, days, pd, 0, adm, dis, q(Decimal(pd) / days, "0.01"), q(beds, "0.01"),
            q(Decimal(pd) / days / beds, "0.0001"), q(Decimal(dsd) / dis, "0.01") if dis else None)


def month_rows(months):
    rows = []
    for (fac, start), (days, units) in months.items():
        for unit, (beds, pd, adm, dis, dsd) in units.items():
            rows.append(period_row(fac, unit, start, days, beds, pd, adm, dis, dsd))
        tot = [sum(u[i] for u in units.values()) for i in range(5)]
        rows.append(period_row(fac, "ALL", start, days, *tot))
    return rows


def load_marts(url, months=MONTHS, day_rows=()):
    with connect(url) as conn:
        conn.execute("drop table if exists marts.dim_units; drop table if exists marts.fct_census_period")
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany("insert into marts.dim_units values (%s,%s,%s,%s,%s,%s,%s,'')",
                            [(*u, u[5] + 2) for u in UNITS])
            cur.executemany(f"insert into marts.fct_census_period values ({','.join(['%s'] * 13)})",
                            month_rows(months) + list(day_rows))


def build(url, period="2026-10", flt=None, entry=ENTRY):
    with connect(url) as conn:
        reader = MartReader(conn, ALLOWED)
        ctx = KIND.build_context(reader, period, flt or {}, entry)
    return ctx


@pytest.fixture
def marts(warehouse_url):
    load_marts(warehouse_url)
    return warehouse_url


def keep(rendered, name):
    """A copy of the PDF to look at: MONTHLY_CENSUS_PDF_DIR=/tmp/x pytest ..."""
    folder = os.environ.get("MONTHLY_CENSUS_PDF_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.pdf").write_bytes(rendered.pdf)
        (Path(folder) / f"{name}.html").write_text(rendered.html_standalone)
        (Path(folder) / f"{name}.txt").write_text(rendered.text)
        for att, (data, _) in rendered.attachments.items():
            (Path(folder) / f"{name}.{att.rsplit('.', 1)[-1]}").write_bytes(data)


def fac(ctx, code):
    return next(f for f in ctx["facilities"] if f["facility_code"] == code)


def unit(f, code):
    return next(u for u in f["units"] if u["unit_code"] == code)


def test_kind_interface_and_registry():
    assert KIND.period == "month" and KIND.filter_keys == ("facility",) and KIND.required_filter == ()
    if hasattr(kinds, "kind_for"):
        assert kinds.kind_for("monthly_census") is KIND
    else:
        assert kinds.registry()["monthly_census"] is KIND


def test_catalog_allows_the_columns():
    catalog = load_catalog()
    allowed = allowed_columns(catalog)
    for table, cols in ALLOWED.items():
        assert cols <= allowed[table], table
    entry = catalog["reports"]["monthly_census"]
    assert entry["template"] == "monthly_census.html.j2" and entry.get("builder", "monthly_census") == "monthly_census"


def test_figures_match_hand_counts(marts):
    ctx = build(marts, entry={**ENTRY, "suppress_small_cells": False})
    ngh = fac(ctx, "NGH")
    t = ngh["total"]
    # October 2026, all inpatient units: 1333 patient days / 31 days; 58 beds; 1077 stay days / 240 discharges
    assert t["current"]["adc"] == Decimal("43.00")
    assert t["current"]["occupancy"] == Decimal("74.1")          # 43 / 58 = 0.74137
    assert t["current"]["alos"] == Decimal("4.49")               # 4.4875, half up
    assert (t["current"]["admissions"], t["current"]["discharges"], t["current"]["patient_days"]) == (245, 240, 1333)
    # against September (1260 / 30 = 42.00, 72.4%, 1054 / 233 = 4.52) and October 2025 (1240 / 31 = 40.00, 69.0%)
    assert t["vs_prev"]["adc"]["value"] == Decimal("1.00") and t["vs_prev"]["adc"]["pct"] == Decimal("2.4")
    assert t["vs_prev"]["occupancy"]["value"] == Decimal("1.7")
    assert t["vs_prev"]["alos"]["value"] == Decimal("-0.03")
    assert [t["vs_prev"][k]["value"] for k in ("admissions", "discharges", "patient_days")] == [8, 7, 73]
    assert t["vs_year_ago"]["adc"]["value"] == Decimal("3.00") and t["vs_year_ago"]["adc"]["pct"] == Decimal("7.5")
    assert t["vs_year_ago"]["occupancy"]["value"] == Decimal("5.1")
    icu = unit(ngh, "ICU")
    assert (icu["current"]["adc"], icu["current"]["occupancy"], icu["current"]["alos"]) == (
        Decimal("11.00"), Decimal("91.7"), Decimal("4.00"))
    assert icu["vs_prev"]["occupancy"]["value"] == Decimal("8.4")  # 91.7 - 83.3
    # units in acuity order, the ED (no rows) absent; SGH has no October 2025: no y/y
    assert [u["unit_code"] for u in ngh["units"]] == ["ICU", "MS5", "PSY"]
    assert fac(ctx, "SGH")["total"]["vs_year_ago"]["adc"] == {"value": None, "pct": None, "note": "no data"}
    assert ngh["coverage"]["complete"] and ctx["incomplete"] == []

    figs = KIND.figures(ctx)
    assert figs["NGH ICU 2026-10 ADC"] == "11.00"
    assert figs["NGH total 2026-10 occupancy %"] == "74.1"
    assert figs["NGH total 2026-09 ALOS days"] == "4.52"
    assert figs["NGH MS5 2026-10 admissions"] == 200
    assert figs["NGH 2026-10 days with data"] == "31 of 31"
    json.dumps(figs)  # JSON-able

    r = KIND.render(ctx, {**ENTRY, "suppress_small_cells": False}, None)
    assert "43.00" in r.html and "74.1%" in r.html and "+1.00" in r.html and "−0.03" in r.html
    assert r.subject == "Monthly census and utilization — October 2026"


def test_small_cells_suppressed_everywhere(marts):
    ctx = build(marts)
    ngh = fac(ctx, "NGH")
    psy, icu, ms5 = unit(ngh, "PSY"), unit(ngh, "ICU"), unit(ngh, "MS5")
    # PSY: 5 admissions, 3 discharges -> <11, its ALOS (10.00) with them
    assert (psy["current"]["admissions"], psy["current"]["discharges"], psy["current"]["alos"]) == (SUPPRESSED,) * 3
    # complementary: the facility total (245, 240) would reveal PSY; the smallest other cell goes too (ICU)
    assert (icu["current"]["admissions"], icu["current"]["discharges"], icu["current"]["alos"]) == (SUPPRESSED,) * 3
    assert (ms5["current"]["admissions"], ms5["current"]["discharges"]) == (200, 198)
    assert ngh["total"]["current"]["admissions"] == 245
    # no change is shown to or from a hidden cell
    assert icu["vs_prev"]["admissions"]["value"] is None and icu["vs_prev"]["alos"]["value"] is None
    assert ctx["suppressed_cells"] >= 4

    figs = KIND.figures(ctx)
    counts = {k: v for k, v in figs.items() if k.endswith(("admissions", "discharges"))}
    assert figs["NGH PSY 2026-10 discharges"] == SUPPRESSED and figs["NGH PSY 2026-10 ALOS days"] == SUPPRESSED
    assert figs["NGH ICU 2026-10 admissions"] == SUPPRESSED
    # no patient count from 1 to 10 in any figure
    assert not any(isinstance(v, int) and 1 <= v <= 10 for v in counts.values())

    r = KIND.render(ctx, ENTRY, None)
    rows = list(csv.DictReader(io.StringIO(r.attachments[f"{r.filename_stem}.csv"][0].decode())))
    psy_row = next(x for x in rows if x["facility_code"] == "NGH" and x["unit_code"] == "PSY")
    assert (psy_row["admissions"], psy_row["discharges"], psy_row["average_length_of_stay"]) == ("<11",) * 3
    assert psy_row["average_daily_census"] == "4.00"  # not a patient count: shown
    icu_row = next(x for x in rows if x["facility_code"] == "NGH" and x["unit_code"] == "ICU")
    assert icu_row["discharges"] == "<11" and icu_row["average_length_of_stay"] == "<11"
    # the hidden values appear nowhere: PSY's ALOS (31 / 3 = 10.33), ICU's 40 admissions and 39 discharges
    for text in (r.html, r.text, r.html_standalone, r.attachments[f"{r.filename_stem}.csv"][0].decode(),
                 json.dumps(figs), *(alt for _, alt in r.images.values())):
        text = _strip_noise(text)
        assert "10.33" not in text
        assert not re.search(r"(?<![\d.,#])(40|39)(?![\d.,%])", text), "ICU counts leaked"
    html_cells = re.findall(r"<td[^>]*>\s*&lt;11", r.html)
    assert len(html_cells) >= 6
    assert "Behavioral Health" in r.html


def _strip_noise(text: str) -> str:
    """Drop what is not a figure: inline images, timestamps, CSS."""
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    text = re.sub(r"(?s)<style>.*?</style>", "", text)
    return re.sub(r"\d{4}-\d{2}-\d{2}[T ][\d:.+-]+", "", text)


def test_small_facility_total_is_suppressed_too(warehouse_url):
    months = {("SGH", OCT): (31, {"ICU": (10, 62, 4, 5, 20), "ONC": (18, 93, 0, 3, 12)})}
    load_marts(warehouse_url, months)
    ctx = build(warehouse_url, flt={"facility": "SGH"})
    sgh = fac(ctx, "SGH")
    assert sgh["total"]["current"]["discharges"] == SUPPRESSED and sgh["total"]["current"]["alos"] == SUPPRESSED
    assert unit(sgh, "ONC")["current"]["admissions"] == 0      # zero is shown
    assert sgh["trend"][-1]["alos"] == SUPPRESSED               # the chart skips it, the alt text says why
    r = KIND.render(ctx, ENTRY, None)
    alt = next(iter(r.images.values()))[1]
    assert "ALOS not shown for Oct 2026 (fewer than 11 discharges)" in alt
    figs = KIND.figures(ctx)
    assert not any(isinstance(v, int) and 1 <= v <= 10 for k, v in figs.items()
                   if k.endswith(("admissions", "discharges")))


def test_render_pdf_charts_csv(marts, tmp_path):
    ctx = build(marts)
    r = KIND.render(ctx, ENTRY, None)
    keep(r, "all_facilities")
    assert r.pdf.startswith(b"%PDF") and r.pdf_pages == 4         # two facilities, a page break between them
    assert len(r.images) == 2                                     # one trend figure per facility
    for cid, (png, alt) in r.images.items():
        assert png.startswith(PNG) and len(png) > 5000
        assert f'src="cid:{cid}"' in r.html
        assert len(alt) > 80 and "Average daily census" in alt
        assert re.search(rf'src="cid:{re.escape(cid)}" alt="[^"]+"', r.html)
    ngh_alt = next(alt for cid, (_, alt) in r.images.items() if "NGH" in cid)
    assert "Average daily census: lowest 42.00 in Sep 2026, highest 43.00 in Oct 2026, 43.00 in Oct 2026" in ngh_alt
    assert "10 months without data" in ngh_alt
    assert "data:image/png;base64," in r.html_standalone and "cid:" not in r.html_standalone
    assert r.filename_stem == "monthly_census_ALL_2026-10" and r.facility_code == "ALL" and r.period == "2026-10"

    name, (data, mime) = next(iter(r.attachments.items()))
    assert name == "monthly_census_ALL_2026-10.csv" and mime == "text/csv"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(x["facility_code"], x["unit_code"]) for x in rows] == [
        ("NGH", "ALL"), ("NGH", "ICU"), ("NGH", "MS5"), ("NGH", "PSY"), ("SGH", "ALL"), ("SGH", "ICU"), ("SGH", "ONC")]
    ngh_all = rows[0]
    assert (ngh_all["average_daily_census"], ngh_all["occupancy_pct"], ngh_all["average_length_of_stay"],
            ngh_all["admissions"], ngh_all["average_daily_census_prev_month"],
            ngh_all["average_daily_census_prev_year"]) == ("43.00", "74.1", "4.49", "245", "42.00", "40.00")
    assert rows[4]["average_daily_census_prev_year"] == ""      # SGH: no October 2025
    (tmp_path / "r.pdf").write_bytes(r.pdf)
    assert "no patient-identifying information" in r.text and "43.00" in r.text

    # without "csv" in the formats: no attachment
    r2 = KIND.render(ctx, {**ENTRY, "formats": ["html", "pdf"]}, None)
    assert r2.attachments == {}


def test_month_to_date_is_flagged(warehouse_url):
    months = dict(MONTHS)
    months[("NGH", NOV)] = (14, {"ICU": (12, 154, 20, 18, 70), "MS5": (32, 406, 95, 90, 400),
                                 "PSY": (14, 70, 12, 11, 70)})
    days = [period_row("NGH", "ALL", NOV + timedelta(days=i), 1, 58, 45, 9, 8, 30, "day") for i in range(14)]
    load_marts(warehouse_url, months, days)
    ctx = build(warehouse_url, "2026-11", {"facility": "NGH"})
    ngh = fac(ctx, "NGH")
    cov = ngh["coverage"]
    assert (cov["days_with_data"], cov["days_in_month"], cov["complete"]) == (14, 30, False)
    assert cov["label"] == "Data for 14 of 30 days of November 2026 (Nov 1–14)."
    t = ngh["total"]
    # rates compared (ADC 630 / 14 = 45.00 against October's 43.00), counts not
    assert t["vs_prev"]["adc"]["value"] == Decimal("2.00")
    assert t["vs_prev"]["admissions"] == {"value": None, "pct": None, "note": "partial month"}
    assert ctx["incomplete"] == ["NGH"]
    figs = KIND.figures(ctx)
    assert figs["NGH 2026-11 days with data"] == "14 of 30"
    r = KIND.render(ctx, ENTRY, None)
    keep(r, "month_to_date")
    assert r.subject.startswith("[MONTH TO DATE: 14 of 30 days] ")
    assert "Month to date, not a full month." in r.html and "Data for 14 of 30 days of November 2026" in r.html
    assert "November 2026 to date (14 of 30 days)" in r.html   # the header's period line
    assert "not compared" in r.html
    assert "MONTH TO DATE" in r.text
    alt = next(iter(r.images.values()))[1]
    assert "Nov 2026 covers 14 of 30 days" in alt


def test_figures_version_the_content(marts):
    a = KIND.figures(build(marts))
    b = KIND.figures(build(marts))
    assert a == b and json.dumps(a) == json.dumps(b)
    assert not any("generat" in k.lower() for k in a)
    with connect(marts) as conn:   # a late discharge in September's med/surg
        conn.execute("""update marts.fct_census_period set discharges = discharges + 1
                        where facility_code = 'NGH' and unit_code in ('MS5', 'ALL') and period_start = '2026-09-01'
                          and period_type = 'month'""")
    c = KIND.figures(build(marts))
    changed = {label for label, _, _ in kinds.diff_figures(a, c)}
    assert changed == {"NGH MS5 2026-09 discharges", "NGH total 2026-09 discharges"}


def test_facility_filter(marts):
    ctx = build(marts, flt={"facility": "SGH"})
    assert [f["facility_code"] for f in ctx["facilities"]] == ["SGH"]
    figs = KIND.figures(ctx)
    assert figs and all(k.startswith("SGH ") for k in figs)
    r = KIND.render(ctx, ENTRY, None)
    keep(r, "sgh")
    assert "Southgate General Hospital" in r.html and "Northgate" not in r.html
    assert r.filename_stem == "monthly_census_SGH_2026-10" and r.facility_code == "SGH"
    assert len(r.images) == 1 and r.pdf_pages >= 1
    data = next(iter(r.attachments.values()))[0].decode()
    assert "NGH" not in data
    with pytest.raises(LookupError):
        build(marts, "2024-01", {"facility": "SGH"})


def test_reader_is_allow_listed(marts):
    from healthops.reports.phi import ColumnNotAllowed

    narrow = {**ALLOWED, "marts.dim_units": ALLOWED["marts.dim_units"] - {"unit_name"}}
    with connect(marts) as conn, pytest.raises(ColumnNotAllowed):
        KIND.build_context(MartReader(conn, narrow), "2026-10", {}, ENTRY)


def test_revision_banner_and_subject(marts):
    from datetime import datetime, timezone

    ctx = build(marts)
    rev = kinds.Revision(1, datetime(2026, 11, 1, 14, 0, tzinfo=timezone.utc),
                         [("NGH total 2026-10 ADC", "42.90", "43.00")])
    r = KIND.render(ctx, ENTRY, rev)
    assert r.subject.startswith("[REVISED] ") and "Revised report" in r.html
    assert r.text.startswith("REVISED: NGH total 2026-10 ADC: 42.90 → 43.00")


def test_on_marts_built_by_dbt(warehouse_url, tmp_path):
    """The real marts (HL7 -> raw -> dbt): columns and types as the report reads them."""
    from healthops.load.adt import load_adt_date
    from healthops.warehouse.dbt_runner import run_dbt

    from hl7_builders import build_message

    day = date(2026, 2, 2)
    folder = tmp_path / "landing" / "adt" / day.isoformat()
    folder.mkdir(parents=True)
    m = lambda *a, **k: build_message(*a, **k)  # noqa: E731
    folder.joinpath("a.hl7").write_text("".join([
        m("A01", control_id="C1", visit="V1", msg_ts="202602020800", unit="ICU"),
        m("A01", control_id="C2", visit="V2", msg_ts="202602021000", unit="MS5"),
        m("A03", control_id="C3", visit="V2", msg_ts="202602021805", unit="MS5", discharge_ts="202602021800"),
        m("A01", control_id="C4", visit="V3", msg_ts="202602020900", unit="TELE"),
    ]))
    load_adt_date(warehouse_url, tmp_path / "landing", day)
    run_dbt(["build"], warehouse_url, capture=True)
    allowed = {"marts.fct_census_period": ALLOWED["marts.fct_census_period"],
               "marts.dim_units": ALLOWED["marts.dim_units"]}
    entry = {**ENTRY, "suppress_small_cells": False}
    with connect(warehouse_url) as conn:
        ctx = KIND.build_context(MartReader(conn, allowed), "2026-02", {"facility": "NGH"}, entry)
        want = conn.execute("""select days_in_period, patient_days, average_daily_census, average_length_of_stay
                               from marts.fct_census_period where facility_code = 'NGH' and unit_code = 'ALL'
                                 and period_type = 'month' and period_start = '2026-02-01'""").fetchone()
    ngh = fac(ctx, "NGH")
    c = ngh["total"]["current"]
    assert (c["days_with_data"], c["patient_days"], c["adc"], c["alos"]) == tuple(want)
    assert c["patient_days"] == 3 and c["discharges"] == 1       # V1, V3 at midnight + V2 same-day
    assert not ngh["coverage"]["complete"] and ngh["coverage"]["days_with_data"] >= 1
    assert {u["unit_code"] for u in ngh["units"]} >= {"ICU", "MS5", "TELE"}
    assert all(u["inpatient"] for u in ngh["units"])
    r = KIND.render(ctx, entry, None)
    keep(r, "from_dbt")
    assert r.pdf.startswith(b"%PDF") and r.subject.startswith("[MONTH TO DATE: ")
    json.dumps(KIND.figures(ctx))


def test_published_through_the_catalog(marts, tmp_path):
    """The catalog entry, the catalog's allow-list and the PHI guard, over a real SMTP
    server on loopback: one message per recipient, nothing new on a retry, one revised
    message each after a late change to the month before."""
    from email import policy
    from email.parser import BytesParser

    from healthops.reports.delivery import SmtpSettings
    from healthops.reports.outbox import start_outbox
    from healthops.reports.publish import publish

    entry = load_catalog()["reports"]["monthly_census"]
    with start_outbox(tmp_path / "outbox") as box:
        smtp = SmtpSettings.from_url(box.url)
        out = publish("monthly_census", "2026-10", url=marts, smtp=smtp)
        msgs = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in box.messages()]
        assert sorted(m["To"] for m in msgs) == sorted(entry["recipients"]) and len(out.sent) == 2
        m = msgs[0]
        assert m["Subject"] == "Monthly census and utilization — October 2026"
        html = m.get_body(preferencelist=("html",)).get_content()
        parts = {p.get_content_type(): p for p in m.iter_attachments()}
        assert parts["application/pdf"].get_content().startswith(b"%PDF")
        assert parts["text/csv"].get_filename() == "monthly_census_ALL_2026-10.csv"
        inline = [p for p in m.walk() if p.get("Content-ID")]
        assert len(inline) == 2
        for p in inline:
            assert p.get_content().startswith(PNG)
            assert f'src="cid:{p["Content-ID"].strip("<>")}"' in html
        assert publish("monthly_census", "2026-10", url=marts, smtp=smtp).sent == []

        with connect(marts) as conn:  # a late admission to September's ICU
            conn.execute("""update marts.fct_census_period set admissions = admissions + 1
                            where facility_code = 'NGH' and unit_code in ('ICU', 'ALL')
                              and period_start = '2026-09-01' and period_type = 'month'""")
        again = publish("monthly_census", "2026-10", url=marts, smtp=smtp)
        assert len(again.sent) == 2 and all(s["revision"] == 1 for s in again.sent)
        every = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in box.messages()]
        revised = [x for x in every if x["Subject"].startswith("[REVISED] ")]
        assert len(every) == 4 and len(revised) == 2
        assert "NGH ICU 2026-09 admissions: 35 → 36" in revised[0].get_body(preferencelist=("html",)).get_content()
