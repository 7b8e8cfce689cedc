"""Publishing catalog reports (healthops.reports.publish) on a real warehouse to a real
SMTP server on loopback: one message per report, period and recipient with the
recipient's filter applied; nothing new on a retry; exactly one revised message per
affected recipient after a late change; a planted MRN or name stops the report and
names the column; the archive lists and resends what was sent."""
from __future__ import annotations

import datetime as dt
import uuid
from email import policy
from email.parser import BytesParser

import pytest

from healthops.reports import phi
from healthops.reports.catalog import load_catalog
from healthops.reports.delivery import SmtpSettings
from healthops.reports.outbox import start_outbox
from healthops.reports.periods import periods_to_check
from healthops.reports.publish import publish, resend, sent_messages
from healthops.warehouse.connection import connect

D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)
PNG = b"\x89PNG\r\n\x1a\n"
NGH_UNITS = {"ICU": 12, "SDU": 16, "TELE": 24, "MS5": 32, "PEDS": 12, "PSY": 14, "ED": 30}
SGH_UNITS = {"ICU": 10, "MS3": 28, "ONC": 18, "ANTE": 6, "LD": 10, "MBU": 20, "ED": 24}
MRN = "M7734001"


def census_rows():
    rows = []
    for d_i, d in enumerate((D1, D2)):
        for fac, units in (("NGH", NGH_UNITS), ("SGH", SGH_UNITS)):
            for u_i, (unit, beds) in enumerate(units.items()):
                census = (beds * 3) // 4 - u_i + d_i
                rows.append((fac, unit, d, census, 2 + u_i % 3, 1 + u_i % 2, u_i % 2, 0, census + 1, beds))
    return rows


@pytest.fixture
def marts(warehouse_url):
    with connect(warehouse_url) as conn:
        conn.execute("""create table marts.fct_census_daily (
            facility_code text, unit_code text, census_date date, midnight_census integer, admissions integer,
            discharges integer, transfers_in integer, transfers_out integer, patient_days integer,
            staffed_beds integer)""")
        with conn.cursor() as cur:
            cur.executemany("insert into marts.fct_census_daily values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                            census_rows())
        conn.execute(
            """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                   sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn,
                   patient_name, birth_date, raw_text)
               values (%s, %s, 'x.hl7', 1, 'C1', 'NGH', 'ADT', 'A01', now(), now(), 'V1', %s,
                       'WINTERBOTTOM^ROSALIND^Q', '1948-07-19', 'MSH|...')""", (uuid.uuid4(), D1, MRN))
    return warehouse_url


@pytest.fixture
def box(tmp_path):
    with start_outbox(tmp_path / "outbox") as b:
        yield b


def mails(box):
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in box.messages()]


def html_of(msg):
    return msg.get_body(preferencelist=("html",)).get_content()


def test_one_message_per_recipient_with_their_filter(marts, box):
    out = publish("daily_census", D1.isoformat(), url=marts, smtp=SmtpSettings.from_url(box.url))
    got = {m["To"]: m for m in mails(box)}
    entry = load_catalog()["reports"]["daily_census"]
    assert sorted(got) == sorted(entry["recipients"]) and len(out.sent) == 4
    for m in got.values():
        assert m["X-Healthops-Report"] == "daily_census" and m["X-Healthops-Period"] == D1.isoformat()
    icu = html_of(got["nurse.manager.icu@example.org"])
    assert "Intensive Care Unit" in icu and "Step-Down Unit" in icu and "Telemetry 4 West" not in icu
    assert got["nurse.manager.icu@example.org"]["Subject"] == \
        "Daily census — Northgate General Hospital (ICU, SDU) — 2026-11-02"
    medsurg = html_of(got["nurse.manager.medsurg@example.org"])
    assert "Telemetry 4 West" in medsurg and "Intensive Care Unit" not in medsurg
    ngh = html_of(got["house.supervisor@example.org"])
    assert all(name in ngh for name in ("Intensive Care Unit", "Behavioral Health", "Emergency Department"))
    assert "Oncology" not in ngh
    sgh = got["house.supervisor.sgh@example.org"]
    assert "Oncology" in html_of(sgh) and "Southgate" in sgh["Subject"]
    # the ICU manager's totals are her two units: (9 + 11) census at D1 in 12 + 16 beds
    icu_text = got["nurse.manager.icu@example.org"].get_body(preferencelist=("plain",)).get_content()
    assert "Inpatients at midnight: 20 in 28 staffed beds" in icu_text
    # PDF attached (pages counted), CSV attached, every chart inline and non-empty
    for m in got.values():
        parts = {p.get_content_type(): p for p in m.iter_attachments()}
        assert parts["application/pdf"].get_content().startswith(b"%PDF")
        assert parts["text/csv"].get_filename().endswith(".csv")
        inline = [p for p in m.walk() if p.get("Content-ID")]
        assert len(inline) == 2 and all(p.get_content().startswith(PNG) and len(p.get_content()) > 3000
                                        for p in inline)
    with connect(marts) as conn:
        rows = conn.execute("select recipient, revision, recipient_filter from reporting.deliveries "
                            "order by recipient").fetchall()
    assert [r[1] for r in rows] == [0, 0, 0, 0]
    assert dict((r[0], r[2]) for r in rows)["nurse.manager.icu@example.org"] == {"facility": "NGH",
                                                                                   "units": ["ICU", "SDU"]}


def test_retry_sends_nothing_and_a_late_change_sends_one_revision_per_affected_recipient(marts, box):
    smtp = SmtpSettings.from_url(box.url)
    publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)
    publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)
    assert len(box.messages()) == 8
    again = publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)  # a retried task / re-run date
    assert again.sent == [] and len(box.messages()) == 8

    # late data: one more ICU patient at NGH on D1 (already reported)
    with connect(marts) as conn:
        conn.execute("update marts.fct_census_daily set midnight_census = midnight_census + 1, "
                     "patient_days = patient_days + 1 where facility_code = 'NGH' and unit_code = 'ICU' "
                     "and census_date = %s", (D1,))
    revised = publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)
    assert sorted((s["period"], s["recipient"], s["revision"]) for s in revised.sent) == [
        (D1.isoformat(), "house.supervisor@example.org", 1),
        (D1.isoformat(), "nurse.manager.icu@example.org", 1),
    ]
    new = mails(box)[8:]
    assert len(new) == 2
    for m in new:
        assert m["Subject"].startswith("[REVISED] Daily census")
        assert m["In-Reply-To"] and m["In-Reply-To"] != m["Message-ID"]
        html = html_of(m)
        assert "Revised report" in html and "ICU midnight census 2026-11-02: 9 → 10" in html
        assert "ICU patient days 2026-11-02: 10 → 11" in html
    assert publish("daily_census", D2.isoformat(), url=marts, smtp=smtp).sent == []  # and only once


def test_a_planted_mrn_stops_the_report_and_names_the_column(marts, box):
    with connect(marts) as conn:
        conn.execute("update marts.fct_census_daily set unit_code = %s where facility_code = 'NGH' "
                     "and unit_code = 'PSY' and census_date = %s", (MRN, D1))
    with pytest.raises(phi.PhiFound) as e:
        publish("daily_census", D1.isoformat(), url=marts, smtp=SmtpSettings.from_url(box.url))
    assert "MRN in marts.fct_census_daily.unit_code" in str(e.value)
    assert MRN not in str(e.value)  # the error names the column, never the value
    assert box.messages() == []  # nothing went out, not even to recipients who would not see that unit
    with connect(marts) as conn:
        assert conn.execute("select count(*) from reporting.deliveries").fetchone()[0] == 0


def test_scan_finds_names_mrns_and_birth_dates_but_not_census_dates(marts):
    with connect(marts) as conn:
        hits = phi.scan(conn, [("marts.dim_units.unit_name", "Rosalind Winterbottom ward"),
                               ("marts.x.note", "born 1948-07-19"), ("marts.x.ok", "Winterbottom Pavilion")],
                        {"rendered html": "Census on 1948-07-19 and 2026-11-02", "rendered text": f"see {MRN}.",
                         "attachment a.csv": "WINTERBOTTOM, ROSALIND"})
    assert [(h.kind, h.where) for h in hits] == [
        ("patient name", "marts.dim_units.unit_name"), ("birth date", "marts.x.note"),
        ("MRN", "rendered text"), ("patient name", "attachment a.csv")]


def test_reader_reads_allow_listed_columns_only(marts):
    with connect(marts) as conn:
        reader = phi.MartReader(conn, phi.allowed_columns(load_catalog()))
        rows = reader.select("marts.fct_census_daily", ["unit_code", "midnight_census"],
                             {"facility_code": "SGH", "census_date": D1, "unit_code": ("in", ["ICU", "ONC"])},
                             order_by=["unit_code"])
        assert [r["unit_code"] for r in rows] == ["ICU", "ONC"]
        assert ("marts.fct_census_daily.unit_code", "ICU") in reader.strings
        with pytest.raises(phi.ColumnNotAllowed, match="raw.adt_messages is not"):
            reader.select("raw.adt_messages", ["mrn"])
        with pytest.raises(phi.ColumnNotAllowed, match="patient_key"):
            reader.select("marts.fct_encounters", ["facility_code"], {"patient_key": "x"})


def test_small_cells_are_suppressed_with_their_complement():
    rows = [{"unit": "ICU", "discharges": 4, "alos": "3.2"}, {"unit": "MS5", "discharges": 40, "alos": "4.1"},
            {"unit": "TELE", "discharges": 25, "alos": "3.9"}, {"unit": "PSY", "discharges": 0, "alos": None}]
    n = phi.suppress_table(rows, ["discharges"], total={"discharges": 69}, derived={"discharges": ["alos"]})
    assert n == 2  # ICU's 4, and TELE's 25 (the smallest other) so 69 - 40 - 0 cannot reveal it
    assert [r["discharges"] for r in rows] == ["<11", 40, "<11", 0]
    assert [r["alos"] for r in rows] == ["<11", "4.1", "<11", None]
    two = [{"a": 3}, {"a": 7}, {"a": 30}]
    assert phi.suppress_table(two, ["a"], total={"a": 40}) == 2 and two[2]["a"] == 30  # two hidden already


def test_archive_lists_and_resends_byte_for_byte(marts, box, tmp_path):
    smtp = SmtpSettings.from_url(box.url)
    publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)
    with connect(marts) as conn:
        listed = sent_messages(conn, report="daily_census", since=D1)
        assert len(listed) == 4 and all(r["eml_sha256"] for r in listed)
        icu = next(r for r in listed if r["recipient"] == "nurse.manager.icu@example.org")
        resend(conn, icu["message_id"], smtp, to="deputy.manager@example.org", by="HIM desk")
        assert conn.execute("select recipient, resent_by from reporting.resends").fetchall() == [
            ("deputy.manager@example.org", "HIM desk")]
    last = mails(box)[-1]
    assert last["Message-ID"] == icu["message_id"] and last["Resent-To"] == "deputy.manager@example.org"
    with pytest.raises(LookupError):
        with connect(marts) as conn:
            resend(conn, "<nope@x>", smtp)


def test_revision_lookback_and_filters_are_checked():
    entry = load_catalog()["reports"]["daily_census"]
    assert periods_to_check("day", entry, "2026-11-10")[:3] == [
        "2026-11-10", "2026-11-09", "2026-11-08"]
    assert len(periods_to_check("day", entry, "2026-11-10")) == 8
    assert periods_to_check("month", {}, "2026-01") == ["2026-01", "2025-12"]
