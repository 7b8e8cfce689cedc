"""The report catalog (``report_templates/catalog.yml``): which reports exist, for
whom, how often, in what form. Read by the publisher, the CLI, the alerts and the
DAG files; so this module imports nothing heavier than YAML (a DAG file that reads
it must parse in well under a second: no rendering stack, no database).

A report's ``schedule`` is what the DAGs run: ``{after: <dag_id>}`` (the report is
the last task of that DAG's run) or ``{cron: "<expression>"}`` in the facility's
time zone (``healthops_reports_monthly`` runs on the one cron of the monthly
reports).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from healthops import config
from healthops.errors import ConfigurationError

DEFAULT_CATALOG_PATH = config.REPORT_TEMPLATES_DIR / "catalog.yml"
CATALOG_ENV = "HEALTHOPS_REPORT_CATALOG"

# Per-recipient filter keys a catalog entry may use (each report kind says which it reads).
FILTER_KEYS = ("facility", "units")
PERIODS = ("day", "week", "month")


def load_catalog(path: str | os.PathLike | None = None) -> dict:
    """Read the report catalog (YAML) and return it with defaults applied.

    Path: ``path``, else ``$HEALTHOPS_REPORT_CATALOG``, else the repository's
    ``report_templates/catalog.yml``. Each entry of ``catalog["reports"]`` gets
    ``id``, ``sender``, ``recipients`` (list) and ``formats`` filled in.
    """
    path = Path(path or os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG_PATH)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"report catalog not found: {path}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("reports"), dict) or not raw["reports"]:
        raise ConfigurationError(f"{path}: a report catalog needs a non-empty 'reports' mapping")
    defaults = raw.get("defaults") or {}
    reports = {}
    for report_id, entry in raw["reports"].items():
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{path}: report {report_id!r} must be a mapping")
        merged = {"sender": "healthops@localhost", "formats": ["html", "pdf"], "recipients": []}
        merged.update(defaults)
        merged.update(entry)
        merged["id"] = report_id
        for key in ("template", "subject"):
            if not merged.get(key):
                raise ConfigurationError(f"{path}: report {report_id!r} has no {key!r}")
        recipients = merged["recipients"]
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list):
            raise ConfigurationError(f"{path}: report {report_id!r}: recipients must be a list")
        distribution = []
        for r in recipients:
            # an address, or {address: ..., filter: {facility: ..., units: [...]}}
            address, flt = (
                (r, {})
                if isinstance(r, str)
                else ((r.get("address"), r.get("filter") or {}) if isinstance(r, dict) else (None, None))
            )
            if not (isinstance(address, str) and "@" in address) or not isinstance(flt, dict):
                raise ConfigurationError(
                    f"{path}: report {report_id!r}: each recipient is an e-mail address or "
                    f"{{address, filter}}, got {r!r}"
                )
            unknown_keys = set(flt) - set(FILTER_KEYS)
            if unknown_keys:
                raise ConfigurationError(
                    f"{path}: report {report_id!r}: recipient {address}: unknown filter keys "
                    f"{sorted(unknown_keys)} (known: {', '.join(FILTER_KEYS)})"
                )
            if "units" in flt and not (
                isinstance(flt["units"], list) and flt["units"] and all(isinstance(u, str) for u in flt["units"])
            ):
                raise ConfigurationError(
                    f"{path}: report {report_id!r}: recipient {address}: units must be a list of unit codes"
                )
            if any(d["address"].lower() == address.lower() for d in distribution):
                raise ConfigurationError(f"{path}: report {report_id!r}: recipient {address} is listed twice")
            distribution.append({"address": address, "filter": dict(flt)})
        merged["recipients"] = [d["address"] for d in distribution]
        merged["distribution"] = distribution
        _check_schedule(path, report_id, merged)
        unknown = set(merged["formats"]) - {"html", "pdf", "csv"}
        if unknown:
            raise ConfigurationError(f"{path}: report {report_id!r}: unknown formats {sorted(unknown)}")
        reports[report_id] = merged
    return {**raw, "path": str(path), "reports": reports}


def _check_schedule(path, report_id: str, entry: dict) -> None:
    schedule = entry.get("schedule")
    if not (
        isinstance(schedule, dict)
        and len(schedule) == 1
        and set(schedule) <= {"after", "cron"}
        and isinstance(next(iter(schedule.values())), str)
    ):
        raise ConfigurationError(
            f"{path}: report {report_id!r}: schedule must be {{after: DAG_ID}} or "
            f"{{cron: EXPRESSION}}, got {schedule!r}"
        )
    if entry.get("period") not in PERIODS:
        raise ConfigurationError(f"{path}: report {report_id!r}: period must be one of {', '.join(PERIODS)}")


def period_cron(catalog: dict, period: str) -> str:
    """The one cron expression of the catalog's scheduled reports of ``period`` (what
    the DAG that publishes them runs on). Two different crons for one period would
    need two DAGs: refused, naming the reports."""
    crons = {
        r: e["schedule"]["cron"]
        for r, e in catalog["reports"].items()
        if e.get("period") == period and "cron" in e["schedule"]
    }
    if len(set(crons.values())) != 1:
        raise ConfigurationError(
            f"{catalog['path']}: the {period}ly reports need one cron schedule, got {crons or 'none'}"
        )
    return next(iter(crons.values()))


def reports_after(catalog: dict, dag_id: str) -> list[str]:
    """The reports whose schedule is ``{after: dag_id}``: the last tasks of that DAG's run."""
    return [r for r, e in catalog["reports"].items() if e["schedule"].get("after") == dag_id]
