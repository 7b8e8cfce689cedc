"""The monthly census and utilization report (healthops.reports.monthly_census) on a
real PostgreSQL: hand-written daily census rows (marts.fct_census_daily, each month's
figures spread over its days), the period mart and the report's models built over
them by dbt once per module, then the figures against numbers worked out by hand (the
emergency department out of every facility total), small-cell suppression, the
month-to-date note, the charts, PDF and CSV, the figures as a content version, the
facility filter and the reader's queries; and once on marts built by dbt from an HL7
feed, so the columns and types are the real ones."""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from healthops import config
from healthops.reports import kinds, monthly_census
from healthops.reports.catalog import load_catalog
from healthops.reports.monthly_census import KIND
from healthops.reports.phi import SUPPRESSED
from healthops.reports.reader import ColumnNotAllowed, ReportReader, reporting_models
from healthops.warehouse.connection import connect

from reporting_build import MONTHLY_CENSUS_MODELS, build_models, template_database

PNG = b"\x89PNG\r\n\x1a\n"
ENTRY = {
    "id": "monthly_census",
    "name": "Monthly census and utilization",
    "template": "monthly_census.html.j2",
    "subject": "{report_name} — {period_label}",
    "sender": "healthops <healthops@localhost>",
    "recipients": ["cno@example.org"],
    "formats": ["html", "pdf", "csv"],
    "suppress_small_cells": True,
}

DAILY_DDL = """
create table marts.fct_census_daily (
    facility_code text, unit_code text, census_date date, midnight_census integer, admissions integer,
    discharges integer, transfers_in integer, transfers_out integer, patient_days integer,
    discharged_stay_days integer, observation_census integer, observation_days integer, staffed_beds integer)
"""
OCT, SEP, OCT_25, NOV = date(2026, 10, 1), date(2026, 9, 1), date(2025, 10, 1), date(2026, 11, 1)
# per facility and month: days with data, then per unit (beds as in the units seed, patient days,
# admissions, discharges, inpatient days of the stays discharged). The ED (not an inpatient unit)
# holds two boarders a night: its beds and days are in no facility total.
MONTHS = {
    ("NGH", OCT): (
        31,
        {
            "ICU": (12, 341, 40, 39, 156),
            "MS5": (32, 868, 200, 198, 891),
            "PSY": (14, 124, 5, 3, 31),
            "ED": (30, 62, 0, 0, 0),
        },
    ),
    ("NGH", SEP): (
        30,
        {
            "ICU": (12, 300, 35, 36, 144),
            "MS5": (32, 810, 190, 185, 814),
            "PSY": (14, 150, 12, 12, 96),
            "ED": (30, 60, 0, 0, 0),
        },
    ),
    ("NGH", OCT_25): (
        31,
        {
            "ICU": (12, 310, 30, 31, 124),
            "MS5": (32, 775, 180, 178, 801),
            "PSY": (14, 155, 11, 11, 110),
            "ED": (30, 62, 0, 0, 0),
        },
    ),
    ("SGH", OCT): (31, {"ICU": (10, 248, 25, 24, 96), "ONC": (18, 465, 30, 31, 186)}),
    ("SGH", SEP): (30, {"ICU": (10, 240, 24, 24, 100), "ONC": (18, 450, 30, 30, 170)}),
}


def _share(total, days, i):
    """Day ``i``'s part of a month's ``total`` spread over ``days`` days (the parts add up)."""
    return total // days + (1 if i < total % days else 0)


def daily_rows(months):
    """fct_census_daily rows whose sums over each month are the figures of ``months``."""
    rows = []
    for (fac, start), (days, units) in months.items():
        for unit, (beds, pd, adm, dis, dsd) in units.items():
            for i in range(days):
                p = _share(pd, days, i)
                rows.append(
                    (
                        fac,
                        unit,
                        start + timedelta(days=i),
                        p,
                        _share(adm, days, i),
                        _share(dis, days, i),
                        0,
                        0,
                        p,
                        _share(dsd, days, i),
                        0,
                        0,
                        beds,
                    )
                )
    return rows


def load_daily(url, months=MONTHS):
    """Replace the daily mart's rows (the period mart and the report's models are views over it)."""
    with connect(url) as conn:
        conn.execute("delete from marts.fct_census_daily")
        with conn.cursor() as cur:
            cur.executemany(f"insert into marts.fct_census_daily values ({','.join(['%s'] * 13)})", daily_rows(months))


@pytest.fixture(scope="module")
def marts_template(pg_server, migrated_template):
    def prepare(url):
        with connect(url) as conn:
            conn.execute(DAILY_DDL)
        load_daily(url)
        build_models(url, MONTHLY_CENSUS_MODELS)

    with template_database(pg_server, migrated_template, prepare) as name:
        yield name


@pytest.fixture
def marts(marts_template, make_database):
    return make_database(template=marts_template)


def reader_on(conn):
    return ReportReader(conn, KIND.models)


def build(url, period="2026-10", flt=None, entry=ENTRY):
    with connect(url) as conn:
        return KIND.build_context(reader_on(conn), period, flt or {}, entry)


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


def test_exposure_lists_the_kinds_models():
    path = config.DBT_PROJECT_DIR / "models" / "reporting" / "exposures" / "monthly_census.yml"
    (exposure,) = yaml.safe_load(path.read_text())["exposures"]
    assert exposure["name"] == "monthly_census"
    assert exposure["depends_on"] == [f"ref('{m}')" for m in KIND.models]
    models = reporting_models()
    for m in KIND.models:  # every column described and marked non-PHI
        assert models[m].readable == frozenset(models[m].columns), m
    entry = load_catalog()["reports"]["monthly_census"]
    assert entry["template"] == "monthly_census.html.j2" and entry.get("builder", "monthly_census") == "monthly_census"


def test_the_facility_total_leaves_the_ed_out(marts):
    """fct_census_period's 'ALL' row is the inpatient units (dim_units.is_inpatient_unit):
    NGH October 2026 without the ED's 62 patient days and 30 beds."""
    with connect(marts) as conn:
        rows = {
            u: r
            for u, *r in conn.execute(
                "select unit_code, days_in_period, patient_days, admissions, staffed_beds, average_daily_census, "
                "occupancy from marts.fct_census_period where facility_code = 'NGH' and period_type = 'month' "
                "and period_start = '2026-10-01'"
            )
        }
        day = conn.execute(
            "select patient_days, staffed_beds from marts.fct_census_period where facility_code = "
            "'NGH' and unit_code = 'ALL' and period_type = 'day' and period_start = '2026-10-01'"
        ).fetchone()
    # 341 + 868 + 124 = 1333 patient days (not 1395), 12 + 32 + 14 = 58 beds (not 88):
    # ADC 1333 / 31 = 43.00 (not 45.00), occupancy 43 / 58 = 0.7414 (not 45 / 88 = 0.5114)
    assert rows["ALL"] == [31, 1333, 245, Decimal("58.00"), Decimal("43.00"), Decimal("0.7414")]
    assert rows["ED"] == [31, 62, 0, Decimal("30.00"), Decimal("2.00"), Decimal("0.0667")]
    # October 1st: 11 + 28 + 4 (not + 2) patient days, 58 beds
    assert day == (43, Decimal("58.00"))


def test_models_hold_every_figure(marts):
    with connect(marts) as conn:
        reader = reader_on(conn)
        (t,) = reader.select(
            "rpt_monthly_census_units",
            [
                "unit_name",
                "is_inpatient_unit",
                "days_in_month",
                "average_daily_census",
                "occupancy_pct",
                "average_length_of_stay",
                "staffed_beds",
                "average_daily_census_prev_month",
                "average_daily_census_change_prev_month",
                "average_daily_census_change_pct_prev_month",
                "occupancy_pct_change_prev_month",
                "admissions_change_prev_month",
                "patient_days_change_pct_prev_month",
                "average_daily_census_prev_year",
                "average_daily_census_change_pct_prev_year",
            ],
            {"facility_code": "NGH", "month_start": OCT, "unit_code": "ALL"},
        )
        # Sep: 1260 / 30 = 42.00, 72.4 %; Oct 2025: 1240 / 31 = 40.00; patient days 1333 vs 1260: +5.8 %
        assert t == {
            "unit_name": "All inpatient units",
            "is_inpatient_unit": True,
            "days_in_month": 31,
            "average_daily_census": Decimal("43.00"),
            "occupancy_pct": Decimal("74.1"),
            "average_length_of_stay": Decimal("4.49"),
            "staffed_beds": Decimal("58.00"),
            "average_daily_census_prev_month": Decimal("42.00"),
            "average_daily_census_change_prev_month": Decimal("1.00"),
            "average_daily_census_change_pct_prev_month": Decimal("2.4"),
            "occupancy_pct_change_prev_month": Decimal("1.7"),
            "admissions_change_prev_month": 8,
            "patient_days_change_pct_prev_month": Decimal("5.8"),
            "average_daily_census_prev_year": Decimal("40.00"),
            "average_daily_census_change_pct_prev_year": Decimal("7.5"),
        }
        (ed,) = reader.select(
            "rpt_monthly_census_units",
            ["is_inpatient_unit", "occupancy_pct", "unit_type"],
            {"facility_code": "NGH", "month_start": OCT, "unit_code": "ED"},
        )
        assert ed == {"is_inpatient_unit": False, "occupancy_pct": Decimal("6.7"), "unit_type": "emergency"}
        trend = reader.select(
            "rpt_monthly_census_trend",
            ["month_start", "has_data", "days_with_data", "is_complete_month", "counts_comparable_prev_month"],
            {"facility_code": "SGH", "month_start": ("between", (date(2026, 8, 1), OCT))},
            order_by=["month_start"],
        )
        assert [tuple(r.values()) for r in trend] == [
            (date(2026, 8, 1), False, 0, False, False),
            (SEP, True, 30, True, False),
            (OCT, True, 31, True, True),
        ]
        # the trend spans a year before the first month with data (October 2025) to the last
        months = reader.select(
            "rpt_monthly_census_trend", ["month_start"], {"facility_code": "NGH"}, order_by=["month_start"]
        )
        assert (months[0]["month_start"], months[-1]["month_start"], len(months)) == (date(2024, 10, 1), OCT, 25)


def test_figures_match_hand_counts(marts):
    ctx = build(marts, entry={**ENTRY, "suppress_small_cells": False})
    ngh = fac(ctx, "NGH")
    t = ngh["total"]
    # October 2026, all inpatient units: 1333 patient days / 31 days; 58 beds; 1077 stay days / 240 discharges
    assert t["current"]["adc"] == Decimal("43.00")
    assert t["current"]["occupancy"] == Decimal("74.1")  # 43 / 58 = 0.74137
    assert t["current"]["alos"] == Decimal("4.49")  # 4.4875, half up
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
        Decimal("11.00"),
        Decimal("91.7"),
        Decimal("4.00"),
    )
    assert icu["vs_prev"]["occupancy"]["value"] == Decimal("8.4")  # 91.7 - 83.3
    # units in acuity order, then the ED (not an inpatient unit, in no total: 2.00 of 30 beds)
    assert [(u["unit_code"], u["inpatient"]) for u in ngh["units"]] == [
        ("ICU", True),
        ("MS5", True),
        ("PSY", True),
        ("ED", False),
    ]
    assert (unit(ngh, "ED")["current"]["adc"], unit(ngh, "ED")["current"]["occupancy"]) == (
        Decimal("2.00"),
        Decimal("6.7"),
    )
    assert t["current"]["staffed_beds"] == 58 and t["vs_prev"]["staffed_beds"]["value"] == 0
    # SGH has no October 2025: no y/y
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
    # the ED is not in the total: it neither hides nor is hidden to protect an inpatient cell
    assert unit(ngh, "ED")["current"]["admissions"] == 0
    # no change is shown to or from a hidden cell, and none is kept in the context
    assert icu["vs_prev"]["admissions"] == {"value": None, "pct": None, "note": "suppressed"}
    assert icu["vs_prev"]["alos"]["value"] is None
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
    for text in (
        r.html,
        r.text,
        r.html_standalone,
        r.attachments[f"{r.filename_stem}.csv"][0].decode(),
        json.dumps(figs),
        *(alt for _, alt in r.images.values()),
    ):
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


def test_small_facility_total_is_suppressed_too(marts):
    load_daily(marts, {("SGH", OCT): (31, {"ICU": (10, 62, 4, 5, 20), "ONC": (18, 93, 0, 3, 12)})})
    ctx = build(marts, flt={"facility": "SGH"})
    sgh = fac(ctx, "SGH")
    assert sgh["total"]["current"]["discharges"] == SUPPRESSED and sgh["total"]["current"]["alos"] == SUPPRESSED
    assert unit(sgh, "ONC")["current"]["admissions"] == 0  # zero is shown
    assert sgh["trend"][-1]["alos"] == SUPPRESSED  # the chart skips it, the alt text says why
    r = KIND.render(ctx, ENTRY, None)
    alt = next(iter(r.images.values()))[1]
    assert "ALOS not shown for Oct 2026 (fewer than 11 discharges)" in alt
    figs = KIND.figures(ctx)
    assert not any(
        isinstance(v, int) and 1 <= v <= 10 for k, v in figs.items() if k.endswith(("admissions", "discharges"))
    )
    # every facility: NGH (in the facilities seed) has no data this month, and says so
    ctx = build(marts)
    assert [(f["facility_code"], f["has_data"]) for f in ctx["facilities"]] == [("NGH", False), ("SGH", True)]
    assert fac(ctx, "NGH")["coverage"]["label"] == "No census data for October 2026."
    r = KIND.render(ctx, ENTRY, None)
    assert "No census data for October 2026." in r.html and len(r.images) == 1
    assert KIND.figures(ctx)["NGH 2026-10 days with data"] == "0 of 31"


def test_render_pdf_charts_csv(marts, tmp_path):
    ctx = build(marts)
    r = KIND.render(ctx, ENTRY, None)
    keep(r, "all_facilities")
    assert r.pdf.startswith(b"%PDF") and r.pdf_pages == 4  # two facilities, a page break between them
    assert len(r.images) == 2  # one trend figure per facility
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
        ("NGH", "ALL"),
        ("NGH", "ICU"),
        ("NGH", "MS5"),
        ("NGH", "PSY"),
        ("NGH", "ED"),
        ("SGH", "ALL"),
        ("SGH", "ICU"),
        ("SGH", "ONC"),
    ]
    ngh_all = rows[0]
    assert (
        ngh_all["average_daily_census"],
        ngh_all["occupancy_pct"],
        ngh_all["average_length_of_stay"],
        ngh_all["admissions"],
        ngh_all["average_daily_census_prev_month"],
        ngh_all["average_daily_census_prev_year"],
    ) == ("43.00", "74.1", "4.49", "245", "42.00", "40.00")
    assert (rows[4]["unit_type"], rows[4]["staffed_beds"], rows[4]["patient_days"]) == ("emergency", "30", "62")
    assert rows[5]["average_daily_census_prev_year"] == ""  # SGH: no October 2025
    (tmp_path / "r.pdf").write_bytes(r.pdf)
    assert "no patient-identifying information" in r.text and "43.00" in r.text

    # without "csv" in the formats: no attachment
    r2 = KIND.render(ctx, {**ENTRY, "formats": ["html", "pdf"]}, None)
    assert r2.attachments == {}


def test_month_to_date_is_flagged(marts):
    months = dict(MONTHS)
    months[("NGH", NOV)] = (
        14,
        {"ICU": (12, 154, 20, 18, 70), "MS5": (32, 406, 95, 90, 400), "PSY": (14, 70, 12, 11, 70)},
    )
    load_daily(marts, months)
    ctx = build(marts, "2026-11", {"facility": "NGH"})
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
    assert "November 2026 to date (14 of 30 days)" in r.html  # the header's period line
    assert "not compared" in r.html
    assert "MONTH TO DATE" in r.text
    alt = next(iter(r.images.values()))[1]
    assert "Nov 2026 covers 14 of 30 days" in alt


def test_figures_version_the_content(marts):
    a = KIND.figures(build(marts))
    b = KIND.figures(build(marts))
    assert a == b and json.dumps(a) == json.dumps(b)
    assert not any("generat" in k.lower() for k in a)
    with connect(marts) as conn:  # a late discharge in September's med/surg (no stay days: ALOS falls)
        conn.execute("""update marts.fct_census_daily set discharges = discharges + 1
                        where facility_code = 'NGH' and unit_code = 'MS5' and census_date = '2026-09-30'""")
    c = KIND.figures(build(marts))
    changed = {label for label, _, _ in kinds.diff_figures(a, c)}
    # MS5: 814 / 186 = 4.38 (was 4.40); the inpatient total: 1054 / 234 = 4.50 (was 4.52)
    assert changed == {
        "NGH MS5 2026-09 discharges",
        "NGH total 2026-09 discharges",
        "NGH MS5 2026-09 ALOS days",
        "NGH total 2026-09 ALOS days",
    }
    assert (c["NGH MS5 2026-09 ALOS days"], c["NGH total 2026-09 ALOS days"]) == ("4.38", "4.50")


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
    models = reporting_models()
    spec = models["rpt_monthly_census_units"]
    narrow = {
        **models,
        "rpt_monthly_census_units": type(spec)(spec.name, spec.schema, {**spec.columns, "unit_name": True}),
    }  # as if unit_name were PHI
    with connect(marts) as conn:
        reader = ReportReader(conn, KIND.models, models=narrow)
        with pytest.raises(ColumnNotAllowed, match="unit_name"):
            KIND.build_context(reader, "2026-10", {}, ENTRY)
        with pytest.raises(ColumnNotAllowed, match="not reporting-layer models: fct_census_period"):
            ReportReader(conn, ["fct_census_period"])
        with pytest.raises(ColumnNotAllowed, match="rpt_daily_census_units is not a model this report reads"):
            reader.select("rpt_daily_census_units", ["unit_code"])


def test_report_issues_only_the_readers_selects_of_its_models(marts):
    """Rendered from its models: every query a plain select from the rpt schema, no sum
    (nothing is added up for this report), and no SQL or connection in the module."""
    with connect(marts) as conn:
        reader = reader_on(conn)
        ctx = KIND.build_context(reader, "2026-10", {}, ENTRY)
    r = KIND.render(ctx, ENTRY, None)
    assert r.pdf.startswith(b"%PDF")
    assert reader.queries and all(
        re.fullmatch(r'select ("\w+", )*"\w+" from "rpt"\."rpt_monthly_census_(units|trend)"( where .*)?', q)
        for q in reader.queries
    ), reader.queries
    source = inspect.getsource(monthly_census)
    for forbidden in ("conn.execute", ".conn", "cursor", "sum(", "marts.", "fct_census"):
        assert forbidden not in source, forbidden


def test_revision_banner_and_subject(marts):
    from datetime import datetime, timezone

    ctx = build(marts)
    rev = kinds.Revision(
        1, datetime(2026, 11, 1, 14, 0, tzinfo=timezone.utc), [("NGH total 2026-10 ADC", "42.90", "43.00")]
    )
    r = KIND.render(ctx, ENTRY, rev)
    assert r.subject.startswith("[REVISED] ") and "Revised report" in r.html
    assert r.text.startswith("REVISED: NGH total 2026-10 ADC: 42.90 → 43.00")


def test_on_marts_built_by_dbt(warehouse_url, tmp_path):
    """The real marts (HL7 -> raw -> dbt): columns and types as the report reads them."""
    from healthops.load.adt import load_adt_date
    from healthops.warehouse.dbt_runner import nightly_build

    from hl7_builders import build_message

    day = date(2026, 2, 2)
    folder = tmp_path / "landing" / "adt" / day.isoformat()
    folder.mkdir(parents=True)
    m = lambda *a, **k: build_message(*a, **k)  # noqa: E731
    folder.joinpath("a.hl7").write_text(
        "".join(
            [
                m("A01", control_id="C1", visit="V1", msg_ts="202602020800", unit="ICU"),
                m("A01", control_id="C2", visit="V2", msg_ts="202602021000", unit="MS5"),
                m("A03", control_id="C3", visit="V2", msg_ts="202602021805", unit="MS5", discharge_ts="202602021800"),
                m("A01", control_id="C4", visit="V3", msg_ts="202602020900", unit="TELE"),
            ]
        )
    )
    load_adt_date(warehouse_url, tmp_path / "landing", day)
    nightly_build(warehouse_url)
    entry = {**ENTRY, "suppress_small_cells": False}
    with connect(warehouse_url) as conn:
        ctx = KIND.build_context(reader_on(conn), "2026-02", {"facility": "NGH"}, entry)
        want = conn.execute("""select days_in_period, patient_days, average_daily_census, average_length_of_stay
                               from marts.fct_census_period where facility_code = 'NGH' and unit_code = 'ALL'
                                 and period_type = 'month' and period_start = '2026-02-01'""").fetchone()
    ngh = fac(ctx, "NGH")
    c = ngh["total"]["current"]
    assert (c["days_with_data"], c["patient_days"], c["adc"], c["alos"]) == tuple(want)
    assert c["patient_days"] == 3 and c["discharges"] == 1  # V1, V3 at midnight + V2 same-day
    assert not ngh["coverage"]["complete"] and ngh["coverage"]["days_with_data"] >= 1
    assert {u["unit_code"] for u in ngh["units"]} >= {"ICU", "MS5", "TELE"}
    assert all(u["inpatient"] for u in ngh["units"])
    r = KIND.render(ctx, entry, None)
    keep(r, "from_dbt")
    assert r.pdf.startswith(b"%PDF") and r.subject.startswith("[MONTH TO DATE: ")
    json.dumps(KIND.figures(ctx))


def test_published_through_the_catalog(marts, tmp_path):
    """The catalog entry, the report's models (its reader) and the PHI guard, over a real SMTP
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
            conn.execute("""update marts.fct_census_daily set admissions = admissions + 1
                            where facility_code = 'NGH' and unit_code = 'ICU' and census_date = '2026-09-30'""")
        again = publish("monthly_census", "2026-10", url=marts, smtp=smtp)
        assert len(again.sent) == 2 and all(s["revision"] == 1 for s in again.sent)
        every = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in box.messages()]
        revised = [x for x in every if x["Subject"].startswith("[REVISED] ")]
        assert len(every) == 4 and len(revised) == 2
        assert "NGH ICU 2026-09 admissions: 35 → 36" in revised[0].get_body(preferencelist=("html",)).get_content()
