"""The workforce history (type 2, from the HR export's daily snapshots) built night by
night, incrementally, while the snapshot days arrive out of order, a day is delivered
again with a correction and a night brings nothing: after every build the history
equals the one the definition gives for the days delivered so far
(docs/definitions.md#workforce-history), computed here in Python from the same
snapshots, and at the end a build from nothing (--full-refresh) gives the same rows."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.db

D1, D2, D3, D4 = (date(2026, 3, d) for d in (1, 2, 3, 4))
MODELS = "+int_hr__worker_history +int_hr__credential_history"
EMP, CON = ("EMPLOYEE", "RN", "6010"), ("CONTRACT", "RN", "6010")


def workers(day: date, w3_on_d2: bool = False) -> dict[str, tuple]:
    """worker_id -> (worker_type, job_code, home_cost_center) in ``day``'s snapshot."""
    out = {"W1": EMP, "W2": CON if day >= D3 else EMP}
    if day != D2 or w3_on_d2:  # W3 is missing from the first delivery of D2
        out["W3"] = EMP
    if day >= D4:
        out["W4"] = EMP  # hired
    return out


def licences(day: date) -> dict[tuple, tuple]:
    """(worker_id, type, number) -> (issue, expiry, verified): W1's licence is verified from D2."""
    return {("W1", "RN", "RN 1"): (date(2025, 1, 1), date(2027, 1, 31), date(2026, 3, 2) if day >= D2 else None)}


def deliver(url: str, day: date, w3_on_d2: bool = False) -> None:
    """One day's workers and credentials files, as the HR loader writes them (a new batch each)."""
    with connect(url) as conn:
        batch = uuid.uuid4()
        with conn.cursor().copy(
            "copy raw.hr_workers (batch_id, snapshot_date, file_path, record_index, worker_id, hire_date, worker_type,"
            " job_code, home_cost_center, standard_hours_per_week, status) from stdin"
        ) as copy:
            for i, (w, attrs) in enumerate(workers(day, w3_on_d2).items(), 1):
                copy.write_row((batch, day, f"hr/{day}/workers.csv", i, w, date(2020, 1, 1), *attrs, 36, "ACTIVE"))
        batch = uuid.uuid4()
        with conn.cursor().copy(
            "copy raw.hr_credentials (batch_id, snapshot_date, file_path, record_index, worker_id, credential_type,"
            " credential_number, issuing_state, issue_date, expiry_date, verified_date) from stdin"
        ) as copy:
            for i, (key, dates) in enumerate(licences(day).items(), 1):
                copy.write_row((batch, day, f"hr/{day}/credentials.csv", i, *key, "CA", *dates))


def expected(snapshots: dict[date, dict]) -> set[tuple]:
    """The history by the definition: per key, runs of consecutive snapshot days present
    with the same attributes, valid from the run's first day to the next snapshot day
    (None: still in force)."""
    days = sorted(snapshots)
    out, open_ = set(), {}  # key -> (version_no, attrs, valid_from)
    versions: dict = {}
    for day in days:
        snap = snapshots[day]
        for key in list(open_):
            if key not in snap or snap[key] != open_[key][1]:
                out.add((key, *open_.pop(key), day))
        for key, attrs in snap.items():
            if key not in open_:
                versions[key] = versions.get(key, 0) + 1
                open_[key] = (versions[key], attrs, day)
    out |= {(key, *v, None) for key, v in open_.items()}
    return out


def history(url: str) -> tuple[set, set]:
    with connect(url) as conn:
        w = {
            (r[0], r[1], tuple(r[2:5]), r[5], r[6])
            for r in conn.execute(
                """select worker_id, version_no, worker_type, job_code, home_cost_center, valid_from, valid_to
                   from intermediate.int_hr__worker_history"""
            )
        }
        c = {
            (tuple(r[0:3]), r[3], tuple(r[4:7]), r[7], r[8])
            for r in conn.execute(
                """select worker_id, credential_type, credential_number, version_no, issue_date, expiry_date,
                          verified_date, valid_from, valid_to
                   from intermediate.int_hr__credential_history"""
            )
        }
    return w, c


def test_history_built_night_by_night_out_of_order_equals_the_definition(warehouse_url):
    url = warehouse_url
    delivered: dict[date, bool] = {}  # day -> W3 present on D2 (the day's newest delivery)
    nights = [(D3, False), (D1, False), None, (D4, False), (D2, False), (D2, True)]  # None: nothing delivered
    for step in nights:
        if step:
            deliver(url, *step)
            delivered[step[0]] = step[1]
        run_dbt(["run", "--quiet", "--select", MODELS], url, capture=True)
        want_w = expected({d: workers(d, f) for d, f in delivered.items()})
        want_c = expected({d: licences(d) for d in delivered})
        assert history(url) == (want_w, want_c), f"after {step}"

    # the end, by hand: W2 became a contract RN on D3; W3's gap was the first D2 delivery's
    # (corrected): one version; W4 from D4; W1's licence verified from D2
    w, c = history(url)
    assert w == {
        ("W1", 1, EMP, D1, None),
        ("W2", 1, EMP, D1, D3),
        ("W2", 2, CON, D3, None),
        ("W3", 1, EMP, D1, None),
        ("W4", 1, EMP, D4, None),
    }
    lic = ("W1", "RN", "RN 1")
    assert c == {
        (lic, 1, (date(2025, 1, 1), date(2027, 1, 31), None), D1, D2),
        (lic, 2, (date(2025, 1, 1), date(2027, 1, 31), D2), D2, None),
    }
    with connect(url) as conn:  # the changes: a 'day' row per snapshot day, each built once
        days = conn.execute(
            """select snapshot_date, count(*) from intermediate.int_hr__worker_changes
               where change_kind = 'day' group by 1"""
        ).fetchall()
    assert sorted(days) == [(d, 1) for d in (D1, D2, D3, D4)]

    run_dbt(["run", "--quiet", "--full-refresh", "--select", MODELS], url, capture=True)
    assert history(url) == (w, c)
