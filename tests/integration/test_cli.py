"""The `healthops` command as a user runs it: a separate process, real services."""
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hl7_builders import build_message
from healthops.warehouse.connection import libpq_url

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEALTHOPS_WAREHOUSE_URL", "AIRFLOW_CONN_SMTP_DEFAULT", "HEALTHOPS_SMTP_URL")}
    env.update(HEALTHOPS_HOME=str(tmp_path / "home"), HEALTHOPS_LANDING=str(tmp_path / "landing"),
               HEALTHOPS_OUT=str(tmp_path / "out"), **extra)
    return env


def test_warehouse_url_leaves_it_running_until_stopped(tmp_path):
    env = _env(tmp_path)
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


def test_run_exits_nonzero_and_holds_the_report_when_a_blocking_rule_fails(tmp_path, warehouse_url):
    day = tmp_path / "landing" / "adt" / "2026-02-02"
    day.mkdir(parents=True)
    (day / "feed.hl7").write_text(
        build_message("A01", control_id="K1", visit="V1", unit="ICU", msg_ts="202602020800")
        + build_message("A01", control_id="K2", visit="V2", unit="NOSUCH", msg_ts="202602020900"))
    env = _env(tmp_path, HEALTHOPS_WAREHOUSE_URL=warehouse_url)
    proc = subprocess.run([HEALTHOPS, "run", "--date", "2026-02-02"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2026-02-02: failed" in proc.stdout
    assert "FAILED" in proc.stderr
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        failed = conn.execute("""select r.rule_id, r.rows_violating from audit.rule_results r
                                 join audit.validation_runs v using (validation_run_id)
                                 where not r.success""").fetchall()
        sent = conn.execute("select count(*) from reporting.deliveries").fetchone()[0]
    assert ("CEN-011", 1) in failed  # the unknown unit, one row
    assert sent == 0
    assert not list((tmp_path / "out").rglob("*.eml"))
    assert not (tmp_path / "out" / "reports").exists()
