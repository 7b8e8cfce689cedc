"""Hand-built workforce data shared by the staffing tests: the HR snapshots, punches
and ADT movements of tests/integration/test_staffing_scenarios.py (its docstring tells
the story and the hand-computed figures), written straight into raw as the loaders
would, and ADT files for the loader to read."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hl7_builders import build_message

TZ = ZoneInfo("America/Los_Angeles")


def at(s: str, fold: int = 0) -> datetime:
    """A local wall-clock time 'MM-DD HH:MM' of 2026 in the facility's zone."""
    return datetime.strptime("2026-" + s, "%Y-%m-%d %H:%M").replace(tzinfo=TZ, fold=fold)


# -- HR ---------------------------------------------------------------------------
WORKERS = {  # worker_id: (worker_type, HR job code, home cost center)
    "R1": ("EMPLOYEE", "RN", "6010"),
    "R2": ("EMPLOYEE", "RN", "6010"),
    "R3": ("EMPLOYEE", "RN", "6010"),
    "R4": ("CONTRACT", "RN", "6010"),
    "T1": ("EMPLOYEE", "RN", "6030"),
    "T2": ("EMPLOYEE", "RN", "6030"),
    "F1": ("EMPLOYEE", "RN", "6900"),
    "C1": ("EMPLOYEE", "RN_CHARGE", "6030"),
    "M1": ("EMPLOYEE", "RN", "6050"),
    "D1": ("EMPLOYEE", "RN", "6050"),
    "L1": ("EMPLOYEE", "LVN", "6050"),
    "A1": ("EMPLOYEE", "CNA", "6050"),
    # unit clerks (no direct care: in no nursing hours) whose punches a timecard edit
    # should fix; home cost center: nursing education, no unit
    "X1": ("EMPLOYEE", "UC", "6910"),
    "X2": ("EMPLOYEE", "UC", "6910"),
    "X3": ("EMPLOYEE", "UC", "6910"),
    "X4": ("EMPLOYEE", "UC", "6910"),
}


def credentials(day: date) -> list[tuple]:
    rows = [
        (w, "RN", f"RN 7{i:05d}", "CA", date(2020, 1, 1), date(2028, 1, 31), date(2020, 1, 5))
        for i, (w, (_, job, _)) in enumerate(WORKERS.items())
        if job.startswith("RN")
    ]
    # L1's licence expires 10-29; the renewal reaches HR's snapshot on 10-31.
    expiry = date(2026, 10, 29) if day < date(2026, 10, 31) else date(2028, 10, 31)
    rows.append(("L1", "LPN", "VN 55501", "CA", date(2024, 10, 29), expiry, date(2024, 11, 1)))
    rows.append(("A1", "CNA", "CNA 9001", "CA", date(2023, 1, 1), date(2027, 1, 1), date(2023, 1, 2)))
    return rows


def hr_snapshot(conn, day: date) -> None:
    batch = uuid.uuid4()
    with conn.cursor().copy(
        "copy raw.hr_workers (batch_id, snapshot_date, file_path, record_index, worker_id, last_name, first_name,"
        " birth_date, hire_date, worker_type, job_code, home_cost_center, standard_hours_per_week, status,"
        " termination_date)"
        " from stdin"
    ) as copy:
        for i, (w, (kind, job, cc)) in enumerate(WORKERS.items(), 1):
            # the CNA A1 leaves on 10-31: terminated in that day's snapshot
            left = w == "A1" and day >= date(2026, 10, 31)
            copy.write_row(
                (batch, day, f"hr/{day}/workers.csv", i, w, "Test", w, date(1985, 1, 1), date(2020, 1, 1))
                + (kind, job, cc, 36, "TERMINATED" if left else "ACTIVE", date(2026, 10, 31) if left else None)
            )
    batch = uuid.uuid4()
    with conn.cursor().copy(
        "copy raw.hr_positions (batch_id, snapshot_date, file_path, record_index, cost_center, job_code,"
        " budgeted_fte, effective_date) from stdin"
    ) as copy:
        copy.write_row((batch, day, f"hr/{day}/positions.csv", 1, "6050", "RN", 4.0, date(2026, 7, 1)))
        copy.write_row((batch, day, f"hr/{day}/positions.csv", 2, "6050", "LVN", 2.0, date(2026, 7, 1)))
    batch = uuid.uuid4()
    with conn.cursor().copy(
        "copy raw.hr_credentials (batch_id, snapshot_date, file_path, record_index, worker_id, credential_type,"
        " credential_number, issuing_state, issue_date, expiry_date, verified_date) from stdin"
    ) as copy:
        for i, row in enumerate(credentials(day), 1):
            copy.write_row((batch, day, f"hr/{day}/credentials.csv", i, *row))


# -- timekeeping ------------------------------------------------------------------
CC = {"ICU": "6010", "TELE": "6030", "MS5": "6050", "NOWHERE": "9999"}
JOB = {w: job for w, (_, job, _) in WORKERS.items()} | {"F1": "RN_FLOAT"}


def punch(pid, worker, kind, when, unit, *, updated=None, source="CLOCK", deleted=False):
    return (pid, worker, kind, when, CC[unit], JOB[worker], source, updated or when + timedelta(seconds=5), deleted)


NIGHT_A_PUNCHES = [
    punch(1, "R1", "IN", at("10-27 19:00"), "ICU"),
    punch(2, "R1", "MEAL_OUT", at("10-28 02:00"), "ICU"),
    punch(3, "R1", "MEAL_IN", at("10-28 02:30"), "ICU"),
    punch(4, "R1", "OUT", at("10-28 07:30"), "ICU"),
    punch(5, "R2", "IN", at("10-27 19:00"), "ICU"),
    punch(6, "R2", "MEAL_OUT", at("10-28 03:00"), "ICU"),
    punch(7, "R2", "MEAL_IN", at("10-28 03:30"), "ICU"),
    punch(8, "R2", "OUT", at("10-28 05:00"), "ICU"),  # a stray clock punch: deleted on 10-29
    punch(9, "R2", "OUT", at("10-28 07:00"), "ICU"),
    punch(10, "R3", "IN", at("10-28 07:07"), "ICU"),
    punch(11, "R3", "OUT", at("10-28 19:30"), "ICU"),
    punch(12, "R4", "IN", at("10-28 07:30"), "ICU"),
    punch(13, "R4", "OUT", at("10-28 23:30"), "ICU"),  # really 19:30: corrected on 10-30
    punch(14, "R1", "IN", at("10-28 19:00"), "ICU"),
    punch(15, "R2", "IN", at("10-28 19:00"), "ICU"),
    punch(20, "T1", "IN", at("10-27 19:00"), "TELE"),
    punch(21, "T1", "MEAL_OUT", at("10-28 01:00"), "TELE"),
    punch(22, "T1", "MEAL_IN", at("10-28 01:30"), "TELE"),
    punch(23, "T1", "OUT", at("10-28 07:30"), "TELE"),
    punch(24, "F1", "IN", at("10-28 00:45"), "TELE"),
    punch(25, "F1", "OUT", at("10-28 03:15"), "TELE"),
    punch(26, "C1", "IN", at("10-27 19:00"), "TELE"),
    punch(27, "C1", "OUT", at("10-28 07:30"), "TELE"),
    punch(28, "T2", "IN", at("10-28 07:00"), "TELE"),
    punch(29, "T2", "OUT", at("10-28 19:30"), "TELE"),
    punch(30, "T1", "IN", at("10-28 19:00"), "TELE"),
    # bad input: flagged with a reason, never dropped
    punch(100, "X1", "IN", at("10-26 08:00"), "NOWHERE"),  # a cost center no unit has
    punch(110, "X1", "OUT", at("10-26 16:00"), "NOWHERE"),
    punch(101, "X2", "IN", at("10-26 07:00"), "MS5"),  # overlapping: a second IN, then two OUTs
    punch(102, "X2", "IN", at("10-26 08:00"), "TELE"),
    punch(103, "X2", "OUT", at("10-26 15:00"), "MS5"),
    punch(104, "X2", "OUT", at("10-26 16:00"), "TELE"),
    punch(105, "X3", "IN", at("10-26 07:00"), "MS5"),
    punch(106, "X3", "MEAL_OUT", at("10-26 11:00"), "MS5"),  # never back from the meal
    punch(107, "X3", "OUT", at("10-26 15:00"), "MS5"),
    punch(108, "X3", "MEAL_IN", at("10-26 16:00"), "MS5"),  # after the OUT
    punch(109, "X4", "IN", at("10-26 06:00"), "MS5"),  # no OUT ever: a missed punch
]
NIGHT_B_PUNCHES = [
    punch(16, "R1", "OUT", at("10-29 07:30"), "ICU"),
    punch(17, "R2", "OUT", at("10-29 07:30"), "ICU"),
    punch(31, "T1", "OUT", at("10-29 07:30"), "TELE"),
    punch(40, "M1", "IN", at("10-29 07:00"), "MS5"),
    punch(41, "M1", "MEAL_OUT", at("10-29 12:00"), "MS5"),
    punch(42, "M1", "MEAL_IN", at("10-29 12:30"), "MS5"),
    punch(43, "M1", "OUT", at("10-29 19:30"), "MS5"),
    punch(44, "L1", "IN", at("10-29 07:00"), "MS5"),
    punch(45, "L1", "MEAL_OUT", at("10-29 13:00"), "MS5"),
    punch(46, "L1", "MEAL_IN", at("10-29 13:30"), "MS5"),
    punch(47, "L1", "OUT", at("10-29 19:30"), "MS5"),
    punch(48, "A1", "IN", at("10-29 07:00"), "MS5"),
    punch(49, "A1", "OUT", at("10-29 15:30"), "MS5"),
    punch(50, "M1", "IN", at("10-30 07:00"), "MS5"),
    punch(51, "M1", "OUT", at("10-30 19:30"), "MS5"),
    punch(52, "L1", "IN", at("10-30 07:00"), "MS5"),
    punch(53, "L1", "OUT", at("10-30 19:30"), "MS5"),
    # the timecard edits: new versions of punches 8 and 13
    punch(8, "R2", "OUT", at("10-28 05:00"), "ICU", updated=at("10-29 10:00"), source="EDIT", deleted=True),
    punch(13, "R4", "OUT", at("10-28 19:30"), "ICU", updated=at("10-30 09:00"), source="EDIT"),
]
NIGHT_C_PUNCHES = [
    punch(60, "D1", "IN", at("10-31 19:00"), "MS5"),
    punch(61, "D1", "MEAL_OUT", at("11-01 03:00"), "MS5"),  # 03:00 PST, after the repeated hour
    punch(62, "D1", "MEAL_IN", at("11-01 03:30"), "MS5"),
    punch(63, "D1", "OUT", at("11-01 07:30"), "MS5"),
    punch(64, "L1", "IN", at("10-31 19:00"), "MS5"),
    punch(65, "L1", "OUT", at("11-01 07:30"), "MS5"),
]


def add_punches(conn, punches) -> None:
    batch = uuid.uuid4()
    with conn.cursor().copy(
        "copy raw.tk_punches (batch_id, punch_id, worker_id, punch_type, punch_ts, cost_center, job_code, source,"
        " updated_at, deleted) from stdin"
    ) as copy:
        for row in punches:
            copy.write_row((batch, *row))


# -- ADT --------------------------------------------------------------------------
_n = iter(range(1, 10_000))


def adt(landing, event, visit, when: str, unit, bed, **kw):
    day = date(2026, int(when[:2]), int(when[3:5]))
    ts = "2026" + when.replace("-", "").replace(" ", "").replace(":", "")
    text = build_message(
        event, control_id=f"C{next(_n)}", visit=visit, mrn=f"MRN{visit}", msg_ts=ts, unit=unit, bed=bed, **kw
    )
    folder = landing / "adt" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "feed.hl7", "a") as f:
        f.write(text)
    return day
