"""The monthly data-quality and records governance report (HIM director), end to end on a
real warehouse: hand-written load batches and quarantine rows, real GX validations kept
in the audit trail (a re-run of a day supersedes the first run), a small encounters
mart, and the report's reporting models (rpt_dq_*) built over them once for the module;
then the figures against hand counts, the PDF, charts, CSV, the facility filter, stable
figures, the quarantine's message text never read, and the report module issuing no SQL
but the reader's selects from rpt."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
import yaml

from healthops import config
from healthops.quality import gx_runner
from healthops.reports import phi
from healthops.reports.dq_governance import KIND
from healthops.reports.publish import content_version
from healthops.reports.reader import ColumnNotAllowed, ReportReader, reporting_models
from healthops.warehouse.connection import connect
from healthops.warehouse.migrate import migrate

import db_names
from reporting_build import build_models

RULES = config.EXPECTATIONS_DIR / "census_daily.yml"
MONTH = "2025-03"
D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
FEB28 = dt.date(2025, 2, 28)
PNG = b"\x89PNG\r\n\x1a\n"
MRN, NAME = "M7734001", "WINTERBOTTOM^ROSALIND^Q"

# What dbt builds for the report: its models and the one definition of the latest run they use.
MODELS = ["int_quality__latest_validation_runs", *KIND.models]
ENTRY = {
    "name": "Data quality and records governance",
    "template": "dq_governance.html.j2",
    "subject": "{report_name} — {period_label}",
    "formats": ["html", "pdf", "csv"],
    "sender": "healthops <healthops@localhost>",
    "recipients": ["him.director@example.org"],
}

FILES = [  # received_date, file, in, loaded, rejected, duplicate, loaded_at (facility time, PST)
    (D1, "adt_20250301_01.hl7", 40, 38, 2, 0, "2025-03-01 23:00-08"),
    (D1, "adt_20250301_02.hl7", 12, 12, 0, 0, "2025-03-02 01:00-08"),  # next day: on time
    (D2, "adt_20250302_01.hl7", 50, 46, 3, 1, "2025-03-02 23:30-08"),  # one message resent
    (D3, "adt_20250303_01.hl7", 20, 19, 1, 0, "2025-03-06 02:00-08"),  # three days late
    (FEB28, "adt_20250228_01.hl7", 10, 5, 5, 0, "2025-02-28 23:00-08"),  # another month
]
PHI_TEXT = f"MSH|^~\\&|EHR|NGH|||202503011200||ADT^A01|C9|P|2.5\rPID|1||{MRN}^^^NGH^MR||{NAME}||19480719|F"
REJECTED = [  # received_date, file, reason (raw_text always holds a patient's name and MRN)
    (D1, "adt_20250301_01.hl7", "duplicate message: control id C100 from NGH already loaded (first seen in batch x)"),
    (D1, "adt_20250301_01.hl7", "unparseable time in MSH-7: '2025130101'"),
    (D2, "adt_20250302_01.hl7", "unknown trigger event 'A99' (MSH-9 'ADT^A99')"),
    (D2, "adt_20250302_01.hl7", "PV1-3 assigned unit missing (required for A01)"),
    (D2, "adt_20250302_01.hl7", "PV1-3 assigned unit missing (required for A02)"),
    (D3, "adt_20250303_01.hl7", "duplicate message: control id C200 from SGH already loaded (first seen in batch y)"),
] + [(FEB28, "adt_20250228_01.hl7", "PV1 segment missing")] * 5

CENSUS_DDL = """
create table marts.fct_census_daily (
    facility_code text, unit_code text, census_date date, midnight_census integer, admissions integer,
    discharges integer, transfers_in integer, transfers_out integer, patient_days integer, staffed_beds integer)
"""
CLEAN = [("NGH", "ICU", D1, 10, 2, 1, 1, 0, 10, 12), ("NGH", "SDU", D1, 14, 1, 2, 0, 1, 14, 16)]
# 2 negative census rows (CEN-005, blocking, plausibility), 1 unit over staffed beds (CEN-012, warning, plausibility)
DIRTY = CLEAN + [
    ("NGH", "PSY", D2, -1, 0, 1, 0, 0, 0, 14),
    ("NGH", "PSY", D1, -2, 0, 1, 0, 0, 0, 14),
    ("NGH", "PEDS", D1, 15, 2, 0, 0, 0, 15, 12),
]

ENC_DDL = """
create table marts.fct_encounters (
    facility_code text not null, encounter_key text not null primary key, patient_key text,
    first_event_at timestamp not null, admit_at timestamp, discharge_at timestamp, length_of_stay_days integer,
    encounter_status text not null)
"""
T = dt.datetime
ENCOUNTERS = [  # facility, key, first event, admit, discharge, LOS, status
    ("NGH", "e1", T(2025, 3, 3, 9), T(2025, 3, 3, 9), T(2025, 3, 7, 11), 4, "discharged"),
    ("NGH", "e2", T(2025, 3, 10, 8), T(2025, 3, 10, 8), T(2025, 3, 10, 17), 1, "discharged"),  # same-day stay
    ("NGH", "e3", T(2025, 2, 20, 7), T(2025, 2, 20, 7), T(2025, 3, 5, 10), 13, "discharged"),
    ("NGH", "e4", T(2025, 1, 15, 6), T(2025, 1, 15, 6), None, None, "in_house"),  # open 75 days: missing A03?
    ("NGH", "e5", T(2025, 2, 1, 22), None, None, None, "in_house"),  # ED visit never closed
    ("NGH", "e6", T(2025, 3, 12, 13), None, None, None, "cancelled"),  # admit cancelled (A11)
    ("NGH", "e7", T(2025, 3, 20, 10), T(2025, 3, 20, 10), None, None, "in_house"),
    ("NGH", "e8", T(2025, 3, 31, 23, 30), T(2025, 3, 31, 23, 30), None, None, "in_house"),
    ("NGH", "e9", T(2025, 3, 25, 2), None, None, None, "discharged"),  # ED visit, ended
    ("NGH", "e10", T(2025, 2, 25, 4), T(2025, 3, 3, 4), None, None, "in_house"),  # ED since Feb 25, admitted Mar 3
    ("NGH", "e11", T(2025, 3, 28, 9), T(2025, 3, 28, 9), T(2025, 4, 1, 0, 0), 4, "discharged"),  # April discharge
    ("SGH", "s1", T(2025, 1, 1, 12), T(2025, 1, 1, 12), None, None, "in_house"),
    ("SGH", "s2", T(2025, 3, 5, 12), T(2025, 3, 5, 12), T(2025, 3, 6, 12), 1, "discharged"),
]


def _set_mart(url, rows):
    with connect(url) as conn:
        conn.execute("drop table if exists marts.fct_census_daily")
        conn.execute(CENSUS_DDL)
        with conn.cursor() as cur:
            cur.executemany("insert into marts.fct_census_daily values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)


@pytest.fixture(scope="module")
def warehouse(pg_server, tmp_path_factory):
    """One warehouse for the module (the GX validations are the slow part); tests that
    change data do it in a transaction they roll back."""
    url = db_names.create(pg_server)
    state = tmp_path_factory.mktemp("dq_state")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("HEALTHOPS_HOME", "home"), ("HEALTHOPS_OUT", "out"), ("HEALTHOPS_LANDING", "landing")):
            mp.setenv(var, str(state / sub))
        migrate(url)
        with connect(url) as conn:
            batch = {}
            for d, f, n_in, n_loaded, n_rej, n_dup, loaded_at in FILES:
                batch[f] = uuid.uuid4()
                conn.execute(
                    """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256,
                           file_bytes, records_in, records_loaded, records_rejected, records_duplicate, dag_run_id,
                           loaded_at)
                       values (%s, 'adt', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (
                        batch[f],
                        d,
                        f"adt/{d}/{f}",
                        f"{abs(hash(f)):064x}"[:64],
                        1000 + n_in,
                        n_in,
                        n_loaded,
                        n_rej,
                        n_dup,
                        f"scheduled__{d}",
                        loaded_at,
                    ),
                )
            for i, (d, f, reason) in enumerate(REJECTED):
                conn.execute(
                    """insert into raw.rejected (batch_id, source, received_date, file_path, message_index,
                           control_id, reason, raw_text) values (%s, 'adt', %s, %s, %s, %s, %s, %s)""",
                    (batch[f], d, f"adt/{d}/{f}", i + 1, f"C{i}", reason, PHI_TEXT),
                )
            # the patient exists in raw, so the PHI scan knows her name and MRN
            conn.execute(
                """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                       sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn,
                       patient_name, birth_date, raw_text)
                   values (%s, %s, 'x.hl7', 1, 'C1', 'NGH', 'ADT', 'A01', now(), now(), 'V1', %s, %s,
                           '1948-07-19', %s)""",
                (batch[FILES[0][1]], D1, MRN, NAME, PHI_TEXT),
            )
            conn.execute(ENC_DDL)
            with conn.cursor() as cur:
                cur.executemany(
                    """insert into marts.fct_encounters (facility_code, encounter_key, patient_key, first_event_at,
                           admit_at, discharge_at, length_of_stay_days, encounter_status)
                       values (%s, %s, 'pk-' || %s, %s, %s, %s, %s, %s)""",
                    [(fac, key, key, first, adm, dis, los, st) for fac, key, first, adm, dis, los, st in ENCOUNTERS],
                )
        # D1 clean; D2 dirty, then re-run clean (the re-run counts); D3 dirty
        _set_mart(url, CLEAN)
        gx_runner.validate_and_record(url, RULES, D1, f"scheduled__{D1}")
        _set_mart(url, DIRTY)
        gx_runner.validate_and_record(url, RULES, D2, f"scheduled__{D2}")
        _set_mart(url, CLEAN)
        gx_runner.validate_and_record(url, RULES, D2, f"manual__{D2}")
        _set_mart(url, DIRTY)
        gx_runner.validate_and_record(url, RULES, D3, f"scheduled__{D3}")
        build_models(url, MODELS)  # the views, over the tables as they now are
        yield url
    db_names.drop(pg_server, db_names.name_of(url))


def build(url, flt=None, entry=ENTRY, period=MONTH):
    with connect(url) as conn:
        reader = ReportReader(conn, KIND.models)
        ctx = KIND.build_context(reader, period, flt or {}, entry)
    return ctx, reader


@pytest.fixture(scope="module")
def built(warehouse):
    return build(warehouse)


@pytest.fixture(scope="module")
def rendered(built):
    ctx, _ = built
    return KIND.render(ctx, ENTRY, None)


def test_kind_interface():
    assert (KIND.period, KIND.filter_keys, KIND.required_filter) == ("month", ("facility",), ())


def test_feed_figures_match_hand_counts(built):
    ctx, _ = built
    s = ctx["summary"]
    # March files only: 40 + 12 + 50 + 20 in; 38 + 12 + 46 + 19 loaded; 2 + 0 + 3 + 1 rejected; 1 duplicate
    assert (s["files"], s["messages_in"], s["messages_loaded"], s["messages_rejected"], s["messages_duplicate"]) == (
        4,
        122,
        115,
        6,
        1,
    )
    assert str(s["rejection_rate"]) == "4.92"  # 6 / 122 = 4.918 %
    assert (s["days_with_data"], s["days_in_month"], len(s["missing_days"])) == (3, 31, 28)
    assert s["missing_days_label"] == "Mar 4–31"
    assert (s["quarantined"], s["quarantine_reconciles"]) == (6, True)
    assert (s["files_loaded_late"], s["max_load_lag_days"]) == (1, 3)
    day = {d["date"]: d for d in ctx["daily"]}
    assert (day[D2]["messages_in"], day[D2]["rejected"], day[D2]["duplicate"], str(day[D2]["rejection_rate"])) == (
        50,
        3,
        1,
        "6.00",
    )
    assert not day[dt.date(2025, 3, 4)]["has_data"] and day[dt.date(2025, 3, 4)]["rejection_rate"] is None

    reasons = [(r["category"], r["count"], str(r["share"]), r["days"]) for r in ctx["reasons"]]
    assert reasons == [
        ("PV1-3 assigned unit missing", 2, "33.3", 1),
        ("duplicate message", 2, "33.3", 2),
        ("unknown trigger event", 1, "16.7", 1),
        ("unparseable time in MSH-7", 1, "16.7", 1),
    ]


def test_kahn_pass_rates_use_each_days_latest_run(built):
    ctx, _ = built
    kahn = {k["category"]: (k["checks"], k["passed"], k["failed"], str(k["pass_rate"])) for k in ctx["kahn"]}
    # 3 days (D2 by its clean re-run) x census_daily's rules: completeness 4, conformance 2, plausibility 7;
    # D3 fails CEN-005 and CEN-012 (both plausibility). Counting every run would give plausibility 24 / 28.
    assert kahn == {
        "conformance": (6, 6, 0, "100.0"),
        "completeness": (12, 12, 0, "100.0"),
        "plausibility": (21, 19, 2, "90.5"),
    }
    t = ctx["kahn_total"]
    assert (t["checks"], t["passed"], str(t["pass_rate"])) == (39, 37, "94.9")
    v = ctx["validation"]
    assert (v["runs"], v["latest_runs"], v["superseded"], v["days_validated"]) == (4, 3, 1, 3)
    assert v["suites"] == [{"suite": "census_daily", "days": 3, "days_passed": 2}]
    top = [(r["rule_id"], r["severity"], r["days_failed"], r["days_run"], r["worst"]) for r in ctx["top_rules"]]
    assert top == [
        ("CEN-005", "blocking", 1, 3, {"date": D3, "rows_violating": 2, "rows_evaluated": 5}),
        ("CEN-012", "warning", 1, 3, {"date": D3, "rows_violating": 1, "rows_evaluated": 5}),
    ]
    assert ctx["top_rules"][0]["description"] == "The midnight census is never negative."
    assert ctx["top_rules"][0]["failed_days_label"] == "Mar 3"


def test_records_governance_counts_and_facility_filter(warehouse, built):
    ctx, _ = built
    everyone = {g["key"]: g["count"] for g in ctx["governance"]}
    assert everyone == {
        "begun": 8,
        "cancelled": 1,
        "admitted": 7,
        "discharged": 4,
        "discharged_no_los": 0,
        "open_inpatient": 2,
        "open_other": 1,
    }
    ngh, _ = build(warehouse, {"facility": "NGH"})
    assert {g["key"]: g["count"] for g in ngh["governance"]} == {
        "begun": 7,
        "cancelled": 1,
        "admitted": 6,
        "discharged": 3,
        "discharged_no_los": 0,
        "open_inpatient": 1,
        "open_other": 1,
    }
    # the feed cannot be split by facility: the same figures, and the report says so
    assert ngh["summary"] == ctx["summary"] and ngh["reasons"] == ctx["reasons"]
    assert ngh["facility_name"] == "Northgate General Hospital"
    r = KIND.render(ngh, ENTRY, None)
    assert "cover every facility of the ADT feed" in r.html and "Northgate General Hospital only" in r.html
    assert r.filename_stem == "dq_governance_NGH_2025-03" and "Northgate General Hospital" in r.subject


def test_encounter_model_holds_counts_only(warehouse):
    """marts.fct_encounters' keys and timestamps stay in dbt: the report's model of it has
    one row per month and facility, counts only, and the reader serves nothing else."""
    spec = reporting_models()["rpt_dq_encounter_counts"]
    assert set(spec.columns) == {
        "month_start",
        "facility_code",
        "facility_name",
        "encounters_begun",
        "encounters_cancelled",
        "admissions",
        "discharges",
        "discharges_without_los",
        "open_inpatient_stays",
        "open_other_encounters",
        "open_after_days",
    }
    assert not any(spec.columns.values())  # every column phi: false
    with connect(warehouse) as conn:
        built_columns = {
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'rpt' and table_name = 'rpt_dq_encounter_counts'"
            ).fetchall()
        }
        assert built_columns == set(spec.columns)
        reader = ReportReader(conn, KIND.models)
        for phi_column in ("encounter_key", "patient_key", "first_event_at"):
            with pytest.raises(ColumnNotAllowed, match=phi_column):
                reader.select("rpt_dq_encounter_counts", [phi_column])
        # hand counts, SGH (s1 open since Jan 1; s2 admitted and discharged in March) and NGH's open ones
        rows = {
            r["facility_code"]: r
            for r in reader.select(
                "rpt_dq_encounter_counts",
                [
                    "facility_code",
                    "facility_name",
                    "encounters_begun",
                    "admissions",
                    "discharges",
                    "open_inpatient_stays",
                    "open_other_encounters",
                    "open_after_days",
                ],
                {"month_start": dt.date(2025, 3, 1)},
            )
        }
        assert rows["SGH"] == {
            "facility_code": "SGH",
            "facility_name": "Southgate General Hospital",
            "encounters_begun": 1,
            "admissions": 1,
            "discharges": 1,
            "open_inpatient_stays": 1,
            "open_other_encounters": 0,
            "open_after_days": 30,
        }
        # e4 (admitted Jan 15) is open; e10 (ED Feb 25, admitted Mar 3: 29 days before April) is not yet
        assert (rows["NGH"]["open_inpatient_stays"], rows["NGH"]["open_other_encounters"]) == (1, 1)
        assert reader.queries == [q for q in reader.queries if q.startswith('select "facility_code"')]


def test_small_cells_suppressed_when_the_catalog_asks(warehouse):
    ctx, _ = build(warehouse, entry={**ENTRY, "suppress_small_cells": True})
    counts = {g["key"]: g["count"] for g in ctx["governance"]}
    assert counts["begun"] == phi.SUPPRESSED and counts["discharged_no_los"] == 0


def test_raw_text_is_never_read(built, rendered, warehouse):
    _, reader = built
    assert reader.queries and not any("raw_text" in q or '"raw"' in q for q in reader.queries)
    with connect(warehouse) as conn:
        views = dict(
            conn.execute(
                "select viewname, definition from pg_views where schemaname = 'rpt' and viewname like 'rpt_dq_%'"
            ).fetchall()
        )
    assert set(views) == set(KIND.models)
    # the quarantine is read by one view, for its day, source and category only
    readers_of_quarantine = sorted(v for v, d in views.items() if "raw.rejected" in d)
    assert readers_of_quarantine == ["rpt_dq_feed_days", "rpt_dq_rejections_daily"]
    for name in readers_of_quarantine:
        assert "raw_text" not in views[name] and not re.search(r"\.reason\b", views[name]), name
    assert all(not where.endswith(".raw_text") for where, _ in reader.strings)
    # the quarantined message text (a patient's name, MRN, birth date) reaches no part of the report
    texts = phi.rendered_texts(rendered)
    for part in texts.values():
        for needle in ("WINTERBOTTOM", "ROSALIND", MRN, "19480719"):
            assert needle not in part.upper()
    assert b"WINTERBOTTOM" not in rendered.pdf
    with connect(warehouse) as conn:
        phi.guard(conn, "dq_governance", reader, rendered)  # nothing found: it may be sent


def test_rendered_report(built, rendered):
    ctx, _ = built
    r = rendered
    assert r.subject == "Data quality and records governance — March 2025"
    assert r.pdf.startswith(b"%PDF-") and r.pdf_pages == 3
    assert r.filename_stem == "dq_governance_ALL_2025-03" and r.facility_code == "ALL"
    assert len(r.images) == 2
    for cid, (png, alt) in r.images.items():
        assert png.startswith(PNG) and len(png) > 5000
        assert f'src="cid:{cid}"' in r.html
        assert alt and len(alt) > 60
        m = re.search(r'src="cid:' + re.escape(cid) + r'" alt="([^"]+)"', r.html)
        assert m and m.group(1) == alt.replace("&", "&amp;").replace("'", "&#39;")
    alts = sorted(alt for _, alt in r.images.values())
    assert alts[0].startswith(
        "Bar chart of rejected messages by reason for March 2025, 6 in all: PV1-3 assigned unit missing 2 (33.3%)"
    )
    assert (
        alts[1].startswith(
            "Chart of messages received per day in March 2025: 122 messages on 3 of 31 days, 6 rejected (4.92%)"
        )
        and "No file on Mar 4–31." in alts[1]
    )
    assert "data:image/png;base64," in r.html_standalone and "cid:" not in r.html_standalone
    for text in (
        "4.92%",
        "PV1-3 assigned unit missing",
        "Plausibility",
        "90.5%",
        "CEN-005",
        "The midnight census is never negative.",
        "No ADT file was received on 28 of 31 days",
        "1 blocking data-quality rule failed",
        "possible missing discharges (A03)",
        "All figures cover every facility of the ADT feed",
    ):
        assert text in r.html, text
    assert "122 messages in = 115 loaded + 6 rejected + 1 duplicate" in r.text
    assert "<strong>1</strong> resent" in r.html and "Duplicates (resent)" in r.html


def test_a_month_without_data_still_reports_the_gap(warehouse):
    ctx, _ = build(warehouse, period="2025-06")
    s = ctx["summary"]
    assert (s["files"], s["messages_in"], s["rejection_rate"], s["days_with_data"], s["days_in_month"]) == (
        0,
        0,
        None,
        0,
        30,
    )
    assert ctx["reasons"] == [] and ctx["top_rules"] == [] and ctx["kahn_total"]["checks"] == 0
    assert [(k["category"], k["checks"], k["pass_rate"]) for k in ctx["kahn"]] == [
        ("conformance", 0, None),
        ("completeness", 0, None),
        ("plausibility", 0, None),
    ]
    assert ctx["attention"][0] == "No ADT file was received on 30 of 30 days (Jun 1–30)."
    r = KIND.render(ctx, ENTRY, None)
    assert "No data-quality validation ran in June 2025" in r.html and "No message was rejected" in r.html
    assert all(png.startswith(PNG) for png, _ in r.images.values())


def test_a_revision_is_marked(built):
    from healthops.reports.kinds import Revision

    rev = Revision(1, dt.datetime(2025, 4, 1, 14, tzinfo=dt.timezone.utc), [("messages in March 2025", 120, 122)])
    r = KIND.render(built[0], ENTRY, rev)
    assert r.subject.startswith("[REVISED] ") and "Revised report" in r.html
    assert r.text.startswith("REVISED: messages in March 2025: 120 → 122")


def test_csv_rejections_by_day_and_reason(built, rendered):
    (name,) = rendered.attachments
    data, mime = rendered.attachments[name]
    assert name == "dq_governance_ALL_2025-03_rejections.csv" and mime == "text/csv"
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows == [
        ["received_date", "source", "reason_category", "rejected"],
        ["2025-03-01", "adt", "duplicate message", "1"],
        ["2025-03-01", "adt", "unparseable time in MSH-7", "1"],
        ["2025-03-02", "adt", "PV1-3 assigned unit missing", "2"],
        ["2025-03-02", "adt", "unknown trigger event", "1"],
        ["2025-03-03", "adt", "duplicate message", "1"],
    ]
    assert KIND.render(built[0], {**ENTRY, "formats": ["html", "pdf"]}, None).attachments == {}


def test_figures_stable_and_changed_by_data(warehouse, built):
    import json

    a = KIND.figures(built[0])
    b = KIND.figures(build(warehouse)[0])
    json.dumps(a)  # JSON-able
    assert a == b and content_version(a) == content_version(b)
    assert a["messages in March 2025"] == 122 and a["rejection rate March 2025"] == "4.92%"
    assert a["plausibility checks passed"] == "19 of 21 (90.5%)"
    assert a["rejected: duplicate message"] == 2
    # a late file for Mar 4 with one rejected message; rolled back afterwards
    with connect(warehouse) as conn:
        batch = uuid.uuid4()
        conn.execute(
            """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256,
                            file_bytes, records_in, records_loaded, records_rejected, loaded_at)
                        values (%s, 'adt', '2025-03-04', 'adt/2025-03-04/late.hl7', 'ab', 10, 8, 7, 1,
                                '2025-03-04 23:00-08')""",
            (batch,),
        )
        conn.execute(
            """insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason,
                            raw_text) values (%s, 'adt', '2025-03-04', 'adt/2025-03-04/late.hl7', 3,
                            'PV1 segment missing', 'x')""",
            (batch,),
        )
        c = KIND.figures(KIND.build_context(ReportReader(conn, KIND.models), MONTH, {}, ENTRY))
        conn.rollback()
    assert content_version(c) != content_version(a)
    assert c["messages in March 2025"] == 130 and c["rejected: PV1 segment missing"] == 1
    assert c["days with data March 2025"] == "4 of 31"
    assert KIND.figures(build(warehouse)[0]) == a  # rolled back: as before


SAMPLE_REASONS = [  # reason -> its category, by hand
    ("duplicate message: control id C1 from NGH already loaded", "duplicate message"),
    ("unknown trigger event 'A99' (MSH-9 'ADT^A99')", "unknown trigger event"),
    ("PV1-3 assigned unit missing (required for A04)", "PV1-3 assigned unit missing"),
    ("file ends mid-message: MLLP end block (0x1C 0x0D) missing", "file ends mid-message"),
    ("PV1 segment missing", "PV1 segment missing"),
    ("not an HL7 message: 120 bytes starting 'PID|1||M7734001^^^NGH^MR||WINTERBOTTOM^ROSALIND'", "not an HL7 message"),
    ("unparseable date in PID-7: '19480719x'", "unparseable date in PID-7"),
    (
        "undecodable bytes for character set utf-8 (MSH-18 'UNICODE UTF-8'): 0xff at byte 9",
        "undecodable bytes for character set utf-8",
    ),
    ("", "unspecified"),
]


def test_the_warehouse_category_column_is_the_reasons_kind_without_quoted_phi(warehouse_url):
    """raw.rejected.reason_category, generated by PostgreSQL, is the one definition of a
    rejection's category (reports and the CLI read it): the reason's text before its
    first ':', without quoted or bracketed values, so it never holds what the reason quotes."""
    import uuid as _uuid

    from healthops.warehouse.connection import connect as _connect

    with _connect(warehouse_url) as conn:
        b = _uuid.uuid4()
        for i, (reason, _) in enumerate(SAMPLE_REASONS):
            conn.execute(
                """insert into raw.rejected (batch_id, source, received_date, file_path, message_index,
                                reason, raw_text) values (%s, 'adt', '2025-03-01', 'f', %s, %s, 'x')""",
                (b, i, reason),
            )
        got = conn.execute("select reason, reason_category from raw.rejected order by message_index").fetchall()
    assert [c for _, c in got] == [category for _, category in SAMPLE_REASONS]
    assert not any("M7734001" in c or "WINTERBOTTOM" in c for _, c in got)


def test_a_facility_on_the_feed_without_a_recipient_is_named(warehouse, tmp_path, monkeypatch):
    """Onboarding: SGH's census is built, but the catalog has no daily census recipient for it yet."""
    catalog = yaml.safe_load((config.REPORT_TEMPLATES_DIR / "catalog.yml").read_text())
    daily = catalog["reports"]["daily_census"]
    daily["recipients"] = [r for r in daily["recipients"] if r["filter"]["facility"] != "SGH"]
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv("HEALTHOPS_REPORT_CATALOG", str(path))
    with connect(warehouse) as conn:
        conn.execute("insert into marts.fct_census_daily values ('SGH', 'ICU', %s, 3, 1, 0, 0, 0, 3, 10)", (D2,))
        ctx = KIND.build_context(ReportReader(conn, KIND.models), MONTH, {}, ENTRY)
        conn.rollback()
    assert ctx["no_audience"] == [
        {"facility_code": "SGH", "facility_name": "Southgate General Hospital", "reports": ["daily_census"]}
    ]
    assert (
        "Southgate General Hospital (SGH) is on the feed but has no recipient of daily_census in the report "
        "catalog: its data is loaded, built and checked, and no one receives its report."
    ) in ctx["attention"]
    assert KIND.figures(ctx)["no recipient for SGH"] == "daily_census"
    assert build(warehouse)[0]["no_audience"] == []  # the shipped catalog covers NGH, the facility on the feed


def test_rendered_from_its_models_with_no_sql_but_the_readers_selects(built, rendered):
    """Every figure comes from a rpt_dq_* model: the report issued only the reader's
    selects (and one sum for a recipient's facilities) from the rpt schema, and its
    module holds no SQL, no connection and no import of the pipeline."""
    import inspect

    from healthops.reports import dq_governance

    _, reader = built
    assert rendered.pdf and reader.queries
    for q in reader.queries:
        assert re.fullmatch(r'select .+ from "rpt"\."rpt_dq_[a-z_]+"( where .+)?', q, re.S), q
        assert " join " not in q and " group by " not in q, q
    sums = [q for q in reader.queries if "sum(" in q]
    assert len(sums) == 1 and '"rpt"."rpt_dq_encounter_counts"' in sums[0]
    assert {re.search(r'from "rpt"\."(\w+)"', q).group(1) for q in reader.queries} == set(KIND.models)
    source = inspect.getsource(dq_governance)
    for forbidden in (
        ".conn",
        "execute(",
        "psycopg",
        "healthops.pipeline",
        "healthops.orchestration",
        "healthops.warehouse",
        "reason_category(",
    ):
        assert forbidden not in source, forbidden


def test_the_exposure_depends_on_exactly_the_kinds_models():
    doc = yaml.safe_load((config.DBT_PROJECT_DIR / "models/reporting/exposures/dq_governance.yml").read_text())
    (exposure,) = doc["exposures"]
    assert exposure["name"] == "dq_governance"
    assert exposure["depends_on"] == [f"ref('{m}')" for m in KIND.models]
    specs = reporting_models()
    for m in KIND.models:  # every column says whether it is PHI, and none of these is
        assert specs[m].columns and not any(specs[m].columns.values()), m


def test_more_than_eight_reasons_chart_the_rest_as_one_bar(warehouse):
    """May 2025: ten reason categories, 10 down to 1 rejections (55): the chart shows the
    eight largest and one bar for the two others (2 + 1 = 3, 5.5 %); the table lists all."""
    with connect(warehouse) as conn:
        batch = uuid.uuid4()
        for i in range(10):
            for j in range(10 - i):
                conn.execute(
                    """insert into raw.rejected (batch_id, source, received_date, file_path, message_index,
                                    reason, raw_text) values (%s, 'adt', '2025-05-02', 'f', %s, %s, 'x')""",
                    (batch, i * 100 + j, f"reason {i:02d}: detail {j}"),
                )
        ctx = KIND.build_context(ReportReader(conn, KIND.models), "2025-05", {}, ENTRY)
        conn.rollback()
    assert [r["category"] for r in ctx["reasons"]] == [f"reason {i:02d}" for i in range(10)]
    assert [(b["label"], b["count"], str(b["share"])) for b in ctx["reason_bars"]][-2:] == [
        ("reason 07", 3, "5.5"),
        ("2 other reasons", 3, "5.5"),
    ]
    assert len(ctx["reason_bars"]) == 9 and [b["is_other"] for b in ctx["reason_bars"]] == [False] * 8 + [True]
    assert str(ctx["reasons"][0]["share"]) == "18.2"  # 10 / 55
    # the quarantine holds 55 that no load batch counted: the report says so first
    assert ctx["attention_level"] == "error" and ctx["attention"][0].startswith(
        "The quarantine holds 55 rejected messages for the month but the load batches counted 0"
    )
    r = KIND.render(ctx, ENTRY, None)
    alt = next(alt for _, alt in r.images.values() if alt.startswith("Bar chart"))
    assert alt.endswith("reason 07 3 (5.5%); and 2 more reasons, listed in the table.")
    assert r.subject.startswith("[ATTENTION] ")


def test_the_models_grain_and_not_null_tests_pass_on_the_hand_made_rows(warehouse):
    """dbt's data tests of the report's models (one row per grain, keys not null)."""
    import tempfile

    from healthops.warehouse.dbt_runner import run_dbt

    with tempfile.TemporaryDirectory(prefix="healthops-dbt-") as target:
        proc = run_dbt(
            ["test", "--select", " ".join(KIND.models), "--target-path", target, "--log-path", target],
            warehouse,
            check=False,
            capture=True,
        )
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r"PASS=(\d+) WARN=0 ERROR=0 SKIP=0", proc.stdout)
    assert passed and int(passed.group(1)) >= 20, proc.stdout[-3000:]  # 27 tests on the 11 models
