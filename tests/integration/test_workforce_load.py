"""The workforce sources' loaders on a real PostgreSQL, as the loader role: an HR day
with every kind of bad input (a file without a required column, a worker id reused for
other content, an exact repeat, an unparseable date, a value outside the spec's list,
a wrong field count, a CSV that is none of the export's files, a file still being
written), then the same day again and the next day; and the timekeeping extract from a
stand-in for the vendor's database (``SOURCE_DDL``) over three nights: edits, a
soft-delete, a late commit inside the overlap window, an invalid row, rows updated
after the night's end. Exact counts per batch, the reasons' categories, in = loaded +
rejected + duplicate, and a re-run changes nothing."""

from __future__ import annotations

from datetime import date, datetime, timezone

import psycopg
import pytest
from warehouse_checksums import checksums

from healthops import pipeline
from healthops.load.timekeeping import extract_timekeeping
from healthops.sources.timekeeping.schema import SOURCE_DDL
from healthops.warehouse.connection import connect, libpq_url

D1, D2 = date(2026, 3, 2), date(2026, 3, 3)
RAW = (
    "raw.hr_workers",
    "raw.hr_credentials",
    "raw.hr_training",
    "raw.hr_exclusion_screening",
    "raw.hr_positions",
    "raw.tk_punches",
    "raw.tk_pay_lines",
    "raw.rejected",
    "audit.load_batches",
    "audit.refused_files",
)
WORKERS_HEADER = (
    "worker_id,last_name,first_name,birth_date,hire_date,termination_date,worker_type,job_code,"
    "home_cost_center,standard_hours_per_week,status,last_modified"
)


def w(wid: str, birth: str = "1980-01-31", wtype: str = "EMPLOYEE", job: str = "RN1", last: str = "Doe") -> str:
    return f"{wid},{last},Jane,{birth},2020-06-01,,{wtype},{job},6010,36,ACTIVE,2026-03-01T10:00:00"


HR_DAY = {
    "workers.csv": [
        WORKERS_HEADER,
        w("W001"),
        w("W002", birth="1980-13-45"),  # unparseable date (a birth date: never quoted)
        w("W003", wtype="TEMP"),  # outside the spec's list
        "W004,Doe,Jane,1980-01-31,2020-06-01",  # wrong field count
        w("W005"),
        w("W005"),  # an exact repeat: a duplicate
        w("W006", job="RN1"),
        w("W006", job="RN2"),  # the same worker id with other content: both rejected
        w("W007", last='"O\'Brien, Jr"'),
    ],
    "credentials.csv": [  # no verified_date column: every record rejected
        "worker_id,credential_type,credential_number,issuing_state,issue_date,expiry_date",
        "W001,RN,RN1001,CA,2020-01-01,2027-01-01",
        "W005,BLS,B55,CA,2025-01-01,2027-01-01",
    ],
    "training.csv": ["worker_id,course_code,completed_date", "W001,HIPAA_PRIVACY,2026-01-05", "W005,EDU,2026-02-01"],
    "exclusion_screening.csv": [
        "worker_id,screened_date,list,result",
        "W001,2026-03-01,OIG_LEIE,CLEAR",
        "W001,2026-03-01,SAM,CLEAR",
        "W005,2026-03-01,SAM,MAYBE",
    ],
    "positions.csv": [
        "cost_center,job_code,budgeted_fte,effective_date,note",  # an extra column: ignored
        "6010,RN1,24.5,2025-07-01,x",
        "6010,CNA,8,2025-07-01,",
    ],
}
# file -> (in, loaded, rejected, duplicate)
HR_COUNTS = {
    "workers.csv": (9, 3, 5, 1),
    "credentials.csv": (2, 0, 2, 0),
    "training.csv": (2, 2, 0, 0),
    "exclusion_screening.csv": (3, 2, 1, 0),
    "positions.csv": (2, 2, 0, 0),
}


def write_day(landing, d: date, files: dict[str, list[str]]):
    folder = landing / "hr" / d.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return folder


def counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in RAW}


def batches(url: str, source: str) -> dict[tuple[str, date], tuple[int, int, int, int]]:
    with connect(url) as conn:
        rows = conn.execute(
            """select file_path, received_date, records_in, records_loaded, records_rejected, records_duplicate
               from audit.load_batches where source = %s""",
            (source,),
        ).fetchall()
    return {(p, d): tuple(c) for p, d, *c in rows}


def test_an_hr_day_with_bad_input_loads_the_rest_rejects_with_reasons_and_reruns_change_nothing(warehouse_url):
    from healthops import config

    landing = config.landing()
    folder = write_day(landing, D1, HR_DAY)
    (folder / "payroll.csv").write_text("a,b\n1,2\n")  # none of the export's files: refused
    (folder / "workers.csv.tmp").write_text(WORKERS_HEADER + "\n" + w("W999") + "\n")  # being written: left
    (folder / "README.txt").write_text("not a CSV: not the source's")

    result = pipeline.load_hr(D1, dag_run_id="run-1", url=warehouse_url)  # as the loader role
    assert result["files_loaded"] == 5 and result["files_refused"] == 1
    assert result["refused"][0]["file"] == f"hr/{D1}/payroll.csv" and result["refused"][0]["kind"] == "unknown_file"
    assert batches(warehouse_url, "hr") == {(f"hr/{D1}/{n}", D1): c for n, c in HR_COUNTS.items()}

    with connect(warehouse_url) as conn:
        rejected = conn.execute(
            """select file_path, message_index, control_id, reason_category, reason, raw_text from raw.rejected
               where source = 'hr' order by file_path, message_index"""
        ).fetchall()
        loaded = conn.execute("select worker_id, snapshot_date, last_name from raw.hr_workers order by 1").fetchall()
        refused = conn.execute("select file_path, kind, dag_run_id from audit.refused_files").fetchall()
        positions = conn.execute(
            "select cost_center, job_code, budgeted_fte from raw.hr_positions order by 2"
        ).fetchall()
    got = {(p.rsplit("/", 1)[1], i): (cid, cat) for p, i, cid, cat, *_ in rejected}
    assert got == {
        ("credentials.csv", 1): ("W001", "missing column"),
        ("credentials.csv", 2): ("W005", "missing column"),
        ("exclusion_screening.csv", 3): ("W005", "invalid result"),
        ("workers.csv", 2): ("W002", "unparseable date"),
        ("workers.csv", 3): ("W003", "invalid worker_type"),
        ("workers.csv", 4): ("W004", "wrong field count"),
        ("workers.csv", 7): ("W006", "duplicate worker id"),
        ("workers.csv", 8): ("W006", "duplicate worker id"),
    }
    reasons = {(p.rsplit("/", 1)[1], i): r for p, i, _, _, r, _ in rejected}
    assert reasons[("credentials.csv", 1)] == "missing column: credentials.csv has no column verified_date"
    assert "1980-13-45" not in reasons[("workers.csv", 2)] and "Doe" not in reasons[("workers.csv", 2)]
    assert [t for p, i, *_, t in rejected if i == 4 and p.endswith("workers.csv")] == [HR_DAY["workers.csv"][4]]
    assert loaded == [("W001", D1, "Doe"), ("W005", D1, "Doe"), ("W007", D1, "O'Brien, Jr")]
    assert refused == [(f"hr/{D1}/payroll.csv", "unknown_file", "run-1")]
    assert positions == [("6010", "CNA", 8), ("6010", "RN1", 24.5)]

    # The same date again: every file skipped, nothing added or changed anywhere.
    before, content = counts(warehouse_url), checksums(warehouse_url)
    again = pipeline.load_hr(D1, dag_run_id="run-2", url=warehouse_url)
    assert again["files_skipped"] == 5 and again["records_in"] == 0
    assert counts(warehouse_url) == before and checksums(warehouse_url) == content

    # The next day: positions.csv byte for byte the same is that day's snapshot, loaded.
    write_day(landing, D2, {"positions.csv": HR_DAY["positions.csv"], "training.csv": HR_DAY["training.csv"]})
    nxt = pipeline.load_hr(D2, dag_run_id="run-3", url=warehouse_url)
    assert nxt["files_loaded"] == 2 and nxt["records_loaded"] == 4 and nxt["records_duplicate"] == 0
    with connect(warehouse_url) as conn:
        by_day = conn.execute("select snapshot_date, count(*) from raw.hr_positions group by 1 order by 1").fetchall()
    assert by_day == [(D1, 2), (D2, 2)]

    # The first day's training.csv delivered again with other bytes: a new batch of that day.
    write_day(landing, D1, {"training.csv": HR_DAY["training.csv"] + ["W007,HIPAA_SECURITY,2026-03-01"]})
    redelivered = pipeline.load_hr(D1, url=warehouse_url)
    assert redelivered["files_loaded"] == 1 and redelivered["files_skipped"] == 4
    assert batches(warehouse_url, "hr")[(f"hr/{D1}/training.csv", D1)] == (3, 3, 0, 0)  # the newest of the two
    with connect(warehouse_url) as conn:
        n = conn.execute("select count(*) from audit.load_batches where file_path = %s", (f"hr/{D1}/training.csv",))
        assert n.fetchone()[0] == 2


def test_a_missing_hr_folder_loads_nothing(warehouse_url):
    result = pipeline.load_hr(D1, url=warehouse_url)
    assert result["files"] == 0 and result["files_refused"] == 0


# -- timekeeping -------------------------------------------------------------------
def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc)


T1 = utc(3, 8)  # local midnight after 2026-03-02 (America/Los_Angeles, PST)
T2 = utc(4, 8)  # local midnight after 2026-03-03


@pytest.fixture()
def vendor(make_database):
    """A stand-in for the vendor's timekeeping database, with the spec's tables."""
    url = make_database()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


def punch(conn, pid, worker="W001", ptype="IN", ts=None, cc="6010", job="RN1", source="CLOCK", upd=None, deleted=False):
    conn.execute(
        """insert into tk.punch values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (punch_id) do update set worker_id = excluded.worker_id, punch_type = excluded.punch_type,
             punch_ts = excluded.punch_ts, cost_center = excluded.cost_center, job_code = excluded.job_code,
             source = excluded.source, updated_at = excluded.updated_at, deleted = excluded.deleted""",
        (pid, worker, ptype, ts or utc(2, 15), cc, job, source, upd, deleted),
    )


def pay_line(conn, pid, code="REG", hours=8, upd=None):
    conn.execute(
        "insert into tk.pay_line values (%s, 'W001', '2026-03-02', '6010', 'RN1', %s, %s, 400, %s, false)",
        (pid, code, hours, upd),
    )


def tk_batches(url):
    return batches(url, "timekeeping")


def test_timekeeping_extracts_new_versions_once_within_the_night_and_rejects_invalid_rows_once(
    warehouse_url, vendor, monkeypatch
):
    loader = pipeline.step_url("loader", warehouse_url)
    with psycopg.connect(libpq_url(vendor), autocommit=True) as src:
        for pid, hour in ((1, 16), (2, 17), (3, 18), (4, 19)):
            punch(src, pid, ptype="IN" if pid % 2 else "OUT", upd=utc(2, hour))
        punch(src, 9, upd=utc(3, 9))  # updated after the first night's end: not read by it
        pay_line(src, 1, upd=utc(2, 16))
        pay_line(src, 2, code="OT", hours=1.5, upd=utc(2, 17))
        pay_line(src, 3, code="BONUS", upd=utc(2, 16, 30))  # not a pay code of the spec

    first = extract_timekeeping(loader, vendor, T1, dag_run_id="night-1")
    assert {
        b.file_path: (b.records_in, b.records_loaded, b.records_rejected, b.records_duplicate) for b in first.batches
    } == {
        "tk.punch": (4, 4, 0, 0),
        "tk.pay_line": (3, 2, 1, 0),
    }
    assert tk_batches(warehouse_url) == {("tk.punch", D1): (4, 4, 0, 0), ("tk.pay_line", D1): (3, 2, 1, 0)}

    with psycopg.connect(libpq_url(vendor), autocommit=True) as src:
        punch(src, 1, ts=utc(2, 15, 30), source="EDIT", upd=utc(3, 10))  # a timecard edit
        punch(src, 2, ptype="OUT", upd=utc(3, 11), deleted=True)  # soft-deleted
        punch(src, 5, upd=utc(2, 18, 30))  # committed late: inside the overlap, below the watermark
        punch(src, 6, ptype="BREAK", upd=utc(3, 12))  # not a punch type of the spec
        punch(src, 7, worker="", upd=utc(3, 12, 30))  # no worker
        punch(src, 10, upd=utc(4, 9))  # after the second night's end
    second = extract_timekeeping(loader, vendor, T2, dag_run_id="night-2")
    # window: from 19:00 - 2 h: punches 3, 4 (held), 5, 1', 2', 9 (new), 6, 7 (invalid); pay lines all held
    assert tk_batches(warehouse_url) == {
        ("tk.punch", D1): (4, 4, 0, 0),
        ("tk.pay_line", D1): (3, 2, 1, 0),
        ("tk.punch", D2): (8, 4, 2, 2),
    }
    # the pay lines read are the very versions of the first night's batch (same SHA-256): skipped
    assert [b.status for b in second.batches] == ["loaded", "skipped"]
    assert second.batches[1].batch_id == first.batches[1].batch_id

    with connect(warehouse_url) as conn:
        versions = conn.execute(
            "select punch_id, source, deleted, updated_at from raw.tk_punches order by punch_id, updated_at"
        ).fetchall()
        rejected = conn.execute(
            """select file_path, control_id, reason_category, reason, raw_text from raw.rejected
               where source = 'timekeeping' order by control_id"""
        ).fetchall()
    assert [(p, s, d) for p, s, d, _ in versions] == [
        (1, "CLOCK", False),
        (1, "EDIT", False),
        (2, "CLOCK", False),
        (2, "CLOCK", True),
        (3, "CLOCK", False),
        (4, "CLOCK", False),
        (5, "CLOCK", False),
        (9, "CLOCK", False),
    ]
    assert [(p, c, cat) for p, c, cat, *_ in rejected] == [
        ("tk.pay_line", "tk.pay_line 3 @ 2026-03-02T16:30:00+00:00", "invalid pay code"),
        ("tk.punch", "tk.punch 6 @ 2026-03-03T12:00:00+00:00", "invalid punch type"),
        ("tk.punch", "tk.punch 7 @ 2026-03-03T12:30:00+00:00", "missing field"),
    ]
    assert rejected[1][3] == "invalid punch type: 'BREAK' is not one of IN, OUT, MEAL_OUT, MEAL_IN"
    assert rejected[2][3] == "missing field: worker_id is empty"
    assert rejected[1][4].split("\t")[:3] == ["6", "W001", "BREAK"]

    # The same night again, through the pipeline: every row held, no batch, nothing changed.
    before, content = counts(warehouse_url), checksums(warehouse_url)
    monkeypatch.setenv("HEALTHOPS_TIMEKEEPING_URL", vendor)
    third = pipeline.extract_timekeeping(D2, dag_run_id="night-2-again", url=warehouse_url)
    assert third["files_loaded"] == 0 and third["records_loaded"] == third["records_rejected"] == 0
    assert third["records_duplicate"] == third["records_in"] == 5  # punches 9, 1', 2' held; 6, 7 rejected before
    assert counts(warehouse_url) == before

    # A backfill of the first night now: it reads only what was updated before its end.
    backfill = extract_timekeeping(loader, vendor, T1)
    assert all(b.status == "skipped" and b.records_loaded == 0 for b in backfill.batches)
    assert counts(warehouse_url) == before and checksums(warehouse_url) == content


def test_no_timekeeping_source_configured_is_a_warning_not_a_failure(warehouse_url, monkeypatch):
    monkeypatch.delenv("HEALTHOPS_TIMEKEEPING_URL", raising=False)  # nor an Airflow connection
    assert pipeline.extract_timekeeping(D1, url=warehouse_url) == {"skipped": "no timekeeping source configured"}
    assert counts(warehouse_url)["audit.load_batches"] == 0


def test_the_source_is_read_in_a_read_only_transaction(vendor):
    from healthops.sources.timekeeping.extract import source_snapshot

    with source_snapshot(vendor) as conn:
        assert conn.execute("show transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("insert into tk.pay_line values (1, 'W', null, null, null, null, null, null, now(), false)")
