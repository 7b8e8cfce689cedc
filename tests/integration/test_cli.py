"""The `healthops` command as a user runs it: a separate process, real services."""

import email
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from email import policy
from pathlib import Path

import psycopg
import pytest
import yaml

from healthops import config
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
def test_run_publishes_a_warning_night_and_holds_a_blocking_one(tmp_path, warehouse_url):
    """Two nights in one `healthops run`: the first breaks a warning rule (its reports go
    out with a banner naming it) and brings a facility no report recipient covers yet
    (loaded, built and checked; the command names it), the second a blocking rule (its
    report is held back, the data engineers alerted, the command exits 1)."""
    warn, block = "2026-02-02", "2026-02-03"
    catalog = yaml.safe_load((config.REPORT_TEMPLATES_DIR / "catalog.yml").read_text())
    daily = catalog["reports"]["daily_census"]
    daily["recipients"] = [
        r for r in daily["recipients"] if not (isinstance(r, dict) and r["filter"].get("facility") == "SGH")
    ]
    (tmp_path / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    # 13 children admitted to the 12 staffed beds of pediatrics: over capacity warns (CEN-012)
    (tmp_path / "landing" / "adt" / warn).mkdir(parents=True)
    (tmp_path / "landing" / "adt" / warn / "feed.hl7").write_text(
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
    # two admissions at the second hospital, whose supervisor is not in this catalog
    (tmp_path / "landing" / "adt" / warn / "sgh.hl7").write_text(
        "".join(
            build_message(
                "A01",
                control_id=f"S{i}",
                visit=f"SV{i}",
                mrn=f"MRN80{i}",
                facility="SGH",
                unit="ICU",
                room=str(10 + i),
                bed="A",
                msg_ts=f"2026020210{i}0",
            )
            for i in range(2)
        )
    )
    # an admission to a unit the hospital does not have: blocking (CEN-011)
    (tmp_path / "landing" / "adt" / block).mkdir(parents=True)
    (tmp_path / "landing" / "adt" / block / "feed.hl7").write_text(
        build_message("A01", control_id="K1", visit="V1", mrn="MRN9001", unit="ICU", msg_ts="202602030800")
        + build_message("A01", control_id="K2", visit="V2", mrn="MRN9002", unit="NOSUCH", msg_ts="202602030900")
    )
    with start_outbox(tmp_path / "mail") as box:  # a real SMTP server on loopback, as smtp_default
        env = _env(
            tmp_path,
            HEALTHOPS_WAREHOUSE_URL=warehouse_url,
            AIRFLOW_CONN_SMTP_DEFAULT=box.url,
            HEALTHOPS_REPORT_CATALOG=str(tmp_path / "catalog.yml"),
        )
        # --send: the dates are older than the revision window, and this test reads the mail
        proc = subprocess.run(
            [HEALTHOPS, "run", "--date", warn, "--to", block, "--send"], env=env, capture_output=True, text=True
        )
        mails = _mails(box)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a night was held
    assert "reports emailed, as --send asks" in proc.stdout
    lines = {line.split(":", 1)[0].strip(): line for line in proc.stdout.splitlines() if line.startswith("  20")}
    assert "success" in lines[warn] and "reports: 3 emailed" in lines[warn]
    assert f"{block}: HELD" in proc.stdout  # loaded and built, reports held back
    assert "HELD: 1 night(s)" in proc.stderr and f"{block}: CEN-011 (1 of " in proc.stderr

    def failed_rules(d):
        with psycopg.connect(libpq_url(warehouse_url)) as conn:
            return conn.execute(
                """select r.rule_id, r.severity, r.rows_violating, v.dag_run_id from audit.rule_results r
                   join audit.validation_runs v using (validation_run_id)
                   where not r.success and v.logical_date = %s order by 1""",
                (d,),
            ).fetchall()

    # -- the warning night: published, once to each NGH recipient (SGH has none in this
    # catalog: its census is built and checked, and the command says who is missing), each
    # with the warning banner naming the failing rules; every task ran once (no retry)
    assert "WARNING: facility SGH has census data but no recipient of daily_census" in proc.stderr
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        assert conn.execute(
            "select sum(midnight_census) from marts.fct_census_daily where facility_code = 'SGH' and census_date = %s",
            (warn,),
        ).fetchone() == (2,)
    db = sqlite3.connect(tmp_path / "home" / "airflow" / "airflow.db")
    tries = db.execute(
        """select task_id, state, try_number from task_instance where run_id =
           (select run_id from dag_run order by logical_date limit 1)"""
    ).fetchall()
    assert tries and all(state == "success" and n == 1 for _, state, n in tries), tries
    failed = failed_rules(warn)
    assert ("CEN-012", "warning", 1) in [f[:3] for f in failed] and all(f[1] == "warning" for f in failed), failed
    reports = [m for m in mails if m["X-Healthops-Report"] == "daily_census"]
    assert sorted(m["To"] for m in reports) == [
        "house.supervisor@example.org",
        "nurse.manager.icu@example.org",
        "nurse.manager.medsurg@example.org",
    ]
    assert all(m["X-Healthops-Period"] == warn for m in reports)
    assert all("Warnings only" in m.get_body(("html",)).get_content() for m in reports)
    report = next(m for m in reports if m["To"] == "house.supervisor@example.org")
    assert report["Subject"].startswith(f"[DATA QUALITY: {len(failed)} failed] Daily census")
    html = report.get_body(("html",)).get_content()
    banner = html[html.index('<div class="banner warning"') :]
    banner = banner[: banner.index("</div>")]
    for rule_id, *_ in failed:
        assert rule_id in banner
    assert "Warnings only" in banner
    # Data Docs were built and the report (mail and file) links them
    index = tmp_path / "out" / "data_docs" / "index.html"
    assert index.exists() and "census_daily" in index.read_text()
    link = f'<a href="{index.as_uri()}">Data-quality details (Data Docs)</a>'
    assert link in html
    assert link in (tmp_path / "out" / "reports" / f"daily_census_NGH_{warn}.html").read_text()

    # -- the blocking night: held, and exactly one more e-mail, the failure alert to the
    # data engineers
    failed = failed_rules(block)
    assert ("CEN-011", "blocking", 1) in [f[:3] for f in failed]  # the unknown unit, one row
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        sent = conn.execute("select count(*) from reporting.deliveries where period = %s", (block,)).fetchone()[0]
    assert sent == 0
    assert not list((tmp_path / "out" / "reports").glob(f"*{block}*"))
    alerts = [m for m in mails if m["X-Healthops-Report"] is None]
    assert len(alerts) == 1 and len(mails) == 4, [m["Subject"] for m in mails]
    alert = alerts[0]
    assert alert["To"] == "data.engineering@example.org"
    assert alert["Subject"] == f"[healthops] nightly census FAILED for {block}: validate_census"
    body = alert.get_content()
    run_id = failed[0][3]
    assert f"Run id:       {run_id}" in body and "Failed task:  validate_census" in body
    assert f"AirflowFailException: blocking data-quality rules failed for {block}: " in body  # from the log
    assert "  CEN-011 [blocking] census_daily: violating rows: 1 of " in body
    assert "Every unit code is a unit in the hospital's reference data" in body
    assert str(tmp_path / "home" / "logs") in body  # the run's log file
    assert "NOSUCH" not in body and "MRN" not in body  # ids and counts, no values of rows

    # the evidence of both nights was published and their audit rows anchored
    heads = [
        json.loads(line) for line in (tmp_path / "out" / "audit" / "heads" / "heads.jsonl").read_text().splitlines()
    ]
    assert [h["logical_date"] for h in heads] == [warn, block] and heads[-1]["dag_run_id"] == run_id
