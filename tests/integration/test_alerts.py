"""The failure alert to data engineers, without Airflow: a real warehouse (the
run's audit.rule_results) and a real SMTP server on loopback."""

from __future__ import annotations

import email
import json
from email import policy

import pytest

from healthops import pipeline
from healthops.alerts import RunFailure, last_error, notify_run_failure
from healthops.reports.delivery import SmtpSettings
from healthops.reports.outbox import find_free_port, start_outbox
from healthops.warehouse.connection import connect

from test_census_rules import CENSUS, D, build

RUN = "scheduled__2025-03-01T08:00:00+00:00"


@pytest.fixture
def box(tmp_path):
    with start_outbox(tmp_path / "mail") as box:
        yield box


def _only_mail(box):
    paths = box.messages()
    assert len(paths) == 1, paths
    return email.message_from_bytes(paths[0].read_bytes(), policy=policy.default)


def test_blocking_failure_alert_names_rules_and_counts(warehouse_url, box):
    build(warehouse_url)
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into marts.fct_census_daily values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            ("NGH", "NOSUCH", *CENSUS[0][2:]),
        )
    with pytest.raises(pipeline.BlockingQualityFailure):
        pipeline.validate_census(D, RUN, url=warehouse_url)

    failure = RunFailure(
        dag_id="healthops_census_nightly",
        run_id=RUN,
        logical_date=D,
        task_id="validate_census",
        log_url="http://airflow:8080/dags/x/runs/y/tasks/validate_census",
    )
    alert = notify_run_failure(failure, url=warehouse_url, smtp=SmtpSettings.from_url(box.url))
    assert [(r.rule_id, r.severity, r.rows_violating, r.rows_evaluated) for r in alert.failed_rules] == [
        ("CEN-011", "blocking", 1, len(CENSUS) + 1)
    ]
    msg = _only_mail(box)
    assert msg["Subject"] == "[healthops] nightly census FAILED for 2025-03-01: validate_census"
    assert msg["To"] == "data.engineering@example.org" and msg["Message-ID"] == alert.message_id
    body = msg.get_content()
    assert "BlockingQualityFailure: blocking data-quality rules failed for 2025-03-01: CEN-011" in body
    assert f"CEN-011 [blocking] census_daily: violating rows: 1 of {len(CENSUS) + 1} evaluated" in body
    assert "Every unit code is a unit in the hospital's reference data" in body
    assert f"Run id:       {RUN}" in body and "http://airflow:8080/dags/x/runs/y/tasks/validate_census" in body
    assert "NOSUCH" not in body  # no values of rows
    assert "were not published" in body


def test_other_failures_name_the_error_from_the_task_log(warehouse_url, box, tmp_path):
    log_file = tmp_path / "attempt=1.log"
    log_file.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {"event": "starting", "level": "info"},
                {
                    "event": "Task failed with exception",
                    "level": "error",
                    "error_detail": [
                        {"exc_type": "LookupError", "exc_value": "marts.fct_census_daily has no rows for 2025-03-01"}
                    ],
                },
            )
        )
        + "\n"
    )
    failure = RunFailure(
        dag_id="healthops_census_nightly",
        run_id="manual__1",
        logical_date=D,
        task_id="publish_daily_census",
        log_file=str(log_file),
    )
    build(warehouse_url)
    alert = notify_run_failure(failure, url=warehouse_url, smtp=SmtpSettings.from_url(box.url))
    assert alert.failed_rules == []
    body = _only_mail(box).get_content()
    assert "LookupError: marts.fct_census_daily has no rows for 2025-03-01" in body
    assert "were not published" not in body


def test_alert_goes_out_when_the_warehouse_is_down(box):
    down = f"postgresql://nobody:x@127.0.0.1:{find_free_port()}/healthops"
    failure = RunFailure(
        dag_id="healthops_census_nightly",
        run_id="manual__2",
        logical_date=D,
        task_id="load_adt",
        exception="OperationalError: connection refused",
    )
    alert = notify_run_failure(failure, url=down, smtp=SmtpSettings.from_url(box.url))
    body = _only_mail(box).get_content()
    assert alert.subject.endswith(": load_adt")
    assert "OperationalError: connection refused" in body
    assert "could not be read" in body


def test_last_error_reads_a_printed_traceback(tmp_path):
    log_file = tmp_path / "run.log"
    log_file.write_text(
        'INFO starting\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "    run()\nhealthops.pipeline.BlockingQualityFailure: blocking rules failed: CEN-011\n"
        "INFO done\n"
    )
    assert last_error(log_file) == "healthops.pipeline.BlockingQualityFailure: blocking rules failed: CEN-011"
    assert last_error(tmp_path / "missing.log") is None


# -- the PHI scan of an alert: it redacts, it never stops the alert -------------------------
LEAKY = "DataError: visit V9 of M7734001 (Winterbottom Rosalind) refused: unknown unit 'O'BRIEN WARD'"


def test_identifiers_the_warehouse_knows_are_redacted_and_the_alert_goes_out(warehouse_url, box):
    with connect(warehouse_url) as conn:
        conn.execute(
            """insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id,
                   sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn,
                   patient_name, birth_date, raw_text)
               values (gen_random_uuid(), %s, 'x.hl7', 1, 'C1', 'NGH', 'ADT', 'A01', now(), now(), 'V1',
                       'M7734001', 'WINTERBOTTOM^ROSALIND', %s, 'MSH|...')""",
            (D, D),  # a newborn: born on the run's date, which the alert still shows
        )
    failure = RunFailure(
        dag_id="healthops_census_nightly", run_id="manual__3", logical_date=D, task_id="load_adt", exception=LEAKY
    )
    alert = notify_run_failure(failure, url=warehouse_url, smtp=SmtpSettings.from_url(box.url))
    msg = _only_mail(box)
    body = msg.get_content()
    assert "M7734001" not in body and "WINTERBOTTOM" not in body.upper() and "ROSALIND" not in body.upper()
    assert "DataError: visit V9 of [redacted] ([redacted] [redacted]) refused" in body
    assert alert.redacted == 3
    assert "PHI scan: 3 value(s) replaced by [redacted] (patient identifiers known to the warehouse)" in body
    assert msg["Subject"] == f"[healthops] nightly census FAILED for {D.isoformat()}: load_adt"  # the date kept
    # the warehouse does not know the unit: what it cannot name is left as written
    assert "'O'BRIEN WARD'" in body


def test_without_a_warehouse_what_looks_like_an_identifier_is_redacted(box):
    down = f"postgresql://nobody:x@127.0.0.1:{find_free_port()}/healthops"
    failure = RunFailure(
        dag_id="healthops_census_nightly", run_id="manual__4", logical_date=D, task_id="load_adt", exception=LEAKY
    )
    alert = notify_run_failure(failure, url=down, smtp=SmtpSettings.from_url(box.url))
    body = _only_mail(box).get_content()
    assert "M7734001" not in body and "BRIEN" not in body
    assert "DataError: visit V9 of [redacted] (Winterbottom Rosalind) refused: unknown unit '[redacted]'" in body
    assert alert.redacted == 2
    assert "PHI scan: 2 value(s) replaced by [redacted] (they look like patient identifiers; the warehouse" in body
