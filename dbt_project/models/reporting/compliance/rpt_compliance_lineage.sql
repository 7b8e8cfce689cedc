-- The compliance report's evidence lineage CSV: one row per day, source file received
-- that day and validation run of that day (every run, re-runs too): file SHA-256 ->
-- load batch -> validation run, with the run's place and hash in the audit chain. A
-- day with no file has file_no 0 (file columns null); a day with no run has run_no 0.
with batches as (
    select
        b.received_date as logical_date,
        b.source,
        b.file_path,
        b.file_sha256,
        b.file_bytes,
        b.records_in,
        b.records_loaded,
        b.records_rejected,
        b.records_duplicate,
        b.batch_id,
        b.dag_run_id,
        b.loaded_at,
        row_number() over (
            partition by b.received_date order by b.source, b.file_path, b.loaded_at
        ) as file_no
    from {{ source('audit', 'load_batches') }} b
),

runs as (
    select
        v.logical_date,
        v.suite_name,
        v.validation_run_id,
        v.dag_run_id,
        v.run_at,
        v.success,
        v.code_version,
        v.rules_file,
        v.rules_sha256,
        v.chain_seq,
        v.row_hash,
        row_number() over (partition by v.logical_date order by v.run_at, v.chain_seq) as run_no
    from {{ source('audit', 'validation_runs') }} v
),

days as (
    select logical_date from batches
    union
    select logical_date from runs
)

select
    date_trunc('month', d.logical_date)::date as report_month,
    d.logical_date::date as logical_date,
    coalesce(b.file_no, 0)::integer as file_no,
    coalesce(r.run_no, 0)::integer as run_no,
    b.source::text as source,
    b.file_path::text as file_path,
    regexp_replace(b.file_path, '^.*/', '')::text as file_name,
    b.file_sha256::text as file_sha256,
    b.file_bytes::bigint as file_bytes,
    b.records_in::integer as records_in,
    b.records_loaded::integer as records_loaded,
    b.records_rejected::integer as records_rejected,
    b.records_duplicate::integer as records_duplicate,
    b.batch_id::text as batch_id,
    b.dag_run_id::text as load_dag_run_id,
    b.loaded_at::timestamptz as loaded_at,
    r.suite_name::text as suite_name,
    r.validation_run_id::text as validation_run_id,
    r.dag_run_id::text as validation_dag_run_id,
    r.run_at::timestamptz as run_at,
    r.success as passed,
    r.code_version::text as code_version,
    r.rules_file::text as rules_file,
    r.rules_sha256::text as rules_sha256,
    r.chain_seq::bigint as audit_chain_seq,
    r.row_hash::text as audit_row_hash
from days d
left join batches b
    on d.logical_date = b.logical_date
left join runs r
    on d.logical_date = r.logical_date
