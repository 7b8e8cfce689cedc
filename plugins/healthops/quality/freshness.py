"""Rules of the catalog that ``dbt source freshness`` decides (``expectation:
DbtSourceFreshness``): run dbt for the rule file's sources and turn its verdicts into
the ``ValidationSummary`` every other rule file produces, so they are persisted,
counted, alerted on and block publication like any other rule.

- **Thresholds are dbt's.** warn_after / error_after and loaded_at_field live in the
  dbt project's sources yml; the rule file names the rules (``rules.py`` checks at
  load time that each rule's source, table and level exist there). dbt's own criteria
  are checked again here, after the run.
- **As of the end of the logical day.** The freshness of night D is taken at local
  midnight ending D in the facility time zone, counting only rows stamped at or
  before it (``dbt_project/macros/collect_freshness.sql``), so a re-run or a backfill
  gives the night's verdict whenever it runs.
- **One row per rule.** rows_evaluated 1 (the source table); rows_violating 1 when
  dbt's status reaches the rule's level (warn rule: warn or error; error rule: error).
- **Failing loudly.** dbt reporting a runtime error for a source (e.g. its table is
  missing) fails every rule of that source with the error kept in the result
  (status ``error`` in audit.rule_results); dbt not producing a result at all (it
  could not parse the project or reach the warehouse) raises ``FreshnessRunError``.

Cost: one dbt process per rule file and night: 6.5-7 s on a small 2-CPU machine, of
which ~5.3 s is dbt starting up (``dbt --help`` alone). The as-of instant reaches the
macro through the environment (``HEALTHOPS_FRESHNESS_AS_OF``), not ``--vars``: dbt
hashes the command line vars into its partial-parse state, so a new date every night
forces a full re-parse (measured 7.8-10.4 s a run on the same machine); an env var
read by a macro at run time does not. Each run gets its own target directory (two
nights validated at once must not read each other's sources.json, nor a
freshness run's state unsettle the partial parse of ``dbt build`` in target/),
seeded with the last freshness run's partial-parse file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from healthops import config
from healthops.quality.rules import FRESHNESS_ENGINE, FRESHNESS_LEVELS, RuleFile, load_rules

log = logging.getLogger(__name__)

AS_OF_ENV = "HEALTHOPS_FRESHNESS_AS_OF"  # read by macros/collect_freshness.sql
AS_OF_VAR = "freshness_as_of"  # the same, as a dbt var (for dbt run by hand)
PARTIAL_PARSE = "partial_parse.msgpack"
# dbt's FreshnessStatus values that reach each level.
FAILS_AT = {"warn": ("warn", "error"), "error": ("error",)}
RUNTIME_ERROR = "runtime error"


class FreshnessRunError(RuntimeError):
    """dbt source freshness gave no verdict (it failed before or around the run)."""


def as_of(logical_date: dt.date, facility_tz: str | None = None) -> dt.datetime:
    """The end of the logical day in the facility time zone (local midnight ending
    it), in UTC."""
    if isinstance(logical_date, dt.datetime) or not isinstance(logical_date, dt.date):
        raise ValueError(f"logical_date must be a date, got {logical_date!r}")
    tz = ZoneInfo(facility_tz or config.facility_tz())
    local_midnight = dt.datetime.combine(logical_date + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return local_midnight.astimezone(dt.timezone.utc)


def work_dir(project_dir: Path | None = None, url: str | None = None) -> Path:
    """Where freshness runs keep their partial-parse file and their per-run targets:
    target/source_freshness in the project (in the tests, under the target path of the
    warehouse's runs: ``dbt_runner.target_path``, whose partial-parse state holds for
    that warehouse only)."""
    from healthops.warehouse.dbt_runner import target_path

    return target_path(url, project_dir) / "source_freshness"


def run_source_freshness(
    url: str, selectors: list[str], instant: dt.datetime, project_dir: Path | None = None
) -> tuple[dict, dict]:
    """``dbt source freshness --select <selectors>`` as of ``instant``: (dbt's
    sources.json, {"seconds", "returncode", "output", "runtime_errors"}).

    dbt 1.11 leaves sources that hit a runtime error out of sources.json (its
    artifact keeps only complete results), so the run also logs to a JSON file of its
    own: ``runtime_errors`` maps (source, table) to dbt's error message from it."""
    from healthops.warehouse.dbt_runner import run_dbt

    project = Path(project_dir or config.DBT_PROJECT_DIR)
    work = work_dir(project, url)
    work.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    cached = work / PARTIAL_PARSE
    try:
        if cached.is_file():
            shutil.copyfile(cached, target / PARTIAL_PARSE)
        t0 = time.perf_counter()
        proc = run_dbt(
            [
                "source",
                "freshness",
                "--select",
                *selectors,
                "--target-path",
                str(target),
                "--log-path",
                str(target),
                "--log-format-file",
                "json",
                "--log-level-file",
                "info",
            ],
            url,
            project,
            check=False,
            capture=True,
            env={AS_OF_ENV: instant.astimezone(dt.timezone.utc).isoformat()},
        )
        seconds = time.perf_counter() - t0
        fresh = target / PARTIAL_PARSE
        if fresh.is_file():  # keep it for the next run (atomic: same file system)
            tmp = work / f".{PARTIAL_PARSE}.{uuid.uuid4().hex}"
            shutil.copyfile(fresh, tmp)
            os.replace(tmp, cached)
        output = (proc.stdout or "") + (proc.stderr or "")
        sources_json = target / "sources.json"
        if not sources_json.is_file():
            raise FreshnessRunError(
                f"dbt source freshness --select {' '.join(selectors)} gave no results "
                f"(exit code {proc.returncode})\n{output[-4000:]}"
            )
        log.debug("dbt source freshness output:\n%s", output)
        return json.loads(sources_json.read_text()), {
            "seconds": seconds,
            "returncode": proc.returncode,
            "output": output,
            "runtime_errors": _runtime_errors(target / "dbt.log"),
        }
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _runtime_errors(log_file: Path) -> dict[tuple[str, str], dict]:
    """(source, table) -> a sources.json-like result (unique_id, status, error) for
    each source dbt logged a runtime error for."""
    failed: dict[str, tuple[str, str]] = {}
    messages: dict[str, str] = {}
    if not log_file.is_file():
        return {}
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        name = (event.get("info") or {}).get("name")
        data = event.get("data") or {}
        uid = (data.get("node_info") or {}).get("unique_id")
        if name == "LogFreshnessResult" and data.get("status") == RUNTIME_ERROR:
            failed[uid] = (data.get("source_name"), data.get("table_name"))
        elif name == "RunResultError" and uid and data.get("msg"):
            messages.setdefault(uid, data["msg"])
    return {
        key: {"unique_id": uid, "status": RUNTIME_ERROR, "error": messages.get(uid) or "dbt reported a runtime error"}
        for uid, key in failed.items()
    }


def validate(
    url: str,
    rule_file: RuleFile | Path | str,
    logical_date: dt.date,
    dag_run_id: str | None = None,
    *,
    facility_tz: str | None = None,
    project_dir: Path | None = None,
):
    """Run a DbtSourceFreshness rule file for ``logical_date``; a
    ``gx_runner.ValidationSummary`` (engine FRESHNESS_ENGINE). Writes nothing."""
    from healthops.quality.outcomes import RuleOutcome, ValidationSummary, code_version

    rf = rule_file if isinstance(rule_file, RuleFile) else load_rules(rule_file)
    if rf.engine != FRESHNESS_ENGINE:
        raise ValueError(f"{rf.path.name} runs on {rf.engine}, not {FRESHNESS_ENGINE}")
    instant = as_of(logical_date, facility_tz)
    tables = list(dict.fromkeys((r.kwargs["source"], r.kwargs["table"]) for r in rf.rules))
    run_at = dt.datetime.now(dt.timezone.utc)
    sources, run = run_source_freshness(url, [f"source:{s}.{t}" for s, t in tables], instant, project_dir)

    by_table: dict[tuple[str, str], dict] = {}
    for res in sources.get("results") or []:
        _, _, rest = str(res.get("unique_id", "")).partition(".")  # source.<project>.<source>.<table>
        parts = rest.split(".")
        if len(parts) >= 3:
            by_table[(parts[-2], parts[-1])] = res
    for key, res in run["runtime_errors"].items():
        by_table.setdefault(key, res)
    missing = [f"{s}.{t}" for s, t in tables if (s, t) not in by_table]
    if missing:
        raise FreshnessRunError(
            f"dbt source freshness gave no result for {', '.join(missing)} (exit code "
            f"{run['returncode']}): is freshness configured in dbt's sources yml?\n{run['output'][-4000:]}"
        )

    outcomes = []
    for rule in rf.rules:
        res = by_table[(rule.kwargs["source"], rule.kwargs["table"])]
        outcomes.append(_outcome(rule, res, instant, RuleOutcome))
    run_id = uuid.uuid4()
    ok = sum(o.success for o in outcomes)
    hops = {
        "validation_run_id": str(run_id),
        "rules_file": rf.path.name,
        "rules_sha256": rf.sha256,
        "logical_date": logical_date.isoformat(),
        "dag_run_id": dag_run_id,
        "engine": FRESHNESS_ENGINE,
        "as_of": instant.isoformat(),
    }
    result = {
        # Not a GX validation result: the engine says what produced it.
        "engine": FRESHNESS_ENGINE,
        "success": ok == len(outcomes),
        "statistics": {
            "evaluated_expectations": len(outcomes),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(outcomes) - ok,
            "success_percent": 100.0 * ok / len(outcomes),
        },
        "meta": {"healthops": hops},
        # One entry per rule, shaped like GX's so readers of the audit trail find the
        # rule's catalog fields in the same place (expectation_config.meta).
        "results": [
            {
                "success": o.success,
                "expectation_config": {"type": FRESHNESS_ENGINE, "kwargs": dict(rule.kwargs), "meta": rule.meta},
                "result": o.detail,
            }
            for rule, o in zip(rf.rules, outcomes)
        ],
        # dbt's own artifact (sources.json), as dbt wrote it.
        "dbt": {
            "command": "source freshness",
            "returncode": run["returncode"],
            "metadata": sources.get("metadata"),
            "elapsed_time": sources.get("elapsed_time"),
            "results": [by_table[t] for t in tables],
        },
    }
    summary = ValidationSummary(
        validation_run_id=run_id,
        suite_name=rf.suite_name,
        data_asset=rf.data_asset,
        logical_date=logical_date,
        dag_run_id=dag_run_id,
        code_version=code_version(),
        run_at=run_at,
        success=ok == len(outcomes),
        evaluated_expectations=len(outcomes),
        successful_expectations=ok,
        blocking_failures=[o.rule_id for o in outcomes if not o.success and o.severity == "blocking"],
        warnings=[o.rule_id for o in outcomes if not o.success and o.severity == "warning"],
        results=outcomes,
        gx_result=result,
        timings={"dbt_source_freshness": run["seconds"]},
        engine=FRESHNESS_ENGINE,
    )
    log.info(
        "freshness %s as of %s: %s",
        rf.suite_name,
        instant.isoformat(),
        ", ".join(f"{o.rule_id} {'passed' if o.success else 'failed'} ({o.detail.get('status')})" for o in outcomes),
    )
    return summary


def _outcome(rule, res: dict, instant: dt.datetime, outcome_cls):
    level = rule.kwargs["level"]
    status = str(res.get("status") or "")
    criteria = res.get("criteria") or {}
    detail: dict[str, Any] = {
        "source": f"{rule.kwargs['source']}.{rule.kwargs['table']}",
        "loaded_at_field": rule.resolved.get("loaded_at_field"),
        "level": level,
        "status": status,
        "as_of": instant.isoformat(),
    }
    if status == RUNTIME_ERROR or status not in ("pass", "warn", "error"):
        # No verdict on the data: the rule fails and says why (audit status 'error').
        detail["exception"] = str(res.get("error") or res.get("message") or f"dbt status {status!r}")[:500]
        return outcome_cls(
            rule_id=rule.id,
            severity=rule.severity,
            success=False,
            rows_violating=None,
            description=rule.description,
            expectation_type=FRESHNESS_ENGINE,
            column_name=rule.column_name,
            rows_evaluated=1,
            violating_share=None,
            detail=detail,
        )
    snapshotted = res.get("snapshotted_at")
    if not snapshotted or _instant(snapshotted) != instant:
        # dbt took "now": the as-of override (macros/collect_freshness.sql) did not run,
        # and a verdict taken now would change with the day the night is re-run.
        raise FreshnessRunError(
            f"rule {rule.id}: dbt measured {detail['source']} at {snapshotted}, not as of {instant.isoformat()}: "
            "is dbt_project/macros/collect_freshness.sql (postgres__collect_freshness) in place?"
        )
    threshold = criteria.get(FRESHNESS_LEVELS[level]) or {}
    if not (threshold.get("count") and threshold.get("period")):
        # load_rules checked the sources yml; dbt resolved something else
        # (e.g. a dbt_project.yml sources: config): catalog and dbt disagree.
        raise FreshnessRunError(
            f"rule {rule.id}: dbt ran {detail['source']} without a {FRESHNESS_LEVELS[level]} "
            f"threshold (criteria {criteria}); the catalog and dbt's sources yml disagree"
        )
    age = res.get("max_loaded_at_time_ago_in_s")
    detail.update(
        {
            "max_loaded_at": res.get("max_loaded_at"),
            "snapshotted_at": res.get("snapshotted_at"),
            "age_hours": round(float(age) / 3600, 2) if age is not None else None,
            "criteria": {k: criteria.get(k) for k in ("warn_after", "error_after", "filter")},
        }
    )
    failed = status in FAILS_AT[level]
    return outcome_cls(
        rule_id=rule.id,
        severity=rule.severity,
        success=not failed,
        rows_violating=1 if failed else 0,
        description=rule.description,
        expectation_type=FRESHNESS_ENGINE,
        column_name=rule.column_name,
        rows_evaluated=1,
        violating_share=1.0 if failed else 0.0,
        detail=detail,
    )


def _instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
