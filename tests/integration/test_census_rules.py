"""The census SQL rules (feed, load batches, timeline, encounters) run by real GX
against a real PostgreSQL, through ``validate_census``: a clean warehouse passes
every census suite; each planted defect fails its rule with the exact number of
violating rows, the right severity and the evidence rows; edge cases of the feed
and rejection rules (silent day, DST day, late messages, the rate at the limit)
count as documented. Tables are built by hand with the dbt models' columns."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from zoneinfo import ZoneInfo

import pytest
import yaml

from healthops import config, pipeline
from healthops.quality import gx_runner
from healthops.quality.rules import load_rules, rule_files
from healthops.warehouse.connection import connect

TZ = "America/Los_Angeles"
D = dt.date(2025, 3, 1)
# the census mart's suite runs last (the report reads the latest run)
SUITES = [
    "census_adt_feed",
    "census_encounters",
    "census_load_batches",
    "census_location_timeline",
    "census_source_freshness",
    "census_daily",
]
NEW_RULES = ["CEN-014", "CEN-015", "CEN-016", "CEN-017", "CEN-018", "CEN-019", "CEN-020"]
# Rules this module proves can fail, each with an exact count of violating rows
# (test_planted_defects_fail_their_rules_with_exact_counts); tests/unit/test_rule_coverage.py
# checks that the modules' PROVES_RULES together cover the whole catalog.
PROVES_RULES = {"CEN-014", "CEN-015", "CEN-016", "CEN-017", "CEN-018", "CEN-019", "CEN-020", "CEN-024"}
FEED = config.EXPECTATIONS_DIR / "census_adt_feed.yml"
BATCHES = config.EXPECTATIONS_DIR / "census_load_batches.yml"
ENCOUNTERS = config.EXPECTATIONS_DIR / "census_encounters.yml"


@pytest.fixture(autouse=True)
def facility_tz(monkeypatch):
    monkeypatch.setenv("HEALTHOPS_FACILITY_TZ", TZ)


def local(d: dt.date, hh: int, mm: int = 0, days: int = 0) -> dt.datetime:
    return dt.datetime.combine(d + dt.timedelta(days=days), dt.time(hh, mm), tzinfo=ZoneInfo(TZ))


def ts(s: str) -> dt.datetime:  # timeline times are local, without zone
    return dt.datetime.fromisoformat(s)


DDL = """
create table staging.units (
    facility_code text, unit_code text, unit_name text, unit_type text,
    staffed_beds integer, licensed_beds integer, cost_center text);
create table marts.fct_census_daily (
    facility_code text, unit_code text, census_date date, midnight_census integer,
    admissions integer, discharges integer, transfers_in integer, transfers_out integer,
    patient_days integer, observation_census integer, observation_days integer,
    staffed_beds integer, occupancy numeric, computed_through_loaded_at timestamptz);
create table intermediate.int_census__location_timeline (
    facility_code text, encounter_key text, patient_key text, segment_no integer,
    trigger_event text, census_class text, unit_code text, room text, bed text,
    segment_start timestamp, segment_end timestamp, is_inpatient boolean,
    is_observation boolean, inpatient_stay_no integer, source_loaded_at timestamptz);
create table marts.fct_encounters (
    facility_code text, encounter_key text, patient_key text, first_event_at timestamp,
    admit_at timestamp, discharge_at timestamp, length_of_stay_days integer, unit_path text,
    class_history text, encounter_status text);
"""

UNITS = [("NGH", u, u, "x", 10, 12, "6000") for u in ("ICU", "SDU", "TELE", "MS5", "PEDS", "PSY", "ED")] + [
    ("SMC", "MS2", "Med/Surg 2", "medical_surgical", 20, 22, "7000"),
    ("SGH", "ICU", "ICU", "critical_care", 8, 8, "8000"),
]
FACILITIES = ("NGH", "SMC", "SGH")

CENSUS = [("NGH", u, D, 5, 1, 1, 0, 0, 5, 0, 0, 10, 0.5) for u in ("ICU", "SDU", "TELE", "MS5")]


# -- raw.adt_messages -----------------------------------------------------------
_MSG_NO = [0]  # control ids C00001, C00002, ... across the module


def msg(facility, when, received=D, location_facility=None):
    _MSG_NO[0] += 1
    return dict(
        sending_facility=facility,
        message_ts=when,
        received_date=received,
        location_facility=location_facility,
        control_id=f"C{_MSG_NO[0]:05d}",
    )


def every_three_hours(facility, d=D, minute=30):
    # 00:30, 03:30, ..., 21:30 local: gaps 0.5 h, 3 h x 7, 2.5 h (all <= 4 h)
    return [msg(facility, local(d, h, minute), received=d) for h in range(0, 24, 3)]


CLEAN_MESSAGES = (
    every_three_hours("NGH")
    + every_three_hours("SMC")
    + every_three_hours("SGH", minute=0)
    + [
        msg("NGH", local(D, 23, 0, days=-2), location_facility="NGH"),  # late: stamped two days back
        msg("NGH", local(D, 12, 0, days=-1), received=D - dt.timedelta(days=1)),  # another receipt date
        msg("XYZ", local(D, 12, 0, days=-1), received=D - dt.timedelta(days=1)),
    ]  # idem: not this run's
)
N_CLEAN_TODAY = 3 * 8 + 1
N_CLEAN_GAPS = 3 * 9  # per facility: 8 messages in the day -> 9 gaps

# CEN-014: 2 messages from an unknown sender, 1 from NGH naming an unknown location facility
UNKNOWN_FACILITY = [
    msg("XYZ", local(D, 10)),
    msg("XYZ", local(D, 11)),
    msg("NGH", local(D, 12, 15), location_facility="QQQ"),
]


# CEN-015: SMC is silent 09:30 -> 18:30 (9 h); SGH's feed stops after 09:00
# (09:00 -> midnight, 15 h): 2 violating gaps.
def dirty_feed():
    smc = [m for m in every_three_hours("SMC") if m["message_ts"].hour not in (12, 15)]  # 09:30 -> 18:30
    sgh = [m for m in every_three_hours("SGH", minute=0) if m["message_ts"].hour <= 9]
    ngh = every_three_hours("NGH")
    late = [msg("NGH", local(D, 23, 0, days=-2), location_facility="NGH")]
    return ngh + smc + sgh + late + UNKNOWN_FACILITY


def insert_messages(conn, messages):
    batch = uuid.uuid4()
    with conn.cursor() as cur:
        cur.executemany(
            """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                   sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number,
                   location_facility, unit, raw_text)
               values (%s, %s, 'adt/x.hl7', %s, %s, %s, 'ADT^A08', 'A08', %s, %s, 'V1', %s, 'ICU', 'MSH|...')""",
            [
                (
                    batch,
                    m["received_date"],
                    i,
                    m["control_id"],
                    m["sending_facility"],
                    m["message_ts"],
                    m["message_ts"],
                    m["location_facility"],
                )
                for i, m in enumerate(messages)
            ],
        )


# -- audit.load_batches ----------------------------------------------------------
CLEAN_BATCHES = [  # (source, received_date, in, rejected)
    ("adt", D, 100, 2),
    ("adt", D, 50, 1),  # 3 / 150 = 2 %
    ("adt", D - dt.timedelta(days=1), 10, 5),  # another date: 50 %
    ("hr", D, 10, 9),  # another source
]
DIRTY_BATCHES = CLEAN_BATCHES + [("adt", D, 10, 10)]  # 13 / 160 = 8.125 % > 5 %


def insert_batches(conn, batches):
    """The batches, and behind each ADT batch the rows it counts (CEN-021 reconciles
    them): its loaded messages, dated 1999 so no rule of the logical date sees them,
    and its rejected records in the quarantine."""
    with conn.cursor() as cur:
        for i, (src, d, n, rej) in enumerate(batches):
            batch = uuid.uuid4()
            cur.execute(
                """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256,
                       file_bytes, records_in, records_loaded, records_rejected)
                   values (%s, %s, %s, %s, 'sha', 1, %s, %s, %s)""",
                (batch, src, d, f"{src}/{d}/{i}.hl7", n, n - rej, rej),
            )
            if src != "adt":
                continue
            old = dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc)
            cur.executemany(
                """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                       sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, raw_text)
                   values (%s, '1999-01-01', 'adt/old.hl7', %s, %s, 'NGH', 'ADT^A08', 'A08', %s, %s, 'V0',
                           'MSH|...')""",
                [(batch, j, f"B{i}-{j}", old, old) for j in range(n - rej)],
            )
            cur.executemany(
                """insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason,
                       raw_text) values (%s, 'adt', %s, %s, %s, 'PV1 segment missing', 'x')""",
                [(batch, d, f"{src}/{d}/{i}.hl7", j) for j in range(rej)],
            )


# -- intermediate.int_census__location_timeline ---------------------------------------
def seg(enc, pat, no, unit, room, bed, start, end, cls="inpatient", fac="NGH", event="A01"):
    return (
        fac,
        enc,
        pat,
        no,
        event,
        cls,
        unit,
        room,
        bed,
        ts(start) if start else None,
        ts(end) if end else None,
        cls == "inpatient" and unit is not None,
        cls == "observation" and unit is not None,
        None,
        dt.datetime(2025, 3, 2, tzinfo=dt.timezone.utc),
    )


CLEAN_TIMELINE = [
    # E1: ICU -> SDU (a transfer: touching, not overlapping), then discharged (no location)
    seg("E1", "P1", 1, "ICU", "1", "A", "2025-02-27 08:00", "2025-02-28 10:00"),
    seg("E1", "P1", 2, "SDU", "3", "A", "2025-02-28 10:00", "2025-03-01 09:00", event="A02"),
    seg("E1", "P1", 3, None, None, None, "2025-03-01 09:00", None, event="A03"),
    # E2: ED without a bed, then ICU 1A after E1 left it; in house
    seg("E2", "P2", 1, "ED", "B1", "", "2025-02-28 20:00", "2025-02-28 23:00", cls="emergency", event="A04"),
    seg("E2", "P2", 2, "ICU", "1", "A", "2025-02-28 23:00", None, event="A06"),
    # E3: P1 again, after E1's discharge (whose open A03 segment is not a location)
    seg("E3", "P1", 1, "TELE", "401", "A", "2025-03-01 12:00", None),
    # E4: a zero-length segment in TELE 401A (two movements in the same minute), then MS5
    seg("E4", "P3", 1, "TELE", "401", "A", "2025-03-01 13:00", "2025-03-01 13:00"),
    seg("E4", "P3", 2, "MS5", "5", "B", "2025-03-01 13:00", None, event="A02"),
    # E5: every movement cancelled: one row, no location
    seg("E5", "P4", 0, None, None, None, "2025-03-01 07:00", "2025-03-01 07:00", cls="none", event=None),
]
CLEAN_LOCATIONS = 7  # segments with a unit
CLEAN_PATIENT_SEGMENTS = 6  # ... of non-zero length
CLEAN_BED_SEGMENTS = 5  # ... in a named bed

PLANTED_TIMELINE = {
    "CEN-017": [  # unknown units: XRAY, and ICU at SMC (SMC has only MS2)
        seg("E6", "P6", 1, "XRAY", "1", "A", "2025-03-01 08:00", "2025-03-01 09:00", cls="outpatient"),
        seg("E7", "P7", 1, "ICU", "1", "A", "2025-03-01 08:00", None, fac="SMC"),
    ],
    "CEN-018": [  # P8 in two encounters at once; P9's own two segments overlap (2 + 2)
        seg("E8", "P8", 1, "MS5", "6", "A", "2025-03-01 08:00", None),
        seg("E9", "P8", 1, "PEDS", "2", "A", "2025-03-01 12:00", "2025-03-01 18:00", cls="observation"),
        seg("E10", "P9", 1, "PSY", "1", "A", "2025-03-01 00:00", "2025-03-01 06:00"),
        seg("E10", "P9", 2, "PSY", "2", "A", "2025-03-01 05:00", None, event="A02"),
    ],
    "CEN-019": [  # ICU 2A holds two patients 11:00-12:00; ICU C (room null / blank) two more (2 + 2)
        seg("E13", "P11", 1, "ICU", "2", "A", "2025-03-01 00:00", "2025-03-01 12:00"),
        seg("E14", "P12", 1, "ICU", "2", "A", "2025-03-01 11:00", None),
        seg("E15", "P13", 1, "ICU", None, "C", "2025-03-01 00:00", None),
        seg("E16", "P14", 1, "ICU", "", "C ", "2025-03-01 02:00", "2025-03-01 04:00"),
    ],
}


# -- marts.fct_encounters ---------------------------------------------------------
def enc(key, admit, discharge, status="discharged"):
    return (
        "NGH",
        key,
        "P",
        ts(admit) if admit else None,
        ts(admit) if admit else None,
        ts(discharge) if discharge else None,
        None,
        "ICU",
        "inpatient",
        status,
    )


CLEAN_ENCOUNTERS = [
    enc("E1", "2025-02-27 08:00", "2025-03-01 09:00"),
    enc("E2", "2025-02-28 23:00", None, "in_house"),
    enc("E3", "2025-03-01 12:00", "2025-03-01 12:00"),  # admitted and discharged the same minute
    enc("E4", None, None, "outpatient"),
]
BACKWARDS = [enc("E20", "2025-03-01 12:00", "2025-03-01 11:59"), enc("E21", "2025-02-20 08:00", "2025-02-19 08:00")]


def build(
    url,
    *,
    messages=CLEAN_MESSAGES,
    batches=CLEAN_BATCHES,
    timeline=CLEAN_TIMELINE,
    encounters=CLEAN_ENCOUNTERS,
    units=UNITS,
):
    with connect(url) as conn:
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany("insert into staging.units values (%s, %s, %s, %s, %s, %s, %s)", units)
            cur.executemany(
                "insert into marts.fct_census_daily values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
                CENSUS,
            )
            cur.executemany(
                "insert into intermediate.int_census__location_timeline values "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                timeline,
            )
            cur.executemany(
                "insert into marts.fct_encounters values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", encounters
            )
        insert_messages(conn, messages)
        insert_batches(conn, batches)


def audit(url):
    with connect(url) as conn:
        runs = conn.execute(
            "select suite_name, data_asset, logical_date, dag_run_id, success, "
            "evaluated_expectations, successful_expectations from audit.validation_runs "
            "order by run_at"
        ).fetchall()
        rules = conn.execute(
            """select r.rule_id, v.suite_name, r.expectation_type, r.severity, r.success, r.rows_evaluated,
                      r.rows_violating, r.violating_share, r.detail
               from audit.rule_results r join audit.validation_runs v using (validation_run_id)"""
        ).fetchall()
    return runs, {r[0]: r for r in rules}


def test_census_rule_files_make_one_suite_per_asset():
    rfs = rule_files("census")
    assert {rf.suite_name: rf.data_asset for rf in rfs} == {
        "census_adt_feed": "raw.adt_messages",
        "census_daily": "marts.fct_census_daily",
        "census_encounters": "marts.fct_encounters",
        "census_load_batches": "audit.load_batches",
        "census_location_timeline": "intermediate.int_census__location_timeline",
        "census_source_freshness": "raw.adt_messages",
    }
    ids = [r.id for rf in rfs for r in rf.rules]
    assert sorted(ids) == [f"CEN-{i:03d}" for i in range(1, 25)]


def test_clean_warehouse_passes_every_census_rule(warehouse_url):
    build(warehouse_url)
    result = pipeline.validate_census(D, "scheduled__2025-03-01", url=warehouse_url)
    assert result["success"] is True
    assert result["blocking_failures"] == [] and result["warnings"] == []
    assert list(result["suites"]) == SUITES

    runs, rules = audit(warehouse_url)
    assert [r[0] for r in runs] == SUITES  # one audit row per suite run, in run order
    assert all(r[2:5] == (D, "scheduled__2025-03-01", True) for r in runs)
    assert sum(r[5] for r in runs) == len(rules) == 24
    assert result["validation_run_id"] == str(_run_id(warehouse_url, "census_daily"))

    expected_evaluated = {
        "CEN-014": N_CLEAN_TODAY,
        "CEN-015": N_CLEAN_GAPS,
        "CEN-016": 1,
        "CEN-017": CLEAN_LOCATIONS,
        "CEN-018": CLEAN_PATIENT_SEGMENTS,
        "CEN-019": CLEAN_BED_SEGMENTS,
        "CEN-020": 2,
    }
    for rule_id, n in expected_evaluated.items():
        _, _, exp_type, _, ok, evaluated, violating, share, detail = rules[rule_id]
        assert (exp_type, ok, evaluated, violating, float(share)) == (
            "unexpected_rows_share_expectation",
            True,
            n,
            0,
            0.0,
        ), rule_id
        assert "unexpected_rows" not in detail
    # the day's rejection rate is kept when the rule passes too
    assert rules["CEN-016"][8]["observation"] == {
        "received_date": "2025-03-01",
        "batches": 2,
        "records_in": 150,
        "records_rejected": 3,
        "records_duplicate": 0,
        "rejected_share": 0.02,
    }


def _run_id(url, suite):
    with connect(url) as conn:
        return conn.execute(
            "select validation_run_id from audit.validation_runs where suite_name = %s", (suite,)
        ).fetchone()[0]


def test_planted_defects_fail_their_rules_with_exact_counts(warehouse_url):
    timeline = CLEAN_TIMELINE + [s for segs in PLANTED_TIMELINE.values() for s in segs]
    build(
        warehouse_url,
        messages=dirty_feed(),
        batches=DIRTY_BATCHES,
        timeline=timeline,
        encounters=CLEAN_ENCOUNTERS + BACKWARDS,
    )
    with pytest.raises(pipeline.BlockingQualityFailure) as exc:
        pipeline.validate_census(D, "manual__defects", url=warehouse_url)
    assert "CEN-014, CEN-020, CEN-016, CEN-018" in str(exc.value)

    runs, rules = audit(warehouse_url)
    assert [(r[0], r[4]) for r in runs] == [
        ("census_adt_feed", False),
        ("census_encounters", False),
        ("census_load_batches", False),
        ("census_location_timeline", False),
        ("census_source_freshness", True),
        ("census_daily", True),
    ]

    n_feed_today = 8 + 6 + 4 + 1 + len(UNKNOWN_FACILITY)
    n_gaps = 10 + 7 + 5  # NGH 9 messages, SMC 6, SGH 4 (the unknown sender is no feed of ours)
    locations = CLEAN_LOCATIONS + 2 + 4 + 4
    expected = {  # rule: (severity, rows_violating, rows_evaluated)
        "CEN-014": ("blocking", 3, n_feed_today),
        "CEN-015": ("warning", 2, n_gaps),
        "CEN-016": ("blocking", 1, 1),
        "CEN-017": ("warning", 2, locations),
        "CEN-018": ("blocking", 4, CLEAN_PATIENT_SEGMENTS + 2 + 4 + 4),
        "CEN-019": ("warning", 4, CLEAN_BED_SEGMENTS + 2 + 4 + 4),
        "CEN-020": ("blocking", 2, 2 + 2),
        "CEN-024": ("warning", 1, 1),  # the same day's share, without CEN-016's count floor
    }
    assert set(expected) == PROVES_RULES
    for rule_id, (severity, violating, evaluated) in expected.items():
        _, _, _, sev, ok, n_eval, n_bad, share, detail = rules[rule_id]
        assert (sev, ok, n_bad, n_eval) == (severity, False, violating, evaluated), rule_id
        assert float(share) == pytest.approx(violating / evaluated)
        assert detail["unexpected_count"] == violating and detail["observed_value"] == violating
        assert len(detail["unexpected_rows"]) == min(violating, gx_runner.PARTIAL_VALUES)
    assert all(rules[r][4] for r in rules if r not in expected)  # the rest still pass

    # the evidence: keys and codes of the violating rows, never PHI
    ev = {r: rules[r][8]["unexpected_rows"] for r in expected}
    assert [(e["sending_facility"], e["location_facility"]) for e in ev["CEN-014"]] == [
        ("NGH", "QQQ"),
        ("XYZ", None),
        ("XYZ", None),
    ]
    assert [(e["facility_code"], e["gap_start_local"], e["gap_end_local"], e["gap_hours"]) for e in ev["CEN-015"]] == [
        ("SGH", "2025-03-01T09:00:00", "2025-03-02T00:00:00", 15.0),
        ("SMC", "2025-03-01T09:30:00", "2025-03-01T18:30:00", 9.0),
    ]
    assert ev["CEN-016"] == [
        {
            "received_date": "2025-03-01",
            "batches": 3,
            "records_in": 160,
            "records_rejected": 13,
            "records_duplicate": 0,
            "rejected_share": 0.0813,
        }
    ]
    assert {(e["facility_code"], e["unit_code"]) for e in ev["CEN-017"]} == {("NGH", "XRAY"), ("SMC", "ICU")}
    # encounters appear only as the salted pseudonym of their key (no visit number,
    # patient key, room, bed or times): the auditor finds them with the salt
    with connect(warehouse_url, autocommit=True) as conn:
        salt = conn.execute("select salt from raw.pseudonym_salt").fetchone()[0]

    def pseudonym(encounter_key: str) -> str:
        return hashlib.sha256(f"{salt}|{encounter_key}".encode()).hexdigest()

    assert sorted((e["encounter_pseudonym"], e["segment_no"]) for e in ev["CEN-018"]) == sorted(
        [(pseudonym("E10"), 1), (pseudonym("E10"), 2), (pseudonym("E8"), 1), (pseudonym("E9"), 1)]
    )
    assert sorted(e["encounter_pseudonym"] for e in ev["CEN-019"]) == sorted(
        pseudonym(k) for k in ("E13", "E14", "E15", "E16")
    )
    assert [e["encounter_pseudonym"] for e in ev["CEN-020"]] == [pseudonym("E20"), pseudonym("E21")]
    assert set(ev["CEN-019"][0]) == {"facility_code", "unit_code", "encounter_pseudonym", "segment_no"}
    assert set(ev["CEN-020"][0]) == {"facility_code", "encounter_pseudonym"}
    identifying = {"mrn", "patient_name", "birth_date", "raw_text", "encounter_key", "visit_number", "patient_key"}
    identifying |= {"room", "bed", "segment_start", "segment_end", "admit_at", "discharge_at"}
    for findings in ev.values():
        for row in findings:
            assert not identifying & set(row)
    # the same in the stored drill-down rows
    with connect(warehouse_url, autocommit=True) as conn:
        kept = conn.execute(
            "select rule_id, keys from audit.rule_violations where rule_id in ('CEN-018', 'CEN-019', 'CEN-020')"
        ).fetchall()
    assert len(kept) == 4 + 4 + 2
    assert all(not identifying & set(keys) and "encounter_pseudonym" in keys for _, keys in kept)
    assert {keys["encounter_pseudonym"] for r, keys in kept if r == "CEN-020"} == {pseudonym("E20"), pseudonym("E21")}


def test_silent_day_counts_one_gap_per_live_feed(warehouse_url):
    # nothing received today; SGH sent the day before (a live feed), SMC never sent
    # (not live yet, so not silent), NGH's only message came after today's receipt
    later = D + dt.timedelta(days=1)
    build(
        warehouse_url,
        batches=[],
        messages=[
            msg("SGH", local(D, 12, 0, days=-1), received=D - dt.timedelta(days=1)),
            msg("NGH", local(later, 12), received=later),
        ],
    )
    s = gx_runner.validate(warehouse_url, FEED, D)
    by = {o.rule_id: o for o in s.results}
    assert (by["CEN-015"].rows_violating, by["CEN-015"].rows_evaluated) == (1, 1)
    assert by["CEN-015"].detail["unexpected_rows"] == [
        {
            "facility_code": "SGH",
            "gap_start_local": "2025-03-01T00:00:00",
            "gap_end_local": "2025-03-02T00:00:00",
            "gap_hours": 24.0,
        }
    ]
    assert (by["CEN-014"].success, by["CEN-014"].rows_evaluated) == (True, 0)


def test_day_without_any_feed_yet_is_silent(warehouse_url):
    # no message ever; one facility in the reference data -> exactly one violation
    build(warehouse_url, messages=[], batches=[], units=[UNITS[0]])
    s = gx_runner.validate(warehouse_url, FEED, D)
    by = {o.rule_id: o for o in s.results}
    assert (by["CEN-015"].rows_violating, by["CEN-015"].rows_evaluated) == (1, 1)
    assert by["CEN-015"].detail["unexpected_rows"][0]["gap_hours"] == 24.0
    assert (by["CEN-014"].success, by["CEN-014"].rows_evaluated) == (True, 0)
    # and no batch at all is no rejection rate: nothing evaluated, nothing violated
    b = gx_runner.validate(warehouse_url, BATCHES, D).results[0]
    assert (b.success, b.rows_evaluated, b.rows_violating, b.detail["observation"]) == (True, 0, 0, None)


@pytest.mark.parametrize("day, hours", [(dt.date(2025, 3, 9), 23.0), (dt.date(2025, 11, 2), 25.0)])
def test_feed_day_is_the_local_day(warehouse_url, day, hours):
    # DST days are 23 and 25 hours long; a message just before local midnight is in the
    # day, one just after is not (it would be the next day's, whatever UTC says)
    messages = [msg("NGH", local(day, 23, 59), received=day), msg("NGH", local(day, 0, 0, days=1), received=day)]
    build(warehouse_url, messages=messages, batches=[], units=[UNITS[0]])
    o = {o.rule_id: o for o in gx_runner.validate(warehouse_url, FEED, day).results}["CEN-015"]
    assert (o.rows_violating, o.rows_evaluated) == (1, 2)
    assert o.detail["unexpected_rows"][0]["gap_hours"] == pytest.approx(hours - 1 / 60, abs=0.01)


def test_rejection_rate_at_the_limit_passes(warehouse_url):
    build(warehouse_url, batches=[("adt", D, 100, 5)])  # exactly 5 %
    o = gx_runner.validate(warehouse_url, BATCHES, D).results[0]
    assert (o.success, o.rows_violating, o.rows_evaluated) == (True, 0, 1)
    assert o.detail["observation"]["rejected_share"] == 0.05


def test_threshold_tolerates_a_share_of_violating_rows(warehouse_url, tmp_path):
    # 2 of 4 encounters discharged before admitted: share 0.5
    build(warehouse_url, encounters=CLEAN_ENCOUNTERS + BACKWARDS)
    doc = yaml.safe_load(ENCOUNTERS.read_text())
    for threshold, ok in ((0.5, True), (0.49, False)):
        doc["defaults"]["threshold"] = threshold
        path = tmp_path / f"enc_{threshold}.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        s = gx_runner.validate(warehouse_url, path, D)
        (o,) = s.results
        assert (o.success, o.rows_violating, o.rows_evaluated, o.violating_share) == (ok, 2, 4, 0.5)
        assert o.detail["threshold"] == threshold
        assert s.blocking_failures == ([] if ok else ["CEN-020"])
        (res,) = s.gx_result["results"]
        assert res["success"] is ok and res["result"]["threshold"] == threshold  # GX's own verdict


def test_rules_fill_the_logical_date_in(warehouse_url):
    # the same warehouse, validated for the day before: other messages, other batches
    build(warehouse_url, messages=dirty_feed() + CLEAN_MESSAGES, batches=DIRTY_BATCHES)
    prev = D - dt.timedelta(days=1)
    s = gx_runner.validate(warehouse_url, FEED, prev)
    by = {o.rule_id: o for o in s.results}
    assert (by["CEN-014"].rows_evaluated, by["CEN-014"].rows_violating) == (2, 1)  # XYZ, received the day before
    b = gx_runner.validate(warehouse_url, BATCHES, prev).results[0]
    assert b.detail["observation"]["rejected_share"] == 0.5 and b.rows_violating == 1
    assert load_rules(FEED).rule("CEN-015").params == {"max_gap_hours": 4}


def test_plain_gx_sql_rule_counts_its_rows(warehouse_url, tmp_path):
    # GX's own UnexpectedRowsExpectation also works in a rule file: its row count is
    # the violating count; it has no denominator, so nothing evaluated and no share
    build(warehouse_url, encounters=CLEAN_ENCOUNTERS + BACKWARDS)
    doc = yaml.safe_load(ENCOUNTERS.read_text())
    doc["rules"][0]["expectation"] = "UnexpectedRowsExpectation"
    del doc["rules"][0]["kwargs"]["evaluated_rows_query"]
    path = tmp_path / "plain.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (o,) = gx_runner.validate(warehouse_url, path, D).results
    assert (o.expectation_type, o.success, o.rows_violating, o.rows_evaluated, o.violating_share) == (
        "unexpected_rows_expectation",
        False,
        2,
        None,
        None,
    )


@pytest.mark.parametrize(
    "batches, blocks",
    [
        ([("adt", D, 15, 1)], False),  # one bad message of fifteen (6.7 %): seen, not blocking
        ([("adt", D, 60, 4)], False),  # 6.7 %, four messages: still under the count floor
        ([("adt", D, 75, 5)], True),  # 6.7 %, five messages: the feed is losing movements
        ([("adt", D, 200, 5)], False),  # five messages, 2.5 %: under the share
    ],
)
def test_the_rejection_rate_blocks_only_past_both_the_share_and_the_count(warehouse_url, batches, blocks):
    build(warehouse_url, batches=batches)
    by = {o.rule_id: o for o in gx_runner.validate(warehouse_url, BATCHES, D).results}
    n_in, n_bad = batches[0][2], batches[0][3]
    over_share = n_bad / n_in > 0.05
    assert (by["CEN-016"].rows_violating, by["CEN-016"].severity) == (int(blocks), "blocking")
    assert (by["CEN-024"].rows_violating, by["CEN-024"].severity) == (int(over_share), "warning")
    assert by["CEN-016"].detail["observation"]["records_rejected"] == n_bad
