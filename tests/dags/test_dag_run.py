"""End to end under real Airflow: the nightly DAG runs through `dag.test()` in an
Airflow process (metadata DB, task instances), loading a generated feed into a real
PostgreSQL, building it with dbt through Cosmos, validating it with GX, rendering
the report and delivering it to a real SMTP server on loopback. (A date run again
through Airflow, after its process was killed mid-run, and a date run twice, each
compared relation by relation with a clean run: tests/integration/test_faults.py.)"""

import email
import sqlite3
from datetime import date, timedelta
from email import policy

import pytest

from healthops import config
from healthops.orchestration import run_dates
from healthops.reports.outbox import start_outbox
from healthops.synthetic.adt_feed import generate
from healthops.warehouse.connection import connect

pytestmark = pytest.mark.slow

START = date(2026, 11, 2)
DAYS = 1  # nights building on nights under Airflow: test_backfill, and test_faults (a night retried after a kill)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    for var, sub in (("HEALTHOPS_HOME", "home"), ("HEALTHOPS_LANDING", "landing"), ("HEALTHOPS_OUT", "out")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    # the production rendering (one Airflow task per dbt model) under real Airflow here;
    # the CLI tests run the local runner's default (one dbt build task)
    monkeypatch.setenv("HEALTHOPS_DBT_TASKS", "model")
    return tmp_path


def _mart(url):
    with connect(url) as conn:
        return conn.execute("select * from marts.fct_census_daily order by 1, 2, 3").fetchall()


def test_nightly_dag_end_to_end(env, warehouse_url):
    generate(env / "landing", START, DAYS, seed=11)
    dates = [START + timedelta(days=i) for i in range(DAYS)]
    outbox_dir = env / "out" / "outbox"
    with start_outbox(outbox_dir) as box:
        results = run_dates(dates, warehouse_url, box.url, conf={"send": True})  # past dates: email them
        assert [(r["state"], r["verdict"]) for r in results] == [("success", "success")] * DAYS, results

        # Airflow recorded every task instance of every run as successful
        db = sqlite3.connect(env / "home" / "airflow" / "airflow.db")
        states = db.execute(
            "select state, count(*) from task_instance where dag_id = 'healthops_census_nightly' group by state"
        ).fetchall()
        assert dict(states).keys() == {"success"}
        n_tasks = db.execute("select count(distinct task_id) from task_instance").fetchone()[0]
        assert dict(states)["success"] == n_tasks * DAYS

        # per day, one report per recipient's filter (HTML, PDF, CSV) and one e-mail per
        # recipient with the PDF attached, for the facilities on the feed
        with connect(warehouse_url) as conn:
            facilities = {f for (f,) in conn.execute("select distinct facility_code from marts.fct_census_daily")}
        slices = {
            "NGH": "house.supervisor@example.org",
            "NGH-ICU-SDU": "nurse.manager.icu@example.org",
            "NGH-MS5-TELE": "nurse.manager.medsurg@example.org",
            "SGH": "house.supervisor.sgh@example.org",
        }
        slices = {k: v for k, v in slices.items() if k.split("-")[0] in facilities}
        assert "NGH" in slices
        reports = sorted(p.name for p in (env / "out" / "reports").iterdir())
        assert reports == sorted(
            [f"daily_census_{s}_{d}.{ext}" for d in dates for s in slices for ext in ("html", "pdf", "csv")]
        )
        emls = sorted(outbox_dir.glob("*.eml"))
        per_recipient, revised = {}, []
        for path in emls:
            msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if msg["Subject"].startswith("[REVISED"):  # late data changed a day already reported
                revised.append((msg["To"], msg["X-Healthops-Period"]))
            else:
                per_recipient.setdefault(msg["To"], []).append(msg["X-Healthops-Period"])
            pdfs = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
            assert len(pdfs) == 1 and pdfs[0].get_content().startswith(b"%PDF")
        assert {r: sorted(p) for r, p in per_recipient.items()} == {
            r: [d.isoformat() for d in dates] for r in slices.values()
        }
        with connect(warehouse_url) as conn:
            ledger = conn.execute("select recipient, period, revision from reporting.deliveries").fetchall()
        assert len(ledger) == len(emls) == len(slices) * DAYS + len(revised)
        assert sorted(revised) == sorted((r, p) for r, p, n in ledger if n > 0)

        with connect(warehouse_url) as conn:
            runs = conn.execute("select count(*), bool_and(success) from audit.validation_runs").fetchone()
            recon = conn.execute(
                "select bool_and(records_in = records_loaded + records_rejected + records_duplicate) "
                "from audit.load_batches"
            ).fetchone()[0]
        suites = len(list(config.EXPECTATIONS_DIR.glob("*.yml")))
        assert runs == (DAYS * suites, True)  # every rule file ran, every night, and passed
        assert recon is True

        # the mart agrees with the independent reference count from the same files
        from census_oracle import reference_from_landing

        expected = reference_from_landing(env / "landing", dates[0], dates[-1])
        fields = ("midnight_census", "admissions", "discharges", "transfers_in", "transfers_out", "patient_days")
        got = {(r[0], r[1], r[2]): dict(zip(fields, r[3:9])) for r in _mart(warehouse_url) if r[2] >= dates[0]}
        units = {(f, u) for f, u, _ in got}
        assert {("NGH", u) for u in ("ICU", "SDU", "TELE", "MS5", "PEDS", "PSY")} <= units
        assert len(got) == len(units) * DAYS  # every unit of the feed's facilities, every day
        for key, row in got.items():
            assert row == {f: expected[key][f] for f in fields}, key
        # nothing the reference counted is missing from the mart
        for key, row in expected.items():
            if key not in got:
                assert not any(row[f] for f in fields), key
