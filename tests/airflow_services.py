"""Airflow's own components on loopback, for tests that need the scheduler itself
(a backfill is run by the scheduler, not by ``dag.test()``): an api-server serving
the task execution API, a dag-processor and a scheduler with the LocalExecutor, on
a SQLite metadata database, every port free and every process killed at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowServices:
    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.home = Path(env["AIRFLOW_HOME"])
        self.db = self.home / "airflow.db"
        self.procs: list[subprocess.Popen] = []

    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        airflow = str(Path(sys.executable).with_name("airflow"))
        proc = subprocess.run([airflow, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def start(self, dag_ids: list[str], timeout: float = 240) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        port = self.env["AIRFLOW__API__PORT"]
        for name, args in (
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", port, "--apps", "execution"]),
            ("dag-processor", ["dag-processor"]),
            ("scheduler", ["scheduler"]),
        ):
            log = open(self.logs / f"{name}.log", "w")
            self.procs.append(
                subprocess.Popen(
                    [airflow, *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self._healthy(port) and self._serialized(dag_ids):
                return
            time.sleep(1)
        raise TimeoutError(f"Airflow components not ready in {timeout} s; logs in {self.logs}")

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"an Airflow component exited with {p.returncode}; logs in {self.logs}")

    @staticmethod
    def _healthy(port: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _serialized(self, dag_ids: list[str]) -> bool:
        try:
            with contextlib.closing(sqlite3.connect(self.db)) as db:
                have = {d for (d,) in db.execute("select dag_id from serialized_dag")}
        except sqlite3.Error:
            return False
        return set(dag_ids) <= have

    def wait_for_runs(self, dag_id: str, n: int, run_type: str = "backfill", timeout: float = 900) -> list[tuple]:
        """(logical_date, state, run_id) of ``n`` runs of ``dag_id``, once all are done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.closing(sqlite3.connect(self.db)) as db:
                runs = db.execute(
                    "select logical_date, state, run_id from dag_run where dag_id = ? and run_type = ? "
                    "order by logical_date",
                    (dag_id, run_type),
                ).fetchall()
            if len(runs) >= n and all(state in ("success", "failed") for _, state, _ in runs):
                return runs
            time.sleep(2)
        raise TimeoutError(f"{dag_id}: {n} {run_type} run(s) not done in {timeout} s; logs in {self.logs}")

    def task_states(self, dag_id: str) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            return db.execute(
                "select run_id, task_id, state, try_number from task_instance where dag_id = ? "
                "order by run_id, task_id",
                (dag_id,),
            ).fetchall()

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def scheduler_env(base: dict[str, str]) -> dict[str, str]:
    """Settings for a scheduler-driven Airflow on one machine, on top of healthops'
    own Airflow environment (``healthops.orchestration.airflow_env``)."""
    port = str(free_port())
    return {
        **base,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": port,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # the DAG files do not change during a test: parsed once, not again every 30 s
        # (each parse is CPU the other test worker could use)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        # a backfill's runs of a paused DAG stay queued; and no scheduled run of today
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
