"""Content checksums of a warehouse, for comparing a run under a fault with a clean run
of the same data (tests/integration/test_faults.py).

For every relation of the schemas below, an md5 of its rows (each row as text, sorted,
so the order rows were written in does not count) and the row count, over the columns
that carry content. Columns that legitimately differ between two runs of the same
data are left out, one rule per relation (``RULES``), each with the reason: surrogate
ids minted per run (batch and validation run uuids), the times something ran, the
Airflow run ids, and the audit chain's positions and hashes (which chain every row
written before, so they differ as soon as one evaluation more was recorded).

A relation with no rule fails the checksum (``UnknownRelation``): a table added later
is compared only once someone has decided which of its columns are content.

The audit validation tables are an append-only record of every evaluation: a night
run again records its rules again, and both records are evidence. What must equal
the clean run is what each (suite, logical date) concluded last, the runs the reports
and ``int_quality__latest_validation_runs`` read; so those tables are compared over
the latest run of each suite and date (``LATEST_RUNS``), and ``superseded_runs``
counts the rest."""

from __future__ import annotations

from collections import Counter

from healthops.warehouse.connection import connect

SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit", "reporting")

RUN_ID = "minted per run"
WHEN = "when it ran"
DAG_RUN = "the Airflow run that wrote it"
CHAIN = "audit chain position or hash: depends on every audit row written before"

# relation -> {column: why it is left out}. Every relation of SCHEMAS must be here.
RULES: dict[str, dict[str, str]] = {
    # raw: the loaded feed, keyed by file path and position; the batch is a fresh uuid
    "raw.adt_messages": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.duplicates": {"batch_id": RUN_ID, "first_batch_id": RUN_ID, "detected_at": WHEN},
    "raw.rejected": {"batch_id": RUN_ID, "rejected_at": WHEN},
    "raw.pseudonym_salt": {"created_at": WHEN},  # the salt itself is compared: copied with the template
    # the HR export's snapshots (keyed by snapshot date, file path and record) and the
    # timekeeping versions (keyed by the source's id and updated_at)
    "raw.hr_workers": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.hr_credentials": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.hr_training": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.hr_exclusion_screening": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.hr_positions": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.tk_punches": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "raw.tk_pay_lines": {"batch_id": RUN_ID, "loaded_at": WHEN},
    # staging: seeds and the message view
    "staging.facilities": {},
    "staging.nurse_ratios": {},
    "staging.patient_class_map": {},
    "staging.units": {},
    "staging.job_codes": {},
    "staging.pay_codes": {},
    "staging.nhppd_targets": {},
    "staging.stg_hr__workers": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "staging.stg_hr__credentials": {"batch_id": RUN_ID, "loaded_at": WHEN},
    "staging.stg_hr__training": {"batch_id": RUN_ID},
    "staging.stg_hr__exclusion_screenings": {"batch_id": RUN_ID},
    "staging.stg_hr__positions": {"batch_id": RUN_ID},
    "staging.stg_timekeeping__punches": {"loaded_at": WHEN},
    "staging.stg_timekeeping__pay_lines": {"loaded_at": WHEN},
    "staging.stg_adt__messages": {"batch_id": RUN_ID, "source_loaded_at": WHEN},
    # intermediate
    "intermediate.int_adt__events": {"voided_by_loaded_at": WHEN, "source_loaded_at": WHEN},
    "intermediate.int_census__location_timeline": {"source_loaded_at": WHEN},
    "intermediate.int_hr__worker_changes": {"computed_through_loaded_at": WHEN},
    "intermediate.int_hr__credential_changes": {"computed_through_loaded_at": WHEN},
    "intermediate.int_hr__worker_history": {},
    "intermediate.int_hr__credential_history": {},
    "intermediate.int_timekeeping__punch_sequence": {"loaded_at": WHEN, "computed_through_punch_loaded_at": WHEN},
    "intermediate.int_timekeeping__shifts": {"computed_through_punch_loaded_at": WHEN},
    "intermediate.int_timekeeping__meal_breaks": {"computed_through_punch_loaded_at": WHEN},
    "intermediate.int_timekeeping__punch_flags": {},
    "intermediate.int_workforce__worked_segments": {
        "computed_through_punch_loaded_at": WHEN,
        "computed_through_worker_changes": WHEN,
        "computed_through_credential_changes": WHEN,
    },
    "intermediate.int_workforce__direct_care_days": {
        "computed_through_punch_loaded_at": WHEN,
        "computed_through_worker_changes": WHEN,
        "computed_through_credential_changes": WHEN,
    },
    "intermediate.int_workforce__fatigue_windows": {"computed_through_punch_loaded_at": WHEN},
    "intermediate.int_workforce__worker_compliance": {"computed_through_loaded_at": WHEN},
    "intermediate.int_quality__latest_validation_runs": {
        "validation_run_id": RUN_ID,
        "run_at": WHEN,
        "dag_run_id": DAG_RUN,
    },
    # marts
    "marts.dim_units": {},
    "marts.fct_census_daily": {"computed_through_loaded_at": WHEN},
    "marts.fct_census_interval": {"computed_through_loaded_at": WHEN},
    "marts.fct_census_period": {},
    "marts.fct_encounters": {"source_loaded_at": WHEN},
    "marts.fct_unit_staffing_interval": {
        "computed_through_loaded_at": WHEN,
        "computed_through_punch_loaded_at": WHEN,
        "computed_through_hr_loaded_at": WHEN,
    },
    "marts.fct_unit_staffing_daily": {},
    "marts.fct_unit_staffing_monthly": {},
    # audit: the load ledger and the validation record
    "audit.load_batches": {
        "batch_id": RUN_ID,
        "dag_run_id": DAG_RUN,
        "loaded_at": WHEN,
        "duplicate_of_batch_id": RUN_ID,  # whether it is set is kept: see EXPRESSIONS
    },
    "audit.refused_files": {"dag_run_id": DAG_RUN, "refused_at": WHEN},
    "audit.validation_runs": {
        "validation_run_id": RUN_ID,
        "dag_run_id": DAG_RUN,
        "run_at": WHEN,
        "gx_result": "GX's own result document: its run id and validation time",
        "chain_seq": CHAIN,
        "prev_hash": CHAIN,
        "row_hash": CHAIN,
    },
    "audit.rule_results": {"validation_run_id": RUN_ID, "chain_seq": CHAIN, "prev_hash": CHAIN, "row_hash": CHAIN},
    "audit.rule_violations": {
        "validation_run_id": RUN_ID,
        "chain_seq": CHAIN,
        "prev_hash": CHAIN,
        "row_hash": CHAIN,
    },
    "audit.reviews": {
        "review_no": CHAIN,
        "finding_id": "names the validation run",
        "validation_run_id": RUN_ID,
        "reviewed_at": WHEN,
        "chain_seq": CHAIN,
        "prev_hash": CHAIN,
        "row_hash": CHAIN,
    },
    "audit.findings": {
        "finding_id": "names the validation run",
        "validation_run_id": RUN_ID,
        "dag_run_id": DAG_RUN,
        "run_at": WHEN,
        "last_reviewed_at": WHEN,
        "chain_seq": CHAIN,
    },
    # reporting: the delivery ledger and the archive of what was sent
    "reporting.deliveries": {
        "sent_at": WHEN,
        "intent_at": WHEN,
        "dag_run_id": DAG_RUN,
        "relay_response": "the relay's reply names its own queue id",
    },
    "reporting.messages": {
        "eml": "the message's Date header and the report's generation time",
        "eml_sha256": "of eml",
        "created_at": WHEN,
        "dag_run_id": DAG_RUN,
    },
    "reporting.resends": {"resend_no": CHAIN, "resent_at": WHEN},
}

# Columns compared through an expression instead of their value.
EXPRESSIONS = {
    "audit.load_batches": {"duplicate_of_batch_id": "duplicate_of_batch_id is not null"},
}

# Relations restricted to the latest validation run of each (suite, logical date).
LATEST = """validation_run_id in (
    select distinct on (suite_name, logical_date) validation_run_id from audit.validation_runs
    order by suite_name, logical_date, chain_seq desc)"""
LATEST_RUNS = {
    "audit.validation_runs",
    "audit.rule_results",
    "audit.rule_violations",
    "audit.findings",
    "audit.reviews",
}


class UnknownRelation(AssertionError):
    pass


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """{schema.relation: (rows, md5 of the sorted rows' text)} over the content columns,
    and ``superseded_runs``: validation runs that a later run of the same suite and
    date replaced (as (count, "")). Raises ``UnknownRelation`` for a relation with no rule."""
    out: dict[str, tuple[int, str]] = {}
    with connect(url) as conn:
        conn.read_only = True
        cols: dict[str, list[str]] = {}
        for schema, table, column in conn.execute(
            """select c.table_schema, c.table_name, c.column_name from information_schema.columns c
               where c.table_schema = any(%s) order by c.table_schema, c.table_name, c.ordinal_position""",
            (list(SCHEMAS),),
        ):
            cols.setdefault(f"{schema}.{table}", []).append(column)
        unknown = sorted(set(cols) - set(RULES))
        if unknown:
            raise UnknownRelation(f"no checksum rule for {', '.join(unknown)}: add one to tests/warehouse_checksums.py")
        for rel, columns in cols.items():
            rule = RULES[rel]
            stale = set(rule) - set(columns)
            if stale:
                raise UnknownRelation(f"{rel}: the rule names columns it does not have: {sorted(stale)}")
            rows_sql = _rows_sql(rel, columns)
            n, md5 = conn.execute(
                f"select count(*), coalesce(md5(string_agg(r, E'\\n' order by r)), '') from ({rows_sql}) t"
            ).fetchone()
            out[rel] = (n, md5)
        (superseded,) = conn.execute(f"select count(*) from audit.validation_runs where not ({LATEST})").fetchone()
        out["superseded_runs"] = (superseded, "")
    return out


def _rows_sql(rel: str, columns: list[str]) -> str:
    """Each row of ``rel`` as text (``r``), over its content columns."""
    rule, exprs = RULES[rel], EXPRESSIONS.get(rel, {})
    kept = [exprs.get(c, f'"{c}"') for c in columns if c not in rule or c in exprs]
    where = f"where {LATEST}" if rel in LATEST_RUNS else ""
    schema, table = rel.split(".")
    return f'select row({", ".join(kept)})::text as r from "{schema}"."{table}" {where}'


def rows(url: str, rel: str) -> Counter:
    """The content rows of ``rel`` as text, counted: to show what differs."""
    with connect(url) as conn:
        conn.read_only = True
        schema, table = rel.split(".")
        columns = [
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "order by ordinal_position",
                (schema, table),
            )
        ]
        return Counter(r for (r,) in conn.execute(_rows_sql(rel, columns)))


def row_differences(url: str, clean_url: str, rels) -> dict[str, dict]:
    """{relation: {"extra": rows only in url, "missing": rows only in clean_url}}."""
    out = {}
    for rel in rels:
        a, b = rows(url, rel), rows(clean_url, rel)
        out[rel] = {"extra": sorted((a - b).elements()), "missing": sorted((b - a).elements())}
    return out


def differences(got: dict, want: dict) -> dict[str, tuple]:
    """{relation: (got, want)} where the two differ."""
    return {k: (got.get(k), want.get(k)) for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)}
