"""Running the DAGs through Airflow itself, for the CLI and the demo.

The CLI starts a child Python process with an Airflow environment (metadata DB
under ``$HEALTHOPS_HOME/airflow``, this repository's ``dags/``, the warehouse and
SMTP connections as ``AIRFLOW_CONN_*`` variables), and the child runs
``dag.test()`` for each logical date, so task instances are recorded in Airflow's
metadata database exactly as for a scheduled run. A run counts as done only when
every task of the DAG ran and succeeded (``judge``); each verdict reaches the CLI
as the run ends.
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
from healthops.pipeline import QUALITY_TASK, run_summary

DAG_ID = "healthops_census_nightly"
MONTHLY_DAG_ID = "healthops_reports_monthly"
PROGRESS_FD_ENV = "HEALTHOPS_PROGRESS_FD"


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
    """The Airflow child's environment. Its tasks get the warehouse's server and
    database without the owner's password: each step logs in as its own role
    (``healthops.warehouse.roles``), dbt through the ``healthops_warehouse_transformer``
    connection."""
    from healthops.errors import ConfigurationError
    from healthops.warehouse.roles import airflow_conn_id, step_url, without_password

    home = airflow_home()
    base = without_password(warehouse_url)
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
        "HEALTHOPS_WAREHOUSE_URL": base,
        "AIRFLOW_CONN_HEALTHOPS_WAREHOUSE": airflow_conn_uri(base),
        "HEALTHOPS_HOME": str(config.home()),
        "HEALTHOPS_LANDING": str(config.landing()),
        "HEALTHOPS_OUT": str(config.out()),
        # one `dbt build` task per night unless the caller asks for per-model tasks
        "HEALTHOPS_DBT_TASKS": os.environ.get("HEALTHOPS_DBT_TASKS") or "project",
    }
    try:
        env["AIRFLOW_CONN_" + airflow_conn_id("transformer").upper()] = airflow_conn_uri(
            step_url(warehouse_url, "transformer")
        )
    except ConfigurationError:
        pass  # the dbt tasks will say which connection is missing; the other steps say it too
    if smtp_url:
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_url
    return env


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata database (once per Airflow version)."""
    from importlib.metadata import version

    import airflow  # noqa: F401  (only its version; the migration runs in a child)

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


def run_dates(
    dates: list[date],
    warehouse_url: str,
    smtp_url: str | None,
    log_path: Path | None = None,
    dag_id: str = DAG_ID,
    conf: dict | None = None,
    on_result=None,
) -> list[dict]:
    """Run a DAG (the nightly one unless told) for each logical date, in order, with
    ``conf`` as the runs' conf; returns one verdict per date run (see ``judge``),
    calling ``on_result`` with each as soon as its run ends. Goes on past a night
    whose reports a blocking rule held back (its data is loaded and built; later
    nights build on it); stops at any other failure."""
    from healthops.warehouse.dbt_runner import ensure_manifest

    ensure_manifest()
    env = airflow_env(warehouse_url, smtp_url)
    ensure_airflow_db(env)
    log_path = log_path or (config.home() / "logs" / f"airflow-run-{int(time.time())}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env["HEALTHOPS_RUN_LOG"] = str(log_path)  # named in failure alerts: dag.test() logs every task here
    read_fd, write_fd = os.pipe()  # one JSON line per finished run, while the rest go on
    env[PROGRESS_FD_ENV] = str(write_fd)
    cmd = [
        sys.executable,
        "-m",
        "healthops.orchestration",
        "--dag",
        dag_id,
        "--conf",
        json.dumps(conf or {}),
        *[d.isoformat() for d in dates],
    ]
    results: list[dict] = []
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, pass_fds=(write_fd,))
        os.close(write_fd)
        with os.fdopen(read_fd) as progress:
            for line in progress:
                r = json.loads(line)
                r["log"] = str(log_path)
                results.append(r)
                if on_result:
                    on_result(r)
        rc = proc.wait()
    if rc != 0 and not results:
        raise RuntimeError(f"the Airflow run failed before any DAG run; see {log_path}")
    return results


# -- the verdict on one DAG run ------------------------------------------------------------
def judge(dag, run_id: str, logical_date: date, warehouse_url: str | None) -> dict:
    """Whether a DAG run did its work: every task of the DAG has a task instance in
    state success. Airflow marks a run with no task instance (a logical date before
    the tasks' start_date) "success"; that is a failure here, as is a skipped task.
    A nightly run whose only failure is a blocking data-quality rule is "held": its
    data was loaded and built, its reports held back."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = {
            ti.task_id: str(getattr(ti.state, "value", ti.state))
            for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id
            )
        }
    expected = list(dag.task_ids)
    out = {"tasks": tis}
    if not tis:
        start = dag.start_date.date() if dag.start_date else None
        why = (
            f"the date is before the DAG's start date ({start})"
            if start and logical_date < start
            else "the DAG run has no task instance"
        )
        return {**out, "verdict": "failed", "message": f"no task ran for {logical_date}: {why}"}
    if all(tis.get(t) == "success" for t in expected):
        return {**out, "verdict": "success", "message": ""}
    failed = [t for t in expected if tis.get(t) == "failed"]
    not_run = [f"{t} ({tis.get(t) or 'no task instance'})" for t in expected if tis.get(t) not in ("success", "failed")]
    if failed == [QUALITY_TASK] and all(tis.get(t) in ("success", "upstream_failed", "failed") for t in expected):
        blocking = blocking_failures(warehouse_url, run_id) if warehouse_url else []
        if blocking:
            return {
                **out,
                "verdict": "held",
                "blocking": blocking,
                "message": "reports held back: blocking rules failed: " + ", ".join(blocking),
            }
    parts = ([f"failed: {', '.join(failed)}"] if failed else []) + (
        [f"did not run: {', '.join(not_run)}"] if not_run else []
    )
    return {**out, "verdict": "failed", "message": "; ".join(parts)}


def blocking_failures(warehouse_url: str, run_id: str) -> list[str]:
    """'CEN-023 (1 of 1)' for each blocking rule that did not pass in the run's validations."""
    from healthops.warehouse.connection import connect

    with connect(warehouse_url) as conn:
        rows = conn.execute(
            """select r.rule_id, r.rows_violating, r.rows_evaluated
               from audit.rule_results r join audit.validation_runs v using (validation_run_id)
               where v.dag_run_id = %s and r.severity = 'blocking' and r.status is distinct from 'passed'
               order by r.rule_id""",
            (run_id,),
        ).fetchall()
    return [f"{rule} ({'?' if bad is None else bad} of {'?' if n is None else n})" for rule, bad, n in rows]


def _child(argv: list[str]) -> int:
    """In the Airflow child process: dag.test() for each date, a verdict per run."""
    import argparse
    import logging

    import pendulum

    parser = argparse.ArgumentParser()
    parser.add_argument("--dag", default=DAG_ID)
    parser.add_argument("--conf", default="{}")
    parser.add_argument("dates", nargs="+")
    args = parser.parse_args(argv)
    progress = os.fdopen(int(os.environ[PROGRESS_FD_ENV]), "w", buffering=1)

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(config.DAGS_DIR))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        return 2
    dag = bag.dags[args.dag]
    conf = json.loads(args.conf) or None
    url = os.environ.get("HEALTHOPS_WAREHOUSE_URL")
    if url:
        from healthops.warehouse.roles import step_url

        url = step_url(url, "auditor")  # the verdicts and summaries read audit and the ledger
    for d in args.dates:
        logical = pendulum.parse(d, tz=config.facility_tz())
        t0 = time.monotonic()
        dr = dag.test(logical_date=logical, run_conf=conf)
        state = str(getattr(dr.state, "value", dr.state))
        result = {
            "date": d,
            "state": state,
            "run_id": dr.run_id,
            **judge(dag, dr.run_id, logical.date(), url),
            "seconds": round(time.monotonic() - t0, 1),
        }
        if url:
            try:
                result.update(run_summary(url, dr.run_id, logical.date() if args.dag == DAG_ID else None))
            except Exception:  # the verdict stands without the summary
                logging.getLogger(__name__).exception("no summary for the run of %s", d)
        print(f"HEALTHOPS-RUN {d} {state} {result['verdict']} {result['message']}", flush=True)
        progress.write(json.dumps(result) + "\n")
        if result["verdict"] == "failed":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
