"""Run a reviewed rule file against the warehouse with Great Expectations and keep
the outcome for auditors in ``audit.validation_runs`` / ``audit.rule_results``.

GX is imported on first use, quietly and with analytics off
(``healthops.quality.gx_context``); the outcome types are in
``healthops.quality.outcomes``.

The data source, table asset
and whole-table batch definition are made once per warehouse URL and table and
reused, so a process that validates many nights pays the set-up once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import logging
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from healthops.quality import evidence
from healthops.quality.gx_context import get_context, import_gx
from healthops.quality.outcomes import PARTIAL_VALUES, RuleOutcome, ValidationSummary, code_version
from healthops.quality.rules import FRESHNESS_ENGINE, GX_ENGINE, RuleFile, build_suite, load_rules, rule_files
from healthops.warehouse.connection import connect, normalize_url
from healthops.warehouse.migrate import require_current

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": PARTIAL_VALUES}
BATCH_DEFINITION = "whole_table"


_lock = threading.RLock()
_batch_definitions: dict[tuple[str, str, str], Any] = {}


def _batch_definition(url: str, schema: str, table: str):
    """Data source -> table asset -> whole-table batch definition, made once per
    (warehouse, table) in this process."""
    url = normalize_url(url)
    key = (url, schema, table)
    with _lock:
        if key not in _batch_definitions:
            context = get_context()
            # The name must not carry the password: a hash of the URL tells
            # warehouses apart without revealing it.
            ds_name = "warehouse_" + hashlib.sha256(url.encode()).hexdigest()[:12]
            try:
                ds = context.data_sources.get(ds_name)
            except KeyError:
                ds = context.data_sources.add_postgres(ds_name, connection_string=url)
            asset_name = f"{schema}.{table}"
            if asset_name in ds.get_asset_names():
                asset = ds.get_asset(asset_name)
            else:
                with warnings.catch_warnings():
                    # GX 1.14+ deprecates schema_name in favour of "the schema in the
                    # datasource's connection configuration", but PostgresDatasource has
                    # no such setting (schema_ is None in 1.24); an explicit schema is
                    # the only way short of rewriting search_path.
                    warnings.filterwarnings(
                        "ignore", message="`schema_name` is deprecated", category=DeprecationWarning
                    )
                    asset = ds.add_table_asset(name=asset_name, table_name=table, schema_name=schema)
            try:
                bd = asset.get_batch_definition(BATCH_DEFINITION)
            except KeyError:
                bd = asset.add_batch_definition_whole_table(BATCH_DEFINITION)
            _batch_definitions[key] = bd
        return _batch_definitions[key]


def validate(
    url: str,
    rules_file: Path | str,
    logical_date: dt.date,
    dag_run_id: str | None = None,
    *,
    rule_file: RuleFile | None = None,
) -> ValidationSummary:
    """Validate the rule file's table (whole table; SQL rules narrow it themselves,
    e.g. to the logical date's receipt) and summarise per rule.
    Writes nothing; see ``persist`` / ``validate_and_record``. A file of another
    engine (dbt source freshness) is run by that engine, with the same summary."""
    t_load = time.perf_counter()
    rf = rule_file or load_rules(rules_file)
    if rf.engine != GX_ENGINE:  # before importing GX: that engine does not need it
        return _validate_other_engine(url, rf, logical_date, dag_run_id)
    load_seconds = time.perf_counter() - t_load
    from great_expectations.core.run_identifier import RunIdentifier

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    context = get_context()  # first call in a process: imports GX (the bulk of the time)
    t1 = time.perf_counter()
    timings["gx_context"] = t1 - t0
    suite = build_suite(rf, logical_date)  # SQL rules are filled in for this date
    t2 = time.perf_counter()
    timings["load_rules"] = load_seconds + t2 - t1
    with _lock:  # the context's stores are shared by threads of this process
        bd = _batch_definition(url, rf.schema, rf.table)
        suite = context.suites.add_or_update(suite)
        vd = context.validation_definitions.add_or_update(
            import_gx().ValidationDefinition(name=f"{suite.name}:{bd.data_asset.datasource.name}", data=bd, suite=suite)
        )
        t3 = time.perf_counter()
        timings["datasource"] = t3 - t2
        run_at = dt.datetime.now(dt.timezone.utc)
        run_name = f"{rf.suite_name}:{logical_date.isoformat()}" + (f":{dag_run_id}" if dag_run_id else "")
        result = vd.run(result_format=RESULT_FORMAT, run_id=RunIdentifier(run_name=run_name, run_time=run_at))
    # Before anything reads it: values of columns not on the file's evidence_columns
    # (and of PHI columns, always) are dropped from the result.
    evidence.redact_validation_result(result)
    timings["validate"] = time.perf_counter() - t3

    # GX does not keep suite order in its results; the file's order is the report's.
    order = {r.id: i for i, r in enumerate(rf.rules)}
    outcomes = sorted((_outcome(rf, r) for r in result.results), key=lambda o: order[o.rule_id])
    run_id = uuid.uuid4()
    # Tie the GX result to the reviewed file it came from (suite meta is not in it).
    result.meta["healthops"] = {
        "validation_run_id": str(run_id),
        "rules_file": rf.path.name,
        "rules_sha256": rf.sha256,
        "logical_date": logical_date.isoformat(),
        "dag_run_id": dag_run_id,
    }
    stats = result.statistics
    return ValidationSummary(
        validation_run_id=run_id,
        suite_name=rf.suite_name,
        data_asset=rf.data_asset,
        logical_date=logical_date,
        dag_run_id=dag_run_id,
        code_version=code_version(),
        run_at=run_at,
        success=bool(result.success),
        evaluated_expectations=int(stats["evaluated_expectations"]),
        successful_expectations=int(stats["successful_expectations"]),
        blocking_failures=[o.rule_id for o in outcomes if not o.success and o.severity == "blocking"],
        warnings=[o.rule_id for o in outcomes if not o.success and o.severity == "warning"],
        results=outcomes,
        gx_result=result.to_json_dict(),
        timings=timings,
    )


def _validate_other_engine(url: str, rf: RuleFile, logical_date: dt.date, dag_run_id: str | None) -> ValidationSummary:
    from healthops.quality import freshness

    if rf.engine == FRESHNESS_ENGINE:
        return freshness.validate(url, rf, logical_date, dag_run_id)
    raise ValueError(f"{rf.path.name}: no runner for engine {rf.engine!r}")


def _outcome(rf: RuleFile, r) -> RuleOutcome:
    cfg = r.expectation_config
    rule = rf.rule(cfg.meta["rule_id"])  # meta came from the file; KeyError means drift
    res = r.result or {}
    evaluated = res.get("element_count")
    violating = res.get("unexpected_count")
    if violating is None and cfg.type == "unexpected_rows_expectation":
        violating = res.get("observed_value")  # GX's SQL rule: the count of rows its query returned
    share = None
    if evaluated and violating is not None:
        share = violating / evaluated
    elif evaluated == 0 and violating is not None:
        share = 0.0
    detail: dict[str, Any] = {}
    for k in (
        "observed_value",
        "element_count",
        "missing_count",
        "unexpected_count",
        "unexpected_percent",
        "unexpected_percent_nonmissing",
        "threshold",
    ):
        if k in res and res[k] is not None:
            detail[k] = res[k]
    if rule.threshold:
        detail["threshold"] = rule.threshold
    if res.get("partial_unexpected_list"):
        detail["partial_unexpected_list"] = res["partial_unexpected_list"][:PARTIAL_VALUES]
    details = res.get("details") or {}
    if details.get("unexpected_rows"):  # SQL rules: the first violating rows (keys, no PHI)
        detail["unexpected_rows"] = details["unexpected_rows"][:PARTIAL_VALUES]
    if "observation" in details:
        detail["observation"] = details["observation"]
    info = r.exception_info or {}
    if info.get("raised_exception"):
        # The message only (never the traceback): it names columns, not values.
        detail["exception"] = str(info.get("exception_message") or "")[:500]
    return RuleOutcome(
        rule_id=rule.id,
        severity=rule.severity,
        success=bool(r.success),
        rows_violating=violating,
        description=rule.description,
        expectation_type=cfg.type,
        column_name=rule.column_name,
        rows_evaluated=evaluated,
        violating_share=share,
        detail=_jsonable(detail),
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):  # numeric columns of SQL rules' evidence rows
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def persist(conn, summary: ValidationSummary) -> None:
    """Append the run, one row per rule and the keys of the rows behind each failure
    to the audit trail (``healthops.quality.audit_trail``: append-only, hash-chained).
    ``conn`` is a psycopg 3 connection; the caller commits. Runs are appended, never
    replaced: the history is the audit trail."""
    from healthops.quality import audit_trail

    audit_trail.record_validation(conn, summary)


def _require_current(url: str) -> None:
    """Before any validation runs: the audit tables its results go to are this release's."""
    with connect(url, autocommit=True) as conn:
        require_current(conn)


def _log_validated(s: ValidationSummary) -> None:
    log.info(
        "validated %s (%s) for %s: %d/%d rules passed; blocking failures %s; warnings %s (%.1fs)",
        s.suite_name,
        s.data_asset,
        s.logical_date,
        s.successful_expectations,
        s.evaluated_expectations,
        s.blocking_failures or "none",
        s.warnings or "none",
        sum(s.timings.values()),
    )


def validate_and_record(
    url: str,
    rules_file: Path | str,
    logical_date: dt.date,
    dag_run_id: str | None = None,
) -> ValidationSummary:
    """``validate`` then ``persist`` in one committed transaction."""
    _require_current(url)
    summary = validate(url, rules_file, logical_date, dag_run_id)
    with connect(url) as conn:  # commits on clean exit
        persist(conn, summary)
    _log_validated(summary)
    return summary


def validate_domain(
    url: str,
    domain: str,
    logical_date: dt.date,
    dag_run_id: str | None = None,
    *,
    rules: list[RuleFile] | None = None,
) -> list[ValidationSummary]:
    """Every suite of a domain (one per rule file, i.e. per data asset), in order,
    each on its engine (GX, or dbt source freshness). Writes nothing."""
    rfs = rules if rules is not None else rule_files(domain)
    if not rfs:
        raise LookupError(f"no rule file has rules of domain {domain!r}")
    return [validate(url, rf.path, logical_date, dag_run_id, rule_file=rf) for rf in rfs]


def validate_domain_and_record(
    url: str,
    domain: str,
    logical_date: dt.date,
    dag_run_id: str | None = None,
    *,
    rules: list[RuleFile] | None = None,
) -> list[ValidationSummary]:
    """``validate_domain`` then ``persist`` every suite's run in one committed
    transaction: one audit.validation_runs row per suite, one rule_results row per rule."""
    _require_current(url)
    summaries = validate_domain(url, domain, logical_date, dag_run_id, rules=rules)
    with connect(url) as conn:
        for summary in summaries:
            persist(conn, summary)
    for s in summaries:
        _log_validated(s)
    return summaries
