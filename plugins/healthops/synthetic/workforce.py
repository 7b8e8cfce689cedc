"""Synthetic workforce sources: the HR export's daily snapshots and the timekeeping
vendor's database (docs/sources.md#hr-export, docs/sources.md#timekeeping-database).
Fake workers only: names from a fixed list, birth dates drawn at random.

``generate_workforce(landing_dir, tk_url, start, days, seed)`` staffs the units that
``adt_feed.generate`` simulates for the same ``facility``/``facilities`` arguments
(``adt_feed.resolve_units``) and writes ``landing_dir/hr/YYYY-MM-DD/*.csv`` (each as
``NAME.tmp``, then renamed) and, when ``tk_url`` is given, fills ``tk.punch`` and
``tk.pay_line`` there (schema ``tk`` made with ``SOURCE_DDL``; the tables' content is
replaced, so a re-run leaves the same rows). ``build_workforce`` returns the same rows
without writing anything. Deterministic for a seed; no wall clock is read.

Staffing (per unit and 12-hour shift, day 07:00-19:30 and night 19:00-07:30 local,
the 30 minutes of overlap being the shift report): licensed nurses = ceil(staffed
beds / the unit type's ratio) plus meal relief (one nurse per 8 on units of 12 beds or
more; smaller units' meals are covered by a float nurse who transfers onto them for
the meal window), one LVN among them on med/surg and psychiatric units, a charge nurse
(RN_CHARGE, no patient assignment) on units of 16 beds or more, CNAs (beds/8 by day,
beds/10 at night), a unit clerk (07:00-15:30) and a nurse manager (weekdays
08:00-16:30). Meals are 30 minutes near mid-shift, staggered 35 minutes apart so no
more nurses are away at once than there are relief nurses. Each unit has pools of
workers for its day and night shifts (three 12-hour shifts a week; a fourth is
overtime); a facility float pool (home cost center ``<first digit>900``, job
``RN_FLOAT``) fills what the unit's pool cannot (vacancy, leave, sick calls). Nobody
works more than four shifts in seven days, so only the injected cases break the
fatigue limits.

Timekeeping: IN 7 minutes early to 3 late, OUT 3 early to 7 late, meals 30-32 minutes
(all within the 7-minute rounding, so a nominal 12-hour shift pays 12.00 hours); punch
times are local times converted to UTC (a night shift across the fall-back change is
13.5 hours of real time, across spring-forward 11.5). Timecard edits: a missed OUT added
by an EDIT row 1-2 days later, a wrong OUT time corrected in place (source EDIT, later
``updated_at``), a duplicate IN soft-deleted the next day; the table holds each punch's
latest version. Pay lines per worker, day, cost center, job and pay code: REG, OT
beyond 40 hours in the pay week (Sunday to Saturday), DT beyond 12 hours in a day
(California's alternative workweek rule), ORIENT, EDU, CALLBACK, SICK, PTO, HOLIDAY.

With ``gaps`` the first two weeks carry a few deliberate findings, each described in
``summary["gaps"]`` (kind, facility, unit, cost center, worker, local times).
"""

from __future__ import annotations

import csv
import heapq
import math
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union
from zoneinfo import ZoneInfo

from healthops import config
from healthops.sources.timekeeping.schema import PAY_LINE_COLUMNS, PUNCH_COLUMNS, SOURCE_DDL
from healthops.synthetic.adt_feed import resolve_units

SEEDS = config.DBT_PROJECT_DIR / "seeds"
UTC = timezone.utc
HR_FILES = {
    "workers.csv": (
        "worker_id",
        "last_name",
        "first_name",
        "birth_date",
        "hire_date",
        "termination_date",
        "worker_type",
        "job_code",
        "home_cost_center",
        "standard_hours_per_week",
        "status",
        "last_modified",
    ),
    "credentials.csv": (
        "worker_id",
        "credential_type",
        "credential_number",
        "issuing_state",
        "issue_date",
        "expiry_date",
        "verified_date",
    ),
    "training.csv": ("worker_id", "course_code", "completed_date"),
    "exclusion_screening.csv": ("worker_id", "screened_date", "list", "result"),
    "positions.csv": ("cost_center", "job_code", "budgeted_fte", "effective_date"),
}
LAST = (
    "ABERNATHY", "BALDWIN", "CALDERON", "DANVERS", "ELLISON", "FAIRBANKS", "GALLOWAY", "HARTLEY",
    "IBARRA", "JANSSEN", "KOWALCZYK", "LINDQVIST", "MADDOX", "NAKAMURA", "OKAFOR", "PRENTISS",
    "QUINTERO", "RADCLIFFE", "SANTORO", "TREMBLAY", "UDALL", "VANTERPOOL", "WHITLOCK", "XIONG",
    "YARBROUGH", "ZAVALA", "ACHTERBERG", "BRANNIGAN", "CASTELLANOS", "DEVEREAUX", "ESPINOZA",
    "FONTAINE", "GRIJALVA", "HOLLOWAY", "IVANOVA", "JEFFERIES", "KEMPER", "LACHANCE", "MONTOYA",
    "NWOSU", "OYELARAN", "PELLETIER", "RAMIREZ", "SOLBERG", "TANAKA", "VILLANUEVA", "WAKEFIELD",
)  # fmt: skip
FIRST = (
    "ALEX", "BRIANNA", "CARLOS", "DANA", "ELENA", "FATIMA", "GRACE", "HIRO", "IMANI", "JORDAN",
    "KEVIN", "LENA", "MARCUS", "NADIA", "OWEN", "PRIYA", "QUINN", "ROSA", "SAMUEL", "TAMIKA",
    "UMA", "VICTOR", "WENDY", "XAVIER", "YESENIA", "ZACHARY", "ANGELA", "BENJAMIN", "CELESTE",
    "DESMOND", "ESTHER", "FELIX", "GLORIA", "HECTOR", "ISABEL", "JOEL", "KIRA", "LUIS", "MAYA",
    "NOAH", "OLIVIA", "PAOLO", "RUTH", "SIMONE", "TREVOR", "VALERIA", "WILLIAM",
)  # fmt: skip
# hourly rates (low, high) by job; agency bill rates for CONTRACT RNs
RATES = {
    "RN": (72, 96),
    "RN_FLOAT": (84, 102),
    "RN_CHARGE": (90, 108),
    "NM": (105, 130),
    "LVN": (38, 50),
    "CNA": (23, 30),
    "UC": (22, 28),
    "CONTRACT": (110, 135),
}
SHIFT_TIMES = {  # start, end (local), end on the next day
    "D": (time(7), time(19, 30), False),
    "N": (time(19), time(7, 30), True),
    "UC": (time(7), time(15, 30), False),
    "NM": (time(8), time(16, 30), False),
    "EDU": (time(8), time(12), False),
    "CB": (time(21), time(1), True),
}
MEAL = timedelta(minutes=30)
MEAL_SPACING = timedelta(minutes=35)
RELIEF_WINDOW = (timedelta(hours=3, minutes=30), timedelta(hours=10))  # after shift start
MAX_SHIFTS_7D = {"D": 4, "N": 4, "UC": 5, "NM": 5}
TARGET_SHIFTS_7D = {"D": 3, "N": 3, "UC": 5, "NM": 5}
SICK_RATE, PTO_RATE, EDU_RATE, CALLBACK_RATE = 0.012, 0.012, 0.002, 0.04
MISSED_OUT_RATE, WRONG_TIME_RATE, DUPLICATE_RATE = 0.004, 0.004, 0.004
CENT = Decimal("0.01")


def load_ratios(path: Path = SEEDS / "nurse_ratios.csv") -> dict[str, int]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["unit_type"]: int(r["max_patients_per_licensed_nurse"]) for r in csv.DictReader(fh)}


def load_job_codes(path: Path = SEEDS / "job_codes.csv") -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["job_code"]: r for r in csv.DictReader(fh)}


def licensed_direct_care_jobs() -> set[str]:
    """Jobs whose hours count toward the ratio: direct care, needing an RN or LPN licence."""
    return {j for j, r in load_job_codes().items() if r["direct_care"] == "true" and r["licensed_credential"]}


def staffing(unit: dict, ratio: int) -> dict:
    """Positions per 12-hour shift of one unit: need (licensed nurses at full
    occupancy), relief, RN, LVN, RN_CHARGE, CNA_D, CNA_N."""
    beds = int(unit["staffed_beds"])
    need = math.ceil(beds / ratio)
    relief = max(1, math.ceil(need / 8)) if beds >= 12 else 0
    lvn = 1 if unit["unit_type"] in ("medical_surgical", "psychiatric") and need >= 3 else 0
    return {
        "need": need,
        "relief": relief,
        "RN": need + relief - lvn,
        "LVN": lvn,
        "RN_CHARGE": 1 if beds >= 16 else 0,
        "CNA_D": max(1, math.ceil(beds / 8)),
        "CNA_N": max(1, math.ceil(beds / 10)),
    }


# --------------------------------------------------------------------------- model


@dataclass
class Worker:
    worker_id: str
    last_name: str
    first_name: str
    birth_date: date
    hire_date: date
    worker_type: str
    job_code: str
    home_cc: str
    std_hours: int
    rate: Decimal
    facility: str
    pattern: str  # D, N, UC, NM
    unit_code: Optional[str] = None
    termination_date: Optional[date] = None
    leave: bool = False
    listed_from: Optional[date] = None  # a new hire appears in HR before the hire date
    pool_from: int = -(10**6)  # first day index the scheduler may use the worker
    last_modified: list = field(default_factory=list)  # (date listed from, timestamp)
    blocked: set = field(default_factory=set)
    worked: list = field(default_factory=list)  # day indexes with a shift (or absence)
    credentials: list = field(default_factory=list)  # (from date, credential row)
    training: list = field(default_factory=list)  # (course, completed date)

    def count7(self, di: int) -> int:
        n = 0
        for x in reversed(self.worked):
            if x < di - 6:
                break
            n += 1
        return n


@dataclass
class Shift:
    worker: Worker
    work_date: date
    kind: str
    segments: list  # [cc, job, in_ts, out_ts] (UTC)
    meals: list = field(default_factory=list)  # [out_ts, in_ts]
    pay_code: str = "REG"
    tag: Optional[str] = None  # an injected case: no edits on it
    no_in: bool = False
    extra_pairs: list = field(default_factory=list)  # (cc, job, in_ts, out_ts)
    unit_key: Optional[tuple] = None


class _Plan:
    """The workers, their pools and HR histories, and the injected cases."""

    def __init__(self, rows, start, days, seed, tz, gaps):
        self.start, self.days, self.tz = start, days, ZoneInfo(tz)
        self.rng = random.Random(f"{seed}/workforce/plan")
        self.ratios = load_ratios()
        self.units = rows
        self.workers: list[Worker] = []
        self.pools: dict[tuple, list[Worker]] = {}  # (facility, unit_code|FLOAT, pattern, job) -> workers
        self.staff: dict[tuple, dict] = {}
        self.positions: list[tuple] = []
        self.gaps: list[dict] = []  # the injected findings
        self.events: list[dict] = []  # HR happenings a manager would expect (no finding)
        self.gaps_on = gaps
        self.special: set[str] = set()
        self.forced: dict[int, list] = defaultdict(list)  # day index -> (worker, unit, job, kind, tag, pay)
        self.gap_a = self.gap_b = self.gap_c = None
        self.facilities = list(dict.fromkeys(r["facility_code"] for r in rows))
        self._n = 0
        fy = start.year if start.month >= 7 else start.year - 1
        self.fy_start = date(fy, 7, 1)
        for fac in self.facilities:
            self._staff_facility(fac)
        if gaps:
            self._inject()
        self._hr_events()

    # -- people
    def local(self, d: date, t: time) -> datetime:
        return datetime.combine(d, t, tzinfo=self.tz)

    def new_worker(self, fac, job, cc, pattern, unit_code=None, worker_type="EMPLOYEE", hire=None) -> Worker:
        rng = self.rng
        self._n += 1
        hire = hire or self.start - timedelta(days=rng.randint(90, 365 * 18))
        age = rng.randint(23, 63)
        birth = date(self.start.year - age, rng.randint(1, 12), rng.randint(1, 28))
        lo, hi = RATES["CONTRACT" if worker_type == "CONTRACT" else job]
        w = Worker(
            worker_id=f"W{100000 + self._n}",
            last_name=rng.choice(LAST),
            first_name=rng.choice(FIRST),
            birth_date=min(birth, hire - timedelta(days=365 * 20)),
            hire_date=hire,
            worker_type=worker_type,
            job_code=job,
            home_cc=cc,
            std_hours=40 if pattern in ("UC", "NM") else 36,
            rate=Decimal(rng.randint(lo * 100, hi * 100)) / 100,
            facility=fac,
            pattern=pattern,
            unit_code=unit_code,
        )
        w.last_modified.append((None, self.local(hire - timedelta(days=rng.randint(3, 20)), time(10, 15))))
        self._credentials(w, unit_type=self._unit_type(fac, unit_code))
        self._training(w)
        self.workers.append(w)
        return w

    def _unit_type(self, fac, unit_code):
        for r in self.units:
            if r["facility_code"] == fac and r["unit_code"] == unit_code:
                return r["unit_type"]
        return None

    def _expiry(self, floor: date) -> date:
        """A renewal date after ``floor`` (the last day of a month, as CA licences)."""
        d = floor + timedelta(days=self.rng.randint(45, 700))
        nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return nxt - timedelta(days=1)

    def _credentials(self, w: Worker, unit_type) -> None:
        rng, end = self.rng, self.start + timedelta(days=self.days)
        verified = w.hire_date + timedelta(days=rng.randint(0, 3))

        def add(ctype, number, state, issued):
            expiry = self._expiry(end)
            w.credentials.append([None, [ctype, number, state, issued, expiry, verified]])

        licence = {"RN": "RN", "RN_FLOAT": "RN", "RN_CHARGE": "RN", "NM": "RN", "LVN": "LPN"}.get(w.job_code)
        if licence:
            prefix = "RN" if licence == "RN" else "VN"
            add(
                licence,
                f"{prefix} {rng.randint(500000, 899999)}",
                "CA",
                w.hire_date - timedelta(days=rng.randint(30, 3000)),
            )
        if w.job_code == "CNA":
            add(
                "CNA",
                f"{rng.randint(10000000, 99999999):08d}",
                "CA",
                w.hire_date - timedelta(days=rng.randint(30, 2000)),
            )
        if w.job_code in ("RN", "RN_FLOAT", "RN_CHARGE", "LVN", "CNA", "NM"):
            add("BLS", f"BLS-{rng.randint(100000000, 999999999)}", "", end - timedelta(days=rng.randint(30, 700)))
        if w.job_code in ("RN", "RN_FLOAT", "RN_CHARGE") and unit_type in ("critical_care", "step_down", "emergency"):
            add("ACLS", f"ACLS-{rng.randint(100000000, 999999999)}", "", end - timedelta(days=rng.randint(30, 700)))
        if w.job_code in ("RN", "RN_CHARGE") and unit_type == "pediatrics":
            add("PALS", f"PALS-{rng.randint(100000000, 999999999)}", "", end - timedelta(days=rng.randint(30, 700)))

    def _training(self, w: Worker) -> None:
        rng = self.rng
        for course in ("HIPAA_PRIVACY", "HIPAA_SECURITY"):
            first = w.hire_date + timedelta(days=rng.randint(1, 20))
            yearly = self.start - timedelta(days=rng.randint(10, 330))
            w.training.append((course, max(first, yearly) if yearly > w.hire_date else first))

    # -- positions and pools
    def _staff_facility(self, fac: str) -> None:
        rng = self.rng
        units = [u for u in self.units if u["facility_code"] == fac]
        float_cc = f"{units[0]['cost_center'][0]}900"
        budget: dict[tuple, float] = defaultdict(float)
        small = 0
        licensed = 0
        for u in units:
            st = staffing(u, self.ratios[u["unit_type"]])
            self.staff[(fac, u["unit_code"])] = st
            cc = u["cost_center"]
            small += int(u["staffed_beds"]) < 12
            licensed += st["need"]
            for pattern in ("D", "N"):
                for job, n in (("RN", st["RN"]), ("LVN", st["LVN"]), ("RN_CHARGE", st["RN_CHARGE"])):
                    self._pool(fac, u, pattern, job, n, budget)
                self._pool(fac, u, pattern, "CNA", st[f"CNA_{pattern}"], budget)
            self._pool(fac, u, "UC", "UC", 1, budget)
            self._pool(fac, u, "NM", "NM", 1, budget)
        for pattern in ("D", "N"):
            n = max(2, math.ceil(0.08 * licensed)) + math.ceil(small / 2)
            pool = self.pools.setdefault((fac, "FLOAT", pattern, "RN_FLOAT"), [])
            for _ in range(n):
                pool.append(self.new_worker(fac, "RN_FLOAT", float_cc, pattern))
            budget[(float_cc, "RN_FLOAT")] += n * 0.9
        for (cc, job), fte in budget.items():
            self.positions.append((cc, job, f"{fte:.1f}", self.fy_start))
        # a vacancy: one unit's day RN pool one short of its budget
        big = [u for u in units if int(u["staffed_beds"]) >= 12 and u["unit_type"] != "emergency"] or units
        v = rng.choice(big)
        pool = self.pools[(fac, v["unit_code"], "D", "RN")]
        gone = pool.pop()
        self.workers.remove(gone)
        self.events.append(
            self._describe("vacancy", fac, v, None, None, None, f"day RN pool one below budget on {v['unit_code']}")
        )
        # CONTRACT nurses, leave
        active = [w for w in self.workers if w.facility == fac]
        for w in active:
            if w.job_code == "RN" and rng.random() < 0.1:
                w.worker_type = "CONTRACT"
                lo, hi = RATES["CONTRACT"]
                w.rate = Decimal(rng.randint(lo * 100, hi * 100)) / 100
                w.hire_date = self.start - timedelta(days=rng.randint(7, 80))  # 13-week assignments
                w.last_modified = [(None, self.local(w.hire_date - timedelta(days=rng.randint(3, 10)), time(10, 15)))]
                w.credentials.clear()
                self._credentials(w, self._unit_type(fac, w.unit_code))
                w.training.clear()
                self._training(w)
        staff_rn = [w for w in active if w.job_code in ("RN", "CNA") and w.worker_type == "EMPLOYEE"]
        for w in rng.sample(staff_rn, max(1, len(staff_rn) // 60)):
            w.leave = True
            w.last_modified.append((None, self.local(self.start - timedelta(days=rng.randint(5, 40)), time(9, 40))))

    def _pool(self, fac, u, pattern, job, n, budget) -> None:
        if n <= 0:
            return
        per_week = {"D": 3, "N": 3, "UC": 5, "NM": 5}[pattern]
        days_a_week = 5 if pattern == "NM" else 7
        size = math.ceil(n * days_a_week / per_week)
        pool = self.pools.setdefault((fac, u["unit_code"], pattern, job), [])
        for _ in range(size):
            pool.append(self.new_worker(fac, job, u["cost_center"], pattern, u["unit_code"]))
        budget[(u["cost_center"], job)] += size * (1.0 if pattern in ("UC", "NM") else 0.9)

    # -- injected cases
    def _describe(self, kind, fac, unit, worker, t0, t1, text) -> dict:
        return {
            "kind": kind,
            "facility": fac,
            "unit": unit["unit_code"] if unit else None,
            "cost_center": unit["cost_center"] if unit else (worker.home_cc if worker else None),
            "worker_id": worker.worker_id if worker else None,
            "local_start": t0.isoformat() if t0 else None,
            "local_end": t1.isoformat() if t1 else None,
            "description": text,
        }

    def _pick(self, fac, unit_code, pattern, job, exclude=()) -> Worker:
        pool = self.pools[(fac, unit_code, pattern, job)]
        for w in pool:
            if not w.leave and w.worker_type == "EMPLOYEE" and w.worker_id not in self.special and w not in exclude:
                self.special.add(w.worker_id)
                return w
        raise ValueError(f"no worker to pick on {unit_code}")

    def _inject(self) -> None:
        fac, days, start = self.facilities[0], self.days, self.start
        units = [u for u in self.units if u["facility_code"] == fac and u["unit_type"] != "emergency"]
        relieved = [u for u in units if self.staff[(fac, u["unit_code"])]["relief"] == 1]
        if not relieved:
            return
        # (a) a late clock-in at a shift change and (b) a meal without relief, on the two
        # units where one licensed nurse fewer covers the smallest share of the beds: the
        # ones most likely to be out of ratio when the census is high, not only at capacity

        def cover(u):
            st = self.staff[(fac, u["unit_code"])]
            return (self.ratios[u["unit_type"]] * (st["need"] - 1) / int(u["staffed_beds"]), -int(u["staffed_beds"]))

        fit = [u for u in relieved if self.staff[(fac, u["unit_code"])]["need"] <= 10] or relieved
        ranked = sorted([u for u in fit if u["unit_type"] != "pediatrics"] or fit, key=cover)
        b = ranked[0]
        a = ranked[1] if len(ranked) > 1 else ranked[0]
        others = [u for u in relieved if u is not a and u is not b] or [b]
        c_unit = others[0]
        d_unit = others[1 % len(others)]
        if days >= 6:
            self.gap_a = (5, a)
        if days >= 6:
            self.gap_b = (5, b)
        if days >= 8:
            w = self._pick(fac, c_unit["unit_code"], "D", "RN")
            w.blocked.update(range(6, 9))
            self.forced[7].append((w, c_unit, "RN", "D", "double", "REG"))
            self.gap_c = (7, w)
            t0, t1 = self.local(start + timedelta(days=7), time(7)), self.local(start + timedelta(days=7), time(23))
            self.gaps.append(
                self._describe(
                    "fatigue_12h", fac, c_unit, w, t0, t1, "double shift 07:00-23:00: more than 12 hours in 24"
                )
            )
        if days >= 8:
            w = self._pick(fac, d_unit["unit_code"], "D", "RN")
            w.blocked.update(range(-1, 11))
            for k in (1, 2, 3, 5, 6, 7):
                self.forced[k].append((w, d_unit, "RN", "D", "sixty", "REG"))
            t0 = self.local(start + timedelta(days=1), time(7))
            t1 = self.local(start + timedelta(days=7), time(19, 30))
            self.gaps.append(
                self._describe("fatigue_60h", fac, d_unit, w, t0, t1, "six 12-hour day shifts in 7 days: 72 hours")
            )
        if days >= 12:  # (d) a licence lapsed for two days, one shift worked in between
            w = self._pick(fac, c_unit["unit_code"], "D", "RN")
            w.blocked.update(range(9, 11))
            self.forced[10].append((w, c_unit, "RN", "D", "licence", "REG"))
            expiry = start + timedelta(days=9)
            lic = next(c for c in w.credentials if c[1][0] == "RN")
            lic[1][4] = expiry
            renewed = list(lic[1])
            renewed[4] = date(expiry.year + 2, expiry.month, 1) + timedelta(days=27)
            renewed[5] = start + timedelta(days=11)
            w.credentials.append([start + timedelta(days=11), renewed])
            w.last_modified.append((start + timedelta(days=11), self.local(start + timedelta(days=11), time(11, 5))))
            d10 = start + timedelta(days=10)
            self.gaps.append(
                self._describe(
                    "licence_expired",
                    fac,
                    c_unit,
                    w,
                    self.local(d10, time(7)),
                    self.local(d10, time(19, 30)),
                    f"RN licence expired {expiry}, renewed {renewed[5]}: "
                    f"day shift {d10} worked without a current licence",
                )
            )
        if days >= 6:  # (e) an OUT without IN, and an overlapping pair, for one CNA
            w = self._pick(fac, d_unit["unit_code"], "D", "CNA")
            w.blocked.update(range(4, 6))
            self.forced[4].append((w, d_unit, "CNA", "D", "no_in", "REG"))
            self.forced[5].append((w, d_unit, "CNA", "D", "overlap", "REG"))
            d4, d5 = start + timedelta(days=4), start + timedelta(days=5)
            self.gaps.append(
                self._describe("out_without_in", fac, d_unit, w, None, self.local(d4, time(19, 30)), "OUT with no IN")
            )
            self.gaps.append(
                self._describe(
                    "overlapping_pair",
                    fac,
                    c_unit,
                    w,
                    self.local(d5, time(11)),
                    self.local(d5, time(12)),
                    f"a second IN/OUT pair on {c_unit['cost_center']} inside the open shift on {d_unit['cost_center']}",
                )
            )

    # -- HR histories
    def _hr_events(self) -> None:
        rng, start, days = random.Random(f"{self.rng.random()}/hr"), self.start, self.days
        fac = self.facilities[0]
        units = [u for u in self.units if u["facility_code"] == fac and u["unit_type"] != "emergency"]
        u = units[0]
        regular = [w for w in self.workers if w.facility == fac and not w.leave and w.worker_id not in self.special]
        rns = [w for w in regular if w.job_code == "RN" and w.worker_type == "EMPLOYEE" and w.pattern == "D"]
        # a new hire: listed 3 days ahead, classroom orientation, licence verified, precepted shifts
        if days >= 3:
            kh = min(5, days - 1)
            hire = start + timedelta(days=kh)
            w = self.new_worker(fac, "RN", u["cost_center"], "D", u["unit_code"], hire=hire)
            self.pools[(fac, u["unit_code"], "D", "RN")].append(w)
            self.special.add(w.worker_id)
            w.listed_from = hire - timedelta(days=3)
            w.last_modified = [(None, self.local(hire - timedelta(days=3), time(9, 30)))]
            w.pool_from = kh + 5
            w.credentials = [[None, c[1][:5] + [None]] for c in w.credentials] + [
                [hire + timedelta(days=2), c[1][:5] + [hire + timedelta(days=2)]] for c in w.credentials
            ]
            w.training = [(c, hire + timedelta(days=1)) for c in ("HIPAA_PRIVACY", "HIPAA_SECURITY")]
            self.new_hire = (kh, w)
            for k in (kh + 3, kh + 4):
                if k < days:
                    self.forced[k].append((w, u, "RN", "D", "orient", "ORIENT"))
            self.events.append(
                self._describe(
                    "new_hire", fac, u, w, None, None, f"hired {hire}, licence verified {hire + timedelta(days=2)}"
                )
            )
        else:
            self.new_hire = None
        # HIPAA training late: hired 45 days before the start, completed on day 6
        late = rns[0]
        self.special.add(late.worker_id)
        late.hire_date = start - timedelta(days=45)
        late.last_modified = [(None, self.local(late.hire_date - timedelta(days=6), time(13, 50)))]
        done = start + timedelta(days=min(6, days - 1)) if self.gaps_on else late.hire_date + timedelta(days=9)
        late.training = [(c, done) for c in ("HIPAA_PRIVACY", "HIPAA_SECURITY")]
        late.credentials = [[None, c[1][:5] + [late.hire_date + timedelta(days=1)]] for c in late.credentials]
        (self.gaps if self.gaps_on else self.events).append(
            self._describe(
                "hipaa_training_late",
                fac,
                u,
                late,
                None,
                None,
                f"hired {late.hire_date}, HIPAA training completed {done} ({(done - late.hire_date).days} days)",
            )
        )
        # a termination mid-period
        term = rns[1]
        self.special.add(term.worker_id)
        term.termination_date = start + timedelta(days=days // 2)
        term.last_modified.append((term.termination_date, self.local(term.termination_date, time(16, 20))))
        self.events.append(
            self._describe("termination", fac, None, term, None, None, f"terminated {term.termination_date}")
        )
        # a BLS card renewed before it lapses
        bls_w = rns[2]
        bls = next(c for c in bls_w.credentials if c[1][0] == "BLS")
        bls[1][4] = start + timedelta(days=days + 20)
        k = min(4, days - 1)
        renewed = [start + timedelta(days=k), list(bls[1])]
        renewed[1][1] = f"BLS-{rng.randint(100000000, 999999999)}"
        renewed[1][3] = start + timedelta(days=k)
        renewed[1][4] = self._expiry(start + timedelta(days=700))
        renewed[1][5] = start + timedelta(days=k)
        bls_w.credentials.append(renewed)
        # monthly exclusion screening of everyone on the 3rd, OIG LEIE and SAM
        self.screen_dates = []
        m = date(start.year, start.month, 3) - timedelta(days=62)
        end = start + timedelta(days=days)
        while m < end:
            m = date(m.year, m.month, 3)
            self.screen_dates.append(m)
            m = m + timedelta(days=32)
        in_period = [s for s in self.screen_dates if start <= s < end - timedelta(days=2)]
        self.possible_match = None
        if in_period:
            pm = regular[len(regular) // 3]
            self.possible_match = (pm, in_period[0])
            self.events.append(
                self._describe(
                    "exclusion_possible_match",
                    fac,
                    None,
                    pm,
                    None,
                    None,
                    f"OIG_LEIE POSSIBLE_MATCH on {in_period[0]}, cleared {in_period[0] + timedelta(days=2)}",
                )
            )

    # -- snapshots
    def hr_snapshot(self, day: date) -> dict[str, list[tuple]]:
        out = {name: [] for name in HR_FILES}
        pm_worker, pm_date = self.possible_match or (None, None)
        for w in self.workers:
            if w.listed_from and day < w.listed_from:
                continue
            if not w.listed_from and day < w.hire_date:
                continue
            terminated = w.termination_date is not None and day >= w.termination_date
            status = "TERMINATED" if terminated else ("LEAVE" if w.leave else "ACTIVE")
            modified = max(t for d, t in w.last_modified if d is None or d <= day)
            out["workers.csv"].append(
                (
                    w.worker_id,
                    w.last_name,
                    w.first_name,
                    w.birth_date,
                    w.hire_date,
                    w.termination_date if terminated else None,
                    w.worker_type,
                    w.job_code,
                    w.home_cc,
                    w.std_hours,
                    status,
                    modified.isoformat(),
                )
            )
            current: dict[str, list] = {}
            for since, row in w.credentials:
                if since is None or since <= day:
                    current[row[0]] = row
            for row in current.values():
                out["credentials.csv"].append((w.worker_id, *row))
            for course, done in w.training:
                if done <= day:
                    out["training.csv"].append((w.worker_id, course, done))
            first = w.hire_date - timedelta(days=3)
            for s in [first] + [s for s in self.screen_dates if s > first]:
                if s > day:
                    break
                if s <= day - timedelta(days=62):  # the export lists the last two months' screenings
                    continue
                for lst in ("OIG_LEIE", "SAM"):
                    result = "POSSIBLE_MATCH" if (w is pm_worker and s == pm_date and lst == "OIG_LEIE") else "CLEAR"
                    out["exclusion_screening.csv"].append((w.worker_id, s, lst, result))
                if w is pm_worker and s == pm_date and day >= s + timedelta(days=2):
                    out["exclusion_screening.csv"].append((w.worker_id, s + timedelta(days=2), "OIG_LEIE", "CLEAR"))
        out["positions.csv"] = list(self.positions)
        return out


# --------------------------------------------------------------------------- simulation


class _Sim:
    def __init__(self, plan: _Plan, seed: int):
        self.p = plan
        self.seed = seed
        self.punch_heap: list = []
        self.pay_heap: list = []
        self.seq = 0
        self.punch_id = 0
        self.pay_line_id = 0
        self.week_hours: dict[tuple, Decimal] = defaultdict(Decimal)
        self.day_hours: dict[tuple, Decimal] = defaultdict(Decimal)
        self.edits = self.deletions = 0
        self.unfilled = 0
        self._lic_cache: dict = {}

    def _t(self, d: date, t: time) -> datetime:
        return datetime.combine(d, t, tzinfo=self.p.tz).astimezone(UTC)

    def span(self, d: date, kind: str) -> tuple[datetime, datetime]:
        t0, t1, nxt = SHIFT_TIMES[kind]
        return self._t(d, t0), self._t(d + timedelta(days=nxt), t1)

    # -- scheduling
    def _available(self, w: Worker, di: int, d: date, today: set) -> bool:
        return (
            not w.leave
            and w.worker_id not in today
            and di not in w.blocked
            and di >= w.pool_from
            and w.hire_date <= d
            and (w.termination_date is None or d < w.termination_date)
        )

    def _choose(self, pool, di, d, today, cap, rng):
        best = None
        for w in pool:
            if not self._available(w, di, d, today):
                continue
            n = w.count7(di)
            if n >= cap:
                continue
            key = (n, w.worked[-1] if w.worked else -999, w.worker_id)
            if best is None or key < best[0]:
                best = (key, w)
        return best[1] if best else None

    def fill(self, pools, n, di, d, kind, today, rng, absences):
        """``n`` workers from the pools in order, three shifts a week first, then four."""
        chosen = []
        while len(chosen) < n:
            w = None
            for cap in (TARGET_SHIFTS_7D[kind], MAX_SHIFTS_7D[kind]):
                for pool in pools:
                    w = self._choose(pool, di, d, today, cap, rng)
                    if w:
                        break
                if w:
                    break
            if w is None:
                self.unfilled += 1
                break
            today.add(w.worker_id)
            w.worked.append(di)
            if di >= 0 and w.worker_id not in self.p.special and kind in ("D", "N"):
                r = rng.random()
                if r < SICK_RATE + PTO_RATE:
                    absences.append((w, d, kind, "SICK" if r < SICK_RATE else "PTO"))
                    continue
            chosen.append(w)
        return chosen

    # -- shifts
    def day(self, di: int) -> list[Shift]:
        p, d = self.p, self.p.start + timedelta(days=di)
        rng = random.Random(f"{self.seed}/workforce/day/{d.isoformat()}")
        shifts: list[Shift] = []
        absences: list = []
        today: set = set()
        forced = p.forced.get(di, [])
        for w, *_ in forced:
            today.add(w.worker_id)
            w.worked.append(di)
        for fac in p.facilities:
            units = [u for u in p.units if u["facility_code"] == fac]
            float_pool = {k: p.pools[(fac, "FLOAT", k, "RN_FLOAT")] for k in ("D", "N")}
            for kind in ("D", "N") if di >= 0 else ("N",):
                relief_units = []
                for u in units:
                    st = p.staff[(fac, u["unit_code"])]
                    rn = st["RN"]
                    gap_a = p.gap_a and p.gap_a[0] == di and p.gap_a[1] is u and kind == "N"
                    if gap_a:
                        rn -= st["relief"]
                    if int(u["staffed_beds"]) < 12 or gap_a:
                        relief_units.append(u)
                    lic = []
                    for job, n in (("RN", rn), ("LVN", st["LVN"])):
                        own = p.pools.get((fac, u["unit_code"], kind, job), [])
                        ws = self.fill([own, float_pool[kind]], n, di, d, kind, today, rng, absences)
                        lic += [(w, "RN_FLOAT" if w.job_code == "RN_FLOAT" else job) for w in ws]
                    others = []
                    for job, n in (("RN_CHARGE", st["RN_CHARGE"]), ("CNA", st[f"CNA_{kind}"])):
                        own = p.pools.get((fac, u["unit_code"], kind, job), [])
                        others += [(w, job) for w in self.fill([own], n, di, d, kind, today, rng, absences)]
                    shifts += self._unit_shifts(u, d, kind, lic, others, rng, external=u in relief_units)
                if relief_units:
                    shifts += self._relief(fac, relief_units, d, di, kind, float_pool[kind], today, rng, absences)
            if di >= 0:
                for u in units:
                    ws = self.fill([p.pools[(fac, u["unit_code"], "UC", "UC")]], 1, di, d, "UC", today, rng, absences)
                    for w in ws:
                        shifts.append(self._simple(w, u["cost_center"], "UC", d, "UC", rng))
                    if d.weekday() < 5:
                        for w in p.pools[(fac, u["unit_code"], "NM", "NM")]:
                            if not self._available(w, di, d, today):
                                continue
                            today.add(w.worker_id)
                            w.worked.append(di)
                            if d in _holidays(d.year):
                                t0, _ = self.span(d, "NM")
                                self._absence(w, d, "HOLIDAY", Decimal(8), t0 + timedelta(hours=9), u["cost_center"])
                            else:
                                shifts.append(self._simple(w, u["cost_center"], "NM", d, "NM", rng))
        for w, u, job, kind, tag, pay in forced:
            s = self._simple(
                w, u["cost_center"], job, d, kind, rng, meal_at=timedelta(hours=5, minutes=rng.randint(0, 50))
            )
            s.tag, s.pay_code, s.unit_key = tag, pay, (u["facility_code"], u["unit_code"])
            shifts.append(s)
        if di >= 0:
            self._extras(di, d, today, rng, shifts)
        if p.new_hire and di in (p.new_hire[0], p.new_hire[0] + 1):  # classroom orientation, entered by hand
            w = p.new_hire[1]
            cc = f"{w.home_cc[0]}910"
            self._absence(w, d, "ORIENT", Decimal(8), self._t(d, time(16, 45)), cc)
        self._inject(di, d, shifts)
        for w, dd, kind, code in absences:
            t0, _ = self.span(dd, kind)
            when = t0 - (timedelta(hours=3) if code == "SICK" else timedelta(days=rng.randint(10, 40)))
            self._absence(w, dd, code, Decimal(12), when, w.home_cc)
        return shifts

    def _simple(self, w, cc, job, d, kind, rng, meal_at=None) -> Shift:
        t0, t1 = self.span(d, kind)
        i = t0 + timedelta(seconds=rng.randint(-420, 180))
        o = t1 + timedelta(seconds=rng.randint(-180, 420))
        s = Shift(w, d, kind, [[cc, job, i, o]])
        if kind != "EDU" and kind != "CB":
            m = t0 + (meal_at or timedelta(hours=4, minutes=rng.randint(30, 150)))
            m += timedelta(seconds=rng.randint(0, 120))
            s.meals.append([m, m + MEAL + timedelta(seconds=rng.randint(0, 120))])
        return s

    def _unit_shifts(self, u, d, kind, lic, others, rng, external) -> list[Shift]:
        p = self.p
        st = p.staff[(u["facility_code"], u["unit_code"])]
        t0, t1 = self.span(d, kind)
        key = (u["facility_code"], u["unit_code"])
        out = []
        r = max(1, st["relief"])
        groups = math.ceil(len(lic) / r)
        base = timedelta(hours=6) - MEAL_SPACING * groups / 2
        if external:  # meals at the float's relief block, set by _relief
            base = None
        for j, (w, job) in enumerate(lic):
            s = self._simple(w, u["cost_center"], job, d, kind, rng)
            s.unit_key = key
            s.meals.clear()
            if base is not None:
                m = t0 + base + MEAL_SPACING * (j // r) + timedelta(seconds=rng.randint(0, 120))
                s.meals.append([m, m + MEAL + timedelta(seconds=rng.randint(0, 120))])
            out.append(s)
        for w, job in others:
            s = self._simple(w, u["cost_center"], job, d, kind, rng)
            s.unit_key = key
            out.append(s)
        self._lic_cache[(key, d, kind)] = out[: len(lic)]
        return out

    def _relief(self, fac, units, d, di, kind, float_pool, today, rng, absences) -> list[Shift]:
        """Float nurses who transfer onto the units in ``units`` for their meal window:
        OUT of the float cost center, IN on the unit, the unit's nurses' meals one after
        another, back to the float cost center."""
        t0, t1 = self.span(d, kind)
        w0, w1 = RELIEF_WINDOW
        out, floats, cursor = [], [], None
        for u in units:
            lic = self._lic_cache.get(((fac, u["unit_code"]), d, kind), [])
            length = MEAL_SPACING * len(lic) + timedelta(minutes=10)
            if not floats or cursor + length > t0 + w1:
                ws = self.fill([float_pool], 1, di, d, kind, today, rng, absences)
                if not ws:
                    continue
                s = self._simple(ws[0], f"{u['cost_center'][0]}900", "RN_FLOAT", d, kind, rng)
                s.meals = [[t0 + timedelta(hours=2, minutes=30), t0 + timedelta(hours=3, seconds=rng.randint(0, 90))]]
                floats.append(s)
                out.append(s)
                cursor = t0 + w0
            s = floats[-1]
            seg = s.segments[-1]
            b0, b1 = cursor, cursor + length
            s.segments[-1] = [seg[0], seg[1], seg[2], b0]
            s.segments.append([u["cost_center"], "RN_FLOAT", b0, b1])
            s.segments.append([seg[0], seg[1], b1, seg[3]])
            for j, n in enumerate(lic):
                m = b0 + timedelta(minutes=5) + MEAL_SPACING * j + timedelta(seconds=rng.randint(0, 120))
                n.meals = [[m, m + MEAL + timedelta(seconds=rng.randint(0, 120))]]
            cursor = b1
        return out

    def _extras(self, di, d, today, rng, shifts) -> None:
        """EDU classes on days off, a rare CALLBACK."""
        p = self.p
        for fac in p.facilities:
            for u in (u for u in p.units if u["facility_code"] == fac):
                for w in p.pools.get((fac, u["unit_code"], "D", "RN"), []):
                    if rng.random() < EDU_RATE and w.worker_id not in p.special and self._available(w, di, d, today):
                        today.add(w.worker_id)
                        s = self._simple(w, f"{u['cost_center'][0]}910", "RN", d, "EDU", rng)
                        s.pay_code = "EDU"
                        shifts.append(s)
            if rng.random() < CALLBACK_RATE:
                u = rng.choice([u for u in p.units if u["facility_code"] == fac and u["unit_type"] != "emergency"])
                if p.gap_a and u is p.gap_a[1]:
                    continue
                for w in p.pools.get((fac, u["unit_code"], "D", "RN"), []):
                    if (
                        w.worker_id not in p.special
                        and self._available(w, di, d, today)
                        and (not w.worked or w.worked[-1] < di - 1)
                        and w.count7(di) < 3
                    ):
                        today.add(w.worker_id)
                        w.worked.append(di)
                        w.blocked.add(di + 1)
                        s = self._simple(w, u["cost_center"], "RN", d, "CB", rng)
                        s.pay_code = "CALLBACK"
                        shifts.append(s)
                        break

    def _inject(self, di, d, shifts) -> None:
        p = self.p
        if p.gap_a and p.gap_a[0] == di:
            u = p.gap_a[1]
            key = (u["facility_code"], u["unit_code"])
            day_lic = self._lic_cache[(key, d, "D")]
            night_lic = self._lic_cache[(key, d, "N")]
            _, end = self.span(d, "D")
            rng = random.Random(f"{self.seed}/workforce/gap_a")
            for s in day_lic:
                s.segments[-1][3] = end + timedelta(seconds=rng.randint(-180, 60))
            out_nurse, in_nurse = day_lic[0], night_lic[0]
            out_nurse.segments[-1][3] = end + timedelta(minutes=2)
            night_start, _ = self.span(d, "N")
            in_nurse.segments[0][2] = night_start + timedelta(minutes=39)
            out_nurse.tag = in_nurse.tag = "late_in"
            t0 = out_nurse.segments[-1][3].astimezone(p.tz)
            t1 = in_nurse.segments[0][2].astimezone(p.tz)
            p.gaps.append(
                p._describe(
                    "shift_change_gap",
                    u["facility_code"],
                    u,
                    in_nurse.worker,
                    t0,
                    t1,
                    f"{out_nurse.worker.worker_id} clocked out at {t0:%H:%M}, "
                    f"{in_nurse.worker.worker_id} clocked in at {t1:%H:%M}; "
                    f"night staffed exactly at ratio (no relief nurse): one licensed nurse short for "
                    f"{int((t1 - t0).total_seconds() // 60)} minutes",
                )
            )
        if p.gap_b and p.gap_b[0] == di:
            u = p.gap_b[1]
            lic = self._lic_cache[((u["facility_code"], u["unit_code"]), d, "N")]
            y, x = lic[0], lic[-1]
            m = y.meals[0][0].replace(second=0, microsecond=0) + timedelta(minutes=2)
            x.meals = [[m, m + MEAL]]
            x.tag = y.tag = "meal_no_relief"
            t0 = max(m, y.meals[0][0]).astimezone(p.tz)
            t1 = min(m + MEAL, y.meals[0][1]).astimezone(p.tz)
            p.gaps.append(
                p._describe(
                    "meal_without_relief",
                    u["facility_code"],
                    u,
                    x.worker,
                    t0,
                    t1,
                    f"{x.worker.worker_id} went to meal while {y.worker.worker_id} was on break: two licensed nurses "
                    f"away, one short of ratio at full occupancy",
                )
            )
        for s in shifts:
            if s.tag == "double":
                t0, _ = self.span(d, "D")
                s.segments[-1][3] = self._t(d, time(23)) + timedelta(seconds=120)
            elif s.tag == "no_in":
                s.no_in = True
            elif s.tag == "overlap":
                cc = next(g["cost_center"] for g in p.gaps if g["kind"] == "overlapping_pair")
                s.extra_pairs.append((cc, s.segments[0][1], self._t(d, time(11)), self._t(d, time(12))))

    # -- rows
    def _push_punch(self, created, row):
        self.seq += 1
        heapq.heappush(self.punch_heap, (created, self.seq, row))

    def _push_pay(self, created, row):
        self.seq += 1
        heapq.heappush(self.pay_heap, (created, self.seq, row))

    def _absence(self, w, d, code, hours, when, cc) -> None:
        amount = (hours * w.rate).quantize(CENT, ROUND_HALF_UP)
        if code == "ORIENT":  # classroom hours are worked hours of the pay week
            self.week_hours[(w.worker_id, d - timedelta(days=(d.weekday() + 1) % 7))] += hours
        self._push_pay(when, [w.worker_id, d, cc, w.job_code, code, hours, amount, when, False])

    def emit(self, s: Shift, rng: random.Random) -> None:
        w = s.worker
        edit = None
        if s.tag is None and s.kind in ("D", "N"):
            r = rng.random()
            if r < MISSED_OUT_RATE:
                edit = "missed_out"
            elif r < MISSED_OUT_RATE + WRONG_TIME_RATE:
                edit = "wrong_time"
            elif r < MISSED_OUT_RATE + WRONG_TIME_RATE + DUPLICATE_RATE:
                edit = "duplicate"
        events = []  # (created, type, ts, cc, job, source, updated, deleted)
        segs = s.segments
        for k, (cc, job, i, o) in enumerate(segs):
            if not (k == 0 and s.no_in):
                events.append([i, "IN", i, cc, job, "CLOCK", i + timedelta(seconds=rng.randint(1, 30)), False])
            for m0, m1 in s.meals:
                if i <= m0 < o:
                    events.append(
                        [m0, "MEAL_OUT", m0, cc, job, "CLOCK", m0 + timedelta(seconds=rng.randint(1, 30)), False]
                    )
                    events.append(
                        [m1, "MEAL_IN", m1, cc, job, "CLOCK", m1 + timedelta(seconds=rng.randint(1, 30)), False]
                    )
            events.append([o, "OUT", o, cc, job, "CLOCK", o + timedelta(seconds=rng.randint(1, 30)), False])
        for cc, job, i, o in s.extra_pairs:
            events.append([i, "IN", i, cc, job, "CLOCK", i + timedelta(seconds=5), False])
            events.append([o, "OUT", o, cc, job, "CLOCK", o + timedelta(seconds=5), False])
        pay_time = segs[-1][3] + timedelta(seconds=rng.randint(300, 3600))
        if edit:
            last = events[-1]
            _, scheduled_end = self.span(s.work_date, s.kind)
            # the manager approves the correction in office hours one or two days later
            local_day = last[2].astimezone(self.p.tz).date() + timedelta(days=rng.choice((1, 2)))
            when = self._t(local_day, time(8)) + timedelta(seconds=rng.randint(0, 9 * 3600))
            if edit == "missed_out":
                last[0], last[2], last[5], last[6] = when, scheduled_end, "EDIT", when
            elif edit == "wrong_time":
                last[5], last[6] = "EDIT", when  # the row holds the corrected time; created when first punched
            else:
                first = events[0]
                t = first[2] + timedelta(seconds=rng.randint(20, 90))
                events.append([t, "IN", t, first[3], first[4], "CLOCK", when, True])
                self.deletions += 1
            if edit != "duplicate":
                self.edits += 1
                pay_time = when + timedelta(minutes=rng.randint(5, 90))
        for created, ptype, ts, cc, job, src, upd, deleted in events:
            self._push_punch(created, [w.worker_id, ptype, ts, cc, job, src, upd, deleted])
        self._pay(s, pay_time)

    def _pay(self, s: Shift, when: datetime) -> None:
        w = s.worker
        wk = (w.worker_id, s.work_date - timedelta(days=(s.work_date.weekday() + 1) % 7))
        dk = (w.worker_id, s.work_date)
        lines: dict[tuple, Decimal] = defaultdict(Decimal)
        for cc, job, i, o in s.segments:
            q = (_round15(o) - _round15(i)).total_seconds() / 900
            h = Decimal(int(q)) / 4
            for m0, _ in s.meals:
                if i <= m0 < o:
                    h -= Decimal("0.5")
            h = max(h, Decimal(0))
            if s.pay_code in ("REG", "ORIENT") and s.kind in ("D", "N", "UC", "NM"):
                dt = max(Decimal(0), self.day_hours[dk] + h - 12) if self.day_hours[dk] + h > 12 else Decimal(0)
                dt = min(dt, h)
                rest = h - dt
                room = max(Decimal(0), 40 - self.week_hours[wk])
                reg = min(rest, room)
                for code, hh in ((s.pay_code, reg), ("OT", rest - reg), ("DT", dt)):
                    if hh > 0:
                        lines[(cc, job, code)] += hh
            elif h > 0:
                lines[(cc, job, s.pay_code)] += h
            self.day_hours[dk] += h
            self.week_hours[wk] += h
        mult = {"OT": Decimal("1.5"), "DT": Decimal(2)}
        for (cc, job, code), h in lines.items():
            amount = (h * w.rate * mult.get(code, 1)).quantize(CENT, ROUND_HALF_UP)
            self._push_pay(when, [w.worker_id, s.work_date, cc, job, code, h, amount, when, False])

    def drain(self, until: Optional[datetime]) -> tuple[list, list]:
        punches, pays = [], []
        while self.punch_heap and (until is None or self.punch_heap[0][0] < until):
            _, _, row = heapq.heappop(self.punch_heap)
            self.punch_id += 1
            punches.append((self.punch_id, *row))
        while self.pay_heap and (until is None or self.pay_heap[0][0] < until):
            _, _, row = heapq.heappop(self.pay_heap)
            self.pay_line_id += 1
            pays.append((self.pay_line_id, *row))
        return punches, pays

    def run(self) -> Iterator[tuple[list, list, list]]:
        """(shifts, punches, pay lines) per day; ids in the order the rows were created."""
        p = self.p
        for di in range(-1, p.days):
            d = p.start + timedelta(days=di)
            shifts = self.day(di)
            rng = random.Random(f"{self.seed}/workforce/rows/{d.isoformat()}")
            for s in shifts:
                self.emit(s, rng)
            self._lic_cache = {k: v for k, v in self._lic_cache.items() if k[1] >= d}
            punches, pays = self.drain(self._t(d + timedelta(days=1), time(0)))
            yield shifts, punches, pays
        punches, pays = self.drain(None)
        yield [], punches, pays


def _round15(t: datetime) -> datetime:
    """The 7-minute rule: to the nearest quarter hour."""
    s = int(t.timestamp())
    return datetime.fromtimestamp((s + 450) // 900 * 900, UTC)


def _holidays(year: int) -> set[date]:
    def nth(month, weekday, n):
        d = date(year, month, 1)
        d += timedelta(days=(weekday - d.weekday()) % 7)
        return d + timedelta(weeks=n - 1)

    last_may = date(year, 5, 31) - timedelta(days=(date(year, 5, 31).weekday()) % 7)
    return {date(year, 1, 1), last_may, date(year, 7, 4), nth(9, 0, 1), nth(11, 3, 4), date(year, 12, 25)}


# --------------------------------------------------------------------------- API


def _rows(facility, facilities, units, beds, scale) -> list[dict]:
    codes, rows = resolve_units(facility, facilities, units, beds)
    if scale != 1.0 and beds is None:
        per = {
            c: sum(r["staffed_beds"] for r in rows if r["facility_code"] == c and r["unit_type"] != "emergency")
            for c in codes
        }
        codes, rows = resolve_units(facility, facilities, units, {c: max(2, round(n * scale)) for c, n in per.items()})
    return rows


def _stream(start, days, seed, facility, facilities, tz, scale, gaps, units, beds):
    if days < 1:
        raise ValueError("days must be at least 1")
    plan = _Plan(_rows(facility, facilities, units, beds, scale), start, days, seed, tz, gaps)
    return plan, _Sim(plan, seed)


def build_workforce(
    start: date,
    days: int,
    seed: int = 7,
    facility: str = "NGH",
    *,
    facilities: Union[int, Sequence[str], None] = None,
    tz: str = config.DEFAULT_FACILITY_TZ,
    scale: float = 1.0,
    gaps: bool = True,
    units: Optional[Iterable[dict]] = None,
    beds: Union[int, dict, None] = None,
) -> dict:
    """Everything ``generate_workforce`` writes, in memory: workers (the last day's
    snapshot rows), hr (day -> file -> rows), punches and pay_lines (tuples in the
    columns of ``PUNCH_COLUMNS``/``PAY_LINE_COLUMNS``), shifts (``Shift``), units,
    staffing (per unit), summary."""
    plan, sim = _stream(start, days, seed, facility, facilities, tz, scale, gaps, units, beds)
    punches, pays, shifts = [], [], []
    for sh, pu, pa in sim.run():
        shifts += sh
        punches += pu
        pays += pa
    hr = {start + timedelta(days=k): plan.hr_snapshot(start + timedelta(days=k)) for k in range(days)}
    return {
        "hr": hr,
        "workers": hr[start + timedelta(days=days - 1)]["workers.csv"],
        "punches": punches,
        "pay_lines": pays,
        "shifts": shifts,
        "units": plan.units,
        "staffing": plan.staff,
        "summary": _summary(plan, sim, len(punches), len(pays), 0),
    }


def _summary(plan, sim, punches, pays, files) -> dict:
    return {
        "workers": len(plan.workers),
        "punches": punches,
        "pay_lines": pays,
        "edits": sim.edits,
        "deletions": sim.deletions,
        "files": files,
        "unfilled": sim.unfilled,
        "gaps": sorted(plan.gaps, key=lambda g: (g["local_start"] or "", g["kind"])),
        "events": plan.events,
        "facilities": plan.facilities,
        "first_day": plan.start,
        "last_day": plan.start + timedelta(days=plan.days - 1),
    }


def _fmt(v) -> str:
    return "" if v is None else (v.isoformat() if isinstance(v, date) else str(v))


def write_hr(plan: _Plan, landing_dir: Path) -> int:
    n = 0
    for k in range(plan.days):
        day = plan.start + timedelta(days=k)
        folder = Path(landing_dir) / "hr" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in plan.hr_snapshot(day).items():
            tmp = folder / f"{name}.tmp"
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                out = csv.writer(fh, lineterminator="\r\n")
                out.writerow(HR_FILES[name])
                out.writerows([_fmt(v) for v in r] for r in rows)
            os.replace(tmp, folder / name)
            n += 1
    return n


def generate_workforce(
    landing_dir: Path,
    tk_url: Optional[str],
    start: date,
    days: int,
    seed: int = 7,
    facility: str = "NGH",
    *,
    facilities: Union[int, Sequence[str], None] = None,
    tz: str = config.DEFAULT_FACILITY_TZ,
    scale: float = 1.0,
    gaps: bool = True,
    units: Optional[Iterable[dict]] = None,
    beds: Union[int, dict, None] = None,
) -> dict:
    """Write the HR snapshots under ``landing_dir/hr/`` and, with ``tk_url``, fill that
    database's ``tk`` schema; return the summary: workers, punches, pay_lines, edits
    (EDIT punches), deletions (soft-deleted punches), files, unfilled (positions no one
    could fill; 0 expected), gaps (each injected finding: kind, facility, unit,
    cost_center, worker_id, local_start, local_end, description), facilities,
    first_day, last_day. ``scale`` multiplies each facility's staffed inpatient beds
    (units scaled as ``adt_feed.scale_units``); ``beds``/``units`` as in ``adt_feed.generate``."""
    plan, sim = _stream(start, days, seed, facility, facilities, tz, scale, gaps, units, beds)
    n_punch = n_pay = 0
    if tk_url:
        import psycopg

        url = tk_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            conn.execute(SOURCE_DDL)
            conn.execute("truncate tk.punch, tk.pay_line")
            with conn.cursor() as cur:
                for _, punches, pays in sim.run():
                    if punches:
                        with cur.copy(f"copy tk.punch ({', '.join(PUNCH_COLUMNS)}) from stdin") as cp:
                            for r in punches:
                                cp.write_row(r)
                    if pays:
                        with cur.copy(f"copy tk.pay_line ({', '.join(PAY_LINE_COLUMNS)}) from stdin") as cp:
                            for r in pays:
                                cp.write_row(r)
                    n_punch += len(punches)
                    n_pay += len(pays)
    else:
        for _, punches, pays in sim.run():
            n_punch += len(punches)
            n_pay += len(pays)
    files = write_hr(plan, landing_dir)
    return _summary(plan, sim, n_punch, n_pay, files)
