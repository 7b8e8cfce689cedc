"""The audit trail's hash chains: which tables are chained, which columns each row's
hash covers, and the SQL that computes the hash (the chain triggers use it, and so
does ``healthops.quality.audit_trail.verify``).

The tables, triggers and roles themselves are created by the versioned migrations
(``healthops.warehouse.migrate``, scripts in ``migrations/versions``); dbt owns
staging, intermediate and marts.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- the tamper-evident audit history ------------------------------------------------
# Design and verification: healthops.quality.audit_trail. Each chained table has its
# own hash chain: rows carry chain_seq (1, 2, 3, ... in insertion order), prev_hash
# (the row_hash of seq - 1; 64 zeros for seq 1) and
#     row_hash = sha256(prev_hash || canonical text of the row's content columns).
# The canonical text is computed by PostgreSQL, never by a client: a jsonb object of
# the content columns (timestamps as UTC text), null-valued keys dropped, printed by
# jsonb (keys sorted, fixed spacing, numerics exact). Dropping nulls lets a later
# release hash a new nullable column without changing the hashes of older rows.
# A BEFORE INSERT trigger assigns the three columns under one advisory lock, so every
# writer (persist, a review, a hand-written insert) extends the chain and two
# writers cannot fork it; a unique index on chain_seq backs that up.
# A change here (a new hashed column: append only) comes with a migration that
# replaces the table's chain function (audit.chain_<table>()): the triggers and
# verify must hash the same columns.
GENESIS_HASH = "0" * 64
CHAIN_LOCK_KEY = int.from_bytes(b"hopsaudt", "big")  # pg_advisory_xact_lock key (bigint)


@dataclass(frozen=True)
class ChainedTable:
    name: str  # in schema audit
    key: tuple[str, ...]  # primary key: how verify names a row
    content: tuple[str, ...]  # hashed columns. Append new columns only, never rename or drop.
    timestamps: tuple[str, ...] = ()  # timestamptz columns, hashed as UTC ISO text
    legacy_order: str | None = None  # sealing order of rows written before the chain existed

    @property
    def qualified(self) -> str:
        return f"audit.{self.name}"


# The hashed columns of each chained table as revision 0001 (the baseline migration)
# created them. A revision that hashes other columns must replace the chain functions
# and add its own AUDIT_CHAIN_V2 here, leaving this one as it is (the baseline reads it);
# AUDIT_CHAIN, what verify and the triggers' current version use, then points at it.
AUDIT_CHAIN_V1 = (
    ChainedTable(
        "validation_runs",
        ("validation_run_id",),
        (
            "validation_run_id",
            "suite_name",
            "data_asset",
            "logical_date",
            "dag_run_id",
            "code_version",
            "success",
            "evaluated_expectations",
            "successful_expectations",
            "run_at",
            "gx_result",
            "rules_file",
            "rules_sha256",
        ),
        timestamps=("run_at",),
        legacy_order="t.run_at, t.validation_run_id",
    ),
    ChainedTable(
        "rule_results",
        ("validation_run_id", "rule_id"),
        (
            "validation_run_id",
            "rule_id",
            "expectation_type",
            "column_name",
            "severity",
            "success",
            "rows_evaluated",
            "rows_violating",
            "violating_share",
            "detail",
            "status",
            "threshold",
            "description",
            "kahn_category",
            "citation",
            "domain",
            "owner",
            "evidence",
            "violations_kept",
            "violations_cap",
        ),
        legacy_order="(select v.run_at from audit.validation_runs v"
        " where v.validation_run_id = t.validation_run_id), t.validation_run_id, t.rule_id",
    ),
    ChainedTable(
        "rule_violations",
        ("validation_run_id", "rule_id", "violation_no"),
        ("validation_run_id", "rule_id", "violation_no", "keys"),
    ),
    ChainedTable(
        "reviews",
        ("review_no",),
        ("review_no", "finding_id", "validation_run_id", "rule_id", "reviewed_by", "note", "reviewed_at"),
        timestamps=("reviewed_at",),
    ),
)
AUDIT_CHAIN = AUDIT_CHAIN_V1
CHAINED = {t.name: t for t in AUDIT_CHAIN}


def canonical_sql(table: ChainedTable, alias: str) -> str:
    """SQL for the canonical text of a row of ``table`` (columns read as ``alias.col``)."""
    parts = []
    for col in table.content:
        expr = f"{alias}.{col}"
        if col in table.timestamps:
            expr = f"""to_char({expr} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        parts.append(f"'{col}', {expr}")
    obj = f"jsonb_build_object({', '.join(parts)})"
    return (
        f"(select coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) "
        f"from jsonb_each({obj}) e where jsonb_typeof(e.value) <> 'null')::text"
    )


def row_hash_sql(table: ChainedTable, alias: str, prev_hash: str) -> str:
    """SQL for sha256(prev_hash || canonical text), hex."""
    return f"encode(sha256(convert_to({prev_hash} || {canonical_sql(table, alias)}, 'UTF8')), 'hex')"
