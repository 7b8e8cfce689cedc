"""The staffing huddle and the weekly labor productivity report, end to end on a real
warehouse: the hand-built staffing scenario of test_staffing_scenarios.py (its HR
snapshots, punches and ADT movements, loaded at once), pay lines, and workforce
findings written to the audit tables as the validation step writes them; the real dbt
models; publication to a real SMTP server on loopback; the figures read back from the
HTML, the text part and the CSV against values computed by hand.

Northgate (NGH), 2026-10-28, by hand (docs/definitions.md#ratio-compliance-at-every-instant):
  MS5   6 patients from 08:00, no licensed nurse before 10-29: 16 h (960 min, 64
        intervals) out of ratio, worst 08:00 (6 patients, 0 nurses; a tie of 15-minute
        intervals, the earliest); NHPPD 0.00 on 6 patient days.
  ICU   R2 out at 07:00, R3 in at 07:07: R1 alone with 3 patients, 7 min out of ratio
        at 07:00; fewest licensed nurses 1 (meals, 07:00), typical 2; NHPPD 15.96 total
        and RN (47.88 h / 3 patient days) against the targets 16.00 and 14.00.
  TELE  in ratio all day; 27.0 h / 4 patient days = 6.75.

ISO week 2026-W44 (Oct 26 - Nov 1), MS5: patient days 6 a day from 10-28 = 30; RN
hours 12.0 + 12.5 (M1) + 5.0 + 8.0 (D1) = 37.5; LVN 12.0 + 12.5 + 5.0 + 8.5 = 38.0;
CNA 8.5: NHPPD 84.0 / 30 = 2.80, RN 1.25. Pay lines REG 44.0, OT 4.5, PTO 8.0:
overtime 4.5 / 48.5 productive = 9.3%; budget 4 RN + 2 LVN = 6.00 FTEs.
Week 2026-W45 (one day built, 11-02): M1 12.5 RN hours on 6 patient days = 2.08;
REG 12.0 + OT 0.5: overtime 4.0%; paid FTE 12.5 / (2,080 / 365) = 2.19.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import uuid
from datetime import date, timedelta
from email import policy
from email.parser import BytesParser

import pytest
from psycopg.types.json import Jsonb

from healthops.load.adt import load_adt_date
from healthops.reports.delivery import SmtpSettings
from healthops.reports.outbox import start_outbox
from healthops.reports.publish import publish
from healthops.warehouse.connection import connect

from reporting_build import build_models, template_database
from workforce_builders import (
    NIGHT_A_PUNCHES,
    NIGHT_B_PUNCHES,
    NIGHT_C_PUNCHES,
    add_punches,
    adt,
    at,
    hr_snapshot,
    punch,
)

pytestmark = pytest.mark.db

DAY = date(2026, 10, 28)
MODELS = [
    "+rpt_staffing_huddle_units",
    "+rpt_staffing_huddle_intervals",
    "+rpt_staffing_findings",
    "+rpt_labor_productivity_weekly",
]
ICU_MANAGER, MEDSURG_MANAGER = "nurse.manager.icu@example.org", "nurse.manager.medsurg@example.org"
SUPERVISOR, SGH_SUPERVISOR = "house.supervisor@example.org", "house.supervisor.sgh@example.org"
NIGHT_D_PUNCHES = [punch(70, "M1", "IN", at("11-02 07:00"), "MS5"), punch(71, "M1", "OUT", at("11-02 19:30"), "MS5")]
PAY_LINES = [  # pay_line_id, worker, work date, cost center, job, pay code, hours
    (1, "M1", date(2026, 10, 29), "6050", "RN", "REG", 12.0),
    (2, "M1", date(2026, 10, 30), "6050", "RN", "REG", 8.0),
    (3, "M1", date(2026, 10, 30), "6050", "RN", "OT", 4.5),
    (4, "L1", date(2026, 10, 29), "6050", "LVN", "REG", 12.0),
    (5, "L1", date(2026, 10, 30), "6050", "LVN", "PTO", 8.0),
    (6, "D1", date(2026, 10, 31), "6050", "RN", "REG", 12.0),
    (7, "M1", date(2026, 11, 2), "6050", "RN", "REG", 12.0),
    (8, "M1", date(2026, 11, 2), "6050", "RN", "OT", 0.5),
]


def add_pay_lines(conn) -> None:
    batch = uuid.uuid4()
    with conn.cursor().copy(
        "copy raw.tk_pay_lines (batch_id, pay_line_id, worker_id, work_date, cost_center, job_code, pay_code,"
        " hours, updated_at, deleted) from stdin"
    ) as copy:
        for pid, worker, day, cc, job, code, hours in PAY_LINES:
            copy.write_row((batch, pid, worker, day, cc, job, code, hours, at("11-02 23:00"), False))


def validation(conn, suite: str, day: date, results: list[tuple], run_at: str) -> None:
    """One validation run as the checker records it: the run, its rule results
    (rule, domain, severity, status, evidence keys) and the evidence rows."""
    run = uuid.uuid4()
    conn.execute(
        """insert into audit.validation_runs (validation_run_id, suite_name, data_asset, logical_date, dag_run_id,
               code_version, success, evaluated_expectations, successful_expectations, run_at, gx_result)
           values (%s, %s, 'marts.fct_unit_staffing_interval', %s, %s, 'test', %s, %s, %s, %s, '{}')""",
        (
            run,
            suite,
            day,
            f"scheduled__{day}",
            all(r[3] == "passed" for r in results),
            len(results),
            sum(r[3] == "passed" for r in results),
            at(run_at),
        ),
    )
    for rule, domain, severity, status, keys in results:
        conn.execute(
            """insert into audit.rule_results (validation_run_id, rule_id, expectation_type, severity, success,
                   rows_evaluated, rows_violating, violating_share, detail, status, domain, description,
                   evidence, violations_kept, violations_cap)
               values (%s, %s, 'UnexpectedRowsExpectation', %s, %s, 96, %s, 0, '{}', %s, %s, 'test rule',
                       %s, %s, 20)""",
            (
                run,
                rule,
                severity,
                status == "passed",
                len(keys),
                status,
                domain,
                "rows_query" if keys else None,
                len(keys) if keys else None,
            ),
        )
        for i, k in enumerate(keys, 1):
            conn.execute(
                "insert into audit.rule_violations (validation_run_id, rule_id, violation_no, keys)"
                " values (%s, %s, %s, %s)",
                (run, rule, i, Jsonb(k)),
            )


def record_findings(conn) -> None:
    from healthops.quality import audit_trail

    # an earlier run of the day, superseded by the re-run: its WFC-009 is not shown
    validation(
        conn,
        "workforce_ratios",
        DAY,
        [("WFC-009", "workforce", "warning", "failed", [{"unit_code": "ICU"}])],
        "10-29 02:00",
    )
    validation(
        conn,
        "workforce_ratios",
        DAY,
        [
            (
                "WFC-003",
                "workforce",
                "warning",
                "failed",
                [
                    {
                        "facility_code": "NGH",
                        "unit_code": "ICU",
                        "worker_id": "R2",
                        "interval_start": "2026-10-28T07:00:00",
                    }
                ],
            ),
            ("WFC-004", "workforce", "warning", "failed", [{"worker_id": "R4", "punch_ts": "2026-10-28T23:30:00"}]),
            (
                "WFC-006",
                "workforce",
                "info",
                "failed",
                [{"facility_code": "NGH", "unit_code": "MS5", "worker_id": "A1", "shift_start": "2026-10-28T08:00:00"}],
            ),
            ("WFC-001", "workforce", "blocking", "passed", []),
        ],
        "10-29 03:00",
    )
    # a census rule failing the same day: not a workforce finding
    validation(
        conn, "census_daily", DAY, [("CEN-005", "census", "blocking", "failed", [{"unit_code": "ICU"}])], "10-29 03:00"
    )
    conn.commit()
    reviewed = [f for f in audit_trail.open_findings(conn, rule="WFC-006")]
    assert len(reviewed) == 1
    audit_trail.review(conn, reviewed[0].finding_id, "N. Manager", "A1 was oriented by the charge nurse; not a gap.")


def fill(url: str, landing) -> None:
    # the ADT of test_staffing_scenarios, and one more day (11-02) for week 45
    for v, bed in (("P1", "1"), ("P2", "2")):
        adt(landing, "A01", v, "10-27 18:00", "ICU", bed)
    adt(landing, "A01", "P3", "10-28 06:00", "ICU", "3")
    for i, v in enumerate(("Q1", "Q2", "Q3", "Q4"), 1):
        adt(landing, "A01", v, "10-27 12:00", "TELE", str(i))
    adt(landing, "A03", "Q4", "10-28 04:05", "TELE", "4")
    adt(landing, "A01", "Q5", "10-28 04:12", "TELE", "4")
    for i in range(1, 7):
        adt(landing, "A01", f"S{i}", "10-28 08:00", "MS5", str(i))
    for when in ("10-29 10:00", "10-30 10:00", "10-31 10:00", "11-01 10:00", "11-02 10:00"):
        adt(landing, "A08", "S1", when, "MS5", "1")
    days = [date(2026, 10, 26) + timedelta(days=i) for i in range(8)]  # 10-26 .. 11-02
    for d in days[1:]:
        load_adt_date(url, landing, d)
    with connect(url) as conn:
        for d in days:
            hr_snapshot(conn, d)
        for punches in (NIGHT_A_PUNCHES, NIGHT_B_PUNCHES, NIGHT_C_PUNCHES, NIGHT_D_PUNCHES):
            add_punches(conn, punches)
        add_pay_lines(conn)
        record_findings(conn)
    build_models(url, MODELS)


@pytest.fixture(scope="module")
def staffing_template(pg_server, migrated_template, tmp_path_factory):
    landing = tmp_path_factory.mktemp("staffing_landing")
    with template_database(pg_server, migrated_template, lambda url: fill(url, landing)) as name:
        yield name


@pytest.fixture
def warehouse(staffing_template, make_database):
    return make_database(template=staffing_template)


@pytest.fixture
def box(tmp_path):
    with start_outbox(tmp_path / "outbox") as b:
        yield b


def mails(box) -> dict:
    out = {}
    for p in box.messages():
        m = BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        out.setdefault(m["X-Healthops-Report"], {})[m["To"]] = m
    return out


def text_of(m) -> str:
    return m.get_body(preferencelist=("plain",)).get_content()


def html_of(m) -> str:
    return m.get_body(preferencelist=("html",)).get_content()


def attachment(m, mime: str):
    return next(p for p in m.iter_attachments() if p.get_content_type() == mime)


def csv_rows(m) -> list[dict]:
    return list(csv.DictReader(io.StringIO(attachment(m, "text/csv").get_content())))


def test_the_huddle_leads_with_the_units_out_of_ratio(warehouse, box, tmp_path):
    out = publish("staffing_huddle", DAY.isoformat(), url=warehouse, smtp=SmtpSettings.from_url(box.url))
    got = mails(box)["staffing_huddle"]
    # SGH has no timekeeping data: no report for its supervisor, and no error for the others
    assert sorted(got) == sorted([ICU_MANAGER, MEDSURG_MANAGER, SUPERVISOR])
    assert [r for _, r in out.no_data] == [SGH_SUPERVISOR]

    # the ICU manager: her unit with 7 minutes out of ratio at 07:00 leads
    icu = got[ICU_MANAGER]
    assert icu["Subject"] == ("[ICU out of ratio] Staffing huddle — Northgate General Hospital (ICU, SDU) — 2026-10-28")
    text = text_of(icu)
    lead = text.split("By unit")[0]
    assert "Intensive Care Unit: 7 min in 1 interval(s); worst 07:00: 3 patients, 1 licensed nurse" in lead
    assert "Medical/Surgical" not in text and "Telemetry" not in text
    rows = {r["unit_code"]: r for r in csv_rows(icu)}
    assert set(rows) <= {"ICU", "SDU"}
    assert {
        k: rows["ICU"][k]
        for k in (
            "midnight_census",
            "patient_days",
            "licensed_nurses_fewest",
            "licensed_nurses_typical",
            "intervals_out_of_ratio",
            "minutes_out_of_ratio",
            "worst_interval_label",
            "worst_patients",
            "worst_licensed_nurses",
            "nhppd_total",
            "nhppd_total_target",
            "nhppd_rn",
            "nhppd_rn_target",
            "open_findings",
        )
    } == {
        "midnight_census": "3",
        "patient_days": "3",
        "licensed_nurses_fewest": "1",
        "licensed_nurses_typical": "2",
        "intervals_out_of_ratio": "1",
        "minutes_out_of_ratio": "7.0",
        "worst_interval_label": "07:00",
        "worst_patients": "3",
        "worst_licensed_nurses": "1",
        "nhppd_total": "15.96",
        "nhppd_total_target": "16.00",
        "nhppd_rn": "15.96",
        "nhppd_rn_target": "14.00",
        "open_findings": "1",
    }
    html = html_of(icu)
    assert "1 unit out of ratio" in html and "Worst 07:00: 3 patients, 1 licensed nurse." in html
    # her findings: WFC-003 on the ICU by worker id and time; not the facility-wide WFC-004,
    # not the reviewed MS5 one, not the superseded run's WFC-009, not the census rule
    assert "WFC-003" in html and "R2" in html and "2026-10-28 07:00" in html
    assert not any(r in html for r in ("WFC-004", "WFC-006", "WFC-009", "CEN-005"))

    # the med-surg manager: MS5 (16 hours without a licensed nurse) leads, TELE in ratio
    medsurg = got[MEDSURG_MANAGER]
    assert medsurg["Subject"].startswith("[MS5 out of ratio] Staffing huddle — Northgate General Hospital (MS5, TELE)")
    assert [r["unit_code"] for r in csv_rows(medsurg)] == ["MS5", "TELE"]
    ms5, tele = csv_rows(medsurg)
    assert (ms5["minutes_out_of_ratio"], ms5["intervals_out_of_ratio"], ms5["worst_interval_label"]) == (
        "960.0",
        "64",
        "08:00",
    )
    assert (ms5["worst_patients"], ms5["worst_licensed_nurses"], ms5["nhppd_total"], ms5["patient_days"]) == (
        "6",
        "0",
        "0.00",
        "6",
    )
    assert (tele["minutes_out_of_ratio"], tele["worst_interval_label"], tele["nhppd_total"], tele["patient_days"]) == (
        "0.0",
        "",
        "6.75",
        "4",
    )
    assert "Medical/Surgical 5 East: 16 h in 64 interval(s); worst 08:00: 6 patients, 0 licensed nurses" in text_of(
        medsurg
    )
    assert "Open workforce findings: none" in text_of(medsurg)
    assert re.search(r"Open workforce findings</h2>\s*<p class=\"none\">none</p>", html_of(medsurg))

    # the house supervisor: every unit of NGH, MS5 then ICU first; the facility-wide finding too
    sup = got[SUPERVISOR]
    order = [r["unit_code"] for r in csv_rows(sup)]
    assert order[:2] == ["MS5", "ICU"] and "TELE" in order
    assert sup["Subject"].startswith("[MS5, ICU out of ratio] ")
    assert "WFC-003" in html_of(sup) and "WFC-004" in html_of(sup) and "WFC-006" not in html_of(sup)
    # one chart, inline; a PDF
    inline = [p for p in sup.walk() if p.get("Content-ID")]
    assert len(inline) == 1 and inline[0].get_content().startswith(b"\x89PNG")
    pdf = attachment(sup, "application/pdf").get_content()
    assert pdf.startswith(b"%PDF")
    (tmp_path / "huddle.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(tmp_path / "huddle.pdf"), str(tmp_path / "huddle")], check=True)
    assert sorted(p.name for p in tmp_path.glob("huddle-*.png"))

    # a retry sends nothing
    again = publish("staffing_huddle", DAY.isoformat(), url=warehouse, smtp=SmtpSettings.from_url(box.url))
    assert again.sent == []


def test_the_weekly_report_goes_out_on_sunday_with_the_week_before(warehouse, box, tmp_path):
    smtp = SmtpSettings.from_url(box.url)
    # a Tuesday night's run: no week ends, nothing to do
    tuesday = publish("labor_productivity_weekly", "2026-10-27", url=warehouse, smtp=smtp)
    assert tuesday.sent == [] and box.messages() == []

    w44 = publish("labor_productivity_weekly", "2026-11-01", url=warehouse, smtp=smtp)  # Sunday: week 44
    assert {s["period"] for s in w44.sent} == {"2026-W44"}
    got = mails(box)["labor_productivity_weekly"]
    assert sorted(got) == sorted([ICU_MANAGER, MEDSURG_MANAGER, SUPERVISOR])
    medsurg = got[MEDSURG_MANAGER]
    assert medsurg["Subject"] == (
        "Labor productivity, weekly — Northgate General Hospital (MS5, TELE) — Week 44, Oct 26 – Nov 1, 2026"
    )
    ms5 = next(r for r in csv_rows(medsurg) if r["unit_code"] == "MS5")
    assert {
        k: ms5[k]
        for k in (
            "week",
            "patient_days",
            "nursing_hours",
            "rn_hours",
            "nhppd_total",
            "nhppd_rn",
            "overtime_hours",
            "overtime_pct",
            "contract_pct",
            "budgeted_fte",
            "prior_nhppd_total",
        )
    } == {
        "week": "2026-W44",
        "patient_days": "30",
        "nursing_hours": "84.00",
        "rn_hours": "37.50",
        "nhppd_total": "2.80",
        "nhppd_rn": "1.25",
        "overtime_hours": "4.50",
        "overtime_pct": "9.3",
        "contract_pct": "0.0",
        "budgeted_fte": "6.00",
        "prior_nhppd_total": "",
    }
    # paid FTEs: 56.5 paid hours over the days built of the week
    days = int(ms5["days_covered"])
    assert ms5["paid_fte"] == f"{56.5 / (2080 * days / 365):.2f}"
    assert float(ms5["fte_variance"]) == pytest.approx(float(ms5["paid_fte"]) - 6.0)
    assert "ALL" not in {r["unit_code"] for r in csv_rows(medsurg)}  # no total of a subset of units
    # the ICU (a contract RN, 12 of its hours on 10-28) for its manager; the total for the supervisor
    icu = next(r for r in csv_rows(got[ICU_MANAGER]) if r["unit_code"] == "ICU")
    assert float(icu["contract_pct"]) == pytest.approx(100 * 12 / float(icu["nursing_hours"]), abs=0.05)
    assert "MS5" not in {r["unit_code"] for r in csv_rows(got[ICU_MANAGER])}
    assert csv_rows(got[SUPERVISOR])[-1]["unit_code"] == "ALL"

    # next Sunday: week 45 (one day built) beside week 44
    w45 = publish("labor_productivity_weekly", "2026-11-08", url=warehouse, smtp=smtp)
    assert {s["period"] for s in w45.sent} == {"2026-W45"}  # week 44 unchanged: no revision
    new = [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        for p in box.messages()
        if b"X-Healthops-Period: 2026-W45" in p.read_bytes()
    ]
    medsurg45 = next(m for m in new if m["To"] == MEDSURG_MANAGER)
    ms5 = next(r for r in csv_rows(medsurg45) if r["unit_code"] == "MS5")
    assert {
        k: ms5[k]
        for k in (
            "days_covered",
            "patient_days",
            "nhppd_total",
            "nhppd_rn",
            "overtime_pct",
            "paid_fte",
            "prior_nhppd_total",
            "prior_nhppd_rn",
            "prior_overtime_pct",
        )
    } == {
        "days_covered": "1",
        "patient_days": "6",
        "nhppd_total": "2.08",
        "nhppd_rn": "2.08",
        "overtime_pct": "4.0",
        "paid_fte": "2.19",
        "prior_nhppd_total": "2.80",
        "prior_nhppd_rn": "1.25",
        "prior_overtime_pct": "9.3",
    }
    html = html_of(medsurg45)
    assert "Week 45, Nov 2 – 8, 2026" in html and "Oct 26 – Nov 1" in html
    pdf = attachment(medsurg45, "application/pdf").get_content()
    (tmp_path / "weekly.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(tmp_path / "weekly.pdf"), str(tmp_path / "weekly")], check=True)
    assert sorted(p.name for p in tmp_path.glob("weekly-*.png"))
