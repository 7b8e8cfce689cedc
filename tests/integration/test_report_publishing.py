"""Publishing catalog reports (healthops.reports.publish) on a real warehouse to a real
SMTP server on loopback: one message per report, period and recipient with the
recipient's filter applied; nothing new on a retry; exactly one revised message per
affected recipient after a late change; a planted MRN or name stops the report and
names the column; the archive lists and resends what was sent; mail goes exactly once:
a crash after the relay accepted is resent under the same Message-ID, a night with the
relay down is owed and sent by the next run, and the alert is written to a file."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import stat
import time
import uuid
from decimal import Decimal
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller

from healthops.alerts import RunFailure, notify_run_failure
from healthops.reports import phi
from healthops.reports.catalog import load_catalog
from healthops.reports.delivery import SmtpSettings, is_transient
from healthops.reports.outbox import OutboxHandler, find_free_port, start_outbox
from healthops.reports.periods import periods_to_check
from healthops.reports.publish import owed_periods, publish, resend, sent_messages
from healthops.reports.reader import ColumnNotAllowed, ReportReader
from healthops.warehouse.connection import connect

from reporting_build import DAILY_CENSUS_MODELS, build_models, template_database

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


@pytest.fixture(scope="module")
def marts_template(pg_server, migrated_template):
    """Hand-made census marts and one raw message (a known MRN and name), with the daily
    census reporting models built over them: built once, copied for each test."""

    def prepare(url):
        with connect(url) as conn:
            conn.execute("""create table marts.fct_census_daily (
                facility_code text, unit_code text, census_date date, midnight_census integer,
                admissions integer, discharges integer, transfers_in integer, transfers_out integer,
                patient_days integer, staffed_beds integer)""")
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into marts.fct_census_daily values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", census_rows()
                )
            conn.execute(
                """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                       sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn,
                       patient_name, birth_date, raw_text)
                   values (%s, %s, 'x.hl7', 1, 'C1', 'NGH', 'ADT', 'A01', now(), now(), 'V1', %s,
                           'WINTERBOTTOM^ROSALIND^Q', '1948-07-19', 'MSH|...')""",
                (uuid.uuid4(), D1, MRN),
            )
        build_models(url, DAILY_CENSUS_MODELS)

    with template_database(pg_server, migrated_template, prepare) as name:
        yield name


@pytest.fixture
def marts(marts_template, make_database):
    return make_database(template=marts_template)


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
    assert (
        got["nurse.manager.icu@example.org"]["Subject"]
        == "Daily census — Northgate General Hospital (ICU, SDU) — 2026-11-02"
    )
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
        assert len(inline) == 2 and all(p.get_content().startswith(PNG) and len(p.get_content()) > 3000 for p in inline)
    with connect(marts) as conn:
        rows = conn.execute(
            "select recipient, revision, recipient_filter from reporting.deliveries order by recipient"
        ).fetchall()
    assert [r[1] for r in rows] == [0, 0, 0, 0]
    assert dict((r[0], r[2]) for r in rows)["nurse.manager.icu@example.org"] == {
        "facility": "NGH",
        "units": ["ICU", "SDU"],
    }


def test_retry_sends_nothing_and_a_late_change_sends_one_revision_per_affected_recipient(marts, box):
    smtp = SmtpSettings.from_url(box.url)
    publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)
    publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)
    assert len(box.messages()) == 8
    again = publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)  # a retried task / re-run date
    assert again.sent == [] and len(box.messages()) == 8

    # late data: one more ICU patient at NGH on D1 (already reported)
    with connect(marts) as conn:
        conn.execute(
            "update marts.fct_census_daily set midnight_census = midnight_census + 1, "
            "patient_days = patient_days + 1 where facility_code = 'NGH' and unit_code = 'ICU' "
            "and census_date = %s",
            (D1,),
        )
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
        conn.execute(
            "update marts.fct_census_daily set unit_code = %s where facility_code = 'NGH' "
            "and unit_code = 'PSY' and census_date = %s",
            (MRN, D1),
        )
    with pytest.raises(phi.PhiFound) as e:
        publish("daily_census", D1.isoformat(), url=marts, smtp=SmtpSettings.from_url(box.url))
    assert "MRN in rpt.rpt_daily_census_units.unit_code" in str(e.value)
    assert MRN not in str(e.value)  # the error names the column, never the value
    assert box.messages() == []  # nothing went out, not even to recipients who would not see that unit
    with connect(marts) as conn:
        assert conn.execute("select count(*) from reporting.deliveries").fetchone()[0] == 0


def test_an_mrn_seen_only_in_a_rejected_message_stops_the_report(marts, box):
    """A patient whose only message was refused (no PV1-19) is still a patient."""
    with connect(marts) as conn:
        conn.execute(
            """insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason, raw_text)
               values (gen_random_uuid(), 'adt', %s, 'y.hl7', 1, 'PV1-19 visit number missing', %s)""",
            (D1, "MSH|^~\\&|ADT|NGH|||202611020800||ADT^A01|C9|P|2.5.1\rPID|1||R5550001^^^NGH^MR||QUILL^ODO\r"),
        )
        assert conn.execute("select count(*) from raw.adt_messages where mrn = 'R5550001'").fetchone() == (0,)
        conn.execute(
            "update marts.fct_census_daily set unit_code = 'R5550001' where facility_code = 'NGH' "
            "and unit_code = 'PSY' and census_date = %s",
            (D1,),
        )
    with pytest.raises(phi.PhiFound, match=r"MRN in rpt\.rpt_daily_census_units\.unit_code"):
        publish("daily_census", D1.isoformat(), url=marts, smtp=SmtpSettings.from_url(box.url))
    assert box.messages() == []


def test_the_pdf_is_scanned_and_names_the_attachment(marts):
    """The PDF is read as text before sending: an identifier that is only in the PDF stops
    the report, naming the PDF attachment."""
    import dataclasses

    from healthops.reports.daily_census import KIND
    from healthops.reports.render import html_to_pdf

    entry = load_catalog()["reports"]["daily_census"]
    with connect(marts) as conn:
        reader = ReportReader(conn, KIND.models)
        ctx = KIND.build_context(reader, D1.isoformat(), {"facility": "NGH", "units": ["ICU", "SDU"]}, entry)
        rendered = KIND.render(ctx, entry)
        pdf_part = f"attachment {rendered.filename_stem}.pdf"
        texts = phi.rendered_texts(rendered)
        assert "Intensive Care Unit" in texts[pdf_part]  # the PDF's own text is read
        phi.guard(conn, "daily_census", reader, rendered)  # clean: may be sent
        leaky_pdf, _ = html_to_pdf(f"<p>Transfer of Rosalind Winterbottom ({MRN}) to ICU</p>")
        leaky = dataclasses.replace(rendered, pdf=leaky_pdf)
        with pytest.raises(phi.PhiFound) as e:
            phi.guard(conn, "daily_census", reader, leaky)
    assert [(h.kind, h.where) for h in e.value.hits] == [("MRN", pdf_part), ("patient name", pdf_part)]
    with pytest.raises(phi.PhiScanFailed, match="could not be read"):
        phi.rendered_texts(dataclasses.replace(rendered, pdf=b"%PDF-1.7 not really"))


def test_scan_finds_names_mrns_and_birth_dates_but_not_census_dates(marts):
    with connect(marts) as conn:
        hits = phi.scan(
            conn,
            [
                ("marts.dim_units.unit_name", "Rosalind Winterbottom ward"),
                ("marts.x.note", "born 1948-07-19"),
                ("marts.x.ok", "Winterbottom Pavilion"),
            ],
            {
                "rendered html": "Census on 1948-07-19 and 2026-11-02",
                "rendered text": f"see {MRN}.",
                "attachment a.csv": "WINTERBOTTOM, ROSALIND",
            },
        )
    assert [(h.kind, h.where) for h in hits] == [
        ("patient name", "marts.dim_units.unit_name"),
        ("birth date", "marts.x.note"),
        ("MRN", "rendered text"),
        ("patient name", "attachment a.csv"),
    ]


def test_reader_reads_declared_models_and_non_phi_columns_only(marts):
    with connect(marts) as conn:
        reader = ReportReader(conn, ["rpt_daily_census_units"])
        rows = reader.select(
            "rpt_daily_census_units",
            ["unit_code", "midnight_census"],
            {"facility_code": "SGH", "census_date": D1, "unit_code": ("in", ["ICU", "ONC"])},
            order_by=["unit_code"],
        )
        assert [r["unit_code"] for r in rows] == ["ICU", "ONC"]
        assert ("rpt.rpt_daily_census_units.unit_code", "ICU") in reader.strings
        with pytest.raises(ColumnNotAllowed, match="not reporting-layer models: fct_census_daily"):
            ReportReader(conn, ["fct_census_daily"])
        with pytest.raises(ColumnNotAllowed, match="rpt_daily_quality_checks is not a model this report reads"):
            reader.select("rpt_daily_quality_checks", ["rule_id"])
        with pytest.raises(ColumnNotAllowed, match="patient_key"):
            reader.select("rpt_daily_census_units", ["facility_code"], {"patient_key": "x"})
        with pytest.raises(ColumnNotAllowed, match="unit_name is not additive"):
            reader.sums("rpt_daily_census_units", ["unit_name"])
        assert len(reader.queries) == 1  # refused requests issue no SQL


def test_unit_rows_totals_and_subset_sums_are_computed_in_the_model(marts):
    # census_rows(): NGH on D2, unit i with beds b: census = 3b//4 - i + 1; admissions 2 + i%3;
    # the day before one less. ICU (i=0, 12 beds): 10 -> 83.3%; SDU (i=1, 16): 12 -> 75.0%;
    # ED (i=6, 30 beds) is not an inpatient unit.
    with connect(marts) as conn:
        reader = ReportReader(conn, ["rpt_daily_census_units"])
        rows = {
            r["unit_code"]: r
            for r in reader.select(
                "rpt_daily_census_units",
                [
                    "unit_code",
                    "unit_name",
                    "is_inpatient_unit",
                    "midnight_census",
                    "occupancy_pct",
                    "previous_day_census",
                    "census_change",
                ],
                {"facility_code": "NGH", "census_date": D2},
            )
        }
        assert rows["ICU"]["unit_name"] == "Intensive Care Unit"
        assert (rows["ICU"]["midnight_census"], rows["ICU"]["occupancy_pct"]) == (10, Decimal("83.3"))
        assert (rows["SDU"]["midnight_census"], rows["SDU"]["occupancy_pct"]) == (12, Decimal("75.0"))
        assert (rows["ICU"]["previous_day_census"], rows["ICU"]["census_change"]) == (9, 1)
        assert rows["ED"]["is_inpatient_unit"] is False
        # Inpatient total of NGH on D2 (ED excluded): 10+12+17+22+6+6 = 73 of 12+16+24+32+12+14 = 110
        # beds -> 66.4%; every unit one up from D1.
        (t,) = reader.sums(
            "rpt_daily_census_units",
            ["midnight_census", "staffed_beds", "occupancy_pct", "unit_count", "census_change"],
            {"facility_code": "NGH", "census_date": D2, "is_inpatient_unit": True},
        )
        assert t == {
            "midnight_census": 73,
            "staffed_beds": 110,
            "occupancy_pct": Decimal("66.4"),
            "unit_count": 6,
            "census_change": 6,
        }
        # A nurse manager's two units: 10 + 12 of 12 + 16 beds = 78.6%; on D1 nothing precedes.
        sub = reader.sums(
            "rpt_daily_census_units",
            ["midnight_census", "occupancy_pct", "census_change"],
            {"facility_code": "NGH", "unit_code": ("in", ["ICU", "SDU"]), "is_inpatient_unit": True},
            group_by=["census_date"],
        )
        assert sub == [
            {"census_date": D1, "midnight_census": 20, "occupancy_pct": Decimal("71.4"), "census_change": None},
            {"census_date": D2, "midnight_census": 22, "occupancy_pct": Decimal("78.6"), "census_change": 2},
        ]
        # No inpatient row selected (the ED alone): zero, not null.
        (ed,) = reader.sums(
            "rpt_daily_census_units",
            ["midnight_census", "occupancy_pct"],
            {"facility_code": "NGH", "unit_code": "ED", "is_inpatient_unit": True},
        )
        assert ed == {"midnight_census": 0, "occupancy_pct": None}


def test_small_cells_are_suppressed_with_their_complement():
    rows = [
        {"unit": "ICU", "discharges": 4, "alos": "3.2"},
        {"unit": "MS5", "discharges": 40, "alos": "4.1"},
        {"unit": "TELE", "discharges": 25, "alos": "3.9"},
        {"unit": "PSY", "discharges": 0, "alos": None},
    ]
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
            ("deputy.manager@example.org", "HIM desk")
        ]
    last = mails(box)[-1]
    assert last["Message-ID"] == icu["message_id"] and last["Resent-To"] == "deputy.manager@example.org"
    with pytest.raises(LookupError):
        with connect(marts) as conn:
            resend(conn, "<nope@x>", smtp)


def test_a_resend_is_on_the_ledger_before_the_relay_hears_of_it(marts, box, monkeypatch):
    """`healthops reports resend`: intent ('sending', committed) before the SMTP
    transaction, 'sent' with the relay's reply after, 'failed' with the error."""
    from healthops.reports import delivery

    smtp = SmtpSettings.from_url(box.url)
    publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)
    with connect(marts) as conn:
        message_id = sent_messages(conn, report="daily_census")[0]["message_id"]
    seen_by_relay = []
    send_accepted = delivery.send_accepted

    def relay(message, settings, *args, **kwargs):  # what another session sees as the relay is contacted
        with connect(marts) as other:
            seen_by_relay.append(other.execute("select state, sent_at from reporting.resends").fetchall())
        return send_accepted(message, settings, *args, **kwargs)

    monkeypatch.setattr(delivery, "send_accepted", relay)
    with connect(marts) as conn:
        done = resend(conn, message_id, smtp, by="HIM desk")
    assert seen_by_relay == [[("sending", None)]]
    with connect(marts) as conn:
        assert conn.execute(
            "select state, sent_at is not null, relay_response, last_error from reporting.resends"
        ).fetchall() == [("sent", True, done["relay_response"], None)]
    assert done["relay_response"].startswith("250")

    monkeypatch.setattr(time, "sleep", lambda _s: None)
    down = SmtpSettings.from_url(f"smtp://127.0.0.1:{find_free_port()}?timeout=5")
    with connect(marts) as conn, pytest.raises(OSError):
        resend(conn, message_id, down, to="deputy.manager@example.org")
    with connect(marts) as conn:
        assert conn.execute(
            "select recipient, state, sent_at, last_error like '%%Connection%%' from reporting.resends "
            "order by resend_no"
        ).fetchall()[1] == ("deputy.manager@example.org", "failed", None, True)
        assert owed_periods(conn, "daily_census") == []  # a failed resend owes no period to the report


def test_revision_lookback_and_filters_are_checked():
    entry = load_catalog()["reports"]["daily_census"]
    assert periods_to_check("day", entry, "2026-11-10")[:3] == ["2026-11-10", "2026-11-09", "2026-11-08"]
    assert len(periods_to_check("day", entry, "2026-11-10")) == 8
    assert periods_to_check("month", {}, "2026-01") == ["2026-01", "2025-12"]


def test_daily_census_renders_from_its_models_with_no_other_sql(marts):
    from healthops.reports.daily_census import KIND

    entry = load_catalog()["reports"]["daily_census"]
    with connect(marts) as conn:
        reader = ReportReader(conn, KIND.models)
        ctx = KIND.build_context(reader, D2.isoformat(), {"facility": "NGH", "units": ["ICU", "SDU", "ED"]}, entry)
        rendered = KIND.render(ctx, entry)
    assert reader.queries and all(
        q.startswith("select ") and ' from "rpt"."rpt_' in q and " join " not in q.lower() for q in reader.queries
    )
    # the nurse manager's own units: ICU 10 + SDU 12 of 28 beds (78.6%), up 2 from the day before;
    # the ED (3 * 30 // 4 - 6 + 1 = 17 of 30 beds) listed apart, in no total
    t = rendered.meta["totals"]
    assert (t["midnight_census"], t["staffed_beds"], t["occupancy_label"], t["unit_count"]) == (22, 28, "78.6%", 2)
    assert "up 2 from Monday (20)" in rendered.text
    assert "Emergency Department: 17 patients at midnight in 30 beds (56.7%)" in rendered.text
    csv_text = rendered.attachments["daily_census_NGH-ICU-SDU-ED_2026-11-03.csv"][0].decode()
    assert csv_text.splitlines()[1].startswith("NGH,2026-11-03,ED,Emergency Department,17,")


# -- mail exactly once: the intent first, reconciliation, owed periods -----------------------


def ledger(url):
    with connect(url) as conn:
        return conn.execute(
            """select period, recipient, state, reconciled, message_id, sent_at is not null, relay_response
               from reporting.deliveries order by period, recipient"""
        ).fetchall()


def test_a_crash_after_the_relay_accepted_is_resent_once_under_the_same_message_id(marts, box, monkeypatch):
    publishing = importlib.import_module("healthops.reports.publish")
    smtp = SmtpSettings.from_url(box.url)
    mark_sent, calls = publishing.mark_sent, []

    def crash_once(*args, **kwargs):  # the worker dies between the relay's "250" and the ledger update
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("worker lost after the relay accepted")
        return mark_sent(*args, **kwargs)

    monkeypatch.setattr(publishing, "mark_sent", crash_once)
    with pytest.raises(RuntimeError, match="worker lost"):
        publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)
    assert len(box.messages()) == 1
    [(_, first, state, _, first_id, has_sent_at, _)] = ledger(marts)
    assert state == "sending" and not has_sent_at  # the intent was on record before the relay heard of it
    first_bytes = box.messages()[0].read_bytes()

    retry = publish("daily_census", D1.isoformat(), url=marts, smtp=smtp)  # the task's retry
    assert len(retry.sent) == 4
    got = mails(box)
    assert len(got) == 5  # the uncertain one again, and the three others
    again = [m for m in got if m["To"] == first]
    assert [m["Message-ID"] for m in again] == [first_id, first_id]  # recognisable as the same message
    assert sorted(p.read_bytes() for p in box.messages() if p.read_bytes() == first_bytes) == [first_bytes] * 2
    rows = ledger(marts)
    assert len(rows) == 4 and {r[2] for r in rows} == {"sent"} and all(r[5] and r[6].startswith("250") for r in rows)
    assert [r[1] for r in rows if r[3]] == [first]  # the reconciled row, once
    assert publish("daily_census", D1.isoformat(), url=marts, smtp=smtp).sent == []  # sent is never sent again
    assert len(box.messages()) == 5


def test_a_night_with_the_relay_down_is_owed_and_sent_once_when_it_is_back(marts, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(time, "sleep", lambda _s: None)  # the send retries' backoff, not the outcome
    down = SmtpSettings.from_url(f"smtp://127.0.0.1:{find_free_port()}?timeout=5")
    with pytest.raises(OSError) as night:
        publish("daily_census", D1.isoformat(), url=marts, smtp=down)
    assert is_transient(night.value)  # the task's retries, then the next night
    [(period, _, state, _, _, has_sent_at, _)] = ledger(marts)
    assert (period, state, has_sent_at) == (D1.isoformat(), "failed", False)
    with connect(marts) as conn:
        assert owed_periods(conn, "daily_census") == [D1.isoformat()]
        assert sent_messages(conn) == []

    # the run's failure alert cannot be mailed either: the task log and a file have it
    failure = RunFailure(
        dag_id="healthops_census_nightly",
        run_id="scheduled__2026-11-03T07:00:00+00:00",
        logical_date=D1,
        task_id="publish_daily_census",
        exception=f"{type(night.value).__name__}: {night.value}",
    )
    with caplog.at_level(logging.ERROR, logger="healthops.alerts"), pytest.raises(OSError):
        notify_run_failure(failure, url=marts, smtp=down)
    logged = [r.getMessage() for r in caplog.records if r.name == "healthops.alerts" and r.levelno == logging.ERROR]
    assert len(logged) == 1 and "could NOT be mailed" in logged[0] and "publish_daily_census" in logged[0]
    [alert_file] = (tmp_path / "out" / "alerts").iterdir()
    assert stat.S_IMODE(alert_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(alert_file.parent.stat().st_mode) == 0o700
    text = alert_file.read_text()
    assert "nightly census FAILED for 2026-11-02: publish_daily_census" in text and "ConnectionRefused" in text
    assert MRN not in text and "WINTERBOTTOM" not in text.upper()

    with start_outbox(tmp_path / "outbox") as box:  # the relay is back for the next night
        smtp = SmtpSettings.from_url(box.url)
        out = publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)
        sent = sorted((s["period"], s["recipient"]) for s in out.sent)
        recipients = sorted(load_catalog()["reports"]["daily_census"]["recipients"])
        assert sent == [(d.isoformat(), r) for d in (D1, D2) for r in recipients]  # owed once, plus the new one
        assert len(box.messages()) == 8
        assert sorted((m["X-Healthops-Period"], m["To"]) for m in mails(box)) == sent
        rows = ledger(marts)
        assert len(rows) == 8 and {r[2] for r in rows} == {"sent"} and not any(r[3] for r in rows)
        with connect(marts) as conn:
            assert owed_periods(conn, "daily_census") == []
        assert publish("daily_census", D2.isoformat(), url=marts, smtp=smtp).sent == []
        assert publish("daily_census", D1.isoformat(), url=marts, smtp=smtp).sent == []
        assert len(box.messages()) == 8


class RefusingHandler(OutboxHandler):
    """A relay that refuses one recipient's messages of one period for good (a 5xx)."""

    def __init__(self, directory, recipient: str, period: str) -> None:
        super().__init__(directory)
        self.recipient, self.period = recipient, period

    async def handle_DATA(self, server, session, envelope):
        if self.recipient in envelope.rcpt_tos and f"X-Healthops-Period: {self.period}".encode() in envelope.content:
            return "554 5.7.1 Message rejected by policy"
        return await super().handle_DATA(server, session, envelope)


def test_an_owed_message_refused_for_good_stays_owed_and_holds_back_nothing_else(marts, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    down = SmtpSettings.from_url(f"smtp://127.0.0.1:{find_free_port()}?timeout=5")
    with pytest.raises(OSError):
        publish("daily_census", D1.isoformat(), url=marts, smtp=down)
    [(_, refused, *_)] = ledger(marts)
    (tmp_path / "relay").mkdir()
    port = find_free_port()
    handler = RefusingHandler(tmp_path / "relay", refused, D1.isoformat())
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="refusing-relay")
    controller.start()
    try:
        smtp = SmtpSettings.from_url(f"smtp://127.0.0.1:{port}")
        out = publish("daily_census", D2.isoformat(), url=marts, smtp=smtp)
    finally:
        controller.stop()
    assert out.still_owed == [(D1.isoformat(), refused)]
    assert len(out.sent) == 7 and len(list((tmp_path / "relay").glob("*.eml"))) == 7
    states = {(p, r): s for p, r, s, *_ in ledger(marts)}
    assert states.pop((D1.isoformat(), refused)) == "failed" and set(states.values()) == {"sent"}
    with connect(marts) as conn:
        assert owed_periods(conn, "daily_census") == [D1.isoformat()]
        assert "554" in conn.execute("select last_error from reporting.deliveries where state = 'failed'").fetchone()[0]
