"""Loading a hospital's history: dates of an earlier year, across a DST change, through
Airflow's own backfill (`airflow backfill create`, run by a real scheduler with the
LocalExecutor, a dag-processor and the api-server's task execution API, on loopback),
giving the independent reference census.

The nights are older than the revision window, so their reports are rendered and
archived, not emailed. (`healthops run --date D --to D2`, the local runner, is run over
history by tests/integration/test_onboarding.py; the census over the end of daylight
saving time by tests/integration/test_census_oracle.py; a night through the local
runner, retried after its process was killed, compared relation by relation with a
clean run by tests/integration/test_faults.py.)"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml

from healthops import config
from healthops.orchestration import DAG_ID, airflow_env
from healthops.reports.outbox import start_outbox
from healthops.synthetic.adt_feed import generate
from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import ensure_manifest

from airflow_services import AirflowServices, scheduler_env
from census_oracle import reference_from_landing

pytestmark = pytest.mark.slow

# daylight saving time begins on Sunday 2025-03-09 (a 23-hour day): its midnight is PST, the next PDT
START, DAYS = date(2025, 3, 9), 2
FIELDS = ("midnight_census", "admissions", "discharges", "transfers_in", "transfers_out", "patient_days")


def _daily(url) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(f"""select facility_code, unit_code, census_date, {", ".join(FIELDS)}, observation_census,
                                       staffed_beds from marts.fct_census_daily order by 1, 2, 3""").fetchall()


def _matches_reference(url, landing) -> None:
    end = START + timedelta(days=DAYS - 1)
    expected = reference_from_landing(landing, START, end)
    got = {(f, u, d): dict(zip(FIELDS, v[: len(FIELDS)])) for f, u, d, *v in _daily(url)}
    assert {d for _, _, d in got} == {START + timedelta(days=i) for i in range(DAYS)}
    assert [k for k in got if got[k] != {f: expected[k][f] for f in FIELDS}] == []
    for key in set(expected) - set(got):  # units the mart does not list (the ED) hold nothing
        assert not any(expected[key][f] for f in FIELDS), key


def _archived(url) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute("""select period, delivery, count(*) from reporting.messages group by 1, 2
                               order by 1""").fetchall()


def test_history_through_airflows_backfill(tmp_path, make_database, migrated_template, monkeypatch, airflow_db):
    landing = tmp_path / "landing"
    summary = generate(landing, START, DAYS, seed=13)
    assert summary["first_day"] == START.isoformat()
    dates = [START + timedelta(days=i) for i in range(DAYS)]
    expected_archive = [(d.isoformat(), "archived", 3) for d in dates]  # the three NGH recipients

    # Airflow's own backfill, run by its scheduler
    by_airflow = make_database(migrated_template)
    ensure_manifest()
    monkeypatch.setenv("HEALTHOPS_HOME", str(tmp_path / "bf_home"))  # airflow_env() reads them
    monkeypatch.setenv("HEALTHOPS_LANDING", str(landing))
    monkeypatch.setenv("HEALTHOPS_OUT", str(tmp_path / "bf_out"))
    # the census reports only: this history has no staff, and each task is a process of the
    # scheduler's here (the staffing reports' tasks, which send nothing without timekeeping
    # data, run end to end in tests/dags/test_dag_run.py)
    catalog = yaml.safe_load((config.REPORT_TEMPLATES_DIR / "catalog.yml").read_text())
    for report in ("staffing_huddle", "labor_productivity_weekly"):
        del catalog["reports"][report]
    (tmp_path / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    monkeypatch.setenv("HEALTHOPS_REPORT_CATALOG", str(tmp_path / "catalog.yml"))
    with start_outbox(tmp_path / "bf_mail") as box:
        services = AirflowServices(scheduler_env(airflow_env(by_airflow, box.url)), logs=tmp_path)
        airflow_db(tmp_path / "bf_home")  # the same `airflow db migrate`, run once per session
        # The metadata DB is SQLite, which takes one writer at a time: a command writing it
        # beside the running components could fail at once with "database is locked". So the
        # DAGs are serialized and the backfill created first, and the components started after.
        services.airflow("dags", "reserialize")
        # local midnights with their offsets (bare dates would be read in UTC); one night
        # at a time, since each night's census builds on the one before
        services.airflow(
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--max-active-runs",
            "1",
            "--from-date",
            "2025-03-09T00:00:00-08:00",
            "--to-date",
            "2025-03-10T00:00:00-07:00",
        )
        try:
            services.start([DAG_ID])
            runs = services.wait_for_runs(DAG_ID, DAYS)
            tasks = services.task_states(DAG_ID)
        finally:
            services.stop()
        bf_mail = box.messages()
    assert [state for _, state, _ in runs] == ["success"] * DAYS, runs
    # each night's logical date is its local midnight (PST for the 23-hour day, then PDT); the run is
    # named after the end of its data interval, the next local midnight
    assert [r[0][:16] for r in runs] == ["2025-03-09 08:00", "2025-03-10 07:00"]
    assert [r[2] for r in runs] == [
        "backfill__2025-03-10T07:00:00+00:00",
        "backfill__2025-03-11T07:00:00+00:00",
    ]
    nightly = ("load_adt", "load_hr", "extract_timekeeping", "dbt_build", "validate_workforce", "validate_census")
    assert {(t, s) for _, t, s, _ in tasks} == {(t, "success") for t in (*nightly, "publish_daily_census")}
    assert len(tasks) == 7 * DAYS
    _matches_reference(by_airflow, landing)
    assert _archived(by_airflow) == expected_archive and bf_mail == []
