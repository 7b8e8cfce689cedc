"""A hospital's first hour with healthops, as a new user meets it: `healthops run` over
past dates (history), runs that tell the truth about what ran, a small feed in which
the interface engine resent a message, a malformed message among fifteen, a day on
which nothing arrived, and a catalog mistake (a facility that no report recipient
covers yet: tests/integration/test_cli.py). Each runs the real command in its own
process: Airflow runs the DAG, a real PostgreSQL, real dbt and GX, a real SMTP server
on loopback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from healthops import config
from healthops.reports.outbox import start_outbox
from healthops.warehouse.connection import libpq_url

from hl7_builders import build_message

pytestmark = pytest.mark.slow  # each test starts Airflow and runs DAGs end to end

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))


def _env(tmp_path, **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "HEALTHOPS_WAREHOUSE_URL",
            "AIRFLOW_CONN_SMTP_DEFAULT",
            "HEALTHOPS_SMTP_URL",
            "HEALTHOPS_REPORT_CATALOG",
        )
    }
    env.update(
        HEALTHOPS_HOME=str(tmp_path / "home"),
        HEALTHOPS_LANDING=str(tmp_path / "landing"),
        HEALTHOPS_OUT=str(tmp_path / "out"),
        **extra,
    )
    return env


def _healthops(tmp_path, *args, **env):
    return subprocess.run([HEALTHOPS, *args], env=_env(tmp_path, **env), capture_output=True, text=True)


def _write(landing: Path, day: date, name: str, messages: list[str]) -> None:
    folder = landing / "adt" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(messages))


def _ts(day: date, minutes: int) -> str:
    return f"{day:%Y%m%d}{minutes // 60:02d}{minutes % 60:02d}"


# -- a small facility's feed: about fourteen messages a day ----------------------------------
D1, D2, D3, D4 = (date(2025, 1, 14) + timedelta(days=i) for i in range(4))


def _small_feed(landing: Path) -> dict:
    """D1: 14 messages (12 admissions, a transfer, a discharge), and a second file in
    which the interface engine resent one admission as it was. D2: 15 messages, one of
    them without a visit number (PV1-19): unusable. D3: nothing at all (no folder).
    D4: three admissions. Messages every 90 minutes from 01:00, so no gap is over the
    feed-gap rule's 4 hours. Returns the midnight census by (unit, date), by hand."""
    msgs = []

    def admit(day, i, visit, unit):
        return build_message(
            "A01",
            control_id=f"S{visit}",
            visit=visit,
            mrn=f"MRN{visit}",
            unit=unit,
            room=f"{100 + int(visit[1:])}",
            bed="A",
            msg_ts=_ts(day, 60 + 90 * i),
        )

    # D1: V1-V4 to ICU, V5-V10 to MS5, V11-V12 to TELE; V5 moves MS5 -> TELE; V6 goes home.
    units = ["ICU"] * 4 + ["MS5"] * 6
    msgs = [admit(D1, i, f"V{i + 1}", u) for i, u in enumerate(units)]
    msgs.append(
        build_message(
            "A02",
            control_id="SX1",
            visit="V5",
            mrn="MRNV5",
            unit="TELE",
            room="305",
            bed="A",
            prior_unit="MS5",
            prior_room="105",
            prior_bed="A",
            msg_ts=_ts(D1, 60 + 90 * 10),
        )
    )
    msgs.append(
        build_message(
            "A03",
            control_id="SX2",
            visit="V6",
            mrn="MRNV6",
            unit="MS5",
            room="106",
            bed="A",
            msg_ts=_ts(D1, 60 + 90 * 11),
        )
    )
    msgs += [admit(D1, 12, "V11", "TELE"), admit(D1, 13, "V12", "TELE")]
    assert len(msgs) == 14
    _write(landing, D1, "adt_01.hl7", msgs)
    _write(landing, D1, "adt_02_resend.hl7", [msgs[2]])  # V3's admission again, byte for byte

    # D2: V1, V2 leave the ICU; V13-V24 admitted to PEDS, PSY and MS5; one message unusable.
    d2 = [
        build_message(
            "A03",
            control_id=f"SD{v}",
            visit=v,
            mrn=f"MRN{v}",
            unit="ICU",
            room=f"{100 + n}",
            bed="A",
            msg_ts=_ts(D2, 60 + 90 * n),
        )
        for n, v in ((1, "V1"), (2, "V2"))
    ]
    d2 += [admit(D2, 3 + k, f"V{13 + k}", ("PEDS", "PSY", "MS5")[k % 3]) for k in range(12)]
    d2.insert(
        7,
        build_message(
            "A01", control_id="SBAD", visit="", mrn="MRNBAD", unit="MS5", room="199", msg_ts=_ts(D2, 60 + 90 * 2 + 30)
        ),
    )
    assert len(d2) == 15
    _write(landing, D2, "adt_01.hl7", d2)

    # D4: three admissions to the step-down unit
    _write(landing, D4, "adt_01.hl7", [admit(D4, k * 4, f"V{25 + k}", "SDU") for k in range(3)])

    d1 = {"ICU": 4, "MS5": 4, "TELE": 3}
    d2c = {"ICU": 2, "MS5": 8, "TELE": 3, "PEDS": 4, "PSY": 4}
    d4 = {**d2c, "SDU": 3}
    return {D1: d1, D2: d2c, D3: d2c, D4: d4}


def _census(url) -> dict:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "select census_date, unit_code, midnight_census from marts.fct_census_daily "
            "where facility_code = 'NGH' and midnight_census > 0"
        ).fetchall()
    out: dict = {}
    for d, unit, n in rows:
        out.setdefault(d, {})[unit] = n
    return out


def test_a_small_feed_with_a_resend_a_bad_message_and_a_silent_day(tmp_path, warehouse_url):
    expected = _small_feed(tmp_path / "landing")
    with start_outbox(tmp_path / "mail") as box:
        proc = _healthops(
            tmp_path,
            "run",
            "--date",
            D1.isoformat(),
            "--to",
            D4.isoformat(),
            HEALTHOPS_WAREHOUSE_URL=warehouse_url,
            AIRFLOW_CONN_SMTP_DEFAULT=box.url,
        )
        mails = box.messages()
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 1, out + err  # a night was held: the command says so in its exit code

    # history: older than the revision window, so archived and announced, not emailed
    assert "4 period(s) older than the revision window" in out and "--send emails them" in out
    lines = {line.split(":", 1)[0].strip(): line for line in out.splitlines() if line.startswith("  20")}
    assert "success" in lines[str(D1)] and "15 in = 14 loaded + 0 rejected + 1 duplicate" in lines[str(D1)]
    assert "reports: 3 archived, not emailed (history)" in lines[str(D1)]
    assert "success" in lines[str(D2)] and "15 in = 14 loaded + 1 rejected + 0 duplicate" in lines[str(D2)]
    assert "HELD" in lines[str(D3)] and "does not exist" in lines[str(D3)] and "CEN-023" in lines[str(D3)]
    assert "success" in lines[str(D4)]  # the backfill went on past the held night
    assert "HELD: 1 night(s)" in err and f"{D3}: CEN-023 (1 of 1)" in err
    # the only mail is the data engineers' alert for the held night; no manager got a report
    assert [m.name for m in mails] and all(b"To: data.engineering@example.org" in m.read_bytes() for m in mails), [
        m.name for m in mails
    ]

    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        batches = conn.execute("""select received_date, sum(records_in), sum(records_loaded), sum(records_rejected),
                                         sum(records_duplicate) from audit.load_batches
                                  group by 1 order by 1""").fetchall()
        dup = conn.execute("select received_date, control_id, first_message_index from raw.duplicates").fetchall()
        rejected = conn.execute("select reason_category from raw.rejected").fetchall()
        results = dict(
            conn.execute(
                """select r.rule_id || ' ' || v.logical_date, r.status from audit.rule_results r
               join audit.validation_runs v using (validation_run_id)
               where r.rule_id in ('CEN-016', 'CEN-024', 'CEN-021', 'CEN-023')"""
            ).fetchall()
        )
        archived = conn.execute(
            "select period, count(*) from reporting.messages where delivery = 'archived' group by 1 order by 1"
        ).fetchall()
        sent = conn.execute("select count(*) from reporting.deliveries").fetchone()[0]
    assert batches == [(D1, 15, 14, 0, 1), (D2, 15, 14, 1, 0), (D4, 3, 3, 0, 0)]
    assert dup == [(D1, "SV3", 3)]  # the resent copy, pointing at the loaded one
    assert rejected == [("PV1-19 visit number missing",)]
    # the resend is not a rejection; one bad message in fifteen warns (CEN-024) but does not
    # block (CEN-016 needs 5 rejected before it does); counts reconcile against the rows
    assert results[f"CEN-016 {D1}"] == results[f"CEN-016 {D2}"] == "passed"
    assert results[f"CEN-024 {D1}"] == "passed" and results[f"CEN-024 {D2}"] == "failed"
    assert all(results[f"CEN-021 {d}"] == "passed" for d in (D1, D2, D4))
    assert results[f"CEN-023 {D3}"] == "failed" and results[f"CEN-023 {D4}"] == "passed"
    assert archived == [(str(d), 3) for d in (D1, D2, D4)] and sent == 0
    assert (tmp_path / "out" / "reports" / f"daily_census_NGH_{D2}.pdf").is_file()

    # the census is the hand count: the resend changed nothing, and the silent day
    # carries the patients over (it is built once the feed moves past it)
    assert _census(warehouse_url) == expected


def test_a_date_before_the_dags_start_date_is_a_failure_not_an_empty_success(tmp_path, warehouse_url):
    proc = _healthops(tmp_path, "run", "--date", "1996-12-31", HEALTHOPS_WAREHOUSE_URL=warehouse_url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    msg = "no task ran for 1996-12-31: the date is before the DAG's start date (1997-01-01)"
    assert msg in proc.stdout and msg in proc.stderr
    # Airflow itself recorded the run as a success with no task instance: the command is what tells the truth
    db = sqlite3.connect(tmp_path / "home" / "airflow" / "airflow.db")
    assert db.execute("select state from dag_run").fetchall() == [("success",)]
    assert db.execute("select count(*) from task_instance").fetchone() == (0,)

    monthly = _healthops(tmp_path, "reports", "monthly", "--month", "1996-12", HEALTHOPS_WAREHOUSE_URL=warehouse_url)
    assert monthly.returncode == 1, monthly.stdout + monthly.stderr
    assert "no task ran for 1996-12-01: the date is before the DAG's start date (1997-01-01)" in monthly.stderr


def test_a_configuration_error_fails_the_task_at_once_without_retries(tmp_path, warehouse_url):
    """A catalog mistake is not cured by waiting: the publish task fails on its first try
    (``pipeline.run_step``: no retry, no minutes of backoff) and the log says why. Run
    through the monthly DAG, whose tasks are the publish tasks alone; the nightly DAG's
    publish tasks go through the same ``run_step``."""
    catalog = yaml.safe_load((config.REPORT_TEMPLATES_DIR / "catalog.yml").read_text())
    catalog["reports"]["monthly_census"]["builder"] = "no_such_builder"
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    proc = _healthops(
        tmp_path,
        "reports",
        "monthly",
        "--month",
        "2025-06",
        HEALTHOPS_WAREHOUSE_URL=warehouse_url,
        HEALTHOPS_REPORT_CATALOG=str(path),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "publish_monthly_census" in proc.stderr
    db = sqlite3.connect(tmp_path / "home" / "airflow" / "airflow.db")
    assert db.execute(
        "select state, try_number from task_instance where task_id = 'publish_monthly_census'"
    ).fetchall() == [("failed", 1)]
    log = Path(proc.stderr.rsplit("Airflow log: ", 1)[1].strip()).read_text()
    assert (
        "AirflowFailException: ConfigurationError: report monthly_census: unknown report builder 'no_such_builder'"
        in log
    )
