"""Synthetic workforce generator: deterministic, in the interface formats, staffed in
ratio at every instant but for the few injected gaps, each of which is where the
summary says (no database: ``build_workforce`` and ``generate_workforce(tk_url=None)``)."""

from __future__ import annotations

import csv
import hashlib
import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthops.sources.timekeeping.schema import PAY_LINE_COLUMNS, PUNCH_COLUMNS, PUNCH_TYPES
from healthops.synthetic.workforce import (
    HR_FILES,
    build_workforce,
    generate_workforce,
    licensed_direct_care_jobs,
    load_ratios,
)

START = date(2026, 11, 2)  # the demo's defaults (healthops demo --start, --days, --seed)
DAYS = 14
TZ = ZoneInfo("America/Los_Angeles")
P = {c: i for i, c in enumerate(PUNCH_COLUMNS)}
L = {c: i for i, c in enumerate(PAY_LINE_COLUMNS)}


@pytest.fixture(scope="module")
def demo():
    return build_workforce(START, DAYS, seed=7)


@pytest.fixture(scope="module")
def two_facilities():
    return build_workforce(START, 7, seed=3, facilities=2, gaps=False)


def _pairs(punches):
    """Per (worker, cost center, job): [IN, OUT) pairs minus meal breaks; and the
    data-quality flags (OUT without IN, IN while another pair of the worker is open)."""
    by_worker = defaultdict(list)
    for p in punches:
        if not p[P["deleted"]]:
            by_worker[p[P["worker_id"]]].append(p)
    on, flags = [], []
    for worker, ps in by_worker.items():
        ps.sort(key=lambda p: (p[P["punch_ts"]], p[P["punch_id"]]))
        open_in: dict = {}  # cost center -> (ts, job, meals)
        for p in ps:
            kind, ts, cc = p[P["punch_type"]], p[P["punch_ts"]], p[P["cost_center"]]
            if kind == "IN":
                if open_in:
                    flags.append(("overlap", worker, ts))
                open_in[cc] = [ts, p[P["job_code"]], []]
            elif kind == "OUT":
                if cc not in open_in:
                    flags.append(("out_without_in", worker, ts))
                    continue
                t0, job, meals = open_in.pop(cc)
                on.append((worker, cc, job, t0, ts, meals))
            elif cc not in open_in:  # a meal of a shift with no IN: counts nowhere
                continue
            elif kind == "MEAL_OUT":
                open_in[cc][2].append([ts, None])
            else:
                open_in[cc][2][-1][1] = ts
        for t0, *_rest in open_in.values():
            flags.append(("in_without_out", worker, t0))
    return on, flags


def _licensed_at(on, cc, t, jobs):
    n = 0
    for _worker, c, job, t0, t1, meals in on:
        if c == cc and job in jobs and t0 <= t < t1 and not any(m0 <= t < m1 for m0, m1 in meals):
            n += 1
    return n


def _gap(demo, kind):
    return next(g for g in demo["summary"]["gaps"] if g["kind"] == kind)


def test_deterministic_and_columns(demo):
    again = build_workforce(START, DAYS, seed=7)
    assert again["punches"] == demo["punches"]
    assert again["pay_lines"] == demo["pay_lines"]
    assert again["hr"] == demo["hr"]
    other = build_workforce(START, DAYS, seed=8)
    assert other["punches"] != demo["punches"]
    for p in demo["punches"]:
        assert len(p) == len(PUNCH_COLUMNS) and p[P["punch_type"]] in PUNCH_TYPES
        assert p[P["punch_ts"]].tzinfo is not None and p[P["updated_at"]] >= p[P["punch_ts"]] - timedelta(seconds=1)
    ids = [p[P["punch_id"]] for p in demo["punches"]]
    assert ids == sorted(ids) == list(range(1, len(ids) + 1))
    assert len({line[L["pay_line_id"]] for line in demo["pay_lines"]}) == len(demo["pay_lines"])
    s = demo["summary"]
    assert s["unfilled"] == 0 and s["edits"] > 0 and s["deletions"] > 0
    assert s["punches"] == len(demo["punches"]) and s["pay_lines"] == len(demo["pay_lines"])


def test_hr_files_written_in_the_spec_columns(tmp_path):
    s = generate_workforce(tmp_path, None, START, 3, seed=7)
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp_path.rglob("*.csv"))}
    assert s["files"] == 15 and not list(tmp_path.rglob("*.tmp"))
    for k in range(3):
        folder = tmp_path / "hr" / (START + timedelta(days=k)).isoformat()
        assert sorted(p.name for p in folder.iterdir()) == sorted(HR_FILES)
        for name, columns in HR_FILES.items():
            with open(folder / name, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            assert tuple(rows[0]) == columns and len(rows) > 1
            assert all(len(r) == len(columns) for r in rows)
    generate_workforce(tmp_path, None, START, 3, seed=7)
    assert digest == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp_path.rglob("*.csv"))}


def test_punch_pairs_well_formed_but_the_injected_ones(demo):
    _, flags = _pairs(demo["punches"])
    dq = _gap(demo, "out_without_in")
    ov = _gap(demo, "overlapping_pair")
    assert dq["worker_id"] == ov["worker_id"]
    kinds = {(k, w) for k, w, _ in flags}
    assert kinds == {("out_without_in", dq["worker_id"]), ("overlap", ov["worker_id"])}
    ts = {k: t.astimezone(TZ) for k, _, t in flags}
    assert abs(ts["out_without_in"] - datetime.fromisoformat(dq["local_end"])) < timedelta(minutes=8)
    assert ts["overlap"] == datetime.fromisoformat(ov["local_start"])


def _check_ratio(result, skip=()):
    """Licensed direct-care nurses on duty >= ceil(beds / ratio) at every 15-minute mark
    of the period (from the first local midnight), but in the windows ``skip``."""
    ratios, jobs = load_ratios(), licensed_direct_care_jobs()
    on, _ = _pairs(result["punches"])
    by_cc = defaultdict(list)
    for row in on:
        by_cc[row[1]].append(row)
    first = result["summary"]["first_day"]
    t0 = datetime.combine(first, datetime.min.time(), tzinfo=TZ)
    t1 = datetime.combine(result["summary"]["last_day"] + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    short = []
    for u in result["units"]:
        need = math.ceil(int(u["staffed_beds"]) / ratios[u["unit_type"]])
        t = t0
        while t < t1:
            if not any(a <= t < b for cc, a, b in skip if cc == u["cost_center"]):
                n = _licensed_at(by_cc[u["cost_center"]], u["cost_center"], t, jobs)
                if n < need:
                    short.append((u["facility_code"], u["unit_code"], t.isoformat(), n, need))
            t += timedelta(minutes=15)
    return short


def test_in_ratio_at_every_mark_but_the_injected_gaps(demo):
    skip = []
    for kind in ("shift_change_gap", "meal_without_relief"):
        g = _gap(demo, kind)
        skip.append(
            (g["cost_center"], datetime.fromisoformat(g["local_start"]), datetime.fromisoformat(g["local_end"]))
        )
    assert _check_ratio(demo, skip) == []


def test_small_units_meals_relieved_by_float(two_facilities):
    """SGH's units of under 12 beds have no relief nurse of their own: a float nurse
    transfers onto them for their meals."""
    assert "SGH" in two_facilities["summary"]["facilities"] and two_facilities["summary"]["gaps"] == []
    assert _check_ratio(two_facilities) == []
    ante = next(u for u in two_facilities["units"] if u["unit_code"] == "ANTE")
    on, _ = _pairs(two_facilities["punches"])
    assert any(job == "RN_FLOAT" and cc == ante["cost_center"] for _, cc, job, *_ in on)


def test_injected_ratio_gaps_are_one_nurse_short(demo):
    ratios, jobs = load_ratios(), licensed_direct_care_jobs()
    on, _ = _pairs(demo["punches"])
    units = {u["cost_center"]: u for u in demo["units"]}
    for kind, minutes in (("shift_change_gap", 7), ("meal_without_relief", None)):
        g = _gap(demo, kind)
        a, b = datetime.fromisoformat(g["local_start"]), datetime.fromisoformat(g["local_end"])
        if minutes:
            assert b - a == timedelta(minutes=minutes)
        else:
            assert timedelta(minutes=25) <= b - a <= timedelta(minutes=30)
        u = units[g["cost_center"]]
        need = math.ceil(int(u["staffed_beds"]) / ratios[u["unit_type"]])
        mid = a + (b - a) / 2
        assert _licensed_at(on, g["cost_center"], mid, jobs) == need - 1
        assert _licensed_at(on, g["cost_center"], a - timedelta(minutes=1), jobs) >= need
        assert _licensed_at(on, g["cost_center"], b + timedelta(seconds=1), jobs) >= need
    sc = _gap(demo, "shift_change_gap")
    assert (sc["local_start"], sc["local_end"]) == ("2026-11-07T19:32:00-08:00", "2026-11-07T19:39:00-08:00")


def _worked(on, jobs=("RN", "RN_FLOAT", "RN_CHARGE", "NM", "LVN")):
    """Nurses' worked spans: (IN, OUT, meal time)."""
    by_worker = defaultdict(list)
    for worker, _cc, job, t0, t1, meals in on:
        if job not in jobs:
            continue
        by_worker[worker].append((t0, t1, sum((m1 - m0 for m0, m1 in meals), timedelta())))
    return by_worker


def test_fatigue_findings_only_for_the_injected_workers(demo):
    on, _ = _pairs(demo["punches"])
    double, sixty = _gap(demo, "fatigue_12h"), _gap(demo, "fatigue_60h")
    over12, over60 = set(), set()
    for worker, spans in _worked(on).items():
        spans.sort()
        for t0, _, _ in spans:  # windows starting at each IN; hours on the 7-minute rounding, meals off
            h24 = sum(
                (min(b, t0 + timedelta(hours=24)) - a - m).total_seconds()
                for a, b, m in spans
                if t0 <= a < t0 + timedelta(hours=24)
            )
            h7d = sum((b - a - m).total_seconds() for a, b, m in spans if t0 <= a < t0 + timedelta(days=7))
            if h24 > 12.25 * 3600:
                over12.add(worker)
            if h7d > 61 * 3600:
                over60.add(worker)
    assert over12 == {double["worker_id"]}
    assert over60 == {sixty["worker_id"]}
    shift = next(s for s in _worked(on)[double["worker_id"]] if s[0].astimezone(TZ).date() == date(2026, 11, 9))
    assert shift[1].astimezone(TZ).strftime("%H:%M") in (
        "23:00",
        "23:01",
        "23:02",
        "23:03",
        "23:04",
        "23:05",
        "23:06",
        "23:07",
        "23:08",
        "23:09",
    )


def _credential(demo, day, worker, ctype):
    return next(r for r in demo["hr"][day]["credentials.csv"] if r[0] == worker and r[1] == ctype)


def test_licence_current_on_every_licensed_shift_but_one(demo):
    on, _ = _pairs(demo["punches"])
    needs = {"RN": "RN", "RN_FLOAT": "RN", "RN_CHARGE": "RN", "NM": "RN", "LVN": "LPN"}
    lapsed = set()
    for worker, _cc, job, t0, _t1, _meals in on:
        day = t0.astimezone(TZ).date()
        if job not in needs or day not in demo["hr"]:
            continue
        _, _, _, _, _, expiry, verified = _credential(demo, day, worker, needs[job])
        if verified is None or verified > day or expiry < day:
            lapsed.add((worker, day))
    g = _gap(demo, "licence_expired")
    assert lapsed == {(g["worker_id"], date(2026, 11, 12))}
    before = _credential(demo, date(2026, 11, 12), g["worker_id"], "RN")
    after = _credential(demo, date(2026, 11, 13), g["worker_id"], "RN")
    assert before[5] == date(2026, 11, 11) and after[5] > date(2028, 1, 1) and after[6] == date(2026, 11, 13)


def test_hr_changes(demo):
    events = {e["kind"]: e for e in demo["summary"]["events"]}
    hr = demo["hr"]
    new = events["new_hire"]["worker_id"]
    listed = [d for d in sorted(hr) if any(r[0] == new for r in hr[d]["workers.csv"])]
    assert listed[0] == date(2026, 11, 4)  # three days before the hire date 2026-11-07
    assert _credential(demo, date(2026, 11, 8), new, "RN")[6] is None
    assert _credential(demo, date(2026, 11, 9), new, "RN")[6] == date(2026, 11, 9)
    training = [r for r in hr[date(2026, 11, 15)]["training.csv"] if r[0] == new]
    assert {r[1] for r in training} == {"HIPAA_PRIVACY", "HIPAA_SECURITY"}
    assert all(r[2] <= date(2026, 11, 7) + timedelta(days=30) for r in training)
    orient = [pl for pl in demo["pay_lines"] if pl[L["worker_id"]] == new and pl[L["pay_code"]] == "ORIENT"]
    assert len(orient) == 4
    late = _gap(demo, "hipaa_training_late")
    assert not [r for r in hr[date(2026, 11, 7)]["training.csv"] if r[0] == late["worker_id"]]
    gone = events["termination"]["worker_id"]
    status = {d: next(r[10] for r in hr[d]["workers.csv"] if r[0] == gone) for d in hr}
    assert status[date(2026, 11, 8)] == "ACTIVE" and status[date(2026, 11, 9)] == "TERMINATED"
    assert not [
        p
        for p in demo["punches"]
        if p[P["worker_id"]] == gone and p[P["punch_ts"]].astimezone(TZ).date() >= date(2026, 11, 9)
    ]
    pm = events["exclusion_possible_match"]["worker_id"]
    rows = [r for r in hr[date(2026, 11, 15)]["exclusion_screening.csv"] if r[0] == pm and r[2] == "OIG_LEIE"]
    assert [r[3] for r in sorted(rows, key=lambda r: r[1])][-2:] == ["POSSIBLE_MATCH", "CLEAR"]
    # everyone screened against both lists every month
    workers = {r[0] for r in hr[date(2026, 11, 15)]["workers.csv"]}
    screened = {
        (r[0], r[2])
        for r in hr[date(2026, 11, 15)]["exclusion_screening.csv"]
        if r[1] >= date(2026, 11, 3) - timedelta(days=35)
    }
    assert {(w, lst) for w in workers for lst in ("OIG_LEIE", "SAM")} <= screened | {(new, "OIG_LEIE"), (new, "SAM")}
    # the vacancy: fewer workers than budgeted on one unit
    vac = events["vacancy"]
    budget = sum(float(r[2]) for r in hr[START]["positions.csv"] if r[0] == vac["cost_center"] and r[1] == "RN")
    fte = sum(r[9] / 40 for r in hr[START]["workers.csv"] if r[8] == vac["cost_center"] and r[7] == "RN")
    assert fte < budget


def test_pay_lines(demo):
    weekly = defaultdict(Decimal)
    rates = defaultdict(set)
    for pl in demo["pay_lines"]:
        h, amount, code = pl[L["hours"]], pl[L["amount"]], pl[L["pay_code"]]
        assert h > 0 and amount > 0
        mult = {"OT": Decimal("1.5"), "DT": Decimal(2)}.get(code, Decimal(1))
        rates[pl[L["worker_id"]]].add((amount / h / mult).quantize(Decimal("0.1")))
        if code in ("REG", "ORIENT", "EDU", "CALLBACK"):
            d = pl[L["work_date"]]
            weekly[(pl[L["worker_id"]], d - timedelta(days=(d.weekday() + 1) % 7))] += h
    assert all(len(r) == 1 for r in rates.values())  # one rate per worker; OT x1.5, DT x2
    assert max(weekly.values()) <= 40
    codes = {pl[L["pay_code"]] for pl in demo["pay_lines"]}
    assert {"REG", "OT", "DT", "ORIENT", "SICK", "PTO"} <= codes
    double = _gap(demo, "fatigue_12h")
    dt = [pl for pl in demo["pay_lines"] if pl[L["worker_id"]] == double["worker_id"] and pl[L["pay_code"]] == "DT"]
    assert [pl[L["hours"]] for pl in dt] == [Decimal("3.5")]


def test_timecard_edits(demo):
    edits = [p for p in demo["punches"] if p[P["source"]] == "EDIT"]
    deleted = [p for p in demo["punches"] if p[P["deleted"]]]
    assert len(edits) == demo["summary"]["edits"] and len(deleted) == demo["summary"]["deletions"]
    for p in edits + deleted:
        assert timedelta(hours=12) < p[P["updated_at"]] - p[P["punch_ts"]] < timedelta(days=3)
        assert 8 <= p[P["updated_at"]].astimezone(TZ).hour < 17  # approved in office hours
    assert all(p[P["punch_type"]] == "OUT" for p in edits)
    assert all(p[P["punch_type"]] == "IN" for p in deleted)


@pytest.mark.parametrize(
    ("start", "night", "hours"),
    [(date(2026, 10, 30), date(2026, 10, 31), 13.5), (date(2026, 3, 6), date(2026, 3, 7), 11.5)],
)
def test_night_shift_across_dst(start, night, hours):
    r = build_workforce(start, 3, seed=7, gaps=False)
    on, _ = _pairs(r["punches"])
    ratios, jobs = load_ratios(), licensed_direct_care_jobs()
    spans = [
        (t1 - t0).total_seconds() / 3600
        for _, cc, job, t0, t1, _ in on
        if job in ("RN", "LVN", "CNA") and t0.astimezone(TZ).date() == night and t0.astimezone(TZ).hour == 19
    ]
    assert spans and all(abs(h - hours) < 0.25 for h in spans)
    assert _check_ratio(r) == []
    assert ratios and jobs
