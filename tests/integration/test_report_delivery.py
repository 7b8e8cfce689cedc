"""Daily census report: render (HTML, PDF, charts) and deliver over real SMTP.

Every SMTP exchange here goes to a real aiosmtpd server on loopback: the
healthops outbox, or a server with a hand-written handler for the retry cases.
No mocks.
"""

from __future__ import annotations

import html as html_lib
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from healthops.reports.catalog import load_catalog
from healthops.reports.delivery import SmtpSettings, build_message, is_transient, message_id, send
from healthops.reports.outbox import find_free_port, start_outbox
from healthops.reports.render import render_daily_census, write_outputs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_DATE = date(2026, 11, 2)
UNIT_KEYS = (
    "unit_code",
    "unit_name",
    "unit_type",
    "staffed_beds",
    "midnight_census",
    "admissions",
    "discharges",
    "transfers_in",
    "transfers_out",
    "patient_days",
    "occupancy_pct",
    "is_inpatient_unit",
)
# The units seed of Northgate General Hospital (dbt_project/seeds/units.csv), one census day, as
# rpt_daily_census_units gives it (occupancy = census / staffed beds, one decimal, half up).
UNITS = [
    ("ICU", "Intensive Care Unit", "critical_care", 12, 11, 2, 1, 2, 3, 11, Decimal("91.7"), True),
    ("SDU", "Step-Down Unit", "step_down", 16, 14, 1, 2, 3, 2, 14, Decimal("87.5"), True),
    ("TELE", "Telemetry 4 West", "telemetry", 24, 22, 5, 4, 2, 1, 23, Decimal("91.7"), True),
    ("MS5", "Medical/Surgical 5 East", "medical_surgical", 32, 34, 9, 8, 2, 3, 35, Decimal("106.3"), True),
    ("PEDS", "Pediatrics", "pediatrics", 12, 7, 2, 3, 0, 0, 7, Decimal("58.3"), True),
    ("PSY", "Behavioral Health", "psychiatric", 14, 13, 1, 1, 0, 0, 13, Decimal("92.9"), True),
    ("ED", "Emergency Department", "emergency", 30, 5, 0, 0, 0, 0, 5, Decimal("16.7"), False),
]
# The sums of the inpatient rows (ED excluded): 11+14+22+34+7+13 = 101 of 12+16+24+32+12+14 = 110
# beds (91.8%); the day before (TREND[-2]) 98.
TOTALS = {
    "staffed_beds": 110,
    "midnight_census": 101,
    "admissions": 20,
    "discharges": 19,
    "transfers_in": 9,
    "transfers_out": 9,
    "patient_days": 103,
    "occupancy_pct": Decimal("91.8"),
    "unit_count": 6,
    "previous_day_census": 98,
    "census_change": 3,
}
TREND = [96, 99, 101, 104, 100, 97, 95, 98, 102, 105, 103, 100, 98, 101]  # ends on REPORT_DATE


def census_context(
    *, quality=None, units=UNITS, totals=None, facility_name="Northgate General Hospital", report_date=REPORT_DATE
) -> dict:
    return {
        "facility_code": "NGH",
        "facility_name": facility_name,
        "report_date": report_date,
        "generated_at": datetime(2026, 11, 3, 5, 12, tzinfo=ZoneInfo("America/Los_Angeles")),
        "units": [dict(zip(UNIT_KEYS, u)) for u in units],
        "totals": dict(totals or TOTALS),
        "trend": [
            {"census_date": report_date - timedelta(days=13 - i), "midnight_census": v} for i, v in enumerate(TREND)
        ],
        "quality": quality
        if quality is not None
        else [
            {
                "rule": "adt_messages_parsed",
                "status": "passed",
                "severity": "blocking",
                "detail": "1284 of 1284 parsed",
            },
            {
                "rule": "unit_census_balances",
                "status": "failed",
                "severity": "warning",
                "detail": "Medical/Surgical 5 East: 33 + 9 - 8 + 2 - 3 = 33, midnight census 34",
            },
            {"rule": "adt_feed_fresh", "status": "passed", "severity": "blocking", "detail": "last message 23:58"},
        ],
        "data_docs_url": "http://localhost:8080/data_docs/index.html",
    }


def pdf_page_count(pdf: bytes) -> int:
    """Count /Type /Page objects, looking inside compressed object streams too."""
    chunks = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", b"\n".join(chunks)))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def rendered(catalog):
    return render_daily_census(census_context(), catalog=catalog)


@pytest.fixture
def outbox(tmp_path):
    with start_outbox(tmp_path / "outbox") as box:
        yield box


def parse_eml(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


# ----------------------------------------------------------------------------- rendering


def test_pdf_is_valid(rendered):
    assert rendered.pdf.startswith(b"%PDF-")
    assert rendered.pdf.rstrip().endswith(b"%%EOF")
    assert rendered.pdf_pages >= 1
    assert pdf_page_count(rendered.pdf) == rendered.pdf_pages


def test_html_has_every_unit_cid_images_and_alt_text(rendered):
    for _, name, *_ in UNITS:
        assert html_lib.escape(name) in rendered.html
    assert len(rendered.images) == 2
    for cid, (png, alt) in rendered.images.items():
        assert f'src="cid:{cid}"' in rendered.html
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
        assert len(alt) > 40 and html_lib.escape(alt) in rendered.html
    assert "data:image/png" not in rendered.html
    # The standalone (browser) variant carries the images itself.
    assert "cid:" not in rendered.html_standalone
    assert rendered.html_standalone.count('src="data:image/png;base64,') == 2
    assert rendered.filename_stem == "daily_census_NGH_2026-11-02"
    assert rendered.subject.endswith("Daily census — Northgate General Hospital — 2026-11-02")


def test_totals_occupancy_and_ed_exclusion(rendered):
    # The totals row and summary show the model's totals; the ED is listed apart, not in them.
    totals = rendered.meta["totals"]
    assert (totals["midnight_census"], totals["staffed_beds"], totals["patient_days"]) == (101, 110, 103)
    assert (totals["admissions"], totals["discharges"]) == (20, 19)
    assert totals["occupancy_label"] == "91.8%"
    assert "106.3%" in rendered.html  # 34 / 32, flagged above staffed beds
    assert "occ-over" in rendered.html
    assert "16.7%" in rendered.html  # ED 5 / 30, listed but not in the totals
    assert "Not an inpatient unit: not counted above." in rendered.text
    assert "up 3 from Sunday (98)" in rendered.html
    assert "Inpatients at midnight: 101 in 110 staffed beds, 91.8% occupancy." in rendered.text


def test_occupancy_labels_and_no_beds(catalog):
    units = [
        ("A", "Unit A", "medical_surgical", 16, 1, 0, 0, 0, 0, 1, Decimal("6.3"), True),
        ("B", "Unit B", "medical_surgical", 0, 0, 0, 0, 0, 0, 0, None, True),
    ]  # no staffed beds -> "—"
    totals = {
        **TOTALS,
        "staffed_beds": 16,
        "midnight_census": 1,
        "admissions": 0,
        "discharges": 0,
        "transfers_in": 0,
        "transfers_out": 0,
        "patient_days": 1,
        "occupancy_pct": Decimal("6.3"),
        "unit_count": 2,
        "previous_day_census": None,
        "census_change": None,
    }
    r = render_daily_census(census_context(units=units, totals=totals, quality=[]), catalog=catalog)
    assert "6.3%" in r.html and "—" in r.html
    assert r.meta["totals"]["occupancy_label"] == "6.3%"
    assert " from " not in r.text.split("\n")[4]  # no day before: no change stated
    assert "Data quality" not in r.html  # no checks supplied: no section, no banner
    assert not r.subject.startswith("[")


def test_quality_banner_and_section(rendered, catalog):
    assert 'class="banner warning"' in rendered.html
    assert "unit_census_balances" in rendered.html
    assert rendered.subject.startswith("[DATA QUALITY: 1 failed] ")
    failing = census_context(
        quality=[
            {
                "rule": "census_not_above_licensed_beds",
                "status": "failed",
                "severity": "blocking",
                "detail": "MS5 census 37 > licensed 36",
            },
            {"rule": "adt_feed_fresh", "status": "passed", "severity": "blocking", "detail": ""},
        ]
    )
    r = render_daily_census(failing, catalog=catalog)
    assert 'class="banner error"' in r.html and "1 data quality check failed" in r.html
    assert "MS5 census 37 &gt; licensed 36" in r.html
    assert "1 of 2 checks passed" in r.html


def test_banner_names_the_failing_rules_and_links_data_docs(rendered, catalog):
    banner = rendered.html[rendered.html.index('<div class="banner warning"') :]
    banner = banner[: banner.index("</div>")]
    assert "1 data quality check failed:" in banner and "unit_census_balances" in banner
    assert "adt_messages_parsed" not in banner  # passed checks are not named
    assert '<a href="http://localhost:8080/data_docs/index.html">Data-quality details (Data Docs)</a>' in rendered.html
    assert "(unit_census_balances): warnings only." in rendered.text
    assert "Data-quality details (Data Docs): http://localhost:8080/data_docs/index.html" in rendered.text
    two = census_context(
        quality=[
            {"rule": "CEN-012", "status": "failed", "severity": "warning", "detail": "over staffed beds"},
            {"rule": "CEN-015", "status": "failed", "severity": "warning", "detail": "feed gap"},
            {"rule": "CEN-011", "status": "passed", "severity": "blocking", "detail": ""},
        ]
    )
    r = render_daily_census(two, catalog=catalog)
    banner = r.html[r.html.index('<div class="banner warning"') :]
    assert "2 data quality checks failed:" in banner and "CEN-012, CEN-015" in banner[: banner.index("</div>")]


def test_a_check_that_could_not_be_evaluated_is_shown_as_such_never_as_a_pass(catalog):
    r = render_daily_census(
        census_context(
            quality=[
                {"rule": "CEN-016", "status": "error", "severity": "blocking", "detail": "rows by unit"},
                {"rule": "CEN-011", "status": "passed", "severity": "blocking", "detail": ""},
            ]
        ),
        catalog=catalog,
    )
    assert r.subject.startswith("[DATA QUALITY: 1 failed] ")
    assert 'class="banner error"' in r.html and "CEN-016" in r.html
    assert '<td class="status failed">Not evaluated' in r.html and "1 of 2 checks passed" in r.html
    assert "  - CEN-016 [blocking, not evaluated]: rows by unit" in r.text
    with pytest.raises(ValueError, match="status must be one of"):
        render_daily_census(census_context(quality=[{"rule": "X", "status": "skipped"}]), catalog=catalog)


def test_values_are_escaped(catalog):
    units = [("X", '<script>alert("x")</script> & Co', "telemetry", 10, 5, 1, 1, 0, 0, 5, Decimal("50.0"), True)]
    r = render_daily_census(
        census_context(units=units, facility_name='St. Mary\'s "North" </style> & Co'), catalog=catalog
    )
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html
    assert "</style> & Co" not in r.html
    assert r.pdf.startswith(b"%PDF-") and r.pdf_pages >= 1


def test_rendering_is_deterministic(rendered, catalog, monkeypatch):
    import time

    # an hour later by the clock: nothing the clock stamps (font subsets) may change the bytes
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3600)
    again = render_daily_census(census_context(), catalog=catalog)
    assert again.html == rendered.html
    assert again.images == rendered.images
    assert again.pdf == rendered.pdf


def test_bad_context_is_rejected(catalog):
    ctx = census_context()
    ctx["generated_at"] = datetime(2026, 11, 3, 5, 12)  # naive
    with pytest.raises(ValueError, match="timezone-aware"):
        render_daily_census(ctx, catalog=catalog)
    ctx = census_context()
    ctx["units"][0]["midnight_census"] = -1
    with pytest.raises(ValueError, match="midnight_census"):
        render_daily_census(ctx, catalog=catalog)
    ctx = census_context()
    ctx["units"].append(dict(ctx["units"][0]))
    with pytest.raises(ValueError, match="appears twice"):
        render_daily_census(ctx, catalog=catalog)


def test_write_outputs(rendered, tmp_path):
    paths = write_outputs(rendered, tmp_path / "reports")
    assert paths["pdf"].name == "daily_census_NGH_2026-11-02.pdf"
    assert paths["pdf"].read_bytes() == rendered.pdf
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2 and "cid:" not in page
    assert sorted(p.name for p in paths["html"].parent.iterdir()) == sorted(p.name for p in paths.values())


def test_catalog_and_env_override(tmp_path, monkeypatch):
    entry = load_catalog()["reports"]["daily_census"]
    assert entry["template"] == "daily_census.html.j2"
    assert entry["formats"] == ["html", "pdf", "csv"]
    assert "healthops@localhost" in entry["sender"]
    assert "nurse.manager.icu@example.org" in entry["recipients"] and len(entry["recipients"]) == 4
    assert {
        "address": "nurse.manager.icu@example.org",
        "filter": {"facility": "NGH", "units": ["ICU", "SDU"]},
    } in entry["distribution"]
    bad = tmp_path / "bad.yml"
    for recipients, problem in (
        ("[{address: a@example.org, filter: {ward: X}}]", "unknown filter keys"),
        ("[{address: a@example.org, filter: {units: ICU}}]", "units must be a list"),
        ("[a@example.org, A@example.org]", "listed twice"),
        ("[{filter: {facility: NGH}}]", "e-mail address"),
    ):
        bad.write_text(f"reports:\n  daily_census:\n    template: t\n    subject: s\n    recipients: {recipients}\n")
        with pytest.raises(ValueError, match=problem):
            load_catalog(bad)
    alt = tmp_path / "catalog.yml"
    alt.write_text(
        "reports:\n  daily_census:\n    template: daily_census.html.j2\n"
        "    subject: 'Census {facility_code} {report_date}'\n    recipients: [a@example.org]\n"
        "    period: day\n    schedule: {after: healthops_census_nightly}\n"
    )
    monkeypatch.setenv("HEALTHOPS_REPORT_CATALOG", str(alt))
    cat = load_catalog()
    assert cat["reports"]["daily_census"]["sender"] == "healthops@localhost"
    assert render_daily_census(census_context(quality=[])).subject == "Census NGH 2026-11-02"


# ----------------------------------------------------------------------------- delivery


def test_send_to_outbox_and_read_back(rendered, catalog, outbox):
    entry = catalog["reports"]["daily_census"]
    msg = build_message(rendered, entry["sender"], entry["recipients"])
    refused = send(msg, SmtpSettings.from_url(outbox.url), retries=0)
    assert refused == {}

    stored = outbox.messages()
    assert len(stored) == 1
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z_1\.eml", stored[0].name)
    assert not list(stored[0].parent.glob(".*.tmp"))
    # The exact bytes smtplib sent (CRLF, as flattened for the wire).
    assert stored[0].read_bytes() == msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))

    got = parse_eml(stored[0])
    assert got["Subject"] == rendered.subject
    assert [a for _, a in getaddresses([got["To"]])] == entry["recipients"]
    assert got["Message-ID"] == msg["Message-ID"]
    assert got["X-Healthops-Report"] == "daily_census"
    assert got["X-Healthops-Period"] == "2026-11-02"
    assert got.get_content_type() == "multipart/mixed"

    text = got.get_body(preferencelist=("plain",))
    body = got.get_body(preferencelist=("html",))
    assert "Inpatients at midnight: 101" in text.get_content()
    html = body.get_content()
    for _, name, *_ in UNITS:
        assert html_lib.escape(name) in html

    related = [p for p in got.walk() if p.get("Content-ID")]
    assert len(related) == len(rendered.images)
    for part in related:
        cid = part["Content-ID"].strip("<>")
        png, alt = rendered.images[cid]
        data = part.get_content()
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline"
        assert data == png and data.startswith(PNG_SIGNATURE) and len(data) > 1000
        assert f'src="cid:{cid}"' in html
        assert f'alt="{html_lib.escape(alt)}"' in html

    attachments = list(got.iter_attachments())
    pdfs = [a for a in attachments if a.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    assert pdfs[0].get_filename() == "daily_census_NGH_2026-11-02.pdf"
    assert pdfs[0].get_content() == rendered.pdf


def test_message_is_deterministic_per_report_period_and_recipients(rendered, catalog):
    a = build_message(rendered, "healthops@localhost", ["b@example.org", "a@example.org"])
    b = build_message(rendered, "healthops@localhost", ["A@example.org", "Bee <b@example.org>"])
    assert a["Message-ID"] == b["Message-ID"]
    assert a.as_bytes() == build_message(rendered, "healthops@localhost", ["b@example.org", "a@example.org"]).as_bytes()
    other_day = message_id("daily_census", "NGH", "2026-11-03", ["a@example.org", "b@example.org"], "localhost")
    other_set = message_id("daily_census", "NGH", "2026-11-02", ["a@example.org"], "localhost")
    assert len({a["Message-ID"], other_day, other_set}) == 3
    with pytest.raises(ValueError):
        build_message(rendered, "healthops@localhost", [])
    with pytest.raises(ValueError):
        build_message(rendered, "healthops@localhost", ["x@example.org\r\nBcc: evil@example.org"])


def test_smtp_settings_from_url():
    s = SmtpSettings.from_url("smtp://user:pass@mail.example.org:2525?starttls=true")
    assert (s.host, s.port, s.username, s.password, s.starttls, s.ssl) == (
        "mail.example.org",
        2525,
        "user",
        "pass",
        True,
        False,
    )
    assert "pass" not in repr(s) and "pass" not in s.redacted_url()

    s = SmtpSettings.from_url("smtp://127.0.0.1:8025")
    assert (s.host, s.port, s.username, s.password, s.starttls, s.ssl, s.timeout) == (
        "127.0.0.1",
        8025,
        None,
        None,
        False,
        False,
        30,
    )

    assert SmtpSettings.from_url("smtp://relay").port == 25
    assert SmtpSettings.from_url("smtp://relay?starttls=1").port == 587
    s = SmtpSettings.from_url("smtps://relay?timeout=5")
    assert (s.port, s.ssl, s.timeout) == (465, True, 5.0)
    # Percent-encoded credentials (an @ or : in a password).
    s = SmtpSettings.from_url("smtp://svc%40hospital.org:p%3As%40ss@relay:587?starttls=yes")
    assert (s.username, s.password) == ("svc@hospital.org", "p:s@ss")
    assert SmtpSettings.from_url("smtp://[::1]:2525").host == "::1"

    for bad in (
        "http://relay",
        "smtp://",
        "smtp://relay?starttls=maybe",
        "smtp://relay?tls=true",
        "smtp://relay?starttls=true&ssl=true",
        "smtp://relay/path",
        "smtp://relay:99999",
    ):
        with pytest.raises(ValueError):
            SmtpSettings.from_url(bad)


class ScriptedHandler:
    """Answers DATA with the scripted replies in turn (the last one repeats)."""

    def __init__(self, *replies: str) -> None:
        self.replies = replies
        self.calls = 0
        self.accepted: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        if reply.startswith("250"):
            self.accepted.append(envelope.original_content)
        return reply


@pytest.fixture
def scripted_server():
    controllers = []

    def start(*replies: str):
        handler = ScriptedHandler(*replies)
        controller = Controller(handler, hostname="127.0.0.1", port=find_free_port(), server_hostname="scripted")
        controller.start()
        controllers.append(controller)
        return handler, SmtpSettings.from_url(f"smtp://127.0.0.1:{controller.port}?timeout=5")

    yield start
    for c in controllers:
        c.stop()


def test_retry_after_451_then_delivered(rendered, scripted_server):
    handler, settings = scripted_server("451 4.3.0 Try again later", "250 2.0.0 OK")
    msg = build_message(rendered, "healthops@localhost", ["house.supervisor@example.org"])
    assert send(msg, settings, retries=3, backoff_seconds=0.01) == {}
    assert handler.calls == 2
    assert len(handler.accepted) == 1
    assert BytesParser(policy=policy.default).parsebytes(handler.accepted[0])["Message-ID"] == msg["Message-ID"]


def test_no_retry_on_5xx(rendered, scripted_server):
    handler, settings = scripted_server("554 5.7.1 Rejected by policy")
    msg = build_message(rendered, "healthops@localhost", ["house.supervisor@example.org"])
    with pytest.raises(smtplib.SMTPDataError) as err:
        send(msg, settings, retries=3, backoff_seconds=0.01)
    assert err.value.smtp_code == 554
    assert handler.calls == 1


def test_retries_exhausted_on_persistent_4xx(rendered, scripted_server):
    handler, settings = scripted_server("452 4.3.1 Insufficient system storage")
    msg = build_message(rendered, "healthops@localhost", ["house.supervisor@example.org"])
    with pytest.raises(smtplib.SMTPDataError):
        send(msg, settings, retries=2, backoff_seconds=0.01)
    assert handler.calls == 3


def test_connection_refused_is_retried_then_raised(rendered):
    port = find_free_port()  # nothing listens here
    msg = build_message(rendered, "healthops@localhost", ["house.supervisor@example.org"])
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        send(msg, SmtpSettings("127.0.0.1", port, timeout=2), retries=2, backoff_seconds=0.05)
    assert time.monotonic() - started >= 0.05 + 0.1  # waited 0.05 then 0.1 between the 3 attempts
    assert is_transient(ConnectionRefusedError()) and not is_transient(smtplib.SMTPDataError(550, b"no"))


def test_outbox_module_runs_in_foreground(rendered, tmp_path):
    port = find_free_port()
    outdir = tmp_path / "relay"
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthops.reports.outbox", "--dir", str(outdir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert f"smtp://127.0.0.1:{port}" in line, line + proc.stderr.read() if proc.poll() is not None else line
        msg = build_message(rendered, "healthops@localhost", ["nurse.manager.icu@example.org"])
        send(msg, SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), retries=0)
        stored = sorted(outdir.glob("*.eml"))
        assert len(stored) == 1 and parse_eml(stored[0])["Subject"] == rendered.subject
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
