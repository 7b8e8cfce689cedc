"""Synthetic ADT generator: deterministic, parseable, realistic, within bed capacity."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from healthops.sources.adt.parser import parse_file
from healthops.sources.adt.schema import KNOWN_EVENTS, Rejection
from healthops.synthetic.adt_feed import UNITS_CSV, generate

from census_reference import compute_census, encounter_segments

START = date(2024, 3, 1)  # spans the DST change on 2024-03-10
DAYS = 14
END = START + timedelta(days=DAYS - 1)
EXPECTED_REJECTIONS = ("PV1-19 visit number missing", "unknown trigger event 'A99'", "unparseable time in EVN-2")
# only in runs of 28 days or more: one file cut mid-message and one garbage line per 28 days
FILE_DEFECTS = ("file ends mid-message: PV1 segment missing", "not an HL7 message: 1 line(s) of text")
WEEKS = 4


def _units() -> list[dict]:
    with open(UNITS_CSV, newline="") as fh:
        return list(csv.DictReader(fh))


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _parse(root: Path):
    messages, rejections = [], []
    for p in sorted((root / "adt").glob("*/*.hl7")):
        received = date.fromisoformat(p.parent.name)
        for item in parse_file(p):
            (rejections if isinstance(item, Rejection) else messages).append((received, p.name, item))
    return messages, rejections


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    summary = generate(root, START, DAYS, seed=7)
    messages, rejections = _parse(root)
    return root, summary, messages, rejections


def test_deterministic_for_a_seed(feed, tmp_path):
    root, summary, _, _ = feed
    again = generate(tmp_path / "again", START, DAYS, seed=7)
    assert _digest(root) == _digest(tmp_path / "again")
    assert {k: v for k, v in summary.items() if k != "paths"} == {k: v for k, v in again.items() if k != "paths"}
    other = generate(tmp_path / "other", START, DAYS, seed=8)
    assert _digest(tmp_path / "other") != _digest(root)
    assert other["messages"] > 0


def test_layout_and_files(feed):
    root, summary, _, _ = feed
    days = sorted(p.name for p in (root / "adt").iterdir())
    assert days == [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
    for d in days:
        files = sorted(p.name for p in (root / "adt" / d).iterdir())
        assert 2 <= len(files) <= 3 and all(f.endswith(".hl7") for f in files)  # no *.tmp left behind
    assert summary["files"] == len(list((root / "adt").glob("*/*.hl7")))
    blobs = [p.read_bytes() for p in (root / "adt").glob("*/*.hl7")]
    assert any(b.startswith(b"\x0b") and b"\x1c\r" in b for b in blobs)  # MLLP
    assert any(b.startswith(b"FHS|") and b"BTS|" in b and b"FTS|" in b for b in blobs)  # batch envelope
    assert any(b"\r\n" in b for b in blobs) and any(b"\r" in b and b"\r\n" not in b for b in blobs)
    everything = b"".join(blobs)
    assert b"O\\T\\BRIEN" in everything  # escape sequences in names
    assert b"|8859/1" in everything and b"|UNICODE UTF-8" in everything
    assert b"ZPV|" in everything


def test_parses_with_only_the_intended_rejections(feed):
    _, summary, messages, rejections = feed
    assert len(rejections) == summary["malformed"] >= 3
    reasons = [r.reason for _, _, r in rejections]
    for expected in EXPECTED_REJECTIONS:
        assert any(r.startswith(expected) for r in reasons), expected
    assert all(r.startswith(EXPECTED_REJECTIONS) for r in reasons), reasons
    assert len(messages) + len(rejections) == summary["messages"]


def test_every_event_type_and_variety(feed):
    _, summary, messages, _ = feed
    events = Counter(m.trigger_event for _, _, m in messages)
    assert set(events) == set(KNOWN_EVENTS)
    assert len({m.hl7_version for _, _, m in messages}) >= 6
    assert any(m.patient_name and "&" in m.patient_name for _, _, m in messages)  # O&BRIEN decoded
    assert any(m.patient_name and "Ü" in m.patient_name or "Í" in (m.patient_name or "") for _, _, m in messages)
    assert any(
        m.event_ts.tzinfo is not None and str(m.event_ts.tzinfo) != "America/Los_Angeles" for _, _, m in messages
    )  # explicit offsets
    assert any(m.patient_type == "OBS" for _, _, m in messages)
    assert any(m.trigger_event == "A03" and m.discharge_ts for _, _, m in messages)
    assert all(m.mrn for _, _, m in messages)
    # ~20-30 inpatient admissions per day (direct A01 plus ED/observation conversions)
    admits = sum(1 for _, _, m in messages if m.trigger_event in ("A01", "A06") and m.patient_class == "I")
    assert 18 * DAYS <= admits <= 32 * DAYS


def test_late_and_duplicate_messages(feed):
    _, summary, messages, _ = feed
    late = [(d, m) for d, _, m in messages if m.event_ts.date() < d]
    assert summary["late"] >= 1 and len(late) >= summary["late"]
    assert any((d - m.event_ts.date()).days >= 1 and m.event_occurred_ts for d, m in late)
    keys = Counter((m.sending_facility, m.control_id) for _, _, m in messages)
    dups = [k for k, n in keys.items() if n > 1]
    assert len(dups) == summary["duplicates"] == 1
    files = [(d, f) for d, f, m in messages if (m.sending_facility, m.control_id) == dups[0]]
    assert files[0] < files[1]


def test_census_within_capacity_and_balanced(feed):
    _, _, messages, _ = feed
    units = _units()
    beds = {(u["facility_code"], u["unit_code"]): int(u["staffed_beds"]) for u in units}
    c = compute_census(messages, START, END, list(beds))
    assert set((f, u) for f, u, _ in c) == set(beds)
    for (f, u, d), row in c.items():
        assert 0 <= row["midnight_census"] <= beds[(f, u)], (u, d, row)
    assert max(r["midnight_census"] for (f, u, d), r in c.items() if u == "MS5") > 10  # a realistic house
    assert all(r["midnight_census"] == 0 for (f, u, d), r in c.items() if u == "ED")
    dates = sorted({d for _, _, d in c})
    for key in beds:
        for prev, cur in zip(dates, dates[1:]):
            r0, r = c[key + (prev,)], c[key + (cur,)]
            assert (
                r0["midnight_census"] + r["admissions"] + r["transfers_in"] - r["discharges"] - r["transfers_out"]
                == r["midnight_census"]
            )
    assert sum(r["transfers_in"] for r in c.values()) > 0


def test_never_two_patients_in_one_bed(feed):
    _, _, messages, _ = feed
    far = datetime.max.replace(tzinfo=None)
    occupancy = defaultdict(list)
    for segs in encounter_segments(messages).values():
        for s in segs:
            if s.unit is not None and s.end != s.start:
                end = s.end.replace(tzinfo=None) if s.end else far
                occupancy[(s.unit, s.room, s.bed)].append((s.start.replace(tzinfo=None), end, s.visit_number))
    assert occupancy
    for bed, spans in occupancy.items():
        spans.sort()
        for (s0, e0, v0), (s1, e1, v1) in zip(spans, spans[1:]):
            assert v0 == v1 or e0 <= s1, (bed, (s0, e0, v0), (s1, e1, v1))


# The longest an ED visit can last: 1.5-8 h in a bay (+2 h when the end falls in
# 01:00-02:59), then boarding for a bed in 5 more tries of 3 h each (+2 h likewise).
ED_LONGEST = timedelta(hours=8 + 2 + 5 * 3 + 2)


def _double_booked(messages) -> list:
    """Pairs of location segments of different encounters that overlap in one named
    bed (facility, unit, room, bed), as CEN-019 finds them; an open segment lasts
    for ever."""
    far = datetime.max
    spans = defaultdict(list)
    for segs in encounter_segments(messages).values():
        for s in segs:
            if s.unit is not None and (s.bed or "").strip() and s.end != s.start:
                bed = (s.facility, s.unit, (s.room or "").strip() or None, s.bed.strip())
                end = s.end.replace(tzinfo=None) if s.end else far
                spans[bed].append((s.start.replace(tzinfo=None), end, s.visit_number))
    pairs = []
    for bed, ss in spans.items():
        ss.sort()
        for i, (s0, e0, v0) in enumerate(ss):
            for s1, e1, v1 in ss[i + 1 :]:
                if s1 >= e0:
                    break
                if v1 != v0:
                    pairs.append((bed, (s0, e0, v0), (s1, e1, v1)))
    return pairs


@pytest.mark.parametrize("fixture", ["feed", "month"])
def test_no_bed_held_twice_on_any_night_and_ed_visits_close(fixture, request):
    # Each night's warehouse holds the files received through that day. A late
    # discharge (or transfer) leaves its patient in the bed they left until the
    # message arrives; the bed must not be given to anyone else meanwhile, or CEN-019
    # warns (an ED bay turns over within hours, so it did on most nights of the demo).
    root, summary, messages, _ = request.getfixturevalue(fixture)
    first, last = date.fromisoformat(summary["first_day"]), date.fromisoformat(summary["last_day"])
    assert summary["late"] >= 2
    assert any(
        m.trigger_event == "A03" and m.patient_class == "E" and m.event_ts.date() < d for d, _, m in messages
    )  # late ED discharges are among them
    night = first
    while night <= last:
        assert _double_booked([t for t in messages if t[0] <= night]) == [], night
        night += timedelta(days=1)

    # Every ED visit ends in a discharge from the ED (A03) or an admission (A06); only
    # visits that may still be going on when the feed ends stay open, in their own bay.
    ed_units = {(u["facility_code"], u["unit_code"]) for u in summary["units"] if u["unit_type"] == "emergency"}
    feed_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), ZoneInfo("America/Los_Angeles"))
    visits = still_open = 0
    for segs in encounter_segments(messages).values():
        for s, nxt in zip(segs, segs[1:] + [None]):
            if (s.facility, s.unit) not in ed_units:
                continue
            visits += 1
            assert s.census_class == "emergency", s
            if nxt is None:
                assert s.end is None and feed_end - s.start <= ED_LONGEST, s
                still_open += 1
            else:
                assert (nxt.event, nxt.unit) == ("A03", None) or (
                    nxt.event == "A06" and nxt.census_class == "inpatient" and (nxt.facility, nxt.unit) not in ed_units
                ), (s, nxt)
    assert visits > 50 * (last - first).days and still_open < visits / 50


def test_one_day_run(tmp_path):
    summary = generate(tmp_path, START, 1, seed=3)
    messages, rejections = _parse(tmp_path)
    assert summary["files"] in (2, 3)
    assert len(rejections) == summary["malformed"]
    assert len(messages) + len(rejections) == summary["messages"]


def test_units_argument(tmp_path):
    units = [
        dict(facility_code="NGH", unit_code="ICU", unit_type="critical_care", staffed_beds="2"),
        dict(facility_code="NGH", unit_code="MS5", unit_type="medical_surgical", staffed_beds="3"),
        dict(facility_code="NGH", unit_code="ED", unit_type="emergency", staffed_beds="2"),
    ]
    generate(tmp_path, START, 5, seed=1, units=units)
    messages, _ = _parse(tmp_path)
    assert {m.unit for _, _, m in messages if m.unit} <= {"ICU", "MS5", "ED"}
    c = compute_census(messages, START, START + timedelta(days=4), [("NGH", "ICU"), ("NGH", "MS5")])
    assert all(r["midnight_census"] <= {"ICU": 2, "MS5": 3, "ED": 0}[u] for (f, u, d), r in c.items())


# --------------------------------------------------------------------------- scale and realism


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """Four weeks of both seeded facilities (NGH and SGH) in one feed."""
    root = tmp_path_factory.mktemp("month")
    summary = generate(root, START, 7 * WEEKS, seed=5, facilities=2)
    messages, rejections = _parse(root)
    return root, summary, messages, rejections


def _staffed(summary) -> dict:
    return {
        (u["facility_code"], u["unit_code"]): int(u["staffed_beds"])
        for u in summary["units"]
        if u["unit_type"] != "emergency"
    }


def test_two_facilities_both_present(month):
    _, summary, messages, _ = month
    assert summary["facilities"] == ["NGH", "SGH"]
    seed = {(u["facility_code"], u["unit_code"]) for u in _units()}
    assert {(u["facility_code"], u["unit_code"]) for u in summary["units"]} == seed
    units_seen = defaultdict(set)
    for _, _, m in messages:
        if m.unit:
            units_seen[m.sending_facility].add(m.unit)
            assert m.location_facility == m.sending_facility
    assert set(units_seen) == {"NGH", "SGH"}
    assert {"LD", "MBU", "ANTE", "ONC"} <= units_seen["SGH"]  # obstetrics and oncology
    assert units_seen["SGH"] <= {u for f, u in seed if f == "SGH"}
    assert summary["staffed_beds"] == {
        f: sum(n for (g, _), n in _staffed(summary).items() if g == f) for f in ("NGH", "SGH")
    }


def test_census_within_staffed_beds_and_settles(month):
    _, summary, messages, _ = month
    staffed = _staffed(summary)
    end = START + timedelta(days=7 * WEEKS - 1)
    c = compute_census([m for m in messages], START, end, list(staffed))
    for (f, u, d), row in c.items():
        if (f, u) in staffed:
            assert 0 <= row["midnight_census"] <= staffed[(f, u)], (f, u, d, row)
    # after two weeks' warm-up the house runs at roughly 70–92% of staffed beds
    for fac in summary["facilities"]:
        beds = summary["staffed_beds"][fac]
        late = [
            sum(r["midnight_census"] for (f, _, d), r in c.items() if f == fac and d == day) / beds
            for day in (START + timedelta(days=i) for i in range(14, 7 * WEEKS))
        ]
        assert 0.65 <= sum(late) / len(late) <= 0.92, (fac, late)
        assert max(late) <= 1.0


def test_file_defects_in_a_long_run(month):
    root, summary, messages, rejections = month
    assert summary["truncated_files"] == summary["garbage_lines"] == 1
    assert len(rejections) == summary["malformed"]
    assert len(messages) + len(rejections) == summary["messages"]
    reasons = [r.reason for _, _, r in rejections]
    for expected in FILE_DEFECTS:
        assert sum(r.startswith(expected) for r in reasons) == 1, expected
    assert all(r.startswith(EXPECTED_REJECTIONS + FILE_DEFECTS) for r in reasons), reasons
    cut = [f for _, f, r in rejections if r.reason.startswith(FILE_DEFECTS[0])]
    blob = next((root / "adt").glob(f"*/{cut[0]}")).read_bytes()
    assert not blob.endswith((b"\r", b"\n")) and b"PV1|" not in blob.rsplit(b"MSH|", 1)[1]


def test_weekday_pattern(month):
    _, _, messages, _ = month
    direct, discharge_hours, ed_hours = Counter(), Counter(), Counter()
    for _, _, m in messages:
        t = m.event_ts.astimezone(ZoneInfo("America/Los_Angeles"))
        if m.trigger_event == "A01" and m.patient_class == "I":
            direct[t.date()] += 1
        elif m.trigger_event == "A03" and m.patient_class == "I" and m.discharge_ts:
            discharge_hours[m.discharge_ts.astimezone(ZoneInfo("America/Los_Angeles")).hour] += 1
        elif m.trigger_event == "A04" and m.patient_class == "E":
            ed_hours[t.hour] += 1
    days = [START + timedelta(days=i) for i in range(7 * WEEKS)]
    weekend = [direct[d] for d in days if d.weekday() >= 5]
    weekday = [direct[d] for d in days if d.weekday() < 5]
    assert sum(weekend) / len(weekend) < 0.8 * sum(weekday) / len(weekday)
    # discharges peak late morning to early afternoon; ED arrivals afternoon and evening
    assert sum(discharge_hours[h] for h in range(10, 15)) > 0.45 * sum(discharge_hours.values())
    assert sum(ed_hours[h] for h in range(14, 22)) > 2 * sum(ed_hours[h] for h in range(3, 11))


def test_long_stays_step_downs_and_observation(month):
    _, summary, messages, _ = month
    segs = encounter_segments(messages)
    window_end = datetime.combine(
        START + timedelta(days=7 * WEEKS), datetime.min.time(), ZoneInfo("America/Los_Angeles")
    )
    stay_len = {
        k: max(s.end or window_end for s in v) - min(s.start for s in v)
        for k, v in segs.items()
        if any(s.inpatient for s in v)
    }
    assert sum(d >= timedelta(days=14) for d in stay_len.values()) >= 3  # 2-6 week tail
    assert max(stay_len.values()) <= timedelta(days=7 * WEEKS)
    assert all(st["long_stays"] >= 1 for st in summary["stays"].values())
    step_downs = [
        s for v in segs.values() for a, s in zip(v, v[1:]) if a.unit == "ICU" and s.unit == "SDU" and s.event == "A02"
    ]
    assert len(step_downs) >= 20
    obs = [v for v in segs.values() if v and v[0].census_class == "observation"]
    assert len(obs) >= 20
    lengths = [v[-1].start - v[0].start for v in obs if v[-1].unit is None and len(v) == 2]
    assert sum(timedelta(hours=24) <= d <= timedelta(hours=48) for d in lengths) > 0.6 * len(lengths)
    converted = [v for v in obs if any(s.event == "A06" and s.census_class == "inpatient" for s in v)]
    assert converted


def test_beds_scale_the_units(tmp_path):
    summary = generate(tmp_path, START, 3, seed=2, beds=200)
    staffed = _staffed(summary)
    assert sum(staffed.values()) == 200 == summary["staffed_beds"]["NGH"]
    assert all(n <= 40 for n in staffed.values())  # big units are split
    types = Counter(u["unit_type"] for u in summary["units"])
    assert types["medical_surgical"] >= 2 and types["emergency"] == 1
    assert all(int(u["licensed_beds"]) >= int(u["staffed_beds"]) for u in summary["units"])
    messages, _ = _parse(tmp_path)
    assert {m.unit for _, _, m in messages if m.unit} <= {u["unit_code"] for u in summary["units"]}
    c = compute_census(messages, START, START + timedelta(days=2), list(staffed))
    assert all(0 <= r["midnight_census"] <= staffed.get((f, u), 0) for (f, u, d), r in c.items())
    assert generate(tmp_path / "d", START, 1, beds=110)["units"] == generate(tmp_path / "e", START, 1)["units"]
    assert max(r["midnight_census"] for r in c.values()) > 0


def test_facilities_must_be_in_the_reference_data(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, START, 1, facilities=3)
    with pytest.raises(ValueError):
        generate(tmp_path, START, 1, facilities=["XYZ"])
    assert generate(tmp_path / "s", START, 1, facility="SGH")["facilities"] == ["SGH"]


def test_deterministic_with_scale_and_facilities(tmp_path):
    one = generate(tmp_path / "one", START, 3, seed=4, facilities=["NGH", "SGH"], beds={"NGH": 150})
    two = generate(tmp_path / "two", START, 3, seed=4, facilities=["NGH", "SGH"], beds={"NGH": 150})
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert {k: v for k, v in one.items() if k != "paths"} == {k: v for k, v in two.items() if k != "paths"}
    assert one["staffed_beds"] == {"NGH": 150, "SGH": 92}
