"""The `healthops` command as a user runs it: a separate process, real services."""

import email
import json
import os
import shutil
import subprocess
import sys
import tempfile
from email import policy
from pathlib import Path

import psycopg
import pytest

from healthops.reports.outbox import start_outbox
from healthops.warehouse.connection import libpq_url

from hl7_builders import build_message

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))


def _env(tmp_path, **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HEALTHOPS_WAREHOUSE_URL", "AIRFLOW_CONN_SMTP_DEFAULT", "HEALTHOPS_SMTP_URL")
    }
    env.update(
        HEALTHOPS_HOME=str(tmp_path / "home"),
        HEALTHOPS_LANDING=str(tmp_path / "landing"),
        HEALTHOPS_OUT=str(tmp_path / "out"),
        **extra,
    )
    return env


@pytest.fixture()
def short_home():
    """The server's Unix socket is made under $HEALTHOPS_HOME, and a socket's path may
    not be longer than 107 bytes: a home of its own, shorter than pytest's temporary
    folders (one level deeper under xdist)."""
    home = tempfile.mkdtemp(prefix="ho-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.db  # starts an embedded PostgreSQL of its own
def test_warehouse_url_leaves_it_running_until_stopped(tmp_path, short_home):
    env = {**_env(tmp_path), "HEALTHOPS_HOME": short_home}
    out = subprocess.run([HEALTHOPS, "warehouse-url"], env=env, capture_output=True, text=True, check=True)
    url = out.stdout.strip()
    assert url.startswith("postgresql+psycopg://postgres:") and "@127.0.0.1:" in url
    try:
        with psycopg.connect(libpq_url(url)) as conn:  # the command has exited; the server has not
            assert conn.execute("select current_database()").fetchone() == ("healthops",)
        again = subprocess.run([HEALTHOPS, "warehouse-url"], env=env, capture_output=True, text=True, check=True)
        assert again.stdout.strip() == url
    finally:
        stop = subprocess.run([HEALTHOPS, "warehouse", "stop"], env=env, capture_output=True, text=True)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(libpq_url(url), connect_timeout=3).close()


def _mails(box):
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in box.messages()]


@pytest.mark.slow
def test_run_exits_nonzero_holds_the_report_and_alerts_when_a_blocking_rule_fails(tmp_path, warehouse_url):
    day = tmp_path / "landing" / "adt" / "2026-02-02"
    day.mkdir(parents=True)
    (day / "feed.hl7").write_text(
        build_message("A01", control_id="K1", visit="V1", unit="ICU", msg_ts="202602020800")
        + build_message("A01", control_id="K2", visit="V2", unit="NOSUCH", msg_ts="202602020900")
    )
    with start_outbox(tmp_path / "mail") as box:  # a real SMTP server on loopback, as smtp_default
        env = _env(tmp_path, HEALTHOPS_WAREHOUSE_URL=warehouse_url, AIRFLOW_CONN_SMTP_DEFAULT=box.url)
        proc = subprocess.run([HEALTHOPS, "run", "--date", "2026-02-02"], env=env, capture_output=True, text=True)
        mails = _mails(box)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2026-02-02: HELD" in proc.stdout  # loaded and built, reports held back
    assert "HELD: 1 night(s)" in proc.stderr and "2026-02-02: CEN-011 (1 of " in proc.stderr
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        failed = conn.execute("""select r.rule_id, r.rows_violating, v.dag_run_id from audit.rule_results r
                                 join audit.validation_runs v using (validation_run_id)
                                 where not r.success""").fetchall()
        sent = conn.execute("select count(*) from reporting.deliveries").fetchone()[0]
    assert ("CEN-011", 1) in [f[:2] for f in failed]  # the unknown unit, one row
    assert sent == 0
    assert not (tmp_path / "out" / "reports").exists()

    # exactly one e-mail: the failure alert to the data engineers, not the daily census
    assert len(mails) == 1, [m["Subject"] for m in mails]
    alert = mails[0]
    assert alert["To"] == "data.engineering@example.org"
    assert alert["Subject"] == "[healthops] nightly census FAILED for 2026-02-02: validate_census"
    assert alert["X-Healthops-Report"] is None
    body = alert.get_content()
    run_id = failed[0][2]
    assert f"Run id:       {run_id}" in body and "Failed task:  validate_census" in body
    assert "AirflowFailException: blocking data-quality rules failed for 2026-02-02: " in body  # from the log
    assert "  CEN-011 [blocking] census_daily: violating rows: 1 of " in body
    assert "Every unit code is a unit in the hospital's reference data" in body
    assert str(tmp_path / "home" / "logs") in body  # the run's log file
    assert "NOSUCH" not in body and "MRN" not in body  # ids and counts, no values of rows

    # the evidence was published even though the report was not, and its audit rows anchored
    assert (tmp_path / "out" / "data_docs" / "index.html").exists()
    heads = [
        json.loads(line) for line in (tmp_path / "out" / "audit" / "heads" / "heads.jsonl").read_text().splitlines()
    ]
    assert [(h["logical_date"], h["dag_run_id"]) for h in heads] == [("2026-02-02", run_id)]


@pytest.mark.slow
def test_run_publishes_with_a_warning_banner_when_a_warning_rule_fails(tmp_path, warehouse_url):
    day = tmp_path / "landing" / "adt" / "2026-02-02"
    day.mkdir(parents=True)
    # 13 children admitted to the 12 staffed beds of pediatrics: over capacity warns (CEN-012)
    (day / "feed.hl7").write_text(
        "".join(
            build_message(
                "A01",
                control_id=f"P{i}",
                visit=f"PV{i}",
                mrn=f"MRN{i:04d}",
                unit="PEDS",
                room=str(300 + i),
                bed="A",
                msg_ts=f"20260202{8 + i // 2:02d}{(i % 2) * 30:02d}",
            )
            for i in range(13)
        )
    )
    with start_outbox(tmp_path / "mail") as box:
        env = _env(tmp_path, HEALTHOPS_WAREHOUSE_URL=warehouse_url, AIRFLOW_CONN_SMTP_DEFAULT=box.url)
        # --send: the date is older than the revision window, and this test reads the mail
        proc = subprocess.run(
            [HEALTHOPS, "run", "--date", "2026-02-02", "--send"], env=env, capture_output=True, text=True
        )
        mails = _mails(box)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reports emailed, as --send asks" in proc.stdout and "reports: 3 emailed" in proc.stdout
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        failed = conn.execute("""select r.rule_id, r.severity, r.rows_violating from audit.rule_results r
                                 where not r.success order by 1""").fetchall()
    assert ("CEN-012", "warning", 1) in failed and all(f[1] == "warning" for f in failed), failed

    # the report went out, once to each NGH recipient (SGH is not on this feed: nothing
    # for its supervisor), each with the warning banner naming the failing rules
    assert sorted(m["To"] for m in mails) == [
        "house.supervisor@example.org",
        "nurse.manager.icu@example.org",
        "nurse.manager.medsurg@example.org",
    ]
    report = next(m for m in mails if m["To"] == "house.supervisor@example.org")
    assert all(
        m["X-Healthops-Report"] == "daily_census" and "Warnings only" in m.get_body(("html",)).get_content()
        for m in mails
    )
    assert report["Subject"].startswith(f"[DATA QUALITY: {len(failed)} failed] Daily census")
    html = report.get_body(("html",)).get_content()
    banner = html[html.index('<div class="banner warning"') :]
    banner = banner[: banner.index("</div>")]
    for rule_id, _, _ in failed:
        assert rule_id in banner
    assert "Warnings only" in banner

    # Data Docs were built and the report (mail and file) links them
    index = tmp_path / "out" / "data_docs" / "index.html"
    assert index.exists() and "census_daily" in index.read_text()
    link = f'<a href="{index.as_uri()}">Data-quality details (Data Docs)</a>'
    assert link in html
    assert link in (tmp_path / "out" / "reports" / "daily_census_NGH_2026-02-02.html").read_text()
