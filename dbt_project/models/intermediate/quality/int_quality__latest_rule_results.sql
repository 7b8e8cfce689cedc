{{ config(materialized='ephemeral') }}
-- Every rule result of the latest validation run of each suite and day
-- (int_quality__latest_validation_runs: a re-run of a day supersedes the earlier
-- runs), with the verdict and the Kahn category as every report counts them: a
-- result without a recorded status could not be evaluated ('error', not a pass); a
-- rule without a Kahn category is 'uncategorized'. The daily reports' checks and the
-- governance report's pass rates both read it.
select
    l.logical_date::date as logical_date,
    l.suite_name::text as suite_name,
    l.validation_run_id::uuid as validation_run_id,
    r.rule_id::text as rule_id,
    r.severity::text as severity,
    r.domain::text as domain,
    r.rows_evaluated::bigint as rows_evaluated,
    r.rows_violating::bigint as rows_violating,
    coalesce(nullif(lower(btrim(r.kahn_category)), ''), 'uncategorized')::text as kahn_category,
    coalesce(r.status, 'error')::text as status,
    date_trunc('month', l.logical_date)::date as month_start
from {{ ref('int_quality__latest_validation_runs') }} l
inner join {{ source('audit', 'rule_results') }} r
    on l.validation_run_id = r.validation_run_id
