"""The punch models built night by night, incrementally (one window per worker a
change can reach: dbt_project/macros/punch_windows.sql), while the timekeeping record
does what timecard edits do: punches moved, deleted, handed to another worker, turned
into another kind, added days late, two punches at the same instant, night shifts
still under way at the end of the night and closed (or never) the next; an HR
snapshot day delivered late, and one delivered again with changes (which the worker
compliance model, incremental by snapshot day, and the worked segments both read).
After the last night every intermediate workforce model equals a build from nothing
(--full-refresh) on the same rows, column for column but the watermarks.

The punches are random but seeded: a failure names its seed, and the same seed gives
the same nights."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest

from healthops.load.adt import load_adt_date
from healthops.warehouse.connection import connect

from reporting_build import build_models
from workforce_builders import TZ, add_punches, adt, hr_snapshot, punch

pytestmark = pytest.mark.db

MODELS = ["+path:models/intermediate/workforce"]
TABLES = [
    "int_timekeeping__punch_sequence",
    "int_timekeeping__shifts",
    "int_timekeeping__meal_breaks",
    "int_workforce__worked_segments",
    "int_timekeeping__punch_flags",
    "int_workforce__worker_compliance",  # incremental by HR snapshot day
    "int_workforce__direct_care_days",
    "int_workforce__fatigue_windows",
]
STAFF = ["R1", "R2", "R3", "R4", "T1", "T2", "M1", "L1", "D1", "A1"]
UNITS = ["ICU", "TELE", "MS5"]
FIRST = date(2026, 10, 26)
# HR snapshot days delivered each night: 10-30 arrives after 10-31 (L1's renewal)
HR_DAYS = [
    [FIRST, FIRST + timedelta(1)],
    [FIRST + timedelta(2)],
    [FIRST + timedelta(3), FIRST + timedelta(5)],
    [FIRST + timedelta(4)],
]
CORRECTED = FIRST + timedelta(2)  # 10-28, delivered again on the last night with changes


def hr_correction(conn, day: date) -> None:
    """``day``'s HR snapshot delivered again: R1 and T1 contract workers that day, M1's
    and R2's licences not verified (their work that day no longer counts for ratios)."""
    hr_snapshot(conn, day)
    conn.execute(
        "update raw.hr_workers set worker_type = 'CONTRACT'"
        " where snapshot_date = %s and loaded_at = now() and worker_id in ('R1', 'T1')",
        (day,),
    )
    conn.execute(
        "update raw.hr_credentials set verified_date = null"
        " where snapshot_date = %s and loaded_at = now() and worker_id in ('M1', 'R2')",
        (day,),
    )


class Timecards:
    """The timekeeping record: every punch's current version, new punches and edits."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.current: dict[int, tuple] = {}  # punch_id -> (worker, kind, ts, unit, deleted)
        self.next_id = 1
        self.clock = datetime(2026, 10, 26, 23, 0, tzinfo=TZ)  # updated_at: always later

    def _version(self, pid, worker, kind, ts, unit, deleted=False, source="CLOCK"):
        self.clock += timedelta(seconds=7)
        self.current[pid] = (worker, kind, ts, unit, deleted)
        return punch(pid, worker, kind, ts, unit, updated=self.clock, source=source, deleted=deleted)

    def _new(self, worker, kind, ts, unit):
        pid, self.next_id = self.next_id, self.next_id + 1
        return self._version(pid, worker, kind, ts, unit)

    def shift(self, worker, start: datetime, unit, *, close=True) -> list[tuple]:
        rng, rows = self.rng, []
        rows.append(self._new(worker, "IN", start, unit))
        if rng.random() < 0.1:  # a stray punch at the very same instant as the IN
            rows.append(self._new(worker, rng.choice(["OUT", "MEAL_IN"]), start, unit))
        if rng.random() < 0.7:
            meal = start + timedelta(minutes=rng.randrange(180, 420, 5))
            rows.append(self._new(worker, "MEAL_OUT", meal, unit))
            if rng.random() < 0.85:
                rows.append(self._new(worker, "MEAL_IN", meal + timedelta(minutes=rng.choice([30, 45])), unit))
        if close:
            rows.append(self._new(worker, "OUT", start + timedelta(minutes=rng.randrange(480, 750, 5)), unit))
        return rows

    def edits(self, n: int) -> list[tuple]:
        """Timecard edits of punches already sent: each a new version."""
        rng, rows = self.rng, []
        for pid in rng.sample(sorted(self.current), min(n, len(self.current))):
            worker, kind, ts, unit, deleted = self.current[pid]
            what = rng.choice(["move", "move", "delete", "restore", "worker", "kind"])
            if what == "move":
                ts += timedelta(minutes=rng.randrange(-240, 241, 5))
            elif what == "delete":
                deleted = True
            elif what == "restore":
                deleted = False
            elif what == "worker":
                worker = rng.choice(STAFF)
            else:
                kind = rng.choice(["IN", "OUT", "MEAL_OUT", "MEAL_IN"])
            rows.append(self._version(pid, worker, kind, ts, unit, deleted, source="EDIT"))
        return rows

    def night(self, day: date, open_shifts: list) -> tuple[list[tuple], list]:
        """The punches sent on the night after ``day``: the OUTs of last night's shifts
        (some never come), day and night shifts worked ``day`` (night shifts still
        under way at midnight), late punches for the day before, and edits."""
        rng, rows = self.rng, []
        for worker, start, unit in open_shifts:
            if rng.random() < 0.8:
                rows.append(
                    self._new(worker, "OUT", start + timedelta(hours=12, minutes=rng.randrange(0, 40, 5)), unit)
                )
        staff = rng.sample(STAFF, 8)
        for worker in staff[:4]:
            start = datetime.combine(day, time(7), TZ) + timedelta(minutes=rng.randrange(-20, 20, 1))
            rows += self.shift(worker, start, rng.choice(UNITS))
        still_open = []
        for worker in staff[4:]:
            start = datetime.combine(day, time(19), TZ) + timedelta(minutes=rng.randrange(-20, 20, 1))
            unit = rng.choice(UNITS)
            rows += self.shift(worker, start, unit, close=False)
            still_open.append((worker, start, unit))
        if day == FIRST + timedelta(days=1):  # a clerk clocks in and never out: in progress, then missed
            rows.append(self._new("X4", "IN", datetime.combine(day, time(19, 30), TZ), "MS5"))
        late = datetime.combine(day - timedelta(days=2), time(10), TZ)
        rows += self.shift(rng.choice(STAFF), late, rng.choice(UNITS))  # sent two days late
        rows += self.edits(rng.randrange(3, 9))
        return rows, still_open


def table_rows(url: str, table: str) -> list[tuple]:
    with connect(url) as conn:
        columns = [
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'intermediate'"
                " and table_name = %s and column_name not like 'computed\\_%%' order by ordinal_position",
                (table,),
            )
        ]
        assert columns, table
        listed = ", ".join(columns)
        return conn.execute(f"select {listed} from intermediate.{table} order by {listed}").fetchall()


@pytest.mark.parametrize("seed", [20261128])
def test_incremental_punch_models_equal_a_full_build(warehouse_url, tmp_path, seed):
    url, cards, open_shifts = warehouse_url, Timecards(seed), []
    for n, hr_days in enumerate(HR_DAYS):
        day = FIRST + timedelta(days=n + 1)
        adt(tmp_path, "A01", f"V{n}", day.strftime("%m-%d") + " 10:00", "MS5", str(n + 1))
        load_adt_date(url, tmp_path, day)  # the census feed moves the night being built on
        rows, open_shifts = cards.night(day, open_shifts)
        with connect(url) as conn:
            for d in hr_days:
                hr_snapshot(conn, d)
            if n == len(HR_DAYS) - 1:
                hr_correction(conn, CORRECTED)
            add_punches(conn, rows)
        build_models(url, MODELS, seed=n == 0)
    incremental = {t: table_rows(url, t) for t in TABLES}
    with connect(url) as conn:
        kinds = dict(conn.execute("select end_kind, count(*) from intermediate.int_timekeeping__shifts group by 1"))
        edited = conn.execute("select count(distinct punch_id) from raw.tk_punches where source = 'EDIT'").fetchone()[0]
    # the nights did what they should: shifts closed, still under way, missed; edits
    assert kinds.get("out") and kinds.get("in_progress") and kinds.get("missed_out"), kinds
    assert edited >= 15
    assert len(incremental["int_workforce__worked_segments"]) > 40
    with connect(url) as conn:  # the late HR correction reached the segments of its day
        corrected = conn.execute(
            """select count(*) filter (where worker_id in ('R1', 'T1') and is_contract),
                      count(*) filter (where worker_id in ('M1', 'R2') and not has_required_licence)
               from intermediate.int_workforce__worked_segments where work_date = %s""",
            (CORRECTED,),
        ).fetchone()
    assert corrected[0] + corrected[1] > 0

    build_models(url, MODELS, seed=False, full_refresh=True)
    for t in TABLES:
        full = table_rows(url, t)
        assert incremental[t] == full, (t, seed, set(incremental[t]) ^ set(full))
