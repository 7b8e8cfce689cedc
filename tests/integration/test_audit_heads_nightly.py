"""Each night anchors its audit rows outside the warehouse: ``validate_census`` appends
the chains' heads to $HEALTHOPS_OUT/audit/heads/heads.jsonl once the night's validation
runs are committed, a held night's too; the file then verifies, through the CLI with
the key from an Airflow connection as well; a night without a key fails before any
rule runs, unless its warehouse is the embedded one, which has a key of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from healthops import config, pipeline
from healthops.errors import ConfigurationError, is_transient
from healthops.quality import audit_heads
from healthops.warehouse.connection import connect, embedded_server
from healthops.warehouse.migrate import migrate

from test_census_rules import CENSUS, SUITES, D, build

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))


def test_each_night_appends_the_heads_it_left(warehouse_url, tmp_path):
    build(warehouse_url)
    first = pipeline.validate_census(D, "scheduled__2025-03-01", url=warehouse_url)
    path = audit_heads.heads_path()
    assert first["audit_heads"]["file"] == str(path) and first["audit_heads"]["record"] == 1
    with connect(warehouse_url) as conn:
        after_first = {t: h.as_dict() for t, h in audit_heads.read_heads(conn).items()}
    runs = after_first["audit.validation_runs"]
    assert (runs["chain_seq"], runs["rows"]) == (len(SUITES), len(SUITES))  # one run per suite

    # a held night (a blocking rule fails): its audit rows are what auditors need anchored most
    nxt = D + dt.timedelta(days=1)
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into marts.fct_census_daily values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            ("NGH", "NOSUCH", *CENSUS[0][2:]),
        )
    with pytest.raises(pipeline.BlockingQualityFailure) as held:
        pipeline.validate_census(nxt, "scheduled__2025-03-02", url=warehouse_url)
    assert "audit heads" not in str(held.value)

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["record"], r["logical_date"], r["dag_run_id"]) for r in records] == [
        (1, "2025-03-01", "scheduled__2025-03-01"),
        (2, "2025-03-02", "scheduled__2025-03-02"),
    ]
    assert records[0]["heads"] == after_first and records[0]["hmac"] == first["audit_heads"]["hmac"]
    assert records[1]["heads"]["audit.validation_runs"]["chain_seq"] == 2 * len(SUITES)
    assert records[1]["prev_hmac"] == records[0]["hmac"]
    key = os.environ["HEALTHOPS_AUDIT_HMAC_KEY"]
    with connect(warehouse_url) as conn:
        check = audit_heads.verify_file(conn, path, key.encode())
    assert check.ok, [str(p) for p in check.problems]
    assert check.heads_checked == 2 * len(check.tables) == 8

    # an auditor on the Airflow host: the key from the connection, not the environment
    env = {
        **os.environ,
        "HEALTHOPS_WAREHOUSE_URL": warehouse_url,
        "HEALTHOPS_AUDIT_HMAC_KEY": "",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_HEALTHOPS_AUDIT_HMAC": json.dumps({"conn_type": "generic", "password": key}),
    }
    proc = subprocess.run(
        [HEALTHOPS, "audit", "verify", "--against", str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"heads file intact: {path}: 2 line(s), 2 record(s), logical dates 2025-03-01 .. 2025-03-02" in proc.stdout
    assert key not in proc.stdout + proc.stderr


def test_a_night_without_its_key_fails_before_any_rule_runs(warehouse_url, monkeypatch):
    monkeypatch.delenv("HEALTHOPS_AUDIT_HMAC_KEY")
    monkeypatch.setattr(pipeline, "connection_password", lambda conn_id: None)  # no Airflow connection either
    with pytest.raises(
        ConfigurationError, match="set HEALTHOPS_AUDIT_HMAC_KEY or .* connection healthops_audit_hmac"
    ) as e:
        pipeline.validate_census(D, "scheduled__2025-03-01", url=warehouse_url)
    assert not is_transient(e.value)  # the task fails at once: a retry would find no key either
    with connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from audit.validation_runs").fetchone() == (0,)
    assert not audit_heads.heads_path().exists()


@pytest.mark.db  # starts an embedded PostgreSQL of its own
def test_the_embedded_warehouse_has_a_key_of_its_own(monkeypatch):
    home = tempfile.mkdtemp(prefix="ho-")  # short: the server's socket path is limited to 107 bytes
    monkeypatch.setenv("HEALTHOPS_HOME", home)
    monkeypatch.delenv("HEALTHOPS_AUDIT_HMAC_KEY")
    monkeypatch.delenv("HEALTHOPS_WAREHOUSE_URL", raising=False)

    def no_connection(conn_id):
        raise AssertionError("the embedded warehouse needs no Airflow connection")

    monkeypatch.setattr(pipeline, "connection_password", no_connection)
    server = embedded_server()
    try:
        url = server.ensure_running().url  # as `healthops run` and the demo start it
        migrate(url)
        key = pipeline.audit_heads_key(url)
        pipeline.record_audit_heads(url, key, D, "manual__2025-03-01")
        key_file = config.home() / audit_heads.LOCAL_KEY_FILE
        assert key_file.read_bytes() == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        env = {k: v for k, v in os.environ.items() if k != "HEALTHOPS_WAREHOUSE_URL"}
        proc = subprocess.run(
            [HEALTHOPS, "audit", "verify", "--against", str(audit_heads.heads_path())],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "heads file intact" in proc.stdout and "4 head(s) checked" in proc.stdout
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
