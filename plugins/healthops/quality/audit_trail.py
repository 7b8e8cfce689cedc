"""The auditors' record of data quality: validation runs, rule results, the keys of
the violating rows, and reviews, kept append-only and tamper-evident in ``audit``.

Design
------
- **What is kept.** ``audit.validation_runs`` (run id, suite, logical date, Airflow
  run id, code version, rule file and its sha256, when, GX's result);
  ``audit.rule_results`` (one per rule and run: rows evaluated / violating, share,
  threshold, status against it, the rule's catalog fields); ``audit.rule_violations``
  (the drill-down: key and code columns of the violating rows, at most
  ``VIOLATION_CAP`` per rule, never PHI); ``audit.reviews``. A *finding*
  (``audit.findings`` view) is a rule result that did not pass; it is open until
  it has a review.
- **Append-only.** Roles have no UPDATE/DELETE/TRUNCATE on these tables, and
  triggers refuse them for everyone, owner included.
- **Tamper-evident.** A superuser can still disable triggers, so every row is in a
  hash chain: one chain per table, rows numbered ``chain_seq`` 1, 2, 3 ... in
  insertion order, ``row_hash = sha256(prev_hash || canonical content)`` where
  ``prev_hash`` is the previous row's ``row_hash`` (64 zeros for the first). One chain
  per table rather than one across tables so that a deleted row is located exactly
  (its table and seq): a gap in that table's numbering. Rows of different tables are
  bound by their keys, which are hashed content (a rule result's validation run id).
  The chain columns are assigned by a BEFORE INSERT trigger under one transaction
  advisory lock, and the canonical text is computed by PostgreSQL
  (``healthops.warehouse.schema.canonical_sql``), so no writer can fork the chain or
  hash differently. ``verify`` recomputes every hash with the SQL built here from the
  column lists in schema.py, not with the (replaceable) trigger functions.
- **What verify detects.** A changed row (content hash mismatch), a deleted row
  (gap in seq), a rewritten hash (broken link at the next row), a row inserted with
  the triggers off (no chain values), and cross-table counts that no longer add up
  (a run's rule results vs ``evaluated_expectations``, a result's violation rows vs
  ``violations_kept``), which also catches a deleted last row of rule_results or
  rule_violations. What a chain cannot show on its own is the removal of the newest
  rows of a table together with everything that counts them, or a whole chain
  rewritten by a superuser: ``verify`` prints each table's head (seq and hash), and
  each night writes the heads to a file outside the warehouse
  (``healthops.quality.audit_heads``), against which both show.

Evidence for the drill-down: a failed SQL rule's ``unexpected_rows_query`` (it selects
keys and codes) is run again in the persisting transaction, up to ``VIOLATION_CAP``
rows; if its count no longer matches what GX counted (the data moved in between),
or it fails, the few rows GX returned are kept instead (``evidence = 'gx_sample'``).
Row-wise GX rules keep GX's sample of offending values, as ``{column: value}``.
Only columns on the rule file's ``evidence_columns`` allow-list are kept, and never a
column on the deny-list ``rules.PHI_COLUMNS`` (``healthops.quality.evidence``): a
column rule on any other column keeps its counts and no values. SQL rules select
``encounter_pseudonym`` (sha256 of the warehouse salt and the encounter key), never
the visit number, room, bed or exact times.

Runs of another engine (``gx_result["engine"]``, e.g. dbt source freshness) are kept
the same way: their result JSON in ``gx_result``, one rule_results row per rule (the
catalog fields from each entry's ``expectation_config.meta``, as in GX's results),
and for a failed freshness rule one violation row: the source table, its newest
loaded_at value, the as-of instant and the age (``evidence = 'dbt_freshness'``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
from dataclasses import dataclass, field

from healthops.quality import evidence as evidence_policy
from healthops.warehouse.schema import AUDIT_CHAIN, CHAIN_LOCK_KEY, GENESIS_HASH, row_hash_sql

log = logging.getLogger(__name__)

VIOLATION_CAP = 1000  # violating rows' keys kept per rule and run
SQL_RULE_TYPES = ("unexpected_rows_expectation", "unexpected_rows_share_expectation")
FRESHNESS_RULE_TYPE = "dbt_source_freshness"  # rules.FRESHNESS_ENGINE
_FINDING_ID = re.compile(r"^\s*(?:F-?)?0*(\d{1,18})\s*$", re.IGNORECASE)
MAX_NOTE = 4000


def lock(conn) -> None:
    """Take the chain's transaction lock now (the insert trigger takes it anyway):
    one writer at a time appends, until its transaction ends."""
    conn.execute("select pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))


# -- appending -------------------------------------------------------------------------
def record_validation(conn, summary) -> None:
    """Append one validation run: its row, one row per rule, and the keys behind each
    failure. ``summary`` is a ``gx_runner.ValidationSummary``; the caller commits."""
    lock(conn)
    append_validation_run(conn, summary)
    append_rule_results(conn, summary)


def append_validation_run(conn, summary) -> None:
    from psycopg.types.json import Jsonb

    hops = (summary.gx_result.get("meta") or {}).get("healthops") or {}
    conn.execute(
        """insert into audit.validation_runs (validation_run_id, suite_name, data_asset,
               logical_date, dag_run_id, code_version, success, evaluated_expectations,
               successful_expectations, run_at, gx_result, rules_file, rules_sha256)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            summary.validation_run_id,
            summary.suite_name,
            summary.data_asset,
            summary.logical_date,
            summary.dag_run_id,
            summary.code_version,
            summary.success,
            summary.evaluated_expectations,
            summary.successful_expectations,
            summary.run_at,
            Jsonb(summary.gx_result),
            hops.get("rules_file"),
            hops.get("rules_sha256"),
        ),
    )


def append_rule_results(conn, summary) -> None:
    """One audit.rule_results row per rule outcome, then its violation keys."""
    from psycopg.types.json import Jsonb

    gx_results = _gx_results_by_rule(summary.gx_result)
    for o in summary.results:
        res = gx_results.get(o.rule_id, {})
        meta = (res.get("expectation_config") or {}).get("meta") or {}
        status = "error" if "exception" in o.detail else ("passed" if o.success else "failed")
        evidence, cap, keys = (None, None, [])
        if status != "passed":
            evidence, cap, keys = _evidence(conn, summary, o, res)
        conn.execute(
            """insert into audit.rule_results (validation_run_id, rule_id, expectation_type,
                   column_name, severity, success, rows_evaluated, rows_violating, violating_share,
                   detail, status, threshold, description, kahn_category, citation, domain, owner,
                   evidence, violations_kept, violations_cap)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                summary.validation_run_id,
                o.rule_id,
                o.expectation_type,
                o.column_name,
                o.severity,
                o.success,
                o.rows_evaluated,
                o.rows_violating,
                o.violating_share,
                Jsonb(o.detail),
                status,
                meta.get("threshold", o.detail.get("threshold", 0)),
                o.description or meta.get("description"),
                meta.get("kahn_category"),
                meta.get("citation"),
                meta.get("domain"),
                meta.get("owner"),
                evidence,
                len(keys) if evidence else None,
                cap,
            ),
        )
        if keys:
            append_violations(conn, summary.validation_run_id, o.rule_id, keys)


def append_violations(conn, validation_run_id, rule_id: str, keys: list[dict]) -> None:
    from psycopg.types.json import Jsonb

    with conn.cursor() as cur:
        cur.executemany(
            "insert into audit.rule_violations (validation_run_id, rule_id, violation_no, keys) "
            "values (%s, %s, %s, %s)",
            [(validation_run_id, rule_id, i, Jsonb(k)) for i, k in enumerate(keys, 1)],
        )


def _gx_results_by_rule(gx_result: dict) -> dict[str, dict]:
    out = {}
    for r in gx_result.get("results") or []:
        rule_id = ((r.get("expectation_config") or {}).get("meta") or {}).get("rule_id")
        if rule_id:
            out[rule_id] = r
    return out


def _evidence(conn, summary, o, res: dict) -> tuple[str | None, int | None, list[dict]]:
    """(source, cap, key rows) for a rule that did not pass."""
    from healthops.quality.outcomes import PARTIAL_VALUES

    if o.expectation_type == FRESHNESS_RULE_TYPE:
        if "exception" in o.detail:  # dbt gave no verdict: nothing to point at
            return None, None, []
        key = {
            k: o.detail.get(k)
            for k in ("source", "loaded_at_field", "max_loaded_at", "snapshotted_at", "age_hours", "status")
        }
        return "dbt_freshness", 1, _keys([key], frozenset(key))  # table metadata, no patient data
    columns_allowed = evidence_policy.allowed((res.get("expectation_config") or {}).get("meta"))
    if o.expectation_type in SQL_RULE_TYPES:
        query = ((res.get("expectation_config") or {}).get("kwargs") or {}).get("unexpected_rows_query")
        rows = _rerun_rows_query(conn, summary.data_asset, query) if query and o.rows_violating else None
        if rows is not None:
            complete = len(rows) <= VIOLATION_CAP
            if not complete or len(rows) == o.rows_violating:
                return "rows_query", VIOLATION_CAP, _keys(rows[:VIOLATION_CAP], columns_allowed)
            log.warning(
                "rule %s: its query now returns %d rows, GX counted %s; keeping GX's sample",
                o.rule_id,
                len(rows),
                o.rows_violating,
            )
        sample = o.detail.get("unexpected_rows") or []
        return "gx_sample", PARTIAL_VALUES, _keys(sample, columns_allowed)
    values = o.detail.get("partial_unexpected_list")
    if values is None:  # table-level rules (row counts): no rows to point at
        return None, None, []
    columns = o.column_name.split(",") if o.column_name else []
    rows = []
    for v in values:
        if isinstance(v, dict):
            rows.append(v)
        elif isinstance(v, (list, tuple)) and len(v) == len(columns) > 1:
            rows.append(dict(zip(columns, v)))
        else:
            rows.append({columns[0] if len(columns) == 1 else "value": v})
    return "gx_sample", PARTIAL_VALUES, _keys(rows, columns_allowed)


def _rerun_rows_query(conn, data_asset: str, query: str) -> list[dict] | None:
    """The rule's violating rows, as GX selected them (a whole-table batch is the
    table itself), at most VIOLATION_CAP + 1; None if the query fails."""
    from psycopg import sql

    schema, _, table = data_asset.partition(".")
    batch = sql.Identifier(schema, table).as_string(conn)
    try:
        text = query.format(batch=batch)  # GX's own substitution; doubled braces become literal
        with conn.transaction():  # a savepoint: a failing query leaves persist's transaction usable
            with conn.cursor(name="healthops_evidence") as cur:
                cur.execute(text)
                names = [d.name for d in cur.description]
                return [dict(zip(names, r)) for r in cur.fetchmany(VIOLATION_CAP + 1)]
    except Exception as e:  # noqa: BLE001 - evidence is best effort; the result row is not
        log.warning("could not re-run a rule's unexpected_rows_query for evidence: %s", e)
        return None


def _keys(rows: list[dict], allowed: frozenset[str]) -> list[dict]:
    """The rows with only allowed, non-PHI columns, as JSON values."""
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in evidence_policy.keep(rows, allowed)]


def _jsonable(value):
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# -- verifying -------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    table: str  # audit.<name>
    chain_seq: int | None  # the row's seq (for a gap: the first missing seq)
    key: dict | None  # the row's primary key (None for a missing row)
    reason: str  # content hash mismatch | broken link | gap in seq | duplicate seq | unchained row | count mismatch
    detail: str

    def __str__(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in (self.key or {}).items()) or "row missing"
        seq = f"seq {self.chain_seq}" if self.chain_seq is not None else "no seq"
        return f"{self.table} {seq} ({key}): {self.reason}: {self.detail}"


@dataclass
class VerifyResult:
    ok: bool
    rows_checked: int
    rows_by_table: dict[str, int] = field(default_factory=dict)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # table -> (seq, row_hash)
    problems: list[Problem] = field(default_factory=list)

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def verify(conn) -> VerifyResult:
    """Recompute every chained row's hash, check the links and the numbering, and
    check the counts that tie the tables together. Reads only."""
    result = VerifyResult(ok=True, rows_checked=0)
    for t in AUDIT_CHAIN:
        n = 0
        expected_seq, expected_prev = 1, GENESIS_HASH
        keys = ", ".join(f"t.{k}" for k in t.key)
        # Unchained rows first (nulls first), then the chain in order; streamed.
        query = (
            f"select t.chain_seq, t.prev_hash, t.row_hash, "
            f"{row_hash_sql(t, 't', 't.prev_hash')}, {keys} "
            f"from {t.qualified} t order by t.chain_seq nulls first"
        )
        with conn.cursor(name=f"verify_{t.name}") as cur:
            cur.itersize = 2000
            cur.execute(query)
            for seq, prev, stored, recomputed, *key_values in cur:
                n += 1
                key = dict(zip(t.key, (str(v) for v in key_values)))
                problem = None
                if seq is None or stored is None or prev is None:
                    problem = Problem(
                        t.qualified, seq, key, "unchained row", "no chain values: written with the chain trigger off"
                    )
                elif seq < expected_seq:
                    problem = Problem(t.qualified, seq, key, "duplicate seq", f"seq {seq} is used twice")
                elif seq > expected_seq:
                    missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seqs {expected_seq}..{seq - 1}"
                    problem = Problem(
                        t.qualified,
                        expected_seq,
                        None,
                        "gap in seq",
                        f"{missing} missing (deleted); the next row is seq {seq} ({_fmt(key)})",
                    )
                elif stored != recomputed:
                    problem = Problem(
                        t.qualified,
                        seq,
                        key,
                        "content hash mismatch",
                        f"stored row_hash {stored[:12]}..., content hashes to {recomputed[:12]}...: "
                        "the row was changed after it was written",
                    )
                elif prev != expected_prev:
                    problem = Problem(
                        t.qualified,
                        seq,
                        key,
                        "broken link",
                        f"prev_hash {prev[:12]}... is not the row_hash {expected_prev[:12]}... "
                        f"of seq {seq - 1}: that row's hash or this link was rewritten",
                    )
                if problem:
                    result.problems.append(problem)
                if seq is not None and stored is not None:
                    expected_seq, expected_prev = max(expected_seq, seq + 1), stored
                    result.heads[t.qualified] = (seq, stored)
        result.rows_by_table[t.qualified] = n
        result.rows_checked += n
    result.problems += _count_problems(conn)
    result.ok = not result.problems
    return result


def _count_problems(conn) -> list[Problem]:
    problems = []
    for run_id, seq, expected, found in conn.execute(
        """select v.validation_run_id, v.chain_seq, v.evaluated_expectations, count(r.rule_id)
               from audit.validation_runs v left join audit.rule_results r using (validation_run_id)
               group by 1, 2, 3 having count(r.rule_id) <> v.evaluated_expectations
               order by v.chain_seq"""
    ):
        problems.append(
            Problem(
                "audit.validation_runs",
                seq,
                {"validation_run_id": str(run_id)},
                "count mismatch",
                f"{expected} rules evaluated, {found} rule_results rows found",
            )
        )
    for run_id, rule_id, seq, expected, found in conn.execute(
        """select r.validation_run_id, r.rule_id, r.chain_seq, r.violations_kept, count(x.violation_no)
               from audit.rule_results r left join audit.rule_violations x using (validation_run_id, rule_id)
               where r.violations_kept is not null
               group by 1, 2, 3, 4 having count(x.violation_no) <> r.violations_kept
               order by r.chain_seq"""
    ):
        problems.append(
            Problem(
                "audit.rule_results",
                seq,
                {"validation_run_id": str(run_id), "rule_id": rule_id},
                "count mismatch",
                f"{expected} violation rows kept, {found} found",
            )
        )
    return problems


def _fmt(key: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (key or {}).items())


# -- findings and reviews --------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    finding_id: str
    validation_run_id: str
    rule_id: str
    suite_name: str
    logical_date: dt.date
    run_at: dt.datetime
    severity: str
    result_status: str
    rows_evaluated: int | None
    rows_violating: int | None
    violating_share: float | None
    threshold: float | None
    description: str
    violations_kept: int | None
    status: str  # open | reviewed
    reviews: int


_FINDING_COLUMNS = (
    "finding_id, validation_run_id::text, rule_id, suite_name, logical_date, run_at, "
    "severity, result_status, rows_evaluated, rows_violating, violating_share::float8, "
    "threshold::float8, description, violations_kept, status, reviews"
)


def findings(
    conn, since: dt.date | None = None, rule: str | None = None, include_reviewed: bool = False
) -> list[Finding]:
    """Findings of validation runs for logical dates on or after ``since``, of one
    rule id if given, oldest first; open ones only unless ``include_reviewed``."""
    rows = conn.execute(
        f"""select {_FINDING_COLUMNS} from audit.findings
            where (%(since)s::date is null or logical_date >= %(since)s::date)
              and (%(rule)s::text is null or upper(rule_id) = upper(%(rule)s::text))
              and (%(all)s or status = 'open')
            order by chain_seq""",
        {"since": since, "rule": rule, "all": include_reviewed},
    ).fetchall()
    return [Finding(*r) for r in rows]


def open_findings(conn, since: dt.date | None = None, rule: str | None = None) -> list[Finding]:
    return findings(conn, since=since, rule=rule)


def violations(conn, finding_id: str) -> list[dict]:
    """The kept keys behind a finding, in order."""
    f = _finding(conn, finding_id)
    return [
        r[0]
        for r in conn.execute(
            "select keys from audit.rule_violations where validation_run_id = %s and rule_id = %s "
            "order by violation_no",
            (f.validation_run_id, f.rule_id),
        )
    ]


@dataclass(frozen=True)
class Review:
    review_id: str  # R-000001
    finding_id: str
    reviewed_by: str
    note: str
    reviewed_at: dt.datetime
    chain_seq: int
    row_hash: str


def review(conn, finding_id: str, by: str, note: str) -> Review:
    """Record an auditor's review of a finding (appended to the chain). Refuses an
    unknown finding id and an empty name or note. The caller commits."""
    by, note = (by or "").strip(), (note or "").strip()
    if not by:
        raise ValueError("a review needs the reviewer's name (--by)")
    if not note:
        raise ValueError("a review needs a note (--note)")
    if len(note) > MAX_NOTE:
        raise ValueError(f"the note is {len(note)} characters; keep it under {MAX_NOTE}")
    f = _finding(conn, finding_id)
    lock(conn)
    no, at, seq, h = conn.execute(
        """insert into audit.reviews (finding_id, validation_run_id, rule_id, reviewed_by, note)
           values (%s, %s, %s, %s, %s) returning review_no, reviewed_at, chain_seq, row_hash""",
        (f.finding_id, f.validation_run_id, f.rule_id, by, note),
    ).fetchone()
    return Review(
        review_id=f"R-{no:06d}",
        finding_id=f.finding_id,
        reviewed_by=by,
        note=note,
        reviewed_at=at,
        chain_seq=seq,
        row_hash=h,
    )


def _finding(conn, finding_id: str) -> Finding:
    m = _FINDING_ID.match(finding_id or "")
    row = None
    if m:
        row = conn.execute(
            f"select {_FINDING_COLUMNS} from audit.findings where chain_seq = %s", (int(m.group(1)),)
        ).fetchone()
    if row is None:
        raise LookupError(f"no finding {finding_id!r} (see `healthops audit findings`)")
    return Finding(*row)
