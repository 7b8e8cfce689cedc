"""Synthetic HL7 v2 ADT feed for one or more hospitals (fake patients only).

``generate(landing_dir, start, days, seed)`` simulates the hospitals of
``dbt_project/seeds/units.csv`` (by default Northgate General, ``NGH``, as seeded)
from an empty house on ``start`` and writes the interface engine's daily files
``landing_dir/adt/YYYY-MM-DD/adt_YYYYMMDD_NN.hl7`` (each written as ``NAME.tmp``
then renamed). With several facilities the interface engine's files carry all of
them (MSH-4 tells them apart). Deterministic for a seed; no wall clock is read.

Scale: ``beds`` (staffed inpatient beds per facility; the seed's units are the
template, scaled proportionally, a scaled unit of more than ``MAX_UNIT_BEDS`` beds
is split into several units of the same type, ED bays scale too), ``facilities``
(a number, or a list of facility codes of the seed; ``units`` rows instead of the
seed for anything else), ``days``, and ``scale`` (a multiplier on arrival rates:
above 1 the house is over-demanded and diverts). The unit rows used are returned
in ``summary["units"]`` so that a caller can load them as reference data.

Arrival rates are calibrated per facility so that beds settle at about
``TARGET_OCCUPANCY`` of staffed beds after a warm-up (observation patients included
physically; they are not inpatients, so the inpatient midnight census is a few
points lower). Every bed holds at most one patient at a time (with a one-hour
turnover gap) and beds exist per room, so the midnight census never exceeds
staffed beds: arrivals that find no bed go to an overflow unit or are diverted.

The simulation is streamed day by day: a day's arrivals are planned and booked,
then that day's messages (and late ones now due) are written and dropped. Memory
is bounded by the patients in house, not by the length of the run.

What the feed contains: direct inpatient admissions (A01; elective ones mostly on
weekday mornings), ED registrations (A04, class E; arrivals peak afternoon and
evening) that either convert to inpatient (A06) or leave from the ED (A03),
obstetric admissions (antepartum → labor and delivery → postpartum) where the
facility has those units, observation stays (A04/A01 with PV1-2 O and PV1-18 OBS,
mostly 24–48 h, some converted to inpatient by A06), ICU→SDU step-downs and other
transfers and bed moves (A02 with PV1-6), inpatient→observation conversions (A07),
same-day inpatient stays, a long-stay tail (2–6 weeks), discharges (A03 with
PV1-45; peak late morning to early afternoon, fewer at weekends), A08 updates,
cancels (A11 of an admit or registration, A12 of a transfer, A13 of a discharge
followed by the real discharge later), late messages (an event 1–3 days old
arriving in a later day's file, EVN-6 = when it happened; the bed a late A02/A03
vacates is given to no one else until the message arrives, see ``_Hospital.hold``),
duplicates (same MSH-4 + MSH-10 re-sent in a later file, one per 28 days),
malformed messages (missing PV1-19, unknown event A99, unparseable EVN-2: copies
of an A08, no census effect) and, in runs of 28 days or more, per 28-day block
one file cut mid-message (its last message, an extra A08, loses everything from
inside PID on) and one file with a line of garbage between two messages.

Wire-format variety: HL7 versions 2.3–2.8, ``\\r`` and ``\\r\\n`` terminators, MLLP
framing and FHS/BHS batch envelopes (at least one file each per run), MSH-18 UTF-8
or ISO-8859-1, escape sequences in names (``O\\T\\BRIEN`` = ``O&BRIEN``, ``\\Xhh\\``),
times with or without a UTC offset, Z-segments.
"""

from __future__ import annotations

import csv
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union
from zoneinfo import ZoneInfo

from healthops import config

UNITS_CSV = config.DBT_PROJECT_DIR / "seeds" / "units.csv"
TZ = ZoneInfo(config.DEFAULT_FACILITY_TZ)  # Northgate and Southgate, the demo hospitals
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8")
STRUCTURES = {
    "A01": "ADT_A01",
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    "A04": "ADT_A01",
    "A06": "ADT_A06",
    "A07": "ADT_A06",
    "A08": "ADT_A01",
    "A11": "ADT_A09",
    "A12": "ADT_A12",
    "A13": "ADT_A01",
    "A99": "ADT_A01",
}
TURNOVER = timedelta(hours=1)  # bed cleaning between patients
H = timedelta(hours=1)
DAY = timedelta(days=1)

TARGET_OCCUPANCY = 0.93  # physical (inpatient + observation) share of staffed beds
OBS_SHARE = 0.04  # of telemetry + med/surg bed-hours used by observation
ED_ADMIT_FRACTION = 0.22  # ED visits that become inpatient stays
MAX_UNIT_BEDS = 40  # a scaled unit above this is split
BLOCK_DAYS = 28  # one duplicate per block; truncated/garbage files per full block

FAMILY = (
    "SMITH",
    "JOHNSON",
    "NGUYEN",
    "GARCÍA",
    "MÜLLER",
    "O&BRIEN",
    "PATEL",
    "KIM",
    "WILLIAMS",
    "BROWN",
    "LOPEZ",
    "CHEN",
    "NÚÑEZ",
    "DAVIS",
    "MARTIN",
    "WONG",
    "SINGH",
    "JACKSON",
    "LEE",
    "ROSSI",
    "D'ANGELO",
    "SMITH-JONES",
    "HERNÁNDEZ",
    "TAYLOR",
    "FISCHER",
    "OKAFOR",
    "COHEN",
)
GIVEN = (
    "JANE",
    "JOHN",
    "MARÍA",
    "JOSÉ",
    "WEI",
    "AISHA",
    "OMAR",
    "LUCÍA",
    "PETER",
    "ZOË",
    "ANNA",
    "DAVID",
    "SOFIA",
    "LIAM",
    "NOAH",
    "EMMA",
    "RAJ",
    "MEI",
    "CARLOS",
    "RENÉE",
)
GIVEN_F = ("JANE", "MARÍA", "AISHA", "LUCÍA", "ZOË", "ANNA", "SOFIA", "EMMA", "MEI", "RENÉE")
# ED arrivals by hour of day: low overnight, peak afternoon and evening.
ED_HOURLY = (3, 2, 2, 2, 1, 1, 2, 3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 9, 9, 8, 7, 6, 5, 4)
# Day-of-week factors, Monday first, mean 1: elective/direct admissions drop at weekends.
DIRECT_DOW = (1.25, 1.2, 1.15, 1.1, 1.05, 0.55, 0.7)
ED_DOW = (1.10, 1.03, 1.0, 0.98, 0.97, 0.95, 0.97)
OB_DOW = (1.1, 1.1, 1.1, 1.1, 1.1, 0.75, 0.75)  # scheduled inductions and sections
# A discharge planned for Saturday / Sunday slips to Monday with this probability.
WEEKEND_SLIP = {5: 0.20, 6: 0.25}

# Inpatient entry streams: unit type a stay starts in → share arriving through the ED.
STREAMS = {
    "critical_care": 0.6,
    "step_down": 0.5,
    "telemetry": 0.6,
    "medical_surgical": 0.5,
    "other_specialty": 0.2,
    "pediatrics": 0.4,
    "psychiatric": 0.5,
    "antepartum": 0.15,
    "labor_delivery": 0.05,
}
OB_TYPES = ("antepartum", "labor_delivery", "postpartum")
# A stream calibrated against another unit type's beds: deliveries fill postpartum beds
# (labor and delivery rooms then run well below the house's occupancy, as they do).
KEY_TYPE = {"labor_delivery": "postpartum"}
# Where a stay goes when its own unit type is full.
OVERFLOW = {
    "critical_care": ("step_down",),
    "step_down": ("telemetry", "critical_care"),
    "telemetry": ("step_down", "medical_surgical"),
    "medical_surgical": ("telemetry", "other_specialty"),
    "other_specialty": ("medical_surgical",),
    "antepartum": ("postpartum",),
    "postpartum": ("antepartum",),
}
# Probability that a stay starting in this type is a long stay (2–6 weeks in house).
LONG_STAY = {
    "critical_care": 0.05,
    "step_down": 0.03,
    "telemetry": 0.02,
    "medical_surgical": 0.03,
    "other_specialty": 0.06,
    "pediatrics": 0.01,
    "psychiatric": 0.08,
    "antepartum": 0.05,
}
CAL_SAMPLES = 250


def load_units(facility: Optional[str] = "NGH", path: Path = UNITS_CSV) -> list[dict]:
    """Rows of the units seed for one facility (all facilities when ``facility`` is None)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if facility is None or r["facility_code"] == facility]


def _facility_codes(rows: Iterable[dict]) -> list[str]:
    return list(dict.fromkeys(r["facility_code"] for r in rows))


def scale_units(rows: Sequence[dict], beds: int) -> list[dict]:
    """One facility's template units scaled to ``beds`` staffed inpatient beds
    (largest remainder, at least 2 beds a unit); ED bays scale by the same factor;
    units above ``MAX_UNIT_BEDS`` are split into units of the same type."""
    inpatient = [r for r in rows if r["unit_type"] != "emergency"]
    total = sum(int(r["staffed_beds"]) for r in inpatient)
    if not inpatient or total <= 0:
        raise ValueError("no inpatient units to scale")
    if beds < 2 * len(inpatient):
        raise ValueError(f"beds={beds} is too few for {len(inpatient)} inpatient units")
    factor = beds / total
    raw = [int(r["staffed_beds"]) * factor for r in inpatient]
    sizes = [max(2, math.floor(x)) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - math.floor(raw[i])), i))
    k = 0
    while sum(sizes) != beds:
        i = order[k % len(order)]
        if sum(sizes) < beds:
            sizes[i] += 1
        elif sizes[i] > 2:
            sizes[i] -= 1
        k += 1
    size_of = {id(r): s for r, s in zip(inpatient, sizes)}
    out = []
    for r in rows:
        staffed = int(r["staffed_beds"])
        licensed = int(r.get("licensed_beds") or staffed)
        n = size_of.get(id(r)) or max(2, round(staffed * factor))
        parts = 1 if (r["unit_type"] == "emergency" or n <= MAX_UNIT_BEDS) else math.ceil(n / 32)
        for j in range(parts):
            nj = n // parts + (1 if j < n % parts else 0)
            row = dict(r)
            row["staffed_beds"] = nj
            row["licensed_beds"] = max(nj, math.ceil(nj * licensed / max(1, staffed)))
            if parts > 1:
                suffix = chr(ord("A") + j)
                row["unit_code"] = f"{r['unit_code']}{suffix}"
                row["unit_name"] = f"{r.get('unit_name') or r['unit_code']} {suffix}"
                if r.get("cost_center"):
                    row["cost_center"] = f"{r['cost_center']}-{j + 1}"
            out.append(row)
    return out


# --------------------------------------------------------------------------- beds


@dataclass
class _Bed:
    unit: str
    room: str
    bed: str
    busy: list = field(default_factory=list)  # [start, end) intervals

    def free(self, s: datetime, e: datetime) -> bool:
        return all(e0 <= s or s0 >= e for s0, e0 in self.busy)

    @property
    def loc(self) -> tuple[str, str, str]:
        return (self.unit, self.room, self.bed)


class _Hospital:
    def __init__(self, rows: list[dict], rng: random.Random):
        self.rng = rng
        self.beds: dict[str, list[_Bed]] = {}
        self.by_type: dict[str, list[str]] = {}
        self.capacity: Counter = Counter()
        for i, r in enumerate(rows):
            code, utype, n = r["unit_code"], r["unit_type"], int(r["staffed_beds"])
            self.by_type.setdefault(utype, []).append(code)
            self.capacity[utype] += n
            if utype == "emergency":
                beds = [_Bed(code, f"B{k + 1:02d}", "1") for k in range(n)]
            else:
                per_room = 1 if utype in ("critical_care", "labor_delivery", "psychiatric") else 2
                beds = [_Bed(code, f"{i + 2}{k // per_room + 1:02d}", "AB"[k % per_room]) for k in range(n)]
            self.beds[code] = beds
        self.ed = (self.by_type.get("emergency") or [None])[0]
        self.all_beds = [b for bs in self.beds.values() for b in bs]
        self.by_loc = {b.loc: b for b in self.all_beds}

    def has(self, utype: str) -> bool:
        return bool(self.capacity.get(utype))

    def find(self, unit: str, s: datetime, e: datetime, exclude: Optional[_Bed] = None) -> Optional[_Bed]:
        beds = self.beds.get(unit) or []
        k = self.rng.randrange(len(beds)) if beds else 0
        for b in beds[k:] + beds[:k]:
            if b is not exclude and b.free(s, e):
                return b
        return None

    def find_type(self, utype: str, s: datetime, e: datetime, exclude: Optional[_Bed] = None) -> Optional[_Bed]:
        units = self.by_type.get(utype) or []
        if not units:
            return None
        k = self.rng.randrange(len(units))
        for u in units[k:] + units[:k]:
            b = self.find(u, s, e, exclude)
            if b is not None:
                return b
        return None

    def hold(self, loc: Optional[tuple], s: datetime, e: datetime) -> bool:
        """Keep the bed at ``loc`` from everyone else over [s, e); False (nothing
        booked) when another stay already starts in it by then.

        A late A02/A03 leaves its patient in the bed they left in every night's
        warehouse until the message is received: were the bed given to the next
        patient meanwhile, each of those nights would show two patients in one bed
        (CEN-019), an ED bay within hours. So a message is only sent late if its bed
        can be held until it arrives. The patient's own booking started before
        ``s``; any booking starting inside [s, e) is someone else's."""
        b = self.by_loc.get(loc) if loc else None
        if b is None or any(s <= s0 < e for s0, _ in b.busy):
            return False
        b.busy.append((s, e))
        return True

    def prune(self, now: datetime) -> None:
        """Forget bookings that ended before ``now`` (every later booking starts after it)."""
        for b in self.all_beds:
            if b.busy and any(e <= now for _, e in b.busy):
                b.busy = [iv for iv in b.busy if iv[1] > now]


# --------------------------------------------------------------------------- events


@dataclass
class _Patient:
    visit: str
    mrn: str
    family: str
    given: str
    birth: date
    sex: str
    ids: list[str]


@dataclass
class _Ev:
    t: datetime  # when it happened (local, naive, whole minutes)
    event: str
    pt: _Patient
    cls: str = "I"
    ptype: str = ""
    loc: Optional[tuple] = None
    prior: Optional[tuple] = None
    admit: Optional[datetime] = None
    discharge: Optional[datetime] = None
    cancel_related: bool = False
    late_days: int = 0
    recv: Optional[datetime] = None
    seq: int = 0
    kind: str = "ok"  # ok | no_visit | unknown_event | bad_time | truncated
    fac: int = 0  # index of the facility (its writer)


def _fix(t: datetime) -> datetime:
    """Whole minutes; never 01:00–02:59 (keeps clear of DST gaps and repeats)."""
    t = t.replace(second=0, microsecond=0)
    if t.hour in (1, 2):
        t += 2 * H
    return t


def _hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(minutes=round(rng.uniform(lo, hi) * 60))


@dataclass
class _Plan:
    legs: list  # [(unit type, duration)]
    times: list  # start of each leg
    end: datetime  # first discharge (A03, or A07 to observation)
    final: datetime  # when the bed is really left
    tail: Optional[str]  # None | "A07" | "A13"
    same_day: bool


class _Sim:
    def __init__(
        self,
        rows: list[dict],
        start: date,
        days: int,
        rng: random.Random,
        facility: str,
        scale: float,
        cal_seed: str,
        fac_index: int = 0,
    ):
        self.rng = rng
        self.h = _Hospital(rows, rng)
        self.start = start
        self.end = datetime.combine(start + timedelta(days=days), time())
        self.facility = facility
        self.fac_index = fac_index
        self.scale = scale
        self.pending: dict[date, list[_Ev]] = {}  # events by the date they happen
        self.n_pat = 0
        self.n_ev = 0
        self.stats: Counter = Counter()
        self._calibrate(random.Random(cal_seed))

    # -- helpers
    def hours(self, lo: float, hi: float) -> timedelta:
        return _hours(self.rng, lo, hi)

    def patient(self, utype: str) -> _Patient:
        rng = self.rng
        self.n_pat += 1
        n = self.n_pat
        if utype == "pediatrics":
            age = rng.randint(0, 17)
        elif utype in OB_TYPES:
            age = rng.randint(16, 44)
        else:
            age = rng.randint(18, 94)
        birth = self.start - timedelta(days=age * 365 + rng.randint(0, 364))
        mrn = f"M{n * 7919 % 9000000 + 1000000:07d}"
        ids = [f"{mrn}^^^{self.facility}^MR"]
        if rng.random() < 0.5:
            ids.append(f"A{n:08d}^^^{self.facility}^AN")
        if rng.random() < 0.3:
            ids.append(f"E{n:06d}^^^EPI^PI")
        rng.shuffle(ids)
        if utype in OB_TYPES:
            return _Patient(f"V{n:07d}", mrn, rng.choice(FAMILY), rng.choice(GIVEN_F), birth, "F", ids)
        return _Patient(
            f"V{n:07d}",
            mrn,
            rng.choice(FAMILY),
            rng.choice(GIVEN),
            birth,
            "U" if rng.random() < 0.01 else rng.choice("FM"),
            ids,
        )

    @staticmethod
    def discharge_time(rng: random.Random, t_min: datetime, slip: bool = True) -> datetime:
        """A discharge time, not before t_min: peaks late morning to early afternoon
        (09:00–20:00, mode 12:30); a weekend discharge may slip to Monday."""
        d = t_min.date() + timedelta(days=1 if t_min.hour >= 18 else 0)
        if slip and rng.random() < WEEKEND_SLIP.get(d.weekday(), 0.0):
            d += timedelta(days=7 - d.weekday())
        t = datetime.combine(d, time()) + timedelta(minutes=round(rng.triangular(9, 20, 12.5) * 60))
        return _fix(max(t, t_min))

    def add(self, *evs: _Ev) -> None:
        for e in evs:
            if e.t < self.end:
                self.n_ev += 1
                e.seq = self.n_ev
                e.fac = self.fac_index
                self.pending.setdefault(e.t.date(), []).append(e)

    # -- plans of inpatient stays (unit types and durations), also used to calibrate
    def path(self, rng: random.Random, utype: str) -> list[tuple[str, timedelta]]:
        """(unit type, duration) legs of an inpatient stay starting in a unit of utype."""
        has = self.h.has
        hrs = lambda lo, hi: _hours(rng, lo, hi)  # noqa: E731
        if utype == "critical_care":
            legs = [("critical_care", hrs(20, 96))]
            if has("step_down") and rng.random() < 0.85:  # ICU → SDU step-down
                legs.append(("step_down", hrs(20, 72)))
                if rng.random() < 0.5:
                    nxt = rng.choice(("telemetry", "medical_surgical"))
                    legs.append((nxt if has(nxt) else legs[-1][0], hrs(20, 72)))
            elif rng.random() < 0.6:
                nxt = "telemetry" if has("telemetry") else "medical_surgical"
                if has(nxt):
                    legs.append((nxt, hrs(20, 72)))
        elif utype == "step_down":
            legs = [("step_down", hrs(20, 72))]
            if rng.random() < 0.4 and has("telemetry"):
                legs.append(("telemetry", hrs(20, 48)))
        elif utype == "psychiatric":
            legs = [(utype, hrs(48, 168))]
        elif utype == "pediatrics":
            legs = [(utype, hrs(20, 96))]
        elif utype == "other_specialty":
            legs = [(utype, hrs(48, 192))]
        elif utype in ("antepartum", "labor_delivery"):
            legs = []
            if utype == "antepartum":
                legs.append(("antepartum", hrs(24, 120)))
            if has("labor_delivery"):
                legs.append(("labor_delivery", hrs(4, 20)))
            post = hrs(30, 56) if rng.random() < 0.7 else hrs(56, 96)  # vaginal / caesarean
            if has("postpartum"):
                legs.append(("postpartum", post))
            elif legs:
                legs[-1] = (legs[-1][0], legs[-1][1] + post)
            else:
                legs.append((utype, post))
        else:
            legs = [(utype, hrs(20, 120))]
            r = rng.random()
            if r < 0.12:
                other = "medical_surgical" if utype == "telemetry" else "telemetry"
                legs.append((other if has(other) else utype, hrs(20, 72)))
            elif r < 0.22:
                legs.append((utype, hrs(12, 48)))  # a bed move within the unit
        if rng.random() < LONG_STAY.get(utype, 0.0):
            # long stay (awaiting placement, complications): 2–6 weeks in house
            total = sum((d for _, d in legs), timedelta())
            target = _hours(rng, 14 * 24, 42 * 24)
            if target > total:
                legs[-1] = (legs[-1][0], legs[-1][1] + target - total)
        return legs

    def plan(self, rng: random.Random, t0: datetime, utype: str) -> _Plan:
        same_day = utype not in OB_TYPES and rng.random() < 0.07 and 5 <= t0.hour <= 12
        legs = [(utype, _hours(rng, 2, 7))] if same_day else self.path(rng, utype)
        times = [t0]
        for _, dur in legs[:-1]:
            t = _fix(times[-1] + dur)
            if t.hour < 7:
                t = _fix(t.replace(hour=7) + _hours(rng, 0, 3))
            times.append(t)
        last_start = times[-1]
        end = _fix(last_start + legs[-1][1]) if same_day else self.discharge_time(rng, last_start + legs[-1][1])
        tail = None  # "A07" obs tail or "A13" false discharge
        r = rng.random()
        if not same_day and utype not in OB_TYPES and r < 0.04:
            tail = "A07"
        elif not same_day and r < 0.09 and end + 4 * H < self.end:
            tail = "A13"
        final = end
        if tail == "A07":
            final = _fix(end + _hours(rng, 4, 20))
        elif tail == "A13":
            final = self.discharge_time(rng, end + _hours(rng, 5, 28), slip=False)
        return _Plan(legs, times, end, final, tail, same_day)

    def obs_plan(self, rng: random.Random, t0: datetime) -> tuple[bool, Optional[datetime], datetime]:
        """(converted to inpatient?, conversion time, departure) of an observation stay."""
        convert = rng.random() < 0.2
        tc = None
        if convert:
            tc = _fix(t0 + _hours(rng, 10, 30))
            if tc.hour < 7:
                tc = _fix(tc.replace(hour=7) + _hours(rng, 0, 3))
            final = self.discharge_time(rng, tc + _hours(rng, 24, 96))
        elif rng.random() < 0.8:
            final = _fix(t0 + _hours(rng, 24, 48))  # the usual 24–48 h
        else:
            final = _fix(t0 + _hours(rng, 8, 24))
        return convert, tc, final

    def _calibrate(self, rng: random.Random) -> None:
        """Arrival rates (stays/day per entry type, observation stays/day) such that the
        expected bed-hours fill TARGET_OCCUPANCY of each unit type's staffed beds."""
        monday = datetime.combine(self.start + timedelta(days=(7 - self.start.weekday()) % 7), time())
        streams = [t for t in STREAMS if self.h.has(t)]
        demand: dict[str, Counter] = {}
        for t in streams:
            c: Counter = Counter()
            for _ in range(CAL_SAMPLES):
                t0 = _fix(monday + timedelta(minutes=rng.randrange(7 * 24 * 60)))
                p = self.plan(rng, t0, t)
                bounds = p.times[1:] + [p.final]
                for (lt, _), s, e in zip(p.legs, p.times, bounds):
                    c[lt] += (e - s + TURNOVER) / H / CAL_SAMPLES
            demand[t] = c
        obs_types = [t for t in ("telemetry", "medical_surgical") if self.h.has(t)]
        obs_hours = 0.0
        for _ in range(CAL_SAMPLES):
            t0 = _fix(monday + timedelta(minutes=rng.randrange(7 * 24 * 60)))
            _, _, final = self.obs_plan(rng, t0)
            obs_hours += (final - t0 + TURNOVER) / H / CAL_SAMPLES
        obs_beds = sum(self.h.capacity[t] for t in obs_types)
        self.obs_rate = OBS_SHARE * obs_beds * 24 / obs_hours if obs_types else 0.0
        target = {t: TARGET_OCCUPANCY * n * 24 for t, n in self.h.capacity.items() if t != "emergency"}
        for t in obs_types:
            target[t] -= OBS_SHARE * self.h.capacity[t] * 24
        key = {t: (KEY_TYPE[t] if self.h.has(KEY_TYPE.get(t, "")) else t) for t in streams}
        rate = {t: 0.0 for t in streams}
        for _ in range(60):  # Gauss-Seidel, clamped at zero
            for t in streams:
                k = key[t]
                others = sum(rate[s] * demand[s][k] for s in streams if s != t)
                rate[t] = max(0.0, (target.get(k, 0.0) - others) / demand[t][k]) if demand[t][k] else 0.0
        self.rate = rate
        has_ed = self.h.ed is not None
        # (4% of direct admissions and 3% of ED registrations are cancelled in error)
        self.direct_rate = {t: r * (1 - (STREAMS[t] if has_ed else 0)) / 0.96 for t, r in rate.items()}
        ed_admits = {t: r * STREAMS[t] for t, r in rate.items()} if has_ed else {}
        self.ed_mix = [(t, w) for t, w in ed_admits.items() if w > 0]
        self.ed_rate = sum(ed_admits.values()) / ED_ADMIT_FRACTION / 0.97 if self.ed_mix else 0.0

    # -- booking
    def _book(
        self,
        pt: _Patient,
        t0: datetime,
        p: _Plan,
        entry: str,
        prior: Optional[tuple],
        collapse_to: Optional[str] = None,
    ) -> Optional[list[_Ev]]:
        rng = self.rng
        legs, times = p.legs, p.times
        if collapse_to is not None:  # the whole stay in one unit type
            legs, times = [(collapse_to, p.end - t0)], [t0]
        bounds = times[1:] + [p.final]
        booked: list[tuple[_Bed, tuple]] = []
        beds: list[_Bed] = []
        prev: Optional[_Bed] = None
        for (utype, _), s, e in zip(legs, times, bounds):
            b = self.h.find_type(utype, s, e + TURNOVER, exclude=prev)
            if b is None:
                for bb, iv in booked:
                    bb.busy.remove(iv)
                return None
            iv = (s, e + TURNOVER)
            b.busy.append(iv)
            booked.append((b, iv))
            beds.append(b)
            prev = b
        end, final, tail = p.end, p.final, p.tail
        evs = [_Ev(t0, entry, pt, "I", "", beds[0].loc, prior, admit=t0)]
        for i in range(1, len(legs)):
            evs.append(_Ev(times[i], "A02", pt, "I", "", beds[i].loc, beds[i - 1].loc, admit=t0))
            if legs[i - 1][0] == "critical_care" and legs[i][0] == "step_down":
                self.stats["step_downs"] += 1
        last = beds[-1].loc
        if tail == "A07":
            evs.append(_Ev(end, "A07", pt, "O", "OBS", last, None, admit=t0))
            evs.append(_Ev(final, "A03", pt, "O", "OBS", last, None, admit=t0, discharge=final))
        elif tail == "A13":
            evs.append(_Ev(end, "A03", pt, "I", "", last, None, admit=t0, discharge=end, cancel_related=True))
            evs.append(
                _Ev(_fix(end + self.hours(0.75, 3)), "A13", pt, "I", "", last, None, admit=t0, cancel_related=True)
            )
            evs.append(_Ev(final, "A03", pt, "I", "", last, None, admit=t0, discharge=final, cancel_related=True))
        else:
            evs.append(_Ev(end, "A03", pt, "I", "", last, None, admit=t0, discharge=end))
        # a transfer entered in error and cancelled (A02 then A12), during the first leg
        first_end = bounds[0]
        if rng.random() < 0.08 and first_end - t0 > 8 * H:
            ta = _fix(t0 + self.hours(3, (first_end - t0).total_seconds() / 3600 - 4))
            tc = _fix(ta + self.hours(0.3, 1.5))
            others = [u for u in self.h.beds if u not in (self.h.ed, beds[0].unit)]
            wrong = self.h.find(rng.choice(others), ta, tc + TURNOVER) if others and tc < self.end else None
            if wrong is not None and ta > t0 and tc < first_end:
                wrong.busy.append((ta, tc + TURNOVER))
                evs.append(_Ev(ta, "A02", pt, "I", "", wrong.loc, beds[0].loc, admit=t0, cancel_related=True))
                evs.append(_Ev(tc, "A12", pt, "I", "", beds[0].loc, wrong.loc, admit=t0, cancel_related=True))
        # A08 updates while in house
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            tu = _fix(t0 + self.hours(0.2, max(0.3, (final - t0).total_seconds() / 3600 - 0.2)))
            where = beds[0].loc
            for i in range(1, len(times)):
                if tu >= times[i]:
                    where = beds[i].loc
            evs.append(_Ev(tu, "A08", pt, "I", "", where, None, admit=t0))
        self.stats["inpatient_stays"] += 1
        if final - t0 >= 14 * DAY:
            self.stats["long_stays"] += 1
        return evs

    def stay(
        self, pt: _Patient, t0: datetime, utype: str, entry: str, prior: Optional[tuple], last_try: bool = True
    ) -> Optional[list[_Ev]]:
        """Plan and book an inpatient stay; None when no bed can be found."""
        p = self.plan(self.rng, t0, utype)
        evs = self._book(pt, t0, p, entry, prior)
        if evs is None and len(p.legs) > 1:
            evs = self._book(pt, t0, p, entry, prior, collapse_to=utype)
        for alt in OVERFLOW.get(utype, ()):
            if evs is not None:
                break
            if self.h.has(alt):
                evs = self._book(pt, t0, p, entry, prior, collapse_to=alt)
                if evs is not None:
                    self.stats["overflow_stays"] += 1
        if evs is None and last_try:
            self.stats["diverted"] += 1
        return evs

    # -- arrivals
    def direct_admission(self, t0: datetime, utype: str) -> None:
        rng = self.rng
        pt = self.patient(utype)
        if rng.random() < 0.04 and t0 + 3 * H < self.end:  # admitted in error, then A11
            tc = _fix(t0 + self.hours(0.25, 1.5))
            b = self.h.find_type(utype, t0, tc + TURNOVER)
            if b is not None:
                b.busy.append((t0, tc + TURNOVER))
                self.add(
                    _Ev(t0, "A01", pt, "I", "", b.loc, admit=t0, cancel_related=True),
                    _Ev(tc, "A11", pt, "I", "", b.loc, admit=t0, cancel_related=True),
                )
            return
        t = t0
        for k in range(3):  # no bed: postponed to the next weekday (twice at most)
            if k:
                t += DAY
                while t.weekday() >= 5:
                    t += DAY
            last = k == 2 or t + DAY >= self.end
            if t >= self.end:
                break
            evs = self.stay(pt, t, utype, "A01", None, last_try=last)
            if evs:
                self.stats["postponed"] += k > 0
                self.add(*evs)
                return
            if last:
                return

    def ed_visit(self, t0: datetime) -> None:
        rng = self.rng
        if self.h.ed is None:
            return
        pt = self.patient("emergency")
        if rng.random() < 0.03 and t0 + 2 * H < self.end:  # registration in error, then A11
            tc = _fix(t0 + self.hours(0.2, 0.7))
            bay = self.h.find(self.h.ed, t0, tc + TURNOVER)
            if bay is not None:
                bay.busy.append((t0, tc + TURNOVER))
                self.add(
                    _Ev(t0, "A04", pt, "E", "", bay.loc, admit=t0, cancel_related=True),
                    _Ev(tc, "A11", pt, "E", "", bay.loc, admit=t0, cancel_related=True),
                )
            return
        convert = rng.random() < ED_ADMIT_FRACTION
        t_out = _fix(t0 + (self.hours(2, 8) if convert else self.hours(1.5, 6)))
        bay = self.h.find(self.h.ed, t0, t_out + TURNOVER / 2)
        if bay is None:
            self.stats["ed_diverted"] += 1
            return  # ambulance diversion
        bay.busy.append((t0, t_out + TURNOVER / 2))
        self.stats["ed_visits"] += 1
        self.add(_Ev(t0, "A04", pt, "E", "", bay.loc, admit=t0))
        if convert:
            utype = rng.choices([t for t, _ in self.ed_mix], weights=[w for _, w in self.ed_mix])[0]
            iv = (t0, t_out + TURNOVER / 2)
            for k in range(6):  # no bed: the patient boards in the ED, 3 h more each try
                t_adm = _fix(t_out + k * 3 * H)
                if k:
                    bay.busy.remove(iv)
                    if not bay.free(t0, t_adm + TURNOVER / 2) or t_adm >= self.end:
                        bay.busy.append(iv)
                        self.stats["diverted"] += 1
                        break
                    iv = (t0, t_adm + TURNOVER / 2)
                    bay.busy.append(iv)
                evs = self.stay(pt, t_adm, utype, "A06", bay.loc, last_try=k == 5)
                if evs:
                    self.stats["ed_boarded"] += k > 0
                    self.add(*evs)
                    return
            if iv[1] != t_out + TURNOVER / 2:  # transferred out after boarding
                t_out = iv[1] - TURNOVER / 2
        self.add(_Ev(t_out, "A03", pt, "E", "", bay.loc, admit=t0, discharge=t_out))

    def observation(self, t0: datetime) -> None:
        rng = self.rng
        utype = "telemetry" if rng.random() < 0.6 else "medical_surgical"
        if not self.h.has(utype):
            utype = "medical_surgical" if self.h.has("medical_surgical") else "telemetry"
        pt = self.patient(utype)
        entry = rng.choice(("A04", "A01"))
        convert, tc, final = self.obs_plan(rng, t0)
        b = self.h.find_type(utype, t0, final + TURNOVER)
        if b is None:
            self.stats["diverted"] += 1
            return
        b.busy.append((t0, final + TURNOVER))
        self.stats["observation_stays"] += 1
        evs = [_Ev(t0, entry, pt, "O", "OBS", b.loc, admit=t0)]
        if convert:
            self.stats["observation_to_inpatient"] += 1
            evs.append(_Ev(tc, "A06", pt, "I", "", b.loc, admit=t0))
            evs.append(_Ev(final, "A03", pt, "I", "", b.loc, admit=t0, discharge=final))
        else:
            evs.append(_Ev(final, "A03", pt, "O", "OBS", b.loc, admit=t0, discharge=final))
        if rng.random() < 0.3:
            evs.append(_Ev(_fix(t0 + self.hours(0.5, 4)), "A08", pt, "O", "OBS", b.loc, admit=t0))
        self.add(*evs)

    def simulate_day(self, day: date) -> list[_Ev]:
        """Plan and book the arrivals of ``day``; return the events that happen on it."""
        rng = self.rng
        base = datetime.combine(day, time())
        self.h.prune(base)
        dow = day.weekday()

        def count(mean: float) -> int:
            mean *= self.scale
            return max(0, round(rng.gauss(mean, math.sqrt(mean) * 0.6))) if mean > 0 else 0

        arrivals = []
        for utype, r in self.direct_rate.items():
            if utype in OB_TYPES:
                n, f = count(r * OB_DOW[dow]), lambda: _hours(rng, 0, 24)
            else:  # elective admissions in the morning, urgent ones all day
                n = count(r * DIRECT_DOW[dow])
                f = lambda: timedelta(minutes=round(rng.triangular(6, 22, 9) * 60))  # noqa: E731
            for _ in range(n):
                arrivals.append((_fix(base + f()), len(arrivals), utype))
        for _ in range(count(self.ed_rate * ED_DOW[dow])):
            hour = rng.choices(range(24), weights=ED_HOURLY)[0]
            arrivals.append((_fix(base + timedelta(hours=hour) + self.hours(0, 0.99)), len(arrivals), "ed"))
        for _ in range(count(self.obs_rate * DIRECT_DOW[dow] ** 0.5)):
            arrivals.append((_fix(base + self.hours(6, 22)), len(arrivals), "obs"))
        arrivals.sort()
        for t0, _, kind in arrivals:
            if t0 >= self.end:
                continue
            if kind == "ed":
                self.ed_visit(t0)
            elif kind == "obs":
                self.observation(t0)
            else:
                self.direct_admission(t0, kind)
        return sorted(self.pending.pop(day, []), key=lambda e: (e.t, e.pt.visit, e.seq))


# --------------------------------------------------------------------------- HL7 text


def _esc(value: str) -> str:
    return (
        value.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def _hex_escape(value: str, codec: str) -> str:
    """Write non-ASCII characters as \\Xhh..\\ in the message's character set."""
    return "".join(c if ord(c) < 128 else "\\X" + c.encode(codec).hex().upper() + "\\" for c in value)


class _Writer:
    def __init__(self, rng: random.Random, facility: str):
        self.rng = rng
        self.facility = facility
        self.n = 0

    def ts(self, t: datetime, offset: bool, seconds: bool = True) -> str:
        s = t.strftime("%Y%m%d%H%M%S" if seconds else "%Y%m%d%H%M")
        if offset:
            off = t.replace(tzinfo=TZ).utcoffset()
            mins = int(off.total_seconds() // 60)
            s += f"{'-' if mins < 0 else '+'}{abs(mins) // 60:02d}{abs(mins) % 60:02d}"
        return s

    def message(self, ev: _Ev, sep: str) -> tuple[str, bytes]:
        """(control id, encoded message ending with a terminator)."""
        rng = self.rng
        self.n += 1
        control_id = f"{self.facility}{self.n:08d}"
        version = rng.choice(VERSIONS)
        charset_choice = rng.random()
        if charset_choice < 0.2:
            msh18, codec = "8859/1", "iso-8859-1"
        elif charset_choice < 0.45:
            msh18, codec = "UNICODE UTF-8", "utf-8"
        else:
            msh18, codec = "", "utf-8"
        off = rng.random() < 0.2
        secs = rng.random() < 0.8
        event = "A99" if ev.kind == "unknown_event" else ev.event
        msh9 = f"ADT^{event}" if version == "2.3" else f"ADT^{event}^{STRUCTURES[event]}"
        evn_style = rng.random()
        msh7 = self.ts(ev.recv, off, True)
        evn2, evn6 = self.ts(ev.t, off, secs), ""
        if ev.late_days:
            evn2, evn6 = self.ts(ev.recv, off, True), self.ts(ev.t, off, secs)
        elif evn_style < 0.25:
            evn2, evn6 = self.ts(ev.recv, off, True), self.ts(ev.t, off, secs)
        if ev.kind == "bad_time":
            evn2 = rng.choice((ev.t.strftime("%Y%m%d"), ev.t.strftime("%Y-%m-%d %H:%M"), ev.t.strftime("%Y%m%d25%M")))
        no_evn = (not ev.late_days) and evn_style > 0.96 and ev.kind == "ok" and ev.recv == ev.t
        pt = ev.pt
        family, given = _esc(pt.family), _esc(pt.given)
        if codec == "utf-8" and rng.random() < 0.3:
            family, given = _hex_escape(family, codec), _hex_escape(given, codec)
        segs = [
            "|".join(
                [
                    "MSH",
                    "^~\\&",
                    "ADTIF",
                    self.facility,
                    "HEALTHOPS",
                    self.facility,
                    msh7,
                    "",
                    msh9,
                    control_id,
                    "P",
                    version,
                    "",
                    "",
                    "AL",
                    "NE",
                    "",
                    msh18,
                ]
            ).rstrip("|")
        ]
        if not no_evn or ev.kind == "truncated":
            segs.append("|".join(["EVN", event, evn2, "", "", "", evn6]).rstrip("|"))
        pid = "|".join(
            ["PID", "1", "", "~".join(pt.ids), "", f"{family}^{given}", "", pt.birth.strftime("%Y%m%d"), pt.sex]
        )
        if ev.kind == "truncated":  # the file was cut here: no terminator, no PV1
            segs.append(pid[: max(8, len(pid) // 2)])
            return control_id, sep.join(segs).encode(codec)
        segs.append(pid)
        loc = "^".join(ev.loc + (self.facility,)) if ev.loc else ""
        prior = "^".join(ev.prior) if ev.prior else ""
        visit = "" if ev.kind == "no_visit" else f"{pt.visit}^^^{self.facility}^VN"
        admit = self.ts(ev.admit, off, secs) if ev.admit else ""
        dis = self.ts(ev.discharge, off, secs) if ev.discharge else ""
        pv1 = ["PV1", "1", ev.cls, loc, "", "", prior] + [""] * 11 + [ev.ptype, visit] + [""] * 24 + [admit, dis]
        segs.append("|".join(pv1).rstrip("|"))
        if rng.random() < 0.1:
            segs.append(f"ZPV|1|{rng.choice(('FALL RISK', 'ISOLATION', 'DNR'))}")
        return control_id, (sep.join(segs) + sep).encode(codec)


GARBAGE_LINES = (
    "*** ADTIF queue replay after connection reset ***",
    "<html><body>502 Bad Gateway</body></html>",
    "-- end of extract --",
)


# --------------------------------------------------------------------------- generate


def _resolve(facility: str, facilities, units, beds) -> tuple[list[str], list[dict]]:
    """The facilities to simulate and their unit rows."""
    rows = [dict(r) for r in units] if units is not None else load_units(None)
    known = _facility_codes(rows)
    if facilities is None:
        codes = [facility] if (units is None or facility in known) else known
    elif isinstance(facilities, int):
        if not 1 <= facilities <= len(known):
            raise ValueError(
                f"facilities={facilities}: the units reference data has {len(known)} "
                f"facilities ({', '.join(known)}); pass units= for more"
            )
        codes = known[:facilities]
    else:
        codes = list(dict.fromkeys(facilities))
    missing = [c for c in codes if c not in known]
    if missing or not codes:
        raise ValueError(
            f"no units for facility {', '.join(missing) or '(none)'}: add them to {UNITS_CSV.name} or pass units="
        )
    out: list[dict] = []
    for code in codes:
        fac_rows = [r for r in rows if r["facility_code"] == code]
        n = beds.get(code) if isinstance(beds, dict) else beds
        if n is not None:
            fac_rows = scale_units(fac_rows, int(n))
        for r in fac_rows:
            r["staffed_beds"] = int(r["staffed_beds"])
            if r.get("licensed_beds") not in (None, ""):
                r["licensed_beds"] = int(r["licensed_beds"])
        out.extend(fac_rows)
    return codes, out


def resolve_units(
    facility: str = "NGH",
    facilities: Union[int, Sequence[str], None] = None,
    units: Optional[Iterable[dict]] = None,
    beds: Union[int, dict, None] = None,
) -> tuple[list[str], list[dict]]:
    """The facility codes and unit rows ``generate`` simulates for these arguments:
    other generators (``workforce``) use it so the same arguments select the same units."""
    return _resolve(facility, facilities, units, beds)


def generate(
    landing_dir: Path,
    start: date,
    days: int,
    seed: int = 7,
    facility: str = "NGH",
    *,
    scale: float = 1.0,
    units: Optional[Iterable[dict]] = None,
    beds: Union[int, dict, None] = None,
    facilities: Union[int, Sequence[str], None] = None,
) -> dict:
    """Write ``days`` days of ADT files under ``landing_dir/adt/`` and return a summary.

    ``facility``: the one facility to simulate (default NGH); ``facilities``: a number
    (the first N of the units data) or a list of codes instead. ``units``: unit rows to
    use instead of the seed. ``beds``: staffed inpatient beds per facility (an int, or a
    dict by facility code); the units are scaled from the template rows. ``scale``:
    a multiplier on arrival rates.

    Summary keys: files, messages (records written: messages plus garbage lines, what
    the parser yields), bytes, malformed (records the parser rejects), malformed_kinds,
    truncated_files, garbage_lines, duplicates, late, events (valid unique messages per
    trigger event), stays (per-facility counters: inpatient_stays, observation_stays,
    observation_to_inpatient, step_downs, long_stays, overflow_stays, diverted,
    ed_visits, ed_diverted), facilities, staffed_beds (inpatient, per facility), units
    (the unit rows used), paths, first_day, last_day."""
    if days < 1:
        raise ValueError("days must be at least 1")
    codes, rows = _resolve(facility, facilities, units, beds)
    sims = [
        _Sim(
            [r for r in rows if r["facility_code"] == code],
            start,
            days,
            random.Random(f"{seed}/sim/{code}"),
            code,
            scale,
            f"{seed}/calibrate/{code}",
            i,
        )
        for i, code in enumerate(codes)
    ]
    rng = random.Random(f"{seed}/wire")
    writers = [_Writer(rng, code) for code in codes]
    last_day = start + timedelta(days=days - 1)

    # files with defects, one each per full block of BLOCK_DAYS days
    truncate_days, garbage_days = set(), set()
    for b in range(days // BLOCK_DAYS):
        d1, d2 = rng.sample(range(b * BLOCK_DAYS, (b + 1) * BLOCK_DAYS), 2)
        truncate_days.add(d1)
        garbage_days.add(d2)

    outbox: dict[date, list[_Ev]] = {}  # messages by receipt date (late ones ahead)
    kinds = ("no_visit", "unknown_event", "bad_time")
    late = 0
    malformed: Counter = Counter()
    n_extra = 0
    summary_events: Counter = Counter()
    paths: list[Path] = []
    files_written = messages_written = bytes_written = garbage_lines = truncated_files = 0
    duplicate: Optional[bytes] = None
    dup_sep = "\r"
    dup_at: Optional[tuple[int, int]] = None
    duplicates = 0
    out_root = Path(landing_dir) / "adt"
    for day_i in range(days):
        day = start + timedelta(days=day_i)
        for sim in sims:
            evs = sim.simulate_day(day)
            # receipt times; a few late messages (not tied to any cancel)
            for e in evs:
                lag = timedelta(seconds=rng.randint(0, 180))
                e.recv = e.t + lag if (e.t + lag).date() == e.t.date() else e.t
                if (
                    not e.cancel_related
                    and e.event in ("A02", "A03", "A08")
                    and rng.random() < 0.025
                    and late < max(2, days)
                ):
                    k = rng.randint(1, 3)
                    if day + timedelta(days=k) <= last_day:
                        recv = datetime.combine(day + timedelta(days=k), time(8)) + _hours(rng, 0, 12)
                        # the bed the patient leaves (an A08 moves no one) stays theirs until then
                        vacated = {"A02": e.prior, "A03": e.loc}.get(e.event)
                        if vacated is None or sim.h.hold(vacated, e.t, recv + TURNOVER):
                            e.late_days, e.recv = k, recv
                            late += 1
                outbox.setdefault(e.recv.date(), []).append(e)
            # malformed extras: copies of an update for a patient, with one defect each
            n_bad = (1 if day_i < 3 else int(rng.random() < 1 / 3)) if evs else 0
            for _ in range(n_bad):
                src = rng.choice(evs)
                kind = kinds[day_i] if day_i < 3 else kinds[n_extra % 3]
                t = datetime.combine(day, time(9)) + _hours(rng, 0, 12)
                n_extra += 1
                outbox.setdefault(day, []).append(
                    _Ev(
                        t,
                        "A08",
                        src.pt,
                        src.cls,
                        src.ptype,
                        src.loc,
                        None,
                        admit=src.admit,
                        recv=t,
                        seq=-n_extra,
                        kind=kind,
                        fac=sim.fac_index,
                    )
                )
        todays = sorted(outbox.pop(day, []), key=lambda e: (e.recv, e.fac, e.seq))
        cut_src = todays[-1] if (day_i in truncate_days and todays) else None
        nfiles = min(rng.choice((2, 3)), max(1, len(todays)))
        cuts = sorted(rng.sample(range(1, len(todays)), nfiles - 1)) if nfiles > 1 else []
        groups = [todays[a:b] for a, b in zip([0] + cuts, cuts + [len(todays)])]
        if cut_src is not None:  # the last file of the day ends mid-message
            t = _fix(cut_src.recv + timedelta(minutes=1)) if cut_src.recv.hour < 23 else cut_src.recv
            groups[-1].append(
                _Ev(
                    t,
                    "A08",
                    cut_src.pt,
                    cut_src.cls,
                    cut_src.ptype,
                    cut_src.loc,
                    None,
                    admit=cut_src.admit,
                    recv=t,
                    kind="truncated",
                    fac=cut_src.fac,
                )
            )
        if day_i % BLOCK_DAYS == 0:
            duplicate, dup_at = None, None  # one duplicate per block
        folder = out_root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for fi, group in enumerate(groups):
            truncated = cut_src is not None and fi == len(groups) - 1
            garbage = day_i in garbage_days and fi == 0
            if truncated or garbage:
                framing, sep = "none", rng.choice(("\r", "\r\n"))
            elif day_i == 0 and fi == 0:
                framing, sep = "mllp", "\r\n"
            elif day_i == 0 and fi == 1:
                framing, sep = "batch", "\r"
            else:
                framing = rng.choices(("none", "mllp", "batch"), weights=(6, 2, 2))[0]
                sep = rng.choice(("\r", "\r\n"))
            bodies: list[bytes] = []
            for e in group:
                control_id, body = writers[e.fac].message(e, sep)
                if e.kind == "ok":
                    summary_events[e.event] += 1
                    if (
                        duplicate is None
                        and e.event in ("A01", "A02", "A03")
                        and not e.cancel_related
                        and not e.late_days
                    ):
                        duplicate, dup_sep, dup_at = body, sep, (day_i, fi)
                else:
                    malformed[e.kind] += 1
                bodies.append(body)
            # the duplicate is re-sent at the start of the first file of a later day
            # (or, on the last day of the run, of a later file of the same day)
            if (
                duplicate
                and dup_at is not None
                and (day_i > dup_at[0] or (day_i == days - 1 and fi == len(groups) - 1 and fi > dup_at[1]))
            ):
                bodies.insert(0, duplicate.replace(dup_sep.encode(), sep.encode()))
                duplicate = b""
                duplicates += 1
            if garbage:
                line = rng.choice(GARBAGE_LINES).encode() + sep.encode()
                bodies.insert(rng.randint(1, len(bodies)) if bodies else 0, line)
                garbage_lines += 1
                malformed["garbage_line"] += 1
            if framing == "mllp":
                data = b"".join(b"\x0b" + b + b"\x1c\r" for b in bodies)
            elif framing == "batch":
                stamp = (datetime.combine(day, time(23, 59))).strftime("%Y%m%d%H%M%S")
                fac = codes[group[0].fac] if group else codes[0]
                head = (
                    f"FHS|^~\\&|ADTIF|{fac}|HEALTHOPS|{fac}|{stamp}{sep}"
                    f"BHS|^~\\&|ADTIF|{fac}|HEALTHOPS|{fac}|{stamp}{sep}"
                )
                tail = f"BTS|{len(bodies)}{sep}FTS|1{sep}"
                data = head.encode() + b"".join(bodies) + tail.encode()
            else:
                data = b"".join(bodies)
            truncated_files += truncated
            name = f"adt_{day:%Y%m%d}_{fi + 1:02d}.hl7"
            tmp = folder / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
            paths.append(folder / name)
            files_written += 1
            messages_written += len(bodies)
            bytes_written += len(data)
    return {
        "files": files_written,
        "messages": messages_written,
        "bytes": bytes_written,
        "malformed": sum(malformed.values()),
        "malformed_kinds": dict(sorted(malformed.items())),
        "truncated_files": truncated_files,
        "garbage_lines": garbage_lines,
        "duplicates": duplicates,
        "late": late,
        "events": dict(sorted(summary_events.items())),
        "stays": {s.facility: dict(sorted(s.stats.items())) for s in sims},
        "facilities": codes,
        "staffed_beds": {s.facility: sum(n for t, n in s.h.capacity.items() if t != "emergency") for s in sims},
        "units": rows,
        "paths": [str(p) for p in paths],
        "first_day": start.isoformat(),
        "last_day": last_day.isoformat(),
    }
