"""Where healthops keeps things. Every path comes from the environment, with the
defaults docs/architecture.md#settings lists, resolved against the current directory."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from healthops.urls import normalize_url

# The repository root: plugins/healthops/config.py -> parents[2].
REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DAGS_DIR = REPO_ROOT / "dags"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
REPORT_TEMPLATES_DIR = REPO_ROOT / "report_templates"

# Census days are counted in the facility's local time (docs/sources.md#times: times without
# an offset are local; docs/definitions.md#census-day: a day runs midnight to midnight).
DEFAULT_FACILITY_TZ = "America/Los_Angeles"


def _path(var: str, default: str) -> Path:
    return Path(os.environ.get(var) or default).expanduser().resolve()


def home() -> Path:
    """Local state: embedded PostgreSQL data, Airflow metadata DB, GX context."""
    return _path("HEALTHOPS_HOME", ".healthops")


def landing() -> Path:
    """Where source systems drop their files (adt/YYYY-MM-DD/*.hl7, ...)."""
    return _path("HEALTHOPS_LANDING", "landing")


def out() -> Path:
    """Rendered reports, the embedded mail outbox, Data Docs."""
    return _path("HEALTHOPS_OUT", "out")


def facility_tz() -> str:
    return os.environ.get("HEALTHOPS_FACILITY_TZ") or DEFAULT_FACILITY_TZ


def landing_settle_seconds() -> float:
    """How long a landed file must have been left unmodified before it is read: 0 by
    default, since a writer that follows the interface renames ``NAME.tmp`` once the
    file is complete (docs/sources.md#conventions-for-every-source); more where files
    are copied straight into the folder under their final name."""
    value = os.environ.get("HEALTHOPS_LANDING_SETTLE_SECONDS") or "0"
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"HEALTHOPS_LANDING_SETTLE_SECONDS must be a number of seconds, 0 or more, not {value!r}")
    return seconds


def timekeeping_source_url() -> str | None:
    """The timekeeping vendor's database (docs/sources.md#timekeeping-database):
    ``HEALTHOPS_TIMEKEEPING_URL``, normalized like the warehouse's URL; None when it is
    not set (under Airflow the pipeline then asks for the ``healthops_timekeeping``
    connection)."""
    url = os.environ.get("HEALTHOPS_TIMEKEEPING_URL")
    return normalize_url(url, "timekeeping database") if url else None


def timekeeping_overlap() -> timedelta:
    """How far before the newest version already extracted each timekeeping extract
    starts reading again (``HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES``, default 120): a
    row committed after the last extract with an earlier ``updated_at`` (a long
    transaction, a clock behind) is still read when it is that recent."""
    value = os.environ.get("HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES") or "120"
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < float("inf"):
        raise ValueError(f"HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES must be a number of minutes, 0 or more, not {value!r}")
    return timedelta(minutes=minutes)


def dbt_project_env() -> dict[str, str]:
    """The settings dbt_project.yml reads with ``env_var()``. It gives them no default:
    this module is their one definition, and every dbt run gets them from here (the
    CLI's and tests' runs through ``warehouse.dbt_runner``, the DAG's Cosmos tasks)."""
    return {"HEALTHOPS_FACILITY_TZ": facility_tz()}


def facility_today() -> date:
    """Today's date in the facility's zone (what "yesterday's census" is relative to)."""
    return datetime.now(ZoneInfo(facility_tz())).date()


# The first logical date the DAGs accept. HL7 v2.3, the oldest version the ADT parser
# reads, was published in 1997: no feed healthops can load is older. DAG runs for an
# earlier date would be created with no task instance at all (Airflow creates none
# before a task's start_date), so `healthops run` refuses them with this date named.
HISTORY_START = date(1997, 1, 1)


# What the nightly dbt runs leave out (a dbt selector): dbt's unit tests check the SQL
# against rows they bring, not the night's data, so CI runs them (`make test`) and the
# nights do not, as dbt advises for production.
NIGHTLY_DBT_EXCLUDE = "resource_type:unit_test"


def dbt_tasks() -> str:
    """How the nightly DAG runs dbt: ``model`` (default: one Airflow task per model, for
    workers that run them side by side) or ``project`` (one ``dbt build`` task, faster on
    one small machine; the local runner uses it unless told otherwise)."""
    value = (os.environ.get("HEALTHOPS_DBT_TASKS") or "model").strip().lower()
    if value not in ("model", "project"):
        raise ValueError(f"HEALTHOPS_DBT_TASKS must be 'model' or 'project', not {value!r}")
    return value
