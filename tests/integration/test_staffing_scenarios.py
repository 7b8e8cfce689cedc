"""Licensed-nurse ratios at every instant and nursing hours, from hand-built punches,
HR snapshots and ADT movements, against figures computed by hand from
docs/definitions.md#ratio-compliance-at-every-instant and #nursing-hours-per-patient-day.

Facility NGH, America/Los_Angeles. Units: ICU (ratio 2, cost center 6010), TELE (4,
6030), MS5 (5, 6050). Three nights are built one after the other (incremental), as
the nightly run does:

  night A (ADT and punches through 10-28, HR snapshots 10-26..10-28)
    ICU  P1, P2 from 10-27 18:00, P3 from 10-28 06:00.
         R1 19:00-07:30 (meal 02:00-02:30), R2 19:00-07:00 (meal 03:00-03:30) with a
         stray OUT at 05:00, R3 in at 07:07 (shift change: 7 minutes out of ratio),
         R4 (contract) 07:30-"23:30" (a clocking error), R1 and R2 back at 19:00.
    TELE Q1..Q4 from 10-27 12:00; Q4 leaves 04:05, Q5 takes the bed 04:12.
         T1 19:00-07:30 (meal 01:00-01:30), float F1 00:45-03:15 covers the meal,
         charge nurse C1 all night (no patients: not counted), T2 07:00-19:30.
  night B (10-29, 10-30): the stray OUT deleted, R4's OUT corrected to 19:30 two
    days later. MS5: S1..S6 from 10-28 08:00; 10-29 M1 (RN) and L1 (LVN) with
    unrelieved meal breaks, CNA A1; 10-30 L1 works on a licence that expired 10-29.
  night C (10-31, 11-01): L1's renewal appears in the 10-31 snapshot; D1 (RN) and L1
    work 10-31 19:00 to 11-01 07:30 across the end of daylight saving time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from healthops.load.adt import load_adt_date
from healthops.warehouse.connection import connect

from reporting_build import build_models
from workforce_builders import NIGHT_A_PUNCHES, NIGHT_B_PUNCHES, NIGHT_C_PUNCHES, add_punches, adt, hr_snapshot

pytestmark = pytest.mark.db

MODELS = ["+fct_unit_staffing_interval", "+fct_unit_staffing_monthly", "+int_timekeeping__punch_flags"]


def night(url, landing, days, hr_days, punches, *, seed=False) -> None:
    for d in days:
        load_adt_date(url, landing, d)
    with connect(url) as conn:
        for d in hr_days:
            hr_snapshot(conn, d)
        add_punches(conn, punches)
    build_models(url, MODELS, seed=seed)


def intervals(url, unit=None) -> dict:
    with connect(url) as conn:
        rows = conn.execute(
            """select unit_code, interval_start, patients_peak, licensed_nurses_min, max_patients_per_licensed_nurse,
                      minutes_out_of_ratio, in_ratio, real_minutes
               from marts.fct_unit_staffing_interval where %s::text is null or unit_code = %s""",
            (unit, unit),
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def iv(table, unit, when: str):
    """patients_peak, licensed_nurses_min, max ratio (float or None), minutes out, in_ratio, real minutes."""
    peak, nurses, ratio, minutes, ok, real = table[(unit, datetime.strptime("2026-" + when, "%Y-%m-%d %H:%M"))]
    return (peak, nurses, None if ratio is None else float(ratio), float(minutes), ok, float(real))


def daily(url) -> dict:
    with connect(url) as conn:
        rows = conn.execute(
            """select unit_code, census_date, rn_hours, lpn_hours, uap_hours, contract_hours, patient_days,
                      nhppd_rn, nhppd_total
               from marts.fct_unit_staffing_daily"""
        ).fetchall()
    return {(u, d): tuple(float(x) if x is not None else None for x in v) for u, d, *v in rows}


def quarter_hours(first: str, last: str) -> list[datetime]:
    t, end = datetime.strptime("2026-" + first, "%Y-%m-%d %H:%M"), datetime.strptime("2026-" + last, "%Y-%m-%d %H:%M")
    out = []
    while t <= end:
        out.append(t)
        t += timedelta(minutes=15)
    return out


def test_ratio_at_every_instant_and_nursing_hours(warehouse_url, tmp_path):
    url, landing = warehouse_url, tmp_path
    # ICU
    for v, bed in (("P1", "1"), ("P2", "2")):
        adt(landing, "A01", v, "10-27 18:00", "ICU", bed)
    adt(landing, "A01", "P3", "10-28 06:00", "ICU", "3")
    # TELE: Q4's bed is turned over in seven minutes
    for i, v in enumerate(("Q1", "Q2", "Q3", "Q4"), 1):
        adt(landing, "A01", v, "10-27 12:00", "TELE", str(i))
    adt(landing, "A03", "Q4", "10-28 04:05", "TELE", "4")
    adt(landing, "A01", "Q5", "10-28 04:12", "TELE", "4")
    # MS5
    for i in range(1, 7):
        adt(landing, "A01", f"S{i}", "10-28 08:00", "MS5", str(i))
    for when in ("10-29 10:00", "10-30 10:00", "10-31 10:00", "11-01 10:00"):  # the feed goes on
        adt(landing, "A08", "S1", when, "MS5", "1")

    d = date(2026, 10, 26)
    days = [d + timedelta(days=i) for i in range(7)]  # 10-26 .. 11-01

    # -- night A -------------------------------------------------------------------
    night(url, landing, days[1:3], days[0:3], NIGHT_A_PUNCHES, seed=True)
    a = intervals(url, "ICU")
    assert iv(a, "ICU", "10-28 06:00") == (3, 1, 3.0, 15.0, False, 15.0)  # R2's stray OUT at 05:00
    assert iv(a, "ICU", "10-28 19:30") == (3, 3, 1.0, 0.0, True, 15.0)  # R4 "until 23:30"
    with connect(url) as conn:
        flags = conn.execute("select punch_id, flag from intermediate.int_timekeeping__punch_flags").fetchall()
    assert sorted(flags) == [
        (9, "out_without_in"),  # R2's real OUT came after the stray one
        (100, "unknown_cost_center"),
        (101, "in_without_out"),  # closed by the next IN: counted up to it
        (104, "out_without_in"),
        (106, "meal_out_without_in"),
        (108, "meal_outside_shift"),
        (109, "missed_out"),  # counted 16 hours, no further
    ]
    with connect(url) as conn:
        # every standing punch is in a shift or flagged: nothing is silently dropped
        placed, flagged_orphans, live = conn.execute(
            """select count(*) filter (where shift_id is not null and not after_out),
                      count(*) filter (where shift_id is null or after_out),
                      (select count(*) from staging.stg_timekeeping__punches where not is_deleted)
               from intermediate.int_timekeeping__punch_sequence"""
        ).fetchone()
        assert placed + flagged_orphans == live == len(NIGHT_A_PUNCHES)
        assert flagged_orphans == 3  # punches 9, 104 and 108, each flagged above
        # X2 counts once at any instant: MS5 07:00-08:00, then TELE 08:00-15:00
        x2 = conn.execute(
            """select unit_code, sum(worked_hours) from intermediate.int_workforce__worked_segments
               where worker_id = 'X2' group by 1 order by 1"""
        ).fetchall()
        assert [(u, float(h)) for u, h in x2] == [("MS5", 1.0), ("TELE", 7.0)]

    da = daily(url)
    assert da[("ICU", date(2026, 10, 28))][:2] == (49.88, 0)  # R2 out at 05:00, R4 "until 23:30"

    # -- night B -------------------------------------------------------------------
    night(url, landing, days[3:5], days[3:5], NIGHT_B_PUNCHES)
    b = intervals(url)
    # the edits change the day they touch and no other day already built
    db = daily(url)
    assert {k for k in da if da[k] != db[k]} == {("ICU", date(2026, 10, 28))}
    # ICU, 10-28: 2 patients to 06:00, 3 after. The shift change: R2 out at 07:00,
    # R3 in at 07:07, R1 alone with 3 patients for 7 minutes.
    assert iv(b, "ICU", "10-28 07:00") == (3, 1, 3.0, 7.0, False, 15.0)
    assert iv(b, "ICU", "10-28 07:15") == (3, 2, 1.5, 0.0, True, 15.0)
    # meal breaks relieved by the other nurse: 2 patients to 1 nurse is within 1:2
    assert iv(b, "ICU", "10-28 02:00") == (2, 1, 2.0, 0.0, True, 15.0)
    assert iv(b, "ICU", "10-28 03:15") == (2, 1, 2.0, 0.0, True, 15.0)
    assert iv(b, "ICU", "10-28 06:00") == (3, 2, 1.5, 0.0, True, 15.0)  # the stray OUT deleted
    assert iv(b, "ICU", "10-28 19:30") == (3, 2, 1.5, 0.0, True, 15.0)  # R4's OUT corrected
    icu_out = {k[1]: v[3] for k, v in b.items() if k[0] == "ICU" and k[1].date() == date(2026, 10, 28) and v[3]}
    assert icu_out == {datetime(2026, 10, 28, 7, 0): 7}

    # TELE: in ratio all night (1:4), the float relieving the meal, the charge nurse not counted
    night_tele = quarter_hours("10-27 19:00", "10-28 06:45")
    assert all(b[("TELE", t)][4] for t in night_tele)
    assert sum(b[("TELE", t)][3] for t in night_tele) == 0
    assert iv(b, "TELE", "10-28 00:30") == (4, 1, 4.0, 0.0, True, 15.0)  # T1 alone (C1 has no patients)
    assert iv(b, "TELE", "10-28 00:45") == (4, 2, 2.0, 0.0, True, 15.0)  # F1 arrives
    assert iv(b, "TELE", "10-28 01:00") == (4, 1, 4.0, 0.0, True, 15.0)  # T1 at meal, F1 covers
    assert iv(b, "TELE", "10-28 03:00") == (4, 2, 2.0, 0.0, True, 15.0)
    assert iv(b, "TELE", "10-28 03:15") == (4, 1, 4.0, 0.0, True, 15.0)  # F1 gone at 03:15
    # the bed turned over at 04:05/04:12: never 5 patients at once
    assert iv(b, "TELE", "10-28 04:00") == (4, 1, 4.0, 0.0, True, 15.0)
    with connect(url) as conn:
        seen = conn.execute(
            "select patients_present from marts.fct_census_interval"
            " where unit_code = 'TELE' and interval_start = '2026-10-28 04:00'"
        ).fetchone()[0]
    assert seen == 5  # every patient seen in the interval: the count the peak replaces

    # MS5 10-29: 6 patients, an RN and an LVN (1:5): each meal break unrelieved
    for t in ("12:00", "12:15", "13:00", "13:15"):
        assert iv(b, "MS5", f"10-29 {t}") == (6, 1, 6.0, 15.0, False, 15.0)
    assert iv(b, "MS5", "10-29 12:30") == (6, 2, 3.0, 0.0, True, 15.0)
    # MS5 10-30: L1's licence expired 10-29: she is not a licensed nurse that day
    assert iv(b, "MS5", "10-30 10:00") == (6, 1, 6.0, 15.0, False, 15.0)
    # before 07:00 nobody is on MS5: patients without a nurse have no finite ratio
    assert iv(b, "MS5", "10-29 06:45") == (6, 0, None, 15.0, False, 15.0)

    # -- night C -------------------------------------------------------------------
    before_c = intervals(url)
    night(url, landing, days[5:7], days[5:7], NIGHT_C_PUNCHES)
    c = intervals(url)
    # across the end of daylight saving time: the repeated hour's labels hold 30 real minutes
    for t in ("01:00", "01:15", "01:30", "01:45"):
        assert iv(c, "MS5", f"11-01 {t}") == (6, 2, 3.0, 0.0, True, 30.0)
    assert iv(c, "MS5", "11-01 03:00") == (6, 1, 6.0, 15.0, False, 15.0)  # D1's meal, L1 alone (renewed)
    assert iv(c, "MS5", "10-31 20:00") == (6, 2, 3.0, 0.0, True, 15.0)
    # a night changes nothing before the first day it can affect
    assert {k: v for k, v in c.items() if k[1] < datetime(2026, 10, 30, 0, 0)} == {
        k: v for k, v in before_c.items() if k[1] < datetime(2026, 10, 30, 0, 0)
    }

    # -- nursing hours per patient day --------------------------------------------
    h = daily(url)
    # ICU 10-28: R1 7.0 + R2 6.5 (meals out) + R3 12 h 23 min + R4 12.0 (contract) + R1, R2 5.0 each
    assert h[("ICU", date(2026, 10, 28))] == (47.88, 0, 0, 12.0, 3, 15.96, 15.96)
    # TELE 10-28: T1 7.0 + F1 2.5 + T2 12.5 + T1 5.0; C1's charge hours are not direct care
    assert h[("TELE", date(2026, 10, 28))] == (27.0, 0, 0, 0, 4, 6.75, 6.75)
    # MS5 10-29: M1 12.0, L1 12.0, A1 8.5 (CNA: UAP) for 6 patient days
    assert h[("MS5", date(2026, 10, 29))] == (12.0, 12.0, 8.5, 0, 6, 2.0, 5.42)
    # the DST night, cut at midnight: 5 h on 10-31; 8.5 real hours on 11-01 (less D1's meal)
    assert h[("MS5", date(2026, 10, 31))] == (5.0, 5.0, 0, 0, 6, 0.83, 1.67)
    assert h[("MS5", date(2026, 11, 1))] == (8.0, 8.5, 0, 0, 6, 1.33, 2.75)

    # -- the month: sums before ratios; FTEs, vacancy and turnover ------------------
    with connect(url) as conn:
        month = conn.execute(
            """select patient_days, rn_hours, lpn_hours, uap_hours, nhppd_rn, nhppd_total, budgeted_fte, filled_fte,
                      vacant_fte, vacancy_rate, headcount_start, headcount_end, separations, turnover_rate
               from marts.fct_unit_staffing_monthly where unit_code = 'MS5' and month_start = '2026-10-01'"""
        ).fetchone()
    # MS5 in October: 6 patient days on each of 10-28..10-31; RN 12.0 + 12.5 + 5.0, LVN the
    # same, CNA 8.5: NHPPD 29.5 / 24 and 67.5 / 24. Budget 4 RN + 2 LVN FTEs; four workers
    # of 36 h (0.9 FTE each) until A1 leaves on 10-31: 2.7 FTEs filled at the end,
    # turnover 1 / ((4 + 3) / 2).
    assert tuple(float(x) for x in month) == (24, 29.5, 29.5, 8.5, 1.23, 2.81, 6.0, 2.7, 3.3, 0.55, 4, 3, 1, 0.2857)

    # -- the correction nights changed exactly the intervals they touched -----------
    changed = {k[1] for k in a if a[k] != b[k]}
    expected = set(quarter_hours("10-28 05:00", "10-28 06:45")) | set(quarter_hours("10-28 19:30", "10-28 23:15"))
    assert changed == expected

    # -- re-running the night changes nothing; the incremental marts equal a full build
    build_models(url, MODELS, seed=False)
    assert intervals(url) == c and daily(url) == h
    with connect(url) as conn:
        conn.execute("drop table marts.fct_unit_staffing_interval")
    build_models(url, MODELS, seed=False)
    assert intervals(url) == c
