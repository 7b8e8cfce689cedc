"""Reference census: hand-computed cases and property tests."""

from __future__ import annotations

import dataclasses
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from census_reference import MEASURES, compute_census  # noqa: E402
from hl7_builders import adt_message as M  # noqa: E402
from hl7_builders import ts

UNITS = [("NGH", "ICU"), ("NGH", "SDU"), ("NGH", "MS5"), ("NGH", "ED")]
D = date(2024, 1, 10)


def day(n: int) -> date:
    return D + timedelta(days=n - 10)


def receipts(*msgs, received: date = D, file: str = "a.hl7") -> list:
    """Messages received in this order in one file."""
    return [(received, file, dataclasses.replace(m, message_index=i + 1)) for i, m in enumerate(msgs)]


def census(stream, start=None, end=None, units=UNITS):
    return compute_census(stream, start or day(9), end or day(16), units)


def row(c, unit, d):
    return c[("NGH", unit, d)]


def series(c, unit, measure, first=9, last=16):
    return [row(c, unit, day(n))[measure] for n in range(first, last + 1)]


def assert_balanced(c):
    keys = {(f, u) for f, u, _ in c}
    dates = sorted({d for _, _, d in c})
    for f, u in keys:
        for prev, cur in zip(dates, dates[1:]):
            r0, r = c[(f, u, prev)], c[(f, u, cur)]
            assert (
                r0["midnight_census"] + r["admissions"] + r["transfers_in"] - r["discharges"] - r["transfers_out"]
                == r["midnight_census"]
            ), (f, u, cur, r0, r)
            assert min(r.values()) >= 0


# --------------------------------------------------------------------------- hand-computed


def test_transfer_icu_to_sdu():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="ICU"),
            M("A02", "2024-01-12 14:00", unit="SDU", prior_unit="ICU"),
            M("A03", "2024-01-14 13:00", unit="SDU", discharge="2024-01-14 11:00"),
        )
    )
    #                                    9  10 11 12 13 14 15 16
    assert series(c, "ICU", "midnight_census") == [0, 1, 1, 0, 0, 0, 0, 0]
    assert series(c, "SDU", "midnight_census") == [0, 0, 0, 1, 1, 0, 0, 0]
    assert series(c, "ICU", "admissions") == [0, 1, 0, 0, 0, 0, 0, 0]
    assert series(c, "ICU", "transfers_out") == [0, 0, 0, 1, 0, 0, 0, 0]
    assert series(c, "SDU", "transfers_in") == [0, 0, 0, 1, 0, 0, 0, 0]
    assert series(c, "SDU", "discharges") == [0, 0, 0, 0, 0, 1, 0, 0]
    assert series(c, "ICU", "patient_days") == [0, 1, 1, 0, 0, 0, 0, 0]
    assert series(c, "SDU", "patient_days") == [0, 0, 0, 1, 1, 0, 0, 0]
    assert sum(r["patient_days"] for r in c.values()) == 4  # 10th..13th; discharge day not counted
    assert_balanced(c)


def test_same_day_stay_counts_one_day_in_last_unit():
    c = census(
        receipts(
            M("A01", "2024-01-11 08:00", unit="ICU", visit="V1"),
            M("A02", "2024-01-11 12:00", unit="SDU", visit="V1"),
            M("A03", "2024-01-11 18:00", unit="SDU", visit="V1"),
            M("A01", "2024-01-12 09:00", unit="MS5", visit="V2"),
            M("A03", "2024-01-12 15:00", unit="MS5", visit="V2"),
        )
    )
    assert row(c, "ICU", day(11)) == dict(
        midnight_census=0, admissions=1, discharges=0, transfers_in=0, transfers_out=1, patient_days=0
    )
    assert row(c, "SDU", day(11)) == dict(
        midnight_census=0, admissions=0, discharges=1, transfers_in=1, transfers_out=0, patient_days=1
    )
    assert row(c, "MS5", day(12)) == dict(
        midnight_census=0, admissions=1, discharges=1, transfers_in=0, transfers_out=0, patient_days=1
    )
    assert_balanced(c)


def test_bed_move_within_unit_is_not_a_transfer():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="MS5", room="501", bed="A"),
            M("A02", "2024-01-11 10:00", unit="MS5", room="507", bed="B", prior_unit="MS5"),
        )
    )
    assert series(c, "MS5", "transfers_in") == [0] * 8 and series(c, "MS5", "transfers_out") == [0] * 8
    assert series(c, "MS5", "midnight_census") == [0, 1, 1, 1, 1, 1, 1, 1]


def test_a11_cancels_the_admission():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="ICU"),
            M("A11", "2024-01-10 10:40", unit="ICU"),
        )
    )
    assert all(v == 0 for r in c.values() for v in r.values())


def test_a11_voids_only_the_latest_admission():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="ICU"),
            M("A01", "2024-01-10 10:30", unit="MS5"),  # re-admitted to the wrong unit ...
            M("A11", "2024-01-10 10:40", unit="MS5"),  # ... and that is cancelled
        )
    )
    assert series(c, "ICU", "midnight_census")[:3] == [0, 1, 1]
    assert series(c, "MS5", "midnight_census") == [0] * 8
    assert series(c, "ICU", "admissions")[1] == 1 and series(c, "MS5", "admissions") == [0] * 8


def test_a11_of_a04_registration_and_orphan_cancels():
    c = census(
        receipts(
            M("A11", "2024-01-10 07:00", unit="ED", visit="V9"),  # orphan: nothing to void yet
            M("A04", "2024-01-10 08:00", unit="ED", patient_class="E", visit="V9"),
            M("A11", "2024-01-10 08:20", unit="ED", visit="V9"),
            M("A06", "2024-01-10 09:00", unit="ICU", visit="V9"),  # still converts (A04 voided)
            M("A12", "2024-01-10 09:30", unit="ICU", visit="V9"),  # orphan: no A02
            M("A13", "2024-01-10 09:40", unit="ICU", visit="V9"),  # orphan: no A03
        )
    )
    assert series(c, "ICU", "midnight_census")[:3] == [0, 1, 1]
    assert row(c, "ICU", day(10))["admissions"] == 1


def test_a12_puts_the_patient_back():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="ICU"),
            M("A02", "2024-01-11 09:00", unit="SDU", prior_unit="ICU"),
            M("A12", "2024-01-11 10:00", unit="ICU", prior_unit="SDU"),
        )
    )
    assert series(c, "ICU", "midnight_census") == [0, 1, 1, 1, 1, 1, 1, 1]
    assert series(c, "SDU", "midnight_census") == [0] * 8
    assert sum(r["transfers_in"] + r["transfers_out"] for r in c.values()) == 0


def test_a13_keeps_the_patient_until_the_real_discharge():
    c = census(
        receipts(
            M("A01", "2024-01-10 10:00", unit="MS5"),
            M("A03", "2024-01-12 11:00", unit="MS5", discharge="2024-01-12 11:00"),
            M("A13", "2024-01-12 13:00", unit="MS5"),
            M("A03", "2024-01-13 10:00", unit="MS5", discharge="2024-01-13 10:00"),
        )
    )
    assert series(c, "MS5", "midnight_census") == [0, 1, 1, 1, 0, 0, 0, 0]
    assert series(c, "MS5", "discharges") == [0, 0, 0, 0, 1, 0, 0, 0]
    assert_balanced(c)


def test_late_message_changes_an_earlier_day():
    on_time = receipts(M("A01", "2024-01-10 10:00", unit="ICU", visit="V1"), received=day(10), file="d10.hl7")
    late = receipts(
        M("A02", "2024-01-11 15:00", unit="SDU", prior_unit="ICU", visit="V1"), received=day(13), file="d13.hl7"
    )
    before = census(on_time)
    after = census(on_time + late)
    assert row(before, "ICU", day(11))["midnight_census"] == 1
    assert row(after, "ICU", day(11))["midnight_census"] == 0
    assert row(after, "SDU", day(11))["midnight_census"] == 1
    assert row(after, "SDU", day(11))["transfers_in"] == 1
    assert_balanced(after)


def test_late_event_sorts_by_event_time_not_receipt():
    # the discharge arrives first (day 12 file), the transfer before it arrives late (day 13 file)
    stream = (
        receipts(M("A01", "2024-01-10 10:00", unit="ICU"), received=day(10))
        + receipts(M("A03", "2024-01-12 11:00", unit="SDU"), received=day(12))
        + receipts(M("A02", "2024-01-11 09:00", unit="SDU", prior_unit="ICU"), received=day(13))
    )
    c = census(stream)
    assert series(c, "ICU", "midnight_census") == [0, 1, 0, 0, 0, 0, 0, 0]
    assert series(c, "SDU", "midnight_census") == [0, 0, 1, 0, 0, 0, 0, 0]
    assert row(c, "SDU", day(12))["discharges"] == 1


def test_duplicate_is_loaded_once():
    admit = M("A01", "2024-01-10 10:00", unit="ICU", control_id="DUP1")
    cancel = M("A11", "2024-01-10 11:00", unit="ICU", control_id="C2")
    # re-sent in a later file; were it kept, the A11 would void the copy and leave the original
    stream = receipts(admit, received=day(10), file="a.hl7") + receipts(admit, cancel, received=day(10), file="b.hl7")
    c = census(stream)
    assert all(v == 0 for r in c.values() for v in r.values())


def test_same_control_id_from_another_facility_is_not_a_duplicate():
    a = M("A01", "2024-01-10 10:00", unit="ICU", control_id="X", facility="NGH", visit="V1")
    b = M("A01", "2024-01-10 10:00", unit="ICU", control_id="X", facility="SGH", visit="V1")
    c = census(receipts(a, b), units=[("NGH", "ICU"), ("SGH", "ICU")])
    assert c[("NGH", "ICU", day(10))]["midnight_census"] == 1
    assert c[("SGH", "ICU", day(10))]["midnight_census"] == 1


def test_midnight_boundaries():
    c = census(
        receipts(
            # admitted exactly at midnight starting the 11th: not in the 10th's census
            M("A01", "2024-01-11 00:00", unit="ICU", visit="V1"),
            # discharged exactly at midnight starting the 13th: still in the 12th's census
            M("A03", "2024-01-13 00:00", unit="ICU", visit="V1"),
            # transfer exactly at midnight starting the 12th: counted in the old unit for the 11th
            M("A01", "2024-01-10 09:00", unit="MS5", visit="V2"),
            M("A02", "2024-01-12 00:00", unit="SDU", prior_unit="MS5", visit="V2"),
            # discharged one minute before midnight, admitted the same day: one patient day, no census
            M("A01", "2024-01-14 00:01", unit="SDU", visit="V3"),
            M("A03", "2024-01-14 23:59", unit="SDU", visit="V3"),
        )
    )
    assert series(c, "ICU", "midnight_census") == [0, 0, 1, 1, 0, 0, 0, 0]
    assert row(c, "ICU", day(11))["admissions"] == 1 and row(c, "ICU", day(13))["discharges"] == 1
    assert series(c, "MS5", "midnight_census") == [0, 1, 1, 0, 0, 0, 0, 0]
    assert row(c, "MS5", day(12))["transfers_out"] == 1 and row(c, "SDU", day(12))["transfers_in"] == 1
    assert row(c, "SDU", day(14)) == dict(
        midnight_census=1, admissions=1, discharges=1, transfers_in=0, transfers_out=0, patient_days=2
    )
    assert_balanced(c)


def test_discharge_time_pv1_45_and_utc_offsets():
    c = census(
        receipts(
            M("A01", datetime(2024, 1, 10, 18, 0, tzinfo=timezone.utc), unit="ICU"),  # 10:00 local
            # recorded after midnight, but PV1-45 says 23:30 local on the 11th (07:30Z on the 12th)
            M("A03", "2024-01-12 01:00", unit="ICU", discharge=datetime(2024, 1, 12, 7, 30, tzinfo=timezone.utc)),
        )
    )
    assert series(c, "ICU", "midnight_census") == [0, 1, 0, 0, 0, 0, 0, 0]
    assert row(c, "ICU", day(11))["discharges"] == 1


def test_observation_and_conversions():
    c = census(
        receipts(
            # observation stay: never inpatient
            M("A04", "2024-01-10 10:00", unit="MS5", patient_class="O", patient_type="OBS", visit="O1"),
            M("A03", "2024-01-11 12:00", unit="MS5", patient_class="O", patient_type="OBS", visit="O1"),
            # observation converted to inpatient (A06) in the same bed: admission on the 11th
            M("A01", "2024-01-10 10:00", unit="MS5", patient_class="O", patient_type="OBS", visit="O2"),
            M("A06", "2024-01-11 09:00", unit="MS5", patient_class="I", visit="O2"),
            # inpatient converted to observation (A07): a discharge on the 13th
            M("A07", "2024-01-13 10:00", unit="MS5", patient_class="O", patient_type="OBS", visit="O2"),
            M("A03", "2024-01-13 20:00", unit="MS5", patient_class="O", patient_type="OBS", visit="O2"),
            # ED visit converted to inpatient ICU
            M("A04", "2024-01-12 22:00", unit="ED", patient_class="E", visit="E1"),
            M("A06", "2024-01-13 03:00", unit="ICU", patient_class="I", prior_unit="ED", visit="E1"),
            # class I but PV1-18 OBS is observation
            M("A01", "2024-01-12 10:00", unit="SDU", patient_class="I", patient_type="OBS", visit="O3"),
        )
    )
    assert series(c, "MS5", "midnight_census") == [0, 0, 1, 1, 0, 0, 0, 0]
    assert series(c, "MS5", "admissions") == [0, 0, 1, 0, 0, 0, 0, 0]
    assert series(c, "MS5", "discharges") == [0, 0, 0, 0, 1, 0, 0, 0]
    assert row(c, "ICU", day(13))["admissions"] == 1 and row(c, "ICU", day(13))["midnight_census"] == 1
    assert series(c, "ED", "midnight_census") == [0] * 8
    assert series(c, "SDU", "midnight_census") == [0] * 8
    assert_balanced(c)


def test_a06_without_unit_keeps_location_and_a08_has_no_effect():
    c = census(
        receipts(
            M("A04", "2024-01-10 10:00", unit="MS5", patient_class="O"),
            M("A06", "2024-01-10 12:00", unit=None, room=None, bed=None, patient_class="I"),
            M("A08", "2024-01-10 13:00", unit="ICU", patient_class="O"),
        )
    )
    assert series(c, "MS5", "midnight_census")[:3] == [0, 1, 1]
    assert series(c, "ICU", "midnight_census") == [0] * 8


def test_output_zero_fills_and_adds_units_seen():
    c = census(receipts(M("A01", "2024-01-10 10:00", unit="PSY")), start=day(10), end=day(12), units=[("NGH", "ICU")])
    assert set(c) == {(f, u, day(n)) for f, u in [("NGH", "ICU"), ("NGH", "PSY")] for n in (10, 11, 12)}
    assert all(set(r) == set(MEASURES) for r in c.values())
    assert c[("NGH", "ICU", day(11))]["midnight_census"] == 0 and c[("NGH", "PSY", day(11))]["midnight_census"] == 1


def test_stay_started_before_the_window_is_counted():
    c = census(receipts(M("A01", "2024-01-01 10:00", unit="ICU")), start=day(10), end=day(11))
    assert c[("NGH", "ICU", day(10))]["midnight_census"] == 1
    assert c[("NGH", "ICU", day(10))]["admissions"] == 0


# --------------------------------------------------------------------------- properties

P_UNITS = ("ICU", "SDU", "MS5", "ED")
P_CLASSES = (("I", None), ("E", None), ("O", "OBS"), ("O", None), ("I", "OBS"))
BASE = datetime(2024, 3, 8, 0, 0)  # spans the DST change on 2024-03-10

event_st = st.tuples(
    st.sampled_from(("A01", "A02", "A03", "A04", "A06", "A07", "A08", "A11", "A12", "A13")),
    st.integers(0, 60 * 24 * 5),  # minutes after BASE
    st.sampled_from(P_UNITS),
    st.sampled_from(P_CLASSES),
    st.one_of(st.none(), st.integers(-600, 600)),  # PV1-45 relative to the event (A03 only)
)
streams = st.lists(st.lists(event_st, max_size=8), max_size=6)


def _msgs(encounters) -> list:
    out = []
    for k, evs in enumerate(encounters):
        for ev, minute, unit, (pc, pt), dis in evs:
            t = ts((BASE + timedelta(minutes=minute)).isoformat())
            discharge = t + timedelta(minutes=dis) if (ev == "A03" and dis is not None) else None
            out.append(M(ev, t, unit=unit, patient_class=pc, patient_type=pt, visit=f"V{k}", discharge=discharge))
    return out


P_START, P_END = BASE.date() - timedelta(days=2), BASE.date() + timedelta(days=7)


@settings(max_examples=200, deadline=None)
@given(streams, st.data())
def test_property_nonnegative_and_balanced(encounters, data):
    msgs = _msgs(encounters)
    order = data.draw(st.permutations(msgs)) if msgs else []
    c = compute_census(receipts(*order), P_START, P_END, [("NGH", u) for u in P_UNITS])
    assert_balanced(c)
    for r in c.values():
        assert r["patient_days"] >= r["midnight_census"] >= 0


CANCEL_OF = {"A01": "A11", "A04": "A11", "A02": "A12", "A03": "A13"}


@settings(max_examples=200, deadline=None)
@given(streams, st.data())
def test_property_cancel_restores_state(encounters, data):
    msgs = _msgs(encounters)
    order = list(data.draw(st.permutations(msgs))) if msgs else []
    kind = data.draw(st.sampled_from(sorted(CANCEL_OF)))
    enc = data.draw(st.integers(0, max(0, len(encounters) - 1)))
    minute = data.draw(st.integers(0, 60 * 24 * 5))
    unit = data.draw(st.sampled_from(P_UNITS))
    t = ts((BASE + timedelta(minutes=minute)).isoformat())
    ev = M(kind, t, unit=unit, visit=f"V{enc}", discharge=t if kind == "A03" else None)
    cancel = M(CANCEL_OF[kind], t + timedelta(minutes=30), unit=unit, visit=f"V{enc}")
    pos = data.draw(st.integers(0, len(order)))
    with_pair = order[:pos] + [ev, cancel] + order[pos:]
    units = [("NGH", u) for u in P_UNITS]
    assert compute_census(receipts(*with_pair), P_START, P_END, units) == compute_census(
        receipts(*order), P_START, P_END, units
    )
