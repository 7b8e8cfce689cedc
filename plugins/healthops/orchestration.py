"""Running the DAGs through Airflow itself, for the CLI and the demo.

The CLI starts a child Python process with an Airflow environment (metadata DB
under ``$HEALTHOPS_HOME/airflow``, this repository's ``dags/``, the warehouse and
SMTP connections as ``AIRFLOW_CONN_*`` variables), and the child runs
``dag.test()`` for each logical date, so task instances are recorded in Airflow's
metadata database exactly as for a scheduled run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

from healthops import config

DAG_ID = "healthops_census_nightly"
MONTHLY_DAG_ID = "healthops_reports_monthly"


def airflow_home() -> Path:
    return config.home() / "airflow"


def airflow_conn_uri(url: str) -> str:
    """An Airflow connection URI (scheme ``postgres``) for a warehouse URL."""
    from healthops.warehouse.connection import url_parts

    p = url_parts(url)
    auth = quote(p["user"], safe="")
    if p["password"]:
        auth += ":" + quote(p["password"], safe="")
    return f"postgres://{auth}@{p['host']}:{p['port']}/{quote(p['dbname'], safe='')}"


def airflow_env(warehouse_url: str, smtp_url: str | None) -> dict[str, str]:
    home = airflow_home()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(config.DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(config.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # A hospital network forbids calls to third parties.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|cosmos|healthops)\..*",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "GX_ANALYTICS_ENABLED": "False",
        "HEALTHOPS_WAREHOUSE_URL": warehouse_url,
        "AIRFLOW_CONN_HEALTHOPS_WAREHOUSE": airflow_conn_uri(warehouse_url),
        "HEALTHOPS_HOME": str(config.home()),
        "HEALTHOPS_LANDING": str(config.landing()),
        "HEALTHOPS_OUT": str(config.out()),
        # one `dbt build` task per night unless the caller asks for per-model tasks
        "HEALTHOPS_DBT_TASKS": os.environ.get("HEALTHOPS_DBT_TASKS") or "project",
    }
    if smtp_url:
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_url
    return env


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata database (once per Airflow version)."""
    import airflow  # noqa: F401  (only its version; the migration runs in a child)
    from importlib.metadata import version

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    marker = home / ".migrated"
    want = version("apache-airflow-core")
    if marker.exists() and marker.read_text() == want:
        return
    airflow_bin = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(airflow_bin), "db", "migrate"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    marker.write_text(want)


def run_dates(dates: list[date], warehouse_url: str, smtp_url: str | None,
              log_path: Path | None = None, dag_id: str = DAG_ID) -> list[dict]:
    """Run a DAG (the nightly one unless told) for each logical date, in order;
    returns one result per date ({"date", "state", "seconds"}). Stops at the first
    failed run: later days build on earlier ones."""
    from healthops.warehouse.dbt_runner import ensure_manifest

    ensure_manifest()
    env = airflow_env(warehouse_url, smtp_url)
    ensure_airflow_db(env)
    log_path = log_path or (config.home() / "logs" / f"airflow-run-{int(time.time())}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env["HEALTHOPS_RUN_LOG"] = str(log_path)  # named in failure alerts: dag.test() logs every task here
    result_file = log_path.with_suffix(".json")
    cmd = [sys.executable, "-m", "healthops.orchestration", "--results", str(result_file), "--dag", dag_id,
           *[d.isoformat() for d in dates]]
    with open(log_path, "w") as logf:
        proc = subprocess.run(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
    results = json.loads(result_file.read_text()) if result_file.exists() else []
    if proc.returncode != 0 and not results:
        raise RuntimeError(f"the Airflow run failed before any DAG run; see {log_path}")
    for r in results:
        r["log"] = str(log_path)
    return results


def _child(argv: list[str]) -> int:
    """In the Airflow child process: dag.test() for each date."""
    import argparse
    import logging

    import pendulum

    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--dag", default=DAG_ID)
    parser.add_argument("dates", nargs="+")
    args = parser.parse_args(argv)

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(config.DAGS_DIR))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        return 2
    dag = bag.dags[args.dag]
    results = []
    rc = 0
    for d in args.dates:
        logical = pendulum.parse(d, tz=config.facility_tz())
        t0 = time.monotonic()
        dr = dag.test(logical_date=logical)
        state = str(getattr(dr.state, "value", dr.state))
        results.append({"date": d, "state": state, "run_id": dr.run_id,
                        "seconds": round(time.monotonic() - t0, 1)})
        Path(args.results).write_text(json.dumps(results))
        print(f"HEALTHOPS-RUN {d} {state}", flush=True)
        if state != "success":
            rc = 1
            break
    return rc


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
