"""The HR export's parser (healthops.sources.hr.parser) on hand-written CSV text: what
loads, what is rejected with which reason, what counts as a duplicate; counts always
reconcile. Pure parsing: no database."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from healthops.sources.hr.parser import parse_csv
from healthops.sources.hr.spec import FILES

TZ = "America/Los_Angeles"
WORKERS = (
    "worker_id,last_name,first_name,birth_date,hire_date,termination_date,worker_type,job_code,"
    "home_cost_center,standard_hours_per_week,status,last_modified"
)


def worker(wid="W1", **over) -> str:
    row = {
        "worker_id": wid,
        "last_name": "Doe",
        "first_name": "Jane",
        "birth_date": "1980-01-31",
        "hire_date": "2020-06-01",
        "termination_date": "",
        "worker_type": "EMPLOYEE",
        "job_code": "RN1",
        "home_cost_center": "6010",
        "standard_hours_per_week": "36",
        "status": "ACTIVE",
        "last_modified": "2026-03-01T10:00:00",
    }
    row.update(over)
    return ",".join(row[c] for c in WORKERS.split(","))


def parse(name: str, *lines: str):
    p = parse_csv(name, ("\r\n".join(lines) + "\r\n").encode(), TZ)
    assert p.records_in == len(p.records) + len(p.rejected) + p.duplicates
    return p


def reasons(p) -> dict[int, str]:
    return {r.record_index: r.reason for r in p.rejected}


def category(reason: str) -> str:
    return reason.split(":", 1)[0]


def test_a_good_worker_is_typed_and_naive_times_are_facility_time():
    p = parse("workers.csv", WORKERS, worker(), worker("W2", last_modified="2026-03-01T18:00:00Z"))
    assert [r.record_index for r in p.records] == [1, 2] and not p.rejected
    values = dict(zip(FILES["workers.csv"].column_names, p.records[0].values))
    assert values["birth_date"] == date(1980, 1, 31) and values["termination_date"] is None
    assert values["standard_hours_per_week"] == Decimal("36")
    assert values["last_modified"] == datetime(2026, 3, 1, 10, tzinfo=ZoneInfo(TZ))
    assert dict(zip(FILES["workers.csv"].column_names, p.records[1].values))["last_modified"] == datetime(
        2026, 3, 1, 18, tzinfo=timezone.utc
    )
    assert p.records[0].raw_text == worker()


def test_rfc4180_quoting_keeps_commas_quotes_and_line_breaks_and_the_original_text():
    quoted = worker(last_name='"O\'Brien, ""Jr"""', first_name='"Ann\r\nMarie"')
    p = parse("workers.csv", WORKERS, quoted)
    values = dict(zip(FILES["workers.csv"].column_names, p.records[0].values))
    assert values["last_name"] == 'O\'Brien, "Jr"' and values["first_name"] == "Ann\r\nMarie"
    assert p.records[0].raw_text == quoted


@pytest.mark.parametrize(
    "over, expected",
    [
        ({"hire_date": "2020-02-30"}, "unparseable date: hire_date '2020-02-30' is not a date YYYY-MM-DD"),
        ({"hire_date": "06/01/2020"}, "unparseable date: hire_date '06/01/2020' is not a date YYYY-MM-DD"),
        ({"hire_date": "20200601"}, "unparseable date: hire_date '20200601' is not a date YYYY-MM-DD"),
        ({"birth_date": "1980-13-01"}, "unparseable date: birth_date is not a date YYYY-MM-DD"),
        ({"last_modified": "yesterday"}, "unparseable timestamp"),
        ({"worker_type": "TEMP"}, "invalid worker_type: 'TEMP' is not one of EMPLOYEE, CONTRACT"),
        ({"worker_type": "employee"}, "invalid worker_type"),
        ({"status": "RETIRED"}, "invalid status: 'RETIRED' is not one of ACTIVE, LEAVE, TERMINATED"),
        ({"standard_hours_per_week": "forty"}, "unparseable number: standard_hours_per_week 'forty'"),
        ({"standard_hours_per_week": "36.125"}, "number out of range"),
        ({"standard_hours_per_week": "1000"}, "number out of range"),
        ({"standard_hours_per_week": "-1"}, "number out of range"),
        ({"job_code": ""}, "missing field: job_code is empty"),
        ({"worker_id": " "}, "missing field: worker_id is empty"),
    ],
)
def test_a_field_outside_the_spec_rejects_its_record_only(over, expected):
    p = parse("workers.csv", WORKERS, worker("W1", **over), worker("W2"))
    assert reasons(p)[1].startswith(expected) and [r.record_index for r in p.records] == [2]


def test_a_reason_never_quotes_a_name_or_a_birth_date():
    p = parse("workers.csv", WORKERS, worker(birth_date="31/01/1980", last_name="Zyx", status="X"))
    assert "31/01/1980" not in reasons(p)[1] and "Zyx" not in reasons(p)[1]
    p = parse("workers.csv", WORKERS, worker(birth_date="31/01/1980"))
    assert category(reasons(p)[1]) == "unparseable date" and "1980" not in reasons(p)[1]


def test_empty_optional_fields_are_null():
    p = parse("workers.csv", WORKERS, worker(last_name="", first_name="", birth_date="", last_modified=""))
    values = dict(zip(FILES["workers.csv"].column_names, p.records[0].values))
    assert values["last_name"] is None and values["birth_date"] is None and values["last_modified"] is None


def test_a_missing_column_rejects_every_record_and_extra_columns_are_ignored():
    header = WORKERS.replace(",termination_date", "")
    p = parse("workers.csv", header, "W1,a", "W2,b,c")
    assert not p.records and p.records_in == 2
    assert set(reasons(p).values()) == {"missing column: workers.csv has no column termination_date"}
    p = parse("positions.csv", "cost_center,note,job_code,budgeted_fte,effective_date", "6010,x,RN1,12.5,2026-01-01")
    assert p.extra_columns == ["note"] and p.records[0].values == ("6010", "RN1", Decimal("12.5"), date(2026, 1, 1))


def test_the_wrong_field_count_is_rejected_with_the_worker_id_when_readable():
    p = parse("workers.csv", WORKERS, worker() + ",extra", "W9,Doe")
    assert category(reasons(p)[1]) == category(reasons(p)[2]) == "wrong field count"
    assert [r.control_id for r in p.rejected] == ["W1", "W9"]


def test_an_exact_repeat_loads_once_and_other_content_under_the_same_key_rejects_every_copy():
    p = parse(
        "workers.csv",
        WORKERS,
        worker("W1"),
        worker("W1"),
        worker("W2"),
        worker("W2", job_code="RN2"),
        worker("W2"),
        worker("W3"),
    )
    assert [r.record_index for r in p.records] == [1, 6] and p.duplicates == 1
    assert set(reasons(p)) == {3, 4, 5}
    assert reasons(p)[3] == (
        "duplicate worker id: worker_id 'W2' appears 3 times in workers.csv with different content; "
        "none of the copies is loaded"
    )


def test_a_copy_that_is_itself_invalid_still_makes_the_key_ambiguous():
    p = parse("workers.csv", WORKERS, worker("W1"), worker("W1", hire_date="bad"))
    assert not p.records and category(reasons(p)[1]) == "duplicate worker id"
    assert category(reasons(p)[2]) == "unparseable date"


@pytest.mark.parametrize(
    "name, header, good, bad, expected",
    [
        (
            "credentials.csv",
            "worker_id,credential_type,credential_number,issuing_state,issue_date,expiry_date,verified_date",
            "W1,RN,RN123,CA,2020-01-01,2027-01-01,",
            "W1,NP,NP9,CA,2020-01-01,,",
            "invalid credential_type",
        ),
        (
            "training.csv",
            "worker_id,course_code,completed_date",
            "W1,HIPAA_PRIVACY,2026-01-05",
            "W1,X,",
            "missing field",
        ),
        (
            "exclusion_screening.csv",
            "worker_id,screened_date,list,result",
            "W1,2026-02-01,OIG_LEIE,CLEAR",
            "W1,2026-02-01,SAM,MAYBE",
            "invalid result",
        ),
        (
            "positions.csv",
            "cost_center,job_code,budgeted_fte,effective_date",
            "6010,RN1,12.50,2026-01-01",
            "6010,RN2,1 2,2026-01-01",
            "unparseable number",
        ),
    ],
)
def test_every_file_checks_its_columns(name, header, good, bad, expected):
    p = parse(name, header, good, bad)
    assert len(p.records) == 1 and category(reasons(p)[2]) == expected
    assert p.rejected[0].control_id == ("6010/RN2" if name == "positions.csv" else "W1")


def test_position_keys_and_duplicates():
    header = "cost_center,job_code,budgeted_fte,effective_date"
    p = parse("positions.csv", header, "6010,RN1,12,2026-01-01", "6010,RN1,13,2026-01-01", "6010,RN1,12,2025-07-01")
    assert [r.record_index for r in p.records] == [3]
    assert category(reasons(p)[1]) == "duplicate position" and p.rejected[0].control_id == "6010/RN1"


def test_bytes_that_are_not_utf8_a_nul_and_broken_quoting_reject_the_record_storably():
    data = (WORKERS + "\n" + worker("W1", last_name="D\xe9") + "\n").encode("latin-1")
    data += (worker("W2", last_name="a\x00b") + "\n").encode() + b'W3,"open\n'
    p = parse_csv("workers.csv", data, TZ)
    assert p.records_in == 3 and not p.records
    assert [category(r.reason) for r in p.rejected] == ["invalid UTF-8", "NUL character", "malformed CSV"]
    assert "\\xe9" in p.rejected[0].raw_text and "\\x00" in p.rejected[1].raw_text
    assert all("\x00" not in r.raw_text for r in p.rejected)


def test_a_bom_blank_lines_and_an_empty_file():
    p = parse_csv("training.csv", b"\xef\xbb\xbfworker_id,course_code,completed_date\n\nW1,EDU,2026-01-02\n\n", TZ)
    assert p.records_in == 1 and len(p.records) == 1
    assert parse_csv("training.csv", b"", TZ).records_in == 0
