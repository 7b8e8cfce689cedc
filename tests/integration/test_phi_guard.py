"""The PHI scan's question to the warehouse (``reporting.phi_identifier_matches``,
migration 0005) on a real PostgreSQL: it answers for the reporter, who may not read
raw, with only what was asked; it knows patients whose only message was rejected; it
finds MRNs stored with hyphens or shown after a prefix, never inside a longer number;
and a warehouse with patient data but no function is not scanned as clean."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from healthops.reports import phi
from healthops.warehouse.connection import connect

from hl7_builders import build_message

D = dt.date(2026, 11, 2)
FUNCTION = "reporting.phi_identifier_matches(%s::text[], %s::date[])"


def add_patient(conn, mrn: str, name: str = "DOE^JANE", birth: dt.date = dt.date(1980, 1, 1)) -> None:
    conn.execute(
        """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
               sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn,
               patient_name, birth_date, raw_text)
           values (%s, %s, 'x.hl7', 1, %s, 'NGH', 'ADT', 'A01', now(), now(), 'V1', %s, %s, %s, 'MSH|...')""",
        (uuid.uuid4(), D, uuid.uuid4().hex[:8], mrn, name, birth),
    )


def add_rejected(conn, raw_text: str, reason: str = "PV1-19 visit number missing") -> None:
    conn.execute(
        """insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason, raw_text)
           values (%s, 'adt', %s, 'x.hl7', 1, %s, %s)""",
        (uuid.uuid4(), D, reason, raw_text),
    )


@pytest.fixture
def patients(warehouse_url):
    with connect(warehouse_url) as conn:
        add_patient(conn, "M7734001", "WINTERBOTTOM^ROSALIND^Q", dt.date(1948, 7, 19))
        add_patient(conn, "A-1234-56")
        add_patient(conn, "004512")
        add_patient(conn, "4512")
        # only ever rejected: a second PID-3 repetition, two names, an LF-separated message
        add_rejected(
            conn,
            build_message(
                pid3="R5550001^^^NGH^MR~X-77-01^^^SSA^SS", name="QUILLFEATHER^ODO~QF^O", birth_date="196103021200"
            ),
        )
        add_rejected(
            conn,
            "MSH|^~\\&|ADT|NGH|||202611020800||ADT^A01|C9|P|2.5.1\nPID|1||R5550002^^^NGH^MR||"
            "BRACKENRIDGE^ELSPETH||1973-05-xx\n",
            reason="unknown unit 'O'BRIEN WARD'",
        )
        add_rejected(conn, "not an HL7 message at all, 19990101 R5550003")
    return warehouse_url


def test_the_function_answers_with_what_was_asked_only(patients):
    tokens = ["M7734001", "R5550001", "X-77-01", "R5550002", "R5550003", "WINTERBOTTOM", "ROSALIND"]
    tokens += ["QUILLFEATHER", "ODO", "BRACKENRIDGE", "nosuch", "a-1234-56"]
    dates = [dt.date(1948, 7, 19), dt.date(1961, 3, 2), dt.date(1973, 5, 1), dt.date(1999, 1, 1), D]
    with connect(patients) as conn:
        rows = set(conn.execute(f"select kind, value, given from {FUNCTION}", (tokens, dates)).fetchall())
    assert rows == {
        ("MRN", "M7734001", None),
        ("MRN", "R5550001", None),  # a rejected message's PID-3, each repetition
        ("MRN", "X-77-01", None),
        ("MRN", "R5550002", None),  # LF-separated segments
        ("MRN", "A-1234-56", None),  # supplied in lower case: answered as supplied, upper-cased
        ("name", "WINTERBOTTOM", "ROSALIND"),
        ("name", "QUILLFEATHER", "ODO"),  # PID-5 of a rejected message
        ("birth date", "1948-07-19", None),
        ("birth date", "1961-03-02", None),  # PID-7 of a rejected message
    }
    # BRACKENRIDGE without a given name asked; 1973-05-xx is not a date; a text without a PID
    # segment holds no identifiers; nothing unasked (the other patients) comes back
    with connect(patients) as conn:
        assert conn.execute(f"select count(*) from {FUNCTION}", ([], [])).fetchone() == (0,)
        assert conn.execute(f"select count(*) from {FUNCTION}", (None, None)).fetchone() == (0,)


def test_the_reporter_may_ask_but_may_not_read_raw(patients):
    with connect(patients) as conn:
        conn.execute("set role healthops_reporter")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select mrn from raw.adt_messages")
        conn.rollback()
        conn.execute("set role healthops_reporter")
        hits = phi.scan(conn, [("rpt.x.unit_code", "R5550001")], {"rendered text": "Quillfeather Odo"})
        assert [(h.kind, h.where) for h in hits] == [("MRN", "rpt.x.unit_code"), ("patient name", "rendered text")]
        conn.rollback()
        # and only the reporter (and the owner): not every role of the server
        conn.execute("set role healthops_loader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select * from {FUNCTION}", (["M7734001"], []))
        conn.rollback()
        secdef, config, volatility = conn.execute(
            "select prosecdef, proconfig, provolatile from pg_proc "
            "where oid = 'reporting.phi_identifier_matches(text[], date[])'::regprocedure"
        ).fetchone()
    assert secdef and config == ["search_path=pg_catalog, pg_temp"] and volatility == "s"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("bed A-1234-56 today", "MRN"),  # stored with hyphens, shown whole
        ("see MRN004512", "MRN"),  # stored 004512, shown with a prefix
        ("MRN:004512", "MRN"),
        ("#004512", "MRN"),
        ("MRN-004512", "MRN"),
        ("Odo Quillfeather", "patient name"),  # a patient only ever rejected
        ("Elspeth Brackenridge", "patient name"),
    ],
)
def test_scan_finds_hyphenated_prefixed_and_rejected_only_identifiers(patients, text, kind):
    with connect(patients) as conn:
        hits = phi.scan(conn, [], {"rendered text": text})
    assert [(h.kind, h.where) for h in hits] == [(kind, "rendered text")]


@pytest.mark.parametrize("text", ["order 0045120", "A123456", "A 1234 56", "ward A4512", "Winterbottom Pavilion"])
def test_scan_does_not_match_inside_longer_words(patients, text):
    with connect(patients) as conn:
        assert phi.scan(conn, [], {"rendered text": text}) == []


def test_birth_dates_of_rejected_patients_are_found_in_values(patients):
    with connect(patients) as conn:
        hits = phi.scan(conn, [("rpt.x.note", "born 03/02/1961")], {"rendered text": "census 1961-03-02"})
    assert [(h.kind, h.where) for h in hits] == [("birth date", "rpt.x.note")]


def test_a_warehouse_with_patients_but_no_function_is_not_scanned_as_clean(patients, make_database):
    with connect(patients) as conn:
        conn.execute("drop function reporting.phi_identifier_matches(text[], date[])")
        with pytest.raises(phi.PhiScanFailed, match="healthops warehouse migrate"):
            phi.scan(conn, [], {"rendered text": "nothing here"})
    with connect(make_database()) as conn:  # no raw data at all: nothing to find, as before
        assert phi.scan(conn, [], {"rendered text": "M7734001"}) == []


def test_redact_replaces_what_the_warehouse_knows(patients):
    text = "DataError: visit V1 of M7734001 (Winterbottom, Rosalind, born 1948-07-19) on 2026-11-02; MRN004512"
    with connect(patients) as conn:
        out, n = phi.redact(conn, text, keep_dates=[D])
    assert out == (
        "DataError: visit V1 of [redacted] ([redacted], [redacted], born [redacted]) on 2026-11-02; MRN[redacted]"
    )
    assert n == 5
