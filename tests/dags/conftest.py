"""Airflow reads its configuration at import: point it at a throwaway home before
any test in this folder imports it."""

import os
import tempfile

from healthops import config

_home = tempfile.mkdtemp(prefix="healthops-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(config.DAGS_DIR))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home}/airflow.db")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("SCARF_ANALYTICS", "false")
