"""Synthetic HL7 v2 ADT feed for a small hospital (fake patients only).

``generate(landing_dir, start, days, seed)`` simulates the hospital in
``dbt_project/seeds/units.csv`` from an empty house on ``start`` and writes the
interface engine's daily files ``landing_dir/adt/YYYY-MM-DD/adt_YYYYMMDD_NN.hl7``
(each written as ``NAME.tmp`` then renamed). Deterministic for a seed: one
``random.Random(seed)`` drives everything and no wall clock is read.

What the feed contains: direct inpatient admissions (A01), ED registrations (A04,
class E) that either convert to inpatient (A06) or leave from the ED (A03),
observation stays (A04/A01 with PV1-2 O and PV1-18 OBS, ~8–40 h, some converted
to inpatient by A06), ICU→SDU step-downs and other transfers and bed moves (A02
with PV1-6), inpatient→observation conversions (A07), same-day inpatient stays,
discharges (A03 with PV1-45), A08 updates, cancels (A11 of an admit or
registration, A12 of a transfer, A13 of a discharge followed by the real
discharge later), late messages (an event 1–3 days old arriving in a later day's
file, EVN-6 = when it happened), one duplicate (same MSH-4 + MSH-10 re-sent in a
later file) and a few malformed messages (missing PV1-19, unknown event A99,
unparseable EVN-2). Every bed holds at most one patient at a time (with a one-hour
turnover gap), so the midnight census never exceeds staffed beds.

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
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

UNITS_CSV = Path(__file__).resolve().parents[4] / "dbt_project" / "seeds" / "units.csv"
TZ = ZoneInfo("America/Los_Angeles")
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8")
STRUCTURES = {"A01": "ADT_A01", "A02": "ADT_A02", "A03": "ADT_A03", "A04": "ADT_A01",
              "A06": "ADT_A06", "A07": "ADT_A06", "A08": "ADT_A01", "A11": "ADT_A09",
              "A12": "ADT_A12", "A13": "ADT_A01", "A99": "ADT_A01"}
TURNOVER = timedelta(hours=1)          # bed cleaning between patients
H = timedelta(hours=1)

FAMILY = ("SMITH", "JOHNSON", "NGUYEN", "GARCÍA", "MÜLLER", "O&BRIEN", "PATEL", "KIM", "WILLIAMS",
          "BROWN", "LOPEZ", "CHEN", "NÚÑEZ", "DAVIS", "MARTIN", "WONG", "SINGH", "JACKSON", "LEE",
          "ROSSI", "D'ANGELO", "SMITH-JONES", "HERNÁNDEZ", "TAYLOR", "FISCHER", "OKAFOR", "COHEN")
GIVEN = ("JANE", "JOHN", "MARÍA", "JOSÉ", "WEI", "AISHA", "OMAR", "LUCÍA", "PETER", "ZOË",
         "ANNA", "DAVID", "SOFIA", "LIAM", "NOAH", "EMMA", "RAJ", "MEI", "CARLOS", "RENÉE")
ED_HOURLY = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 8, 7, 7, 7, 7, 7, 6, 5, 4, 3, 3)


def load_units(facility: str = "NGH", path: Path = UNITS_CSV) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["facility_code"] == facility]


# --------------------------------------------------------------------------- beds

@dataclass
class _Bed:
    unit: str
    room: str
    bed: str
    busy: list = field(default_factory=list)       # [start, end) intervals

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
        for i, r in enumerate(rows):
            code, utype, n = r["unit_code"], r["unit_type"], int(r["staffed_beds"])
            self.by_type.setdefault(utype, []).append(code)
            if utype == "emergency":
                beds = [_Bed(code, f"B{k + 1:02d}", "1") for k in range(n)]
            else:
                per_room = 1 if utype == "critical_care" else 2
                beds = [_Bed(code, f"{i + 2}{k // per_room + 1:02d}", "AB"[k % per_room]) for k in range(n)]
            self.beds[code] = beds
        self.ed = (self.by_type.get("emergency") or [None])[0]

    def unit_of(self, utype: str) -> Optional[str]:
        units = self.by_type.get(utype)
        return units[0] if units else None

    def find(self, unit: str, s: datetime, e: datetime, exclude: Optional[_Bed] = None) -> Optional[_Bed]:
        beds = self.beds.get(unit) or []
        k = self.rng.randrange(len(beds)) if beds else 0
        for b in beds[k:] + beds[:k]:
            if b is not exclude and b.free(s, e):
                return b
        return None


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
    t: datetime                      # when it happened (local, naive, whole minutes)
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
    kind: str = "ok"                 # ok | no_visit | unknown_event | bad_time


def _fix(t: datetime) -> datetime:
    """Whole minutes; never 01:00–02:59 (keeps clear of DST gaps and repeats)."""
    t = t.replace(second=0, microsecond=0)
    if t.hour in (1, 2):
        t += 2 * H
    return t


class _Sim:
    def __init__(self, rows: list[dict], start: date, days: int, rng: random.Random, facility: str):
        self.rng = rng
        self.h = _Hospital(rows, rng)
        self.start = start
        self.end = datetime.combine(start + timedelta(days=days), time())
        self.facility = facility
        self.events: list[_Ev] = []
        self.n_pat = 0

    # -- helpers
    def hours(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=round(self.rng.uniform(lo, hi) * 60))

    def patient(self, utype: str) -> _Patient:
        rng = self.rng
        self.n_pat += 1
        n = self.n_pat
        age = rng.randint(0, 17) if utype == "pediatrics" else rng.randint(18, 94)
        birth = self.start - timedelta(days=age * 365 + rng.randint(0, 364))
        mrn = f"M{n * 7919 % 9000000 + 1000000:07d}"
        ids = [f"{mrn}^^^{self.facility}^MR"]
        if rng.random() < 0.5:
            ids.append(f"A{n:08d}^^^{self.facility}^AN")
        if rng.random() < 0.3:
            ids.append(f"E{n:06d}^^^EPI^PI")
        rng.shuffle(ids)
        return _Patient(f"V{n:07d}", mrn, rng.choice(FAMILY), rng.choice(GIVEN), birth,
                        "U" if rng.random() < 0.01 else rng.choice("FM"), ids)

    def daytime(self, t_min: datetime) -> datetime:
        """A discharge time: 10:00–19:00, not before t_min."""
        d = t_min.date() + timedelta(days=1 if t_min.hour >= 19 else 0)
        t = datetime.combine(d, time(10)) + self.hours(0, 9)
        return _fix(max(t, t_min))

    def add(self, *evs: _Ev) -> None:
        self.events.extend(evs)

    # -- inpatient stays
    def path(self, utype: str) -> list[tuple[str, timedelta]]:
        """(unit, duration) legs of an inpatient stay starting in a unit of utype."""
        rng, u = self.rng, self.h.unit_of
        if utype == "critical_care":
            legs = [(u("critical_care"), self.hours(20, 96))]
            if u("step_down") and rng.random() < 0.85:
                legs.append((u("step_down"), self.hours(20, 72)))
                if rng.random() < 0.5:
                    legs.append((u(rng.choice(("telemetry", "medical_surgical"))) or legs[-1][0], self.hours(20, 72)))
            return legs
        if utype == "step_down":
            legs = [(u("step_down"), self.hours(20, 72))]
            if rng.random() < 0.4 and u("telemetry"):
                legs.append((u("telemetry"), self.hours(20, 48)))
            return legs
        if utype == "psychiatric":
            return [(u(utype), self.hours(48, 168))]
        if utype == "pediatrics":
            return [(u(utype), self.hours(20, 96))]
        legs = [(u(utype), self.hours(20, 120))]
        r = rng.random()
        if r < 0.12:
            other = "medical_surgical" if utype == "telemetry" else "telemetry"
            legs.append((u(other) or legs[0][0], self.hours(20, 72)))
        elif r < 0.22:
            legs.append((legs[0][0], self.hours(12, 48)))       # a bed move within the unit
        return legs

    def stay(self, pt: _Patient, t0: datetime, utype: str, entry: str, prior: Optional[tuple]) -> Optional[list[_Ev]]:
        """Plan and book an inpatient stay; None when no bed can be found."""
        rng = self.rng
        same_day = rng.random() < 0.07 and 5 <= t0.hour <= 12
        options = [self.path(utype)]
        if same_day:
            options = [[(self.h.unit_of(utype), self.hours(2, 7))]]
        total = sum((d for _, d in options[0]), timedelta())
        for alt in (utype, "medical_surgical", "telemetry"):
            if self.h.unit_of(alt):
                options.append([(self.h.unit_of(alt), total)])
        for legs in options:
            evs = self._book(pt, t0, legs, entry, prior, same_day)
            if evs is not None:
                return evs
        return None

    def _book(self, pt, t0, legs, entry, prior, same_day) -> Optional[list[_Ev]]:
        rng = self.rng
        times = [t0]
        for _, dur in legs[:-1]:
            t = _fix(times[-1] + dur)
            if t.hour < 7:
                t = _fix(t.replace(hour=7) + self.hours(0, 3))
            times.append(t)
        last_start = times[-1]
        end = _fix(last_start + legs[-1][1]) if same_day else self.daytime(last_start + legs[-1][1])
        tail = None                                           # "A07" obs tail or "A13" false discharge
        r = rng.random()
        if not same_day and r < 0.04:
            tail = "A07"
        elif not same_day and r < 0.09 and end + 4 * H < self.end:
            tail = "A13"
        final = end
        if tail == "A07":
            final = _fix(end + self.hours(4, 20))
        elif tail == "A13":
            final = self.daytime(end + self.hours(5, 28))
        bounds = times[1:] + [final]
        booked: list[tuple[_Bed, tuple]] = []
        beds: list[_Bed] = []
        prev: Optional[_Bed] = None
        for (unit, _), s, e in zip(legs, times, bounds):
            b = self.h.find(unit, s, e + TURNOVER, exclude=prev)
            if b is None:
                for bb, iv in booked:
                    bb.busy.remove(iv)
                return None
            iv = (s, e + TURNOVER)
            b.busy.append(iv)
            booked.append((b, iv))
            beds.append(b)
            prev = b
        evs = [_Ev(t0, entry, pt, "I", "", beds[0].loc, prior, admit=t0)]
        for i in range(1, len(legs)):
            evs.append(_Ev(times[i], "A02", pt, "I", "", beds[i].loc, beds[i - 1].loc, admit=t0))
        last = beds[-1].loc
        if tail == "A07":
            evs.append(_Ev(end, "A07", pt, "O", "OBS", last, None, admit=t0))
            evs.append(_Ev(final, "A03", pt, "O", "OBS", last, None, admit=t0, discharge=final))
        elif tail == "A13":
            evs.append(_Ev(end, "A03", pt, "I", "", last, None, admit=t0, discharge=end, cancel_related=True))
            evs.append(_Ev(_fix(end + self.hours(0.75, 3)), "A13", pt, "I", "", last, None, admit=t0,
                           cancel_related=True))
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
        return evs

    # -- arrivals
    def direct_admission(self, t0: datetime) -> None:
        rng = self.rng
        utype = rng.choices(("critical_care", "step_down", "telemetry", "medical_surgical", "pediatrics",
                             "psychiatric"), weights=(12, 8, 22, 35, 10, 13))[0]
        if not self.h.unit_of(utype):
            utype = "medical_surgical"
        pt = self.patient(utype)
        if rng.random() < 0.04 and t0 + 3 * H < self.end:      # admitted in error, then A11
            tc = _fix(t0 + self.hours(0.25, 1.5))
            b = self.h.find(self.h.unit_of(utype), t0, tc + TURNOVER)
            if b is not None:
                b.busy.append((t0, tc + TURNOVER))
                self.add(_Ev(t0, "A01", pt, "I", "", b.loc, admit=t0, cancel_related=True),
                         _Ev(tc, "A11", pt, "I", "", b.loc, admit=t0, cancel_related=True))
            return
        evs = self.stay(pt, t0, utype, "A01", None)
        if evs:
            self.add(*evs)

    def ed_visit(self, t0: datetime) -> None:
        rng = self.rng
        if self.h.ed is None:
            return
        pt = self.patient("emergency")
        if rng.random() < 0.03 and t0 + 2 * H < self.end:       # registration in error, then A11
            tc = _fix(t0 + self.hours(0.2, 0.7))
            bay = self.h.find(self.h.ed, t0, tc + TURNOVER)
            if bay is not None:
                bay.busy.append((t0, tc + TURNOVER))
                self.add(_Ev(t0, "A04", pt, "E", "", bay.loc, admit=t0, cancel_related=True),
                         _Ev(tc, "A11", pt, "E", "", bay.loc, admit=t0, cancel_related=True))
            return
        convert = rng.random() < 0.4
        t_out = _fix(t0 + (self.hours(2, 8) if convert else self.hours(1.5, 6)))
        bay = self.h.find(self.h.ed, t0, t_out + TURNOVER / 2)
        if bay is None:
            return                                             # diverted
        bay.busy.append((t0, t_out + TURNOVER / 2))
        self.add(_Ev(t0, "A04", pt, "E", "", bay.loc, admit=t0))
        if convert:
            utype = rng.choices(("critical_care", "step_down", "telemetry", "medical_surgical", "pediatrics",
                                 "psychiatric"), weights=(14, 10, 30, 34, 6, 6))[0]
            if not self.h.unit_of(utype):
                utype = "medical_surgical"
            evs = self.stay(pt, t_out, utype, "A06", bay.loc)
            if evs:
                self.add(*evs)
                return
        self.add(_Ev(t_out, "A03", pt, "E", "", bay.loc, admit=t0, discharge=t_out))

    def observation(self, t0: datetime) -> None:
        rng = self.rng
        utype = "telemetry" if rng.random() < 0.6 else "medical_surgical"
        unit = self.h.unit_of(utype) or self.h.unit_of("medical_surgical")
        if unit is None:
            return
        pt = self.patient(utype)
        entry = rng.choice(("A04", "A01"))
        convert = rng.random() < 0.2
        if convert:
            tc = _fix(t0 + self.hours(10, 30))
            if tc.hour < 7:
                tc = _fix(tc.replace(hour=7) + self.hours(0, 3))
            final = self.daytime(tc + self.hours(24, 96))
        else:
            final = _fix(t0 + self.hours(8, 40))
        b = self.h.find(unit, t0, final + TURNOVER)
        if b is None:
            return
        b.busy.append((t0, final + TURNOVER))
        evs = [_Ev(t0, entry, pt, "O", "OBS", b.loc, admit=t0)]
        if convert:
            evs.append(_Ev(tc, "A06", pt, "I", "", b.loc, admit=t0))
            evs.append(_Ev(final, "A03", pt, "I", "", b.loc, admit=t0, discharge=final))
        else:
            evs.append(_Ev(final, "A03", pt, "O", "OBS", b.loc, admit=t0, discharge=final))
        if rng.random() < 0.3:
            evs.append(_Ev(_fix(t0 + self.hours(0.5, 4)), "A08", pt, "O", "OBS", b.loc, admit=t0))
        self.add(*evs)

    def run(self, days: int, scale: float) -> None:
        rng = self.rng
        arrivals = []
        for day in range(days):
            base = datetime.combine(self.start + timedelta(days=day), time())

            def count(mean: float) -> int:
                return max(0, round(rng.gauss(mean * scale, math.sqrt(mean * scale) * 0.6)))

            for _ in range(count(13)):
                arrivals.append((_fix(base + self.hours(7, 22)), len(arrivals), "direct"))
            for _ in range(count(22)):
                hour = rng.choices(range(24), weights=ED_HOURLY)[0]
                arrivals.append((_fix(base + timedelta(hours=hour) + self.hours(0, 0.99)), len(arrivals), "ed"))
            for _ in range(count(3)):
                arrivals.append((_fix(base + self.hours(6, 22)), len(arrivals), "obs"))
        arrivals.sort()
        for t0, _, kind in arrivals:
            if kind == "direct":
                self.direct_admission(t0)
            elif kind == "ed":
                self.ed_visit(t0)
            else:
                self.observation(t0)


# --------------------------------------------------------------------------- HL7 text

def _esc(value: str) -> str:
    return (value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\"))


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
        segs = ["|".join(["MSH", "^~\\&", "ADTIF", self.facility, "HEALTHOPS", self.facility, msh7, "", msh9,
                          control_id, "P", version, "", "", "AL", "NE", "", msh18]).rstrip("|")]
        if not no_evn:
            segs.append("|".join(["EVN", event, evn2, "", "", "", evn6]).rstrip("|"))
        segs.append("|".join(["PID", "1", "", "~".join(pt.ids), "", f"{family}^{given}", "",
                              pt.birth.strftime("%Y%m%d"), pt.sex]))
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


# --------------------------------------------------------------------------- generate

def generate(landing_dir: Path, start: date, days: int, seed: int = 7, facility: str = "NGH", *,
             scale: float = 1.0, units: Optional[Iterable[dict]] = None) -> dict:
    """Write ``days`` days of ADT files under ``landing_dir/adt/`` and return a summary:
    files, messages (all written), malformed, duplicates, late, events (valid unique
    messages per trigger event), paths, first_day, last_day."""
    rng = random.Random(seed)
    rows = list(units) if units is not None else load_units(facility)
    sim = _Sim(rows, start, days, rng, facility)
    sim.run(days, scale)
    horizon = sim.end
    evs = sorted((e for e in sim.events if e.t < horizon), key=lambda e: (e.t, e.pt.visit))
    for i, e in enumerate(evs):
        e.seq = i

    # receipt times; a few late messages (not tied to any cancel)
    last_day = start + timedelta(days=days - 1)
    late = 0
    for e in evs:
        lag = timedelta(seconds=rng.randint(0, 180))
        e.recv = e.t + lag if (e.t + lag).date() == e.t.date() else e.t
        if (not e.cancel_related and e.event in ("A02", "A03", "A08") and rng.random() < 0.025
                and late < max(2, days)):
            k = rng.randint(1, 3)
            if e.t.date() + timedelta(days=k) <= last_day:
                e.late_days = k
                e.recv = datetime.combine(e.t.date() + timedelta(days=k), time(8)) + sim.hours(0, 12)
                late += 1
    # malformed extras: copies of an update for a patient, with one defect each
    kinds = ("no_visit", "unknown_event", "bad_time")
    malformed = []
    n_bad = max(3, days // 3)
    for i in range(n_bad):
        src = rng.choice(evs) if evs else None
        if src is None:
            break
        day = i if i < min(3, days) else rng.randrange(days)
        t = datetime.combine(start + timedelta(days=day), time(9)) + sim.hours(0, 12)
        malformed.append(_Ev(t, "A08", src.pt, src.cls, src.ptype, src.loc, None, admit=src.admit, recv=t,
                             seq=len(evs) + i, kind=kinds[i % 3]))

    by_day: dict[date, list[_Ev]] = {}
    for e in evs + malformed:
        by_day.setdefault(e.recv.date(), []).append(e)
    writer = _Writer(rng, facility)
    summary_events: Counter = Counter()
    paths: list[Path] = []
    files_written = 0
    messages_written = 0
    duplicate: Optional[bytes] = None
    dup_sep = "\r"
    dup_at: Optional[tuple[int, int]] = None
    out_root = Path(landing_dir) / "adt"
    for day_i in range(days):
        day = start + timedelta(days=day_i)
        todays = sorted(by_day.get(day, []), key=lambda e: (e.recv, e.seq))
        nfiles = min(rng.choice((2, 3)), max(1, len(todays)))
        cuts = sorted(rng.sample(range(1, len(todays)), nfiles - 1)) if nfiles > 1 else []
        groups = [todays[a:b] for a, b in zip([0] + cuts, cuts + [len(todays)])]
        folder = out_root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for fi, group in enumerate(groups):
            if day_i == 0 and fi == 0:
                framing, sep = "mllp", "\r\n"
            elif day_i == 0 and fi == 1:
                framing, sep = "batch", "\r"
            else:
                framing = rng.choices(("none", "mllp", "batch"), weights=(6, 2, 2))[0]
                sep = rng.choice(("\r", "\r\n"))
            bodies: list[bytes] = []
            for e in group:
                control_id, body = writer.message(e, sep)
                if e.kind == "ok":
                    summary_events[e.event] += 1
                    if (duplicate is None and e.event in ("A01", "A02", "A03") and not e.cancel_related
                            and not e.late_days):
                        duplicate, dup_sep, dup_at = body, sep, (day_i, fi)
                bodies.append(body)
            # the duplicate is re-sent at the start of the first file of a later day
            # (or, in a one-day run, of the last file of the day)
            if duplicate and dup_at is not None and (
                    day_i > dup_at[0] or (days == 1 and fi == len(groups) - 1 and fi > dup_at[1])):
                bodies.insert(0, duplicate.replace(dup_sep.encode(), sep.encode()))
                duplicate = b""
            if framing == "mllp":
                data = b"".join(b"\x0b" + b + b"\x1c\r" for b in bodies)
            elif framing == "batch":
                stamp = (datetime.combine(day, time(23, 59))).strftime("%Y%m%d%H%M%S")
                head = f"FHS|^~\\&|ADTIF|{facility}|HEALTHOPS|{facility}|{stamp}{sep}" \
                       f"BHS|^~\\&|ADTIF|{facility}|HEALTHOPS|{facility}|{stamp}{sep}"
                tail = f"BTS|{len(bodies)}{sep}FTS|1{sep}"
                data = head.encode() + b"".join(bodies) + tail.encode()
            else:
                data = b"".join(bodies)
            name = f"adt_{day:%Y%m%d}_{fi + 1:02d}.hl7"
            tmp = folder / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
            paths.append(folder / name)
            files_written += 1
            messages_written += len(bodies)
    duplicates = 1 if duplicate == b"" else 0
    return {
        "files": files_written,
        "messages": messages_written,
        "malformed": len(malformed),
        "malformed_kinds": dict(Counter(m.kind for m in malformed)),
        "duplicates": duplicates,
        "late": late,
        "events": dict(sorted(summary_events.items())),
        "paths": [str(p) for p in paths],
        "first_day": start.isoformat(),
        "last_day": last_day.isoformat(),
    }
