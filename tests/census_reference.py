"""Reference census calculator: the independent, pure-Python oracle that the dbt
census mart is checked against. Slow and plain on purpose.

Input: ``(received_date, file_name, AdtMessage)`` tuples. Receipt order is
``(received_date, file_name, message.message_index)``.

RULES (docs/definitions.md#census-and-utilization; HL7 v2 chapter 3)

a. Dedup: messages with the same (sending_facility, control_id) are loaded once:
   the first in receipt order is kept, later ones are ignored entirely.
b. Encounter key = (sending_facility, visit_number). Each encounter's messages are
   walked in receipt order to match cancels (stack matching):
   A11 voids the latest earlier-received, not-yet-voided A01 or A04 of the
   encounter; A12 voids the latest such A02; A13 voids the latest such A03.
   A cancel with nothing to void is an orphan and has no effect. Voided events
   and cancels have no census effect.
c. Effective time = PV1-45 discharge_ts for A03 when present, else event_ts
   (EVN-6, else EVN-2, else MSH-7), taken in the facility zone
   (America/Los_Angeles) for date arithmetic. The remaining effective events
   (A01, A02, A03, A04, A06, A07; A08 has no effect) are ordered by
   (effective time, receipt order).
d. Census class: PV1-18 == 'OBS' → observation; else PV1-2 'I' → inpatient;
   'E' → emergency; anything else → outpatient.
e. State machine per encounter: A01/A04/A02/A06/A07 set location = PV1-3 unit
   (the previous location is kept when PV1-3 unit is empty; the parser requires
   it for these events, so this only matters for hand-made input) and class = the
   message's census class; A03 sets location = none. Each event starts a segment
   [t_i, t_{i+1}) lasting until the next event (open-ended if last). Inpatient
   segments: class inpatient and location not none.
f. Midnight census(unit, D) = inpatient segments in that unit with start < M and
   (end is None or end >= M), M = local midnight starting D+1.
g. Inpatient stays = maximal runs of consecutive inpatient segments of an
   encounter (event order). admissions(unit, D) = stays starting on local date D,
   unit of the first segment (an A06 conversion counts, so does a direct A01).
   discharges(unit, D) = stays that end (not open) on local date D, unit of the
   last segment (A03, or A07 to outpatient/observation). Transfers: consecutive
   segments within a stay whose units differ → transfers_out for the old unit and
   transfers_in for the new unit on the local date of the boundary (a bed move
   within a unit is not a transfer).
h. patient_days(unit, D) = midnight_census(unit, D) + stays starting and ending
   on local date D, attributed to the last segment's unit.
i. Output: every (facility, unit) passed in ``units`` plus every unit any
   effective event located a patient in, for every date start..end inclusive,
   zero-filled. The facility of a unit is the encounter's sending facility (MSH-4).

Identity (holds by construction, tested): for each unit and day,
census(D-1) + admissions(D) + transfers_in(D) - discharges(D) - transfers_out(D) = census(D).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from healthops.sources.adt.schema import AdtMessage

FACILITY_TZ = "America/Los_Angeles"
MEASURES = ("midnight_census", "admissions", "discharges", "transfers_in", "transfers_out", "patient_days")
LOCATION_EVENTS = ("A01", "A02", "A04", "A06", "A07")
_CANCELS = {"A11": ("A01", "A04"), "A12": ("A02",), "A13": ("A03",)}


def census_class(msg: AdtMessage) -> str:
    if (msg.patient_type or "").strip() == "OBS":
        return "observation"
    pc = (msg.patient_class or "").strip()
    if pc == "I":
        return "inpatient"
    if pc == "E":
        return "emergency"
    return "outpatient"


@dataclass(frozen=True)
class Segment:
    """Where an encounter was, in which class, from ``start`` to ``end`` (local)."""

    facility: str
    visit_number: str
    start: datetime  # local (facility zone)
    end: Optional[datetime]  # None: still open
    unit: Optional[str]  # None after a discharge
    room: Optional[str]
    bed: Optional[str]
    census_class: str
    event: str  # the event that started the segment
    control_id: str

    @property
    def inpatient(self) -> bool:
        return self.census_class == "inpatient" and self.unit is not None


def effective_events(messages: Iterable[tuple[date, str, AdtMessage]]) -> dict[tuple[str, str], list[AdtMessage]]:
    """Rules a–c: dedup, cancel matching; per encounter the surviving events in
    receipt order (A08, cancels and voided events removed)."""
    ordered = sorted(messages, key=lambda t: (t[0], t[1], t[2].message_index))
    seen: set[tuple[str, str]] = set()
    by_enc: dict[tuple[str, str], list[AdtMessage]] = defaultdict(list)
    for _, _, m in ordered:
        key = (m.sending_facility, m.control_id)
        if key in seen:
            continue
        seen.add(key)
        by_enc[(m.sending_facility, m.visit_number)].append(m)
    out: dict[tuple[str, str], list[AdtMessage]] = {}
    for enc, msgs in by_enc.items():
        stacks: dict[str, list[int]] = {"A11": [], "A12": [], "A13": []}
        voided: set[int] = set()
        for i, m in enumerate(msgs):
            ev = m.trigger_event
            if ev in ("A01", "A04"):
                stacks["A11"].append(i)
            elif ev == "A02":
                stacks["A12"].append(i)
            elif ev == "A03":
                stacks["A13"].append(i)
            elif ev in _CANCELS:
                if stacks[ev]:
                    voided.add(stacks[ev].pop())
        out[enc] = [m for i, m in enumerate(msgs) if i not in voided and m.trigger_event in LOCATION_EVENTS + ("A03",)]
    return out


def effective_time(m: AdtMessage, tz: ZoneInfo) -> datetime:
    t = m.discharge_ts if (m.trigger_event == "A03" and m.discharge_ts is not None) else m.event_ts
    return t.astimezone(tz)


def encounter_segments(
    messages: Iterable[tuple[date, str, AdtMessage]], tz_name: str = FACILITY_TZ
) -> dict[tuple[str, str], list[Segment]]:
    """Rules a–e: every encounter's segments in event order."""
    tz = ZoneInfo(tz_name)
    result: dict[tuple[str, str], list[Segment]] = {}
    for enc, msgs in effective_events(messages).items():
        # msgs are in receipt order, so a stable sort on time gives (time, receipt order).
        timed = sorted(((effective_time(m, tz), m) for m in msgs), key=lambda p: p[0])
        segs: list[Segment] = []
        unit = room = bed = None
        klass = "outpatient"
        for i, (t, m) in enumerate(timed):
            if m.trigger_event == "A03":
                unit = room = bed = None
            else:
                if m.unit:
                    unit, room, bed = m.unit, m.room, m.bed
                klass = census_class(m)
            end = timed[i + 1][0] if i + 1 < len(timed) else None
            segs.append(Segment(enc[0], enc[1], t, end, unit, room, bed, klass, m.trigger_event, m.control_id))
        result[enc] = segs
    return result


def inpatient_stays(segments: list[Segment]) -> list[list[Segment]]:
    """Rule g: maximal runs of consecutive inpatient segments."""
    stays: list[list[Segment]] = []
    run: list[Segment] = []
    for s in segments:
        if s.inpatient:
            run.append(s)
        elif run:
            stays.append(run)
            run = []
    if run:
        stays.append(run)
    return stays


def compute_census(
    messages: Iterable[tuple[date, str, AdtMessage]],
    start: date,
    end: date,
    units: Iterable[tuple[str, str]],
    tz_name: str = FACILITY_TZ,
) -> dict[tuple[str, str, date], dict[str, int]]:
    """Daily unit census per the module rules, for start..end inclusive."""
    by_enc = encounter_segments(messages, tz_name)
    keys = list(dict.fromkeys((f, u) for f, u in units))
    for segs in by_enc.values():
        for s in segs:
            if s.unit is not None and (s.facility, s.unit) not in keys:
                keys.append((s.facility, s.unit))
    ndays = (end - start).days + 1
    dates = [start + timedelta(days=i) for i in range(ndays)]
    out = {(f, u, d): dict.fromkeys(MEASURES, 0) for f, u in keys for d in dates}

    def bump(fac: str, unit: str, d: date, measure: str, n: int = 1) -> None:
        row = out.get((fac, unit, d))
        if row is not None:
            row[measure] += n

    for segs in by_enc.values():
        for s in segs:
            if not s.inpatient:
                continue
            # start < M(D) and end >= M(D)  <=>  date(start) <= D < date(end)  (local midnights)
            first = max(s.start.date(), start)
            last = end if s.end is None else min(s.end.date() - timedelta(days=1), end)
            d = first
            while d <= last:
                bump(s.facility, s.unit, d, "midnight_census")
                d += timedelta(days=1)
        for stay in inpatient_stays(segs):
            head, tail = stay[0], stay[-1]
            bump(head.facility, head.unit, head.start.date(), "admissions")
            if tail.end is not None:
                bump(tail.facility, tail.unit, tail.end.date(), "discharges")
                if tail.end.date() == head.start.date():
                    bump(tail.facility, tail.unit, tail.end.date(), "patient_days")
            for a, b in zip(stay, stay[1:]):
                if a.unit != b.unit:
                    bump(a.facility, a.unit, b.start.date(), "transfers_out")
                    bump(b.facility, b.unit, b.start.date(), "transfers_in")
    for row in out.values():
        row["patient_days"] += row["midnight_census"]
    return out
