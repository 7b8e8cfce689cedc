{{ config(materialized='view') }}
-- The latest validation run of each suite for each logical date: the run whose
-- results stand for that day (a re-run of a day supersedes the earlier ones).
-- Latest = the last run_at; runs recorded in the same instant are ordered by their
-- place in the audit chain (chain_seq), which is unique.
select distinct on (suite_name, logical_date)
    validation_run_id,
    suite_name,
    data_asset,
    logical_date,
    run_at,
    success,
    dag_run_id
from {{ source('audit', 'validation_runs') }}
order by suite_name asc, logical_date asc, run_at desc, chain_seq desc
