"""The monthly compliance and data-quality report for auditors, end to end on a real
warehouse: real GX validations kept in the audit trail, a review, load batches, and
the report's reporting models (rpt_compliance_*) built over them once per module;
then the report's figures against hand-counted expectations, its PDF, chart and
lineage CSV, delivery over a real SMTP server on loopback (once per content
version), a tampered history flagged in the report itself, and the report module
issuing no SQL beyond the reader's selects from its models."""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import io
import re
import tempfile
import uuid
from email import policy
from email.parser import BytesParser

import pytest
import yaml

from healthops import config
from healthops.pipeline import publish_compliance_monthly, report_month
from healthops.quality import audit_trail, gx_runner
from healthops.reports import compliance
from healthops.reports.catalog import load_catalog
from healthops.reports.compliance import KIND, lineage_csv, render_compliance
from healthops.reports.delivery import SmtpSettings
from healthops.reports.kinds import run_checks
from healthops.reports.outbox import start_outbox
from healthops.reports.periods import Month
from healthops.reports.publish import content_version
from healthops.reports.reader import ReportReader
from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import run_dbt

from reporting_build import build_models, template_database

RULES = config.EXPECTATIONS_DIR / "census_daily.yml"
D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
PNG = b"\x89PNG\r\n\x1a\n"
# The report's models and what they are built on (the exposure lists the models).
COMPLIANCE_MODELS = ["+exposure:compliance_monthly"]

DDL = """
create table marts.fct_census_daily (
    facility_code text, unit_code text, census_date date, midnight_census integer, admissions integer,
    discharges integer, transfers_in integer, transfers_out integer, patient_days integer, staffed_beds integer)
"""
CLEAN = [
    ("NGH", "ICU", D1, 10, 2, 1, 1, 0, 10, 12),
    ("NGH", "SDU", D1, 14, 1, 2, 0, 1, 14, 16),
]
# D2: 2 negative census rows (CEN-005, blocking) and 1 unit over its staffed beds (CEN-012, warning)
DIRTY = CLEAN + [
    ("NGH", "PSY", D2, -1, 0, 1, 0, 0, 0, 14),
    ("NGH", "PSY", D1, -2, 0, 1, 0, 0, 0, 14),
    ("NGH", "PEDS", D1, 15, 2, 0, 0, 0, 15, 12),
]
FILES = [  # received_date, file, records in, loaded, rejected
    (D1, "adt_20250301_01.hl7", 40, 39, 1),
    (D1, "adt_20250301_02.hl7", 12, 12, 0),
    (D2, "adt_20250302_01.hl7", 50, 48, 2),
]


def set_mart(url, rows):
    with connect(url) as conn:
        conn.execute("drop table if exists marts.fct_census_daily")
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany("insert into marts.fct_census_daily values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)


def record_history(url: str) -> None:
    """D1 clean; D2 dirty, validated twice (a re-run); D3 clean again; three files;
    one review of D2's first CEN-012 finding; then the compliance reporting models."""
    with connect(url) as conn:
        for d, file, n_in, n_loaded, n_rej in FILES:
            conn.execute(
                """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256,
                       file_bytes, records_in, records_loaded, records_rejected, dag_run_id)
                   values (%s, 'adt', %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    uuid.uuid4(),
                    d,
                    f"/landing/adt/{d}/{file}",
                    f"{hash(file) & (2**64 - 1):064x}",
                    1000 + n_in,
                    n_in,
                    n_loaded,
                    n_rej,
                    f"scheduled__{d}",
                ),
            )
    set_mart(url, CLEAN)
    gx_runner.validate_and_record(url, RULES, D1, f"scheduled__{D1}")
    set_mart(url, DIRTY)
    gx_runner.validate_and_record(url, RULES, D2, f"scheduled__{D2}")
    gx_runner.validate_and_record(url, RULES, D2, f"manual__{D2}")
    set_mart(url, CLEAN)
    gx_runner.validate_and_record(url, RULES, D3, f"scheduled__{D3}")
    with connect(url) as conn:
        first = audit_trail.open_findings(conn, rule="CEN-012")[0]
        audit_trail.review(
            conn, first.finding_id, "A. Auditor", "Surge beds opened on PEDS; confirmed with the house supervisor."
        )
    build_models(url, COMPLIANCE_MODELS)


@pytest.fixture(scope="module")
def history_template(pg_server, migrated_template, tmp_path_factory):
    """The month of history (record_history), made once and copied for each test."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("compliance_history")  # the validations' Data Docs
        for var in ("HEALTHOPS_HOME", "HEALTHOPS_OUT", "HEALTHOPS_LANDING"):
            mp.setenv(var, str(base / var.lower()))
        with template_database(pg_server, migrated_template, record_history) as name:
            yield name


@pytest.fixture
def month_of_history(history_template, make_database):
    return make_database(template=history_template)


def compliance_context(url, month="2025-03"):
    """The report's context as the publisher builds it: a reader over the kind's
    models and the checks it declares (the audit trail's verification)."""
    entry = load_catalog()["reports"]["compliance_monthly"]
    with connect(url) as conn:
        reader = ReportReader(conn, KIND.models)
        return KIND.build_context(reader, month, {}, entry, **run_checks(KIND, conn))


def test_figures_match_the_audit_history(month_of_history):
    ctx = compliance_context(month_of_history)
    s = ctx["summary"]
    assert (s["validation_runs"], s["validation_runs_passed"], s["days_validated"], s["days_in_month"]) == (4, 2, 3, 31)
    assert s["airflow_runs"] == 4  # scheduled D1, D2, D3 and the manual re-run of D2
    # every run is a finding source: 2 runs of D2 x (CEN-005 + CEN-012) = 4; one reviewed
    assert (s["findings"], s["open_findings"], s["open_blocking_findings"], s["reviews"]) == (4, 3, 2, 1)
    assert (s["rules_failed"], s["blocking_rules_failed"]) == (2, 1)
    assert (s["files"], s["records_in"], s["records_loaded"], s["records_rejected"]) == (3, 102, 99, 3)
    assert ctx["organization"] == ("All facilities: Northgate General Hospital (NGH), Southgate General Hospital (SGH)")

    rules = {r["rule_id"]: r for r in ctx["rules"]}
    assert [r["rule_id"] for r in ctx["rules"]] == sorted(rules)  # catalog rules, by id
    assert (rules["CEN-005"]["days_run"], rules["CEN-005"]["days_failed"]) == (3, 1)  # latest run per day
    worst = {k: rules["CEN-005"][k] for k in ("worst_date", "worst_rows_violating", "worst_rows_evaluated")}
    assert worst == {"worst_date": D2, "worst_rows_violating": 2, "worst_rows_evaluated": 5}
    assert (rules["CEN-005"]["last_date"], rules["CEN-005"]["last_status"]) == (D3, "passed")
    assert (rules["CEN-005"]["open_findings"], rules["CEN-005"]["reviewed_findings"]) == (2, 0)
    assert (rules["CEN-012"]["open_findings"], rules["CEN-012"]["reviewed_findings"]) == (1, 1)
    assert rules["CEN-012"]["severity"] == "warning" and rules["CEN-012"]["citation"].startswith("docs/definitions.md")
    assert (rules["CEN-001"]["days_run"], rules["CEN-001"]["days_failed"]) == (3, 0)
    assert rules["CEN-014"]["days_run"] == 0  # its suite did not run in this history
    assert ctx["status"][("CEN-005", D2)] == "blocking" and ctx["status"][("CEN-012", D2)] == "warning"
    assert ctx["status"][("CEN-005", D1)] == "passed" and ("CEN-005", dt.date(2025, 3, 4)) not in ctx["status"]

    assert [f["severity"] for f in ctx["open_findings"]] == ["blocking", "blocking", "warning"]
    assert [f["logical_date"] for f in ctx["open_findings"]] == [D2, D2, D2]
    (review,) = ctx["reviews"]
    assert (review["rule_id"], review["logical_date"], review["reviewed_by"]) == ("CEN-012", D2, "A. Auditor")
    assert re.fullmatch(r"R-\d{6}", review["review_id"])

    # the lineage table: one row per day and file (file_no 0: no file that day)
    rows = [(f["logical_date"], f["file_no"], f["file_name"], f["is_first_of_day"]) for f in ctx["evidence"]]
    assert rows == [
        (D1, 1, "adt_20250301_01.hl7", True),
        (D1, 2, "adt_20250301_02.hl7", False),
        (D2, 1, "adt_20250302_01.hl7", True),
        (D3, 0, None, True),
    ]
    runs = {f["logical_date"]: (f["validation_runs"], f["validation_runs_passed"]) for f in ctx["evidence"]}
    assert runs == {D1: (1, 1), D2: (2, 0), D3: (1, 1)}
    assert ctx["audit_trail"]["ok"] and set(ctx["audit_trail"]["heads"]) == {
        "validation_runs",
        "rule_results",
        "rule_violations",
        "reviews",
    }


def test_the_grid_reads_the_latest_run_of_each_day(month_of_history):
    # D2 was validated twice: the grid shows the re-run (int_quality__latest_validation_runs)
    with connect(month_of_history) as conn:
        (rerun,) = conn.execute(
            """select validation_run_id::text from audit.validation_runs
                                   where logical_date = %s and dag_run_id like 'manual%%'""",
            (D2,),
        ).fetchone()
        reader = ReportReader(conn, KIND.models)
        grid = reader.select("rpt_compliance_rule_days", ["validation_run_id"], {"logical_date": D2})
    assert grid and {g["validation_run_id"] for g in grid} == {rerun}


def test_a_month_without_history_is_zeros_and_one_before_it_has_no_report(month_of_history):
    s = compliance_context(month_of_history, "2025-04")["summary"]  # after the history: nothing recorded
    assert (s["validation_runs"], s["days_validated"], s["days_in_month"], s["findings"], s["files"]) == (
        0,
        0,
        30,
        0,
        0,
    )
    with pytest.raises(LookupError, match="2025-02"):
        compliance_context(month_of_history, "2025-02")


def test_lineage_csv_links_every_file_to_the_days_runs(month_of_history):
    ctx = compliance_context(month_of_history)
    rows = list(csv.DictReader(io.StringIO(lineage_csv(ctx).decode())))
    # D1: 2 files x 1 run; D2: 1 file x 2 runs; D3: no file x 1 run
    assert len(rows) == 2 + 2 + 1
    with connect(month_of_history) as conn:
        hashes = {h for (h,) in conn.execute("select row_hash from audit.validation_runs")}
        shas = {h for (h,) in conn.execute("select file_sha256 from audit.load_batches")}
    assert {r["audit_row_hash"] for r in rows} == hashes
    assert {r["file_sha256"] for r in rows} - {""} == shas
    d3 = [r for r in rows if r["logical_date"] == D3.isoformat()]
    assert d3[0]["file_sha256"] == "" and d3[0]["passed"] == "true"
    d2 = [r for r in rows if r["logical_date"] == D2.isoformat()]
    assert [r["validation_dag_run_id"] for r in d2] == [f"scheduled__{D2}", f"manual__{D2}"]
    assert d2[0]["run_at_utc"].endswith("+00:00") and d2[0]["records_in"] == "50"


def test_report_renders_with_chart_pdf_and_csv(month_of_history, tmp_path):
    ctx = compliance_context(month_of_history)
    r = render_compliance(ctx)
    assert r.subject == "[2 open blocking findings] Compliance and data-quality findings — March 2025"
    assert r.pdf.startswith(b"%PDF-") and r.pdf_pages >= 2
    ((cid, (png, alt)),) = r.images.items()
    assert png.startswith(PNG) and len(png) > 5000
    assert alt.startswith("Grid of rule outcomes by day for March 2025")
    assert "CEN-005 failed on 1 of 3 days (blocking)" in alt
    assert f'src="cid:{cid}"' in r.html and "data:image/png;base64," in r.html_standalone
    for text in (
        "2 open blocking findings",
        "A. Auditor",
        "Surge beds opened on PEDS",
        "adt_20250301_01.hl7",
        "Audit trail heads",
        "no file received",
        "0 / 2",
        "2 / 5",
    ):
        assert text in r.html
    assert list(r.attachments) == ["compliance_monthly_2025-03_lineage.csv"]


def test_the_report_reads_its_models_only_and_issues_no_other_sql(month_of_history):
    entry = load_catalog()["reports"]["compliance_monthly"]
    with connect(month_of_history) as conn:
        verified = run_checks(KIND, conn)
        reader = ReportReader(conn, KIND.models)
        ctx = KIND.build_context(reader, "2025-03", {}, entry, **verified)
        KIND.render(ctx, entry)
        KIND.figures(ctx)
    assert len(reader.queries) == len(KIND.models)  # one select per model
    for q in reader.queries:
        assert re.fullmatch(r'select .+ from "rpt"\."rpt_compliance_[a-z_]+"( where .+)?( order by .+)?', q), q
        assert " join " not in q and "group by" not in q
    source = inspect.getsource(compliance)
    for forbidden in (
        "conn.execute",
        ".conn",
        "cursor(",
        "verify(",
        "import audit_trail",
        "healthops.pipeline",
        "healthops.census",
    ):
        assert forbidden not in source, forbidden


def test_the_models_grains_and_values_pass_their_dbt_tests(month_of_history):
    with tempfile.TemporaryDirectory(prefix="healthops-dbt-") as target:
        proc = run_dbt(
            ["test", "--select", "path:models/reporting/compliance", "--target-path", target, "--log-path", target],
            month_of_history,
            capture=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r"PASS=(\d+)", proc.stdout)
    assert passed and int(passed.group(1)) >= 25 and "ERROR=0" in proc.stdout, proc.stdout[-3000:]


def test_the_exposure_lists_the_kinds_models():
    path = config.DBT_PROJECT_DIR / "models" / "reporting" / "exposures" / "compliance_monthly.yml"
    (exposure,) = yaml.safe_load(path.read_text(encoding="utf-8"))["exposures"]
    assert exposure["name"] == "compliance_monthly"
    assert exposure["depends_on"] == [f"ref('{m}')" for m in KIND.models]


def test_figures_ignore_generation_time_and_chain_heads(month_of_history):
    a = KIND.figures(compliance_context(month_of_history))
    # a run in another month moves the chain heads, not this month's figures
    set_mart(month_of_history, CLEAN)
    gx_runner.validate_and_record(month_of_history, RULES, dt.date(2025, 4, 1), "scheduled__2025-04-01")
    b = KIND.figures(compliance_context(month_of_history))
    with connect(month_of_history) as conn:
        audit_trail.review(conn, audit_trail.open_findings(conn, rule="CEN-005")[0].finding_id, "B. Auditor", "ok")
    c = KIND.figures(compliance_context(month_of_history))
    assert content_version(a) == content_version(b) != content_version(c)
    assert (a["reviews"], c["reviews"]) == (1, 2)
    assert a["validation runs 2025-03-02"] == "0 of 2 passed" and a["CEN-005 failed days"] == "1 of 3"


MARCH = dt.datetime(2025, 3, 1, 6)  # the logical date of the run for March 2025
LIVE = dt.datetime(2025, 4, 1, 6, 0)  # when that scheduled run started: a live month, emailed


def test_published_once_per_content_version_over_smtp(month_of_history, tmp_path):
    recipients = load_catalog()["reports"]["compliance_monthly"]["recipients"]
    with start_outbox(tmp_path / "outbox") as box:
        smtp = SmtpSettings.from_url(box.url)
        first = publish_compliance_monthly(MARCH, "scheduled__2025-03-01", month_of_history, smtp, as_of=LIVE)
        again = publish_compliance_monthly(MARCH, "manual__retry", month_of_history, smtp, as_of=LIVE)
        with connect(month_of_history) as conn:
            f = audit_trail.open_findings(conn, rule="CEN-005")[0]
            audit_trail.review(conn, f.finding_id, "B. Auditor", "Duplicate discharge fixed at source.")
        revised = publish_compliance_monthly(MARCH, "manual__after_review", month_of_history, smtp, as_of=LIVE)
        messages = box.messages()
    assert sorted(s["recipient"] for s in first["sent"]) == sorted(recipients) and again["sent"] == []
    assert sorted((s["recipient"], s["revision"]) for s in revised["sent"]) == sorted((r, 1) for r in recipients)
    assert len(messages) == 4  # one per recipient, then one revision per recipient
    msg = BytesParser(policy=policy.default).parsebytes(messages[0].read_bytes())
    assert msg["X-Healthops-Report"] == "compliance_monthly" and msg["X-Healthops-Period"] == "2025-03"
    names = sorted(a.get_filename() for a in msg.iter_attachments())
    assert names == ["compliance_monthly_2025-03.pdf", "compliance_monthly_2025-03_lineage.csv"]
    assert (config.out() / "reports" / "compliance_monthly_2025-03.pdf").is_file()
    last = BytesParser(policy=policy.default).parsebytes(messages[-1].read_bytes())
    assert last["Subject"].startswith("[REVISED] [2 open blocking findings]") or last["Subject"].startswith(
        "[REVISED] [1 open blocking finding]"
    )
    html = last.get_body(preferencelist=("html",)).get_content()
    assert "B. Auditor" in html and "Revised report" in html and "reviews: 1 → 2" in html
    with connect(month_of_history) as conn:
        assert conn.execute(
            "select count(*), count(distinct content_sha256) from reporting.deliveries "
            "where report_id = 'compliance_monthly'"
        ).fetchone() == (4, 2)


def test_a_tampered_history_is_flagged_in_the_report(month_of_history):
    with connect(month_of_history) as conn:
        conn.execute("alter table audit.rule_results disable trigger user")
        conn.execute(
            "update audit.rule_results set rows_violating = 0 where rule_id = 'CEN-005' and rows_violating = 2"
        )
        conn.execute("alter table audit.rule_results enable trigger user")
    ctx = compliance_context(month_of_history)
    assert not ctx["audit_trail"]["ok"]
    assert "content hash mismatch" in ctx["audit_trail"]["problems"][0]
    r = render_compliance(ctx)
    assert r.subject.startswith("[AUDIT TRAIL NOT VERIFIED]")
    assert "The audit trail did not verify" in r.html


def test_month_parsing_and_report_month():
    assert Month.parse("2025-02").last == dt.date(2025, 2, 28)
    assert Month.parse(dt.date(2024, 2, 10)).last == dt.date(2024, 2, 29)
    assert len(Month.parse("2025-03").days) == 31 and Month.parse("2025-12").last == dt.date(2025, 12, 31)
    with pytest.raises(ValueError):
        Month.parse("March")
    # a scheduled run on Apr 1 06:00 has March's interval and logical date Mar 1 06:00 (facility time)
    import pendulum

    assert report_month(pendulum.datetime(2025, 3, 1, 6, tz=config.facility_tz())) == "2025-03"
    assert report_month(pendulum.datetime(2025, 3, 1, 14, tz="UTC")) == "2025-03"
