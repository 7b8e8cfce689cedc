"""The workforce compliance rules (expectations/workforce_*.yml) on a hand-built night,
through ``pipeline.validate_workforce`` as the nightly run calls it: each rule fails
for exactly the workers, units and intervals planted for it and passes for everyone
else; every finding is a warning (recorded for the auditors, never raised); the
evidence names workers by id only, never by name or birth date.

Facility NGH, America/Los_Angeles; the logical date D is Tuesday 2026-11-10, HR
snapshots 11-04..11-10 (the same each day), ADT and punches as below. Everyone is
compliant (licence and BLS current and verified, HIPAA trained in 2020, screened
against the OIG LEIE and SAM on D-7, all CLEAR) except:

  WFC-001 licence   L1 (LVN) works MS5 on D on an LPN licence that expired D-1; U1 (RN)
                    works MS5 on D with a licence never verified.
  WFC-002 BLS       B1 (RN) works MS5 on D; BLS expired D-2.
  WFC-003 24 h      X1 works a double on MS5, 07:00-23:00 (meal 30 min): 15.5 h.
                    I1 and I2 clock in a few minutes early and out a few late (12 h 13 and
                    12 h 07 raw): 12.00 h rounded to the quarter hour, no finding. C1 works
                    07:00-19:30 on D-1 (meal 11:00) and D (meal 14:00): 12.5 h lie between
                    the two meals, but the 24 hours before each shift's end hold 12.00.
  WFC-004 7 days    Y1 works 12 h on MS5 on each of D-5..D: 72 h in the 7 days ending D
                    (60 h, the limit, in those ending D-1).
  WFC-005 HIPAA     H1 hired D-40, never trained. H2 (hired D-10, untrained) is not due;
                    H3 (hired D-40, trained D-2: late, but done) passes.
  WFC-006 screening S1 last screened against the OIG LEIE on D-40; S2 never. S3 on D-31
                    (due D, the limit) passes.
  WFC-007 excluded  E1: the SAM screening of D-7 is a CONFIRMED_MATCH. E2, terminated on
                    D-20, is a confirmed match too, but no longer on staff.
  WFC-008 possible  P1: OIG LEIE POSSIBLE_MATCH on D-3, unresolved. P2's possible match
                    of D-7 was cleared on D-5.
  WFC-009 ratio     ICU (1:2): P1, P2 08:00-18:00 and P3 11:00-13:00 with I1 and I2; I1's
                    meal 12:03-12:33 leaves 3 patients to 1 nurse: intervals 12:00 (12
                    minutes), 12:15 (15) and 12:30 (3).
  Z1 works MS5 10-31 19:00 to 11-01 07:30 across the end of daylight saving time with a
  30-minute meal: 13.00 real hours (a finding on 11-01, read from the model).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest

from healthops import pipeline
from healthops.load.adt import load_adt_date
from healthops.quality.rules import rule_files
from healthops.warehouse.connection import connect

from reporting_build import build_models, template_database
from workforce_builders import add_punches, adt

pytestmark = pytest.mark.db

# tests/unit/test_rule_coverage.py: this module makes each of these fail with exact counts
PROVES_RULES = {"WFC-001", "WFC-002", "WFC-003", "WFC-004", "WFC-005", "WFC-006", "WFC-007", "WFC-008", "WFC-009"}

TZ = ZoneInfo("America/Los_Angeles")
D = dt.date(2026, 11, 10)
RUN = "scheduled__2026-11-10"
SNAPSHOTS = [D - dt.timedelta(days=k) for k in range(6, -1, -1)]
MODELS = [
    "+fct_unit_staffing_interval",
    "+int_workforce__fatigue_windows",
    "+int_workforce__direct_care_days",
    "+int_workforce__worker_compliance",
]
CC = {"ICU": "6010", "MS5": "6050"}
OLD = dt.date(2020, 1, 1)


def days(n: int) -> dt.date:
    return D - dt.timedelta(days=n)


# worker: (job, home unit, hire date, status)
WORKERS = {
    "I1": ("RN", "ICU", OLD, "ACTIVE"),
    "I2": ("RN", "ICU", OLD, "ACTIVE"),
    "L1": ("LVN", "MS5", OLD, "ACTIVE"),
    "U1": ("RN", "MS5", OLD, "ACTIVE"),
    "B1": ("RN", "MS5", OLD, "ACTIVE"),
    "X1": ("RN", "MS5", OLD, "ACTIVE"),
    "Y1": ("RN", "MS5", OLD, "ACTIVE"),
    "Z1": ("RN", "MS5", OLD, "ACTIVE"),
    "C1": ("RN", "MS5", OLD, "ACTIVE"),
    "H1": ("RN", "MS5", days(40), "ACTIVE"),
    "H2": ("RN", "MS5", days(10), "ACTIVE"),
    "H3": ("RN", "MS5", days(40), "ACTIVE"),
    "S1": ("CNA", "MS5", OLD, "ACTIVE"),
    "S2": ("CNA", "MS5", OLD, "ACTIVE"),
    "S3": ("CNA", "MS5", OLD, "ACTIVE"),
    "E1": ("CNA", "MS5", OLD, "ACTIVE"),
    "E2": ("CNA", "MS5", OLD, "TERMINATED"),
    "P1": ("UC", "MS5", OLD, "ACTIVE"),
    "P2": ("UC", "MS5", OLD, "ACTIVE"),
    "V1": ("RN", "ICU", OLD, "LEAVE"),
}
EMPLOYED = [w for w, (*_, status) in WORKERS.items() if status != "TERMINATED"]


def name_of(w: str) -> tuple[str, str, dt.date]:
    """Last name, first name, birth date: PHI, in raw only."""
    return f"Surname{w}", f"Given{w}", dt.date(1980, 1, 1) + dt.timedelta(days=37 * list(WORKERS).index(w))


def credentials(w: str) -> list[tuple]:
    job = WORKERS[w][0]
    rows = []
    if job in ("RN", "LVN"):
        kind = "RN" if job == "RN" else "LPN"
        expiry = days(1) if w == "L1" else dt.date(2028, 1, 31)
        verified = None if w == "U1" else dt.date(2020, 1, 5)
        rows.append((kind, f"{kind} {w}", "CA", dt.date(2019, 6, 1), expiry, verified))
    if job in ("RN", "LVN", "CNA"):
        expiry = days(2) if w == "B1" else dt.date(2027, 6, 30)
        rows.append(("BLS", f"BLS-{w}", None, dt.date(2025, 6, 1), expiry, dt.date(2025, 6, 2)))
    return rows


def training(w: str) -> list[tuple]:
    if w in ("H1", "H2"):
        return []
    if w == "H3":
        return [("HIPAA_PRIVACY", days(2)), ("HIPAA_SECURITY", days(2))]
    return [("HIPAA_PRIVACY", dt.date(2020, 1, 10)), ("HIPAA_SECURITY", dt.date(2020, 1, 10))]


def screenings(w: str) -> list[tuple]:
    """(screened_date, list, result), every screening the export would list."""
    if w == "S2":
        return []
    oig = {"S1": days(40), "S3": days(31)}.get(w, days(7))
    rows = [(oig, "OIG_LEIE", "CLEAR"), (days(7), "SAM", "CONFIRMED_MATCH" if w == "E1" else "CLEAR")]
    if w == "E2":
        rows[0] = (oig, "OIG_LEIE", "CONFIRMED_MATCH")
    if w == "P1":
        rows.append((days(3), "OIG_LEIE", "POSSIBLE_MATCH"))
    if w == "P2":
        rows = [(days(7), "OIG_LEIE", "POSSIBLE_MATCH"), (days(7), "SAM", "CLEAR"), (days(5), "OIG_LEIE", "CLEAR")]
    return rows


def hr_snapshot(conn, day: dt.date) -> None:
    def copy(table: str, columns: str, rows) -> None:
        batch, path = uuid.uuid4(), f"hr/{day}/{table.removeprefix('hr_')}.csv"
        with conn.cursor().copy(
            f"copy raw.{table} (batch_id, snapshot_date, file_path, record_index, {columns}) from stdin"
        ) as cp:
            for i, row in enumerate(rows, 1):
                cp.write_row((batch, day, path, i, *row))

    listed = [w for w, (_, _, hired, _) in WORKERS.items() if hired - dt.timedelta(days=3) <= day]
    copy(
        "hr_workers",
        "worker_id, last_name, first_name, birth_date, hire_date, termination_date, worker_type, job_code,"
        " home_cost_center, standard_hours_per_week, status",
        [
            (w, *name_of(w), hired, days(20) if status == "TERMINATED" else None, "EMPLOYEE", job, CC[unit], 36, status)
            for w, (job, unit, hired, status) in WORKERS.items()
            if w in listed
        ],
    )
    copy(
        "hr_credentials",
        "worker_id, credential_type, credential_number, issuing_state, issue_date, expiry_date, verified_date",
        [(w, *c) for w in listed for c in credentials(w)],
    )
    copy(
        "hr_training",
        "worker_id, course_code, completed_date",
        [(w, *t) for w in listed for t in training(w) if t[1] <= day],
    )
    copy(
        "hr_exclusion_screening",
        "worker_id, screened_date, list, result",
        [(w, *s) for w in listed for s in screenings(w) if s[0] <= day],
    )


def local(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=TZ)


_pid = iter(range(1, 100_000))


def shift(worker: str, unit: str, start: dt.datetime, end: dt.datetime, meal=None) -> list[tuple]:
    job = WORKERS[worker][0]
    times = [("IN", start)] + ([("MEAL_OUT", meal[0]), ("MEAL_IN", meal[1])] if meal else []) + [("OUT", end)]
    return [
        (next(_pid), worker, kind, t, CC[unit], job, "CLOCK", t + dt.timedelta(seconds=5), False) for kind, t in times
    ]


def punches() -> list[tuple]:
    out = []
    out += shift("I1", "ICU", local(D, "06:53"), local(D, "19:36"), (local(D, "12:03"), local(D, "12:33")))
    out += shift("I2", "ICU", local(D, "06:56"), local(D, "19:33"), (local(D, "14:02"), local(D, "14:32")))
    for w in ("L1", "U1", "B1"):
        out += shift(w, "MS5", local(D, "07:00"), local(D, "15:30"))
    out += shift("X1", "MS5", local(D, "07:00"), local(D, "23:00"), (local(D, "12:00"), local(D, "12:30")))
    for d, meal in ((days(1), "11:00"), (D, "14:00")):
        start = local(d, meal)
        out += shift("C1", "MS5", local(d, "07:00"), local(d, "19:30"), (start, start + dt.timedelta(minutes=30)))
    for k in range(5, -1, -1):
        d = days(k)
        out += shift("Y1", "MS5", local(d, "06:55"), local(d, "19:35"), (local(d, "12:00"), local(d, "12:30")))
    # L1 clocked in two days before and never out: a missed punch, counted 16 hours for the
    # ratios and flagged, but no evidence of 16 hours worked: no fatigue finding
    out += shift("L1", "MS5", local(days(2), "07:00"), local(days(2), "07:00"))[:1]
    oct31, nov1 = dt.date(2026, 10, 31), dt.date(2026, 11, 1)
    out += shift("Z1", "MS5", local(oct31, "19:00"), local(nov1, "07:30"), (local(nov1, "03:00"), local(nov1, "03:30")))
    return out


def fill(url: str, landing) -> None:
    for visit, bed in (("V1", "1"), ("V2", "2")):
        adt(landing, "A01", visit, "11-10 08:00", "ICU", bed)
        adt(landing, "A03", visit, "11-10 18:00", "ICU", bed)
    adt(landing, "A01", "V3", "11-10 11:00", "ICU", "3")
    adt(landing, "A03", "V3", "11-10 13:00", "ICU", "3")
    load_adt_date(url, landing, D)
    with connect(url) as conn:
        for day in SNAPSHOTS:
            hr_snapshot(conn, day)
        add_punches(conn, punches())
    build_models(url, MODELS, seed=True)


@pytest.fixture(scope="module")
def night(pg_server, migrated_template, tmp_path_factory):
    """The scenario built once, and the night's workforce validation run on it."""
    tmp = tmp_path_factory.mktemp("workforce")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HEALTHOPS_HOME", "HEALTHOPS_OUT", "HEALTHOPS_LANDING"):
            mp.setenv(var, str(tmp / var.lower()))
        mp.setenv("HEALTHOPS_FACILITY_TZ", "America/Los_Angeles")
        with template_database(pg_server, migrated_template, lambda url: fill(url, tmp / "landing")) as name:
            url = f"{pg_server.rpartition('/')[0]}/{name}"
            result = pipeline.validate_workforce(D, RUN, url=url)  # warnings only: does not raise
            yield url, result


def audit(url):
    with connect(url) as conn:
        runs = conn.execute(
            "select suite_name, data_asset, logical_date, dag_run_id, success"
            " from audit.validation_runs order by run_at"
        ).fetchall()
        rules = conn.execute(
            """select r.rule_id, r.severity, r.success, r.rows_evaluated, r.rows_violating, r.detail
               from audit.rule_results r join audit.validation_runs v using (validation_run_id)"""
        ).fetchall()
        kept = conn.execute("select rule_id, keys from audit.rule_violations order by rule_id").fetchall()
    return runs, {r[0]: r[1:] for r in rules}, kept


def test_the_workforce_catalog_is_warnings_only():
    """Ratio, licence and every other workforce finding is for the auditors: none holds the reports back."""
    rules = [r for rf in rule_files("workforce") for r in rf.rules]
    assert sorted(r.id for r in rules) == sorted(PROVES_RULES)
    assert {r.severity for r in rules} == {"warning"}


def test_each_rule_fails_for_exactly_its_workers(night):
    url, result = night
    assert result["success"] is False and result["blocking_failures"] == []
    assert sorted(result["warnings"]) == sorted(PROVES_RULES)
    runs, rules, kept = audit(url)
    assert sorted((r[0], r[1], r[2], r[3], r[4]) for r in runs) == [
        ("workforce_direct_care_days", "intermediate.int_workforce__direct_care_days", D, RUN, False),
        ("workforce_fatigue_windows", "intermediate.int_workforce__fatigue_windows", D, RUN, False),
        ("workforce_unit_staffing_interval", "marts.fct_unit_staffing_interval", D, RUN, False),
        ("workforce_worked_segments", "intermediate.int_workforce__worked_segments", D, RUN, False),
        ("workforce_worker_compliance", "intermediate.int_workforce__worker_compliance", D, RUN, False),
    ]
    with connect(url) as conn:
        intervals = conn.execute(
            "select count(*) from marts.fct_unit_staffing_interval where census_date = %s and in_ratio is not null",
            (D,),
        ).fetchone()[0]
    assert intervals >= 96  # the ICU's day at least
    n_employed = len(EMPLOYED)
    expected = {  # rule: (violating workers or intervals, rows evaluated)
        # I1, I2, L1, U1, B1, X1, Y1, C1 (meals split stretches)
        "WFC-001": (["L1", "U1"], 2 + 2 + 1 + 1 + 1 + 2 + 2 + 2),
        "WFC-002": (["B1"], 8),
        "WFC-003": (["X1"], 8),
        "WFC-004": (["Y1"], 8),
        "WFC-005": (["H1"], n_employed - 1),  # H2 is not due yet
        "WFC-006": (["S1", "S2"], n_employed),
        "WFC-007": (["E1"], n_employed),
        "WFC-008": (["P1"], n_employed),
        "WFC-009": (["12:00", "12:15", "12:30"], intervals),
    }
    for rule_id, (who, evaluated) in expected.items():
        severity, ok, n_eval, n_bad, detail = rules[rule_id]
        assert (severity, ok, n_bad, n_eval) == ("warning", False, len(who), evaluated), rule_id
        rows = detail["unexpected_rows"]
        if rule_id == "WFC-009":
            assert [r["interval_start"][11:16] for r in rows] == who
        else:
            assert [r["worker_id"] for r in rows] == who, rule_id
    ev = {r: rules[r][4]["unexpected_rows"] for r in expected}

    # what each finding says: worker, unit, the day or interval, never more
    assert [(e["unit_code"], e["job_code"], e["licensed_credential"]) for e in ev["WFC-001"]] == [
        ("MS5", "LVN", "LPN"),
        ("MS5", "RN", "RN"),
    ]
    assert ev["WFC-001"][0]["start_local"] == "2026-11-10T07:00:00"
    assert ev["WFC-001"][0]["end_local"] == "2026-11-10T15:30:00"
    assert ev["WFC-002"] == [
        {
            "worker_id": "B1",
            "facility_code": "NGH",
            "unit_code": "MS5",
            "work_date": "2026-11-10",
            "first_start_local": "2026-11-10T07:00:00",
            "last_end_local": "2026-11-10T15:30:00",
        }
    ]
    assert ev["WFC-003"] == [
        {
            "worker_id": "X1",
            "facility_code": "NGH",
            "unit_code": "MS5",
            "window_end_date": "2026-11-10",
            "window_start_local": "2026-11-09T23:00:00",
            "window_end_local": "2026-11-10T23:00:00",
            "hours_worked": 15.5,
        }
    ]
    y1 = ev["WFC-004"][0]
    assert (y1["window_start_local"], y1["window_end_local"], y1["hours_worked"]) == (
        "2026-11-03T19:30:00",
        "2026-11-10T19:30:00",
        72.0,
    )
    assert ev["WFC-005"] == [
        {
            "worker_id": "H1",
            "facility_code": "NGH",
            "unit_code": "MS5",
            "snapshot_date": "2026-11-10",
            "training_due_date": "2026-10-31",
        }
    ]
    assert [(e["worker_id"], e["last_oig_screened_date"], e["screening_due_date"]) for e in ev["WFC-006"]] == [
        ("S1", "2026-10-01", "2026-11-01"),
        ("S2", None, None),
    ]
    assert [(e["worker_id"], e["confirmed_match_lists"]) for e in ev["WFC-007"]] == [("E1", "SAM")]
    assert [(e["worker_id"], e["last_oig_screened_date"]) for e in ev["WFC-008"]] == [("P1", "2026-11-07")]
    assert [
        (e["unit_code"], e["patients_peak"], e["licensed_nurses_min"], e["ratio_limit"], e["minutes_out_of_ratio"])
        for e in ev["WFC-009"]
    ] == [("ICU", 3, 1, 2, 12.0), ("ICU", 3, 1, 2, 15.0), ("ICU", 3, 1, 2, 3.0)]

    # the drill-down rows kept for the auditors: the same workers and intervals
    by_rule: dict[str, list] = {}
    for rule_id, keys in kept:
        by_rule.setdefault(rule_id, []).append(keys)
    assert {r: len(k) for r, k in by_rule.items()} == {r: len(w) for r, (w, _) in expected.items()}
    assert sorted(k["worker_id"] for k in by_rule["WFC-006"]) == ["S1", "S2"]
    assert all(k["unit_code"] == "ICU" for k in by_rule["WFC-009"])


def test_no_evidence_names_a_worker_or_a_birth_date(night):
    url, _ = night
    with connect(url) as conn:
        texts = [json.dumps(d) for (d,) in conn.execute("select detail from audit.rule_results")]
        texts += [json.dumps(k) for (k,) in conn.execute("select keys from audit.rule_violations")]
        texts += [json.dumps(g) for (g,) in conn.execute("select gx_result from audit.validation_runs")]
    text = "\n".join(texts)
    for w in WORKERS:
        last, first, born = name_of(w)
        assert last not in text and first not in text and born.isoformat() not in text, w
    for forbidden in ("last_name", "first_name", "birth_date"):
        assert f'"{forbidden}"' not in text


def test_fatigue_hours_are_rounded_to_the_quarter_hour(night):
    """29 CFR 785.48(b): a normal 12-hour shift clocked a few minutes early is 12.00 hours;
    exactly 60 hours in 7 days is within the limit; a night across the end of DST is 13."""
    url, _ = night
    with connect(url) as conn:
        rows = conn.execute(
            "select worker_id, window_end_date, max_hours_24h, max_hours_7d"
            " from intermediate.int_workforce__fatigue_windows"
        ).fetchall()
        raw = conn.execute(
            """select worker_id, sum(worked_hours) from intermediate.int_workforce__worked_segments
               where work_date = %s and worker_id in ('I1', 'I2') group by worker_id order by worker_id""",
            (D,),
        ).fetchall()
    hours = {(w, d): (float(h24), float(h7)) for w, d, h24, h7 in rows}
    assert [(w, round(float(h), 2)) for w, h in raw] == [("I1", 12.22), ("I2", 12.12)]  # 12 h 13, 12 h 07 raw
    assert hours[("I1", D)] == (12.0, 12.0) and hours[("I2", D)] == (12.0, 12.0)
    assert hours[("Y1", days(1))] == (12.0, 60.0) and hours[("Y1", D)] == (12.0, 72.0)
    assert hours[("X1", D)] == (15.5, 15.5)
    assert not [k for k in hours if k[0] == "L1" and k[1] < D]  # the missed OUT is no fatigue
    # two ordinary day shifts in a row, meals at 11:00 and 14:00: 12.00 before each shift's end
    assert hours[("C1", days(1))] == (12.0, 12.0) and hours[("C1", D)] == (12.0, 24.0)
    # the night of 10-31 ends on 11-01, when the clocks went back: 12.5 h on the wall, 13.5 h real, less the meal
    assert hours[("Z1", dt.date(2026, 11, 1))] == (13.0, 13.0)


def test_empty_workforce_tables_pass(warehouse_url, monkeypatch):
    """A warehouse (or a facility) without HR or timekeeping data: nothing is evaluated, every rule passes."""
    monkeypatch.setenv("HEALTHOPS_FACILITY_TZ", "America/Los_Angeles")
    ddl = """
    create table intermediate.int_workforce__worked_segments (
        worker_id text, facility_code text, unit_code text, work_date date, job_code text,
        licensed_credential text, has_required_licence boolean, segment_start timestamptz, segment_end timestamptz);
    create table intermediate.int_workforce__direct_care_days (
        worker_id text, work_date date, facility_code text, unit_code text, first_start_local timestamp,
        last_end_local timestamp, worked_hours numeric, has_current_bls boolean);
    create table intermediate.int_workforce__fatigue_windows (
        worker_id text, window_end_date date, facility_code text, unit_code text, worked_nursing_job boolean,
        max_hours_24h numeric, max_24h_window_start timestamp, max_24h_window_end timestamp, max_24h_unit_code text,
        max_hours_7d numeric, max_7d_window_start timestamp, max_7d_window_end timestamp, max_7d_unit_code text);
    create table intermediate.int_workforce__worker_compliance (
        worker_id text, snapshot_date date, next_snapshot_date date, status text, is_employed boolean,
        facility_code text, home_unit_code text, home_cost_center text, hire_date date, training_due_date date,
        hipaa_completed_date date, last_oig_screened_date date, last_oig_result text, screening_due_date date,
        has_confirmed_match boolean, confirmed_match_lists text, has_unresolved_possible_match boolean);
    create table marts.fct_unit_staffing_interval (
        facility_code text, unit_code text, interval_start timestamp, census_date date, patients_peak integer,
        licensed_nurses_min integer, ratio_limit integer, minutes_out_of_ratio numeric, in_ratio boolean);
    grant select on all tables in schema intermediate, marts to healthops_checker;
    """
    with connect(warehouse_url) as conn:
        conn.execute(ddl)
    result = pipeline.validate_workforce(D, "manual__empty", url=warehouse_url)
    assert result["success"] and result["warnings"] == [] and len(result["suites"]) == 5
    _, rules, kept = audit(warehouse_url)
    assert {r: (ok, n_eval, n_bad) for r, (_, ok, n_eval, n_bad, _) in rules.items()} == {
        r: (True, 0, 0) for r in PROVES_RULES
    }
    assert kept == []
