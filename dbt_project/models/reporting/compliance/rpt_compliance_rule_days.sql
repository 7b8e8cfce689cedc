-- The compliance report's grid of rule outcomes by day: one row per logical date and
-- rule, from the latest validation run of the rule's suite for that date (a re-run
-- supersedes the earlier runs: int_quality__latest_validation_runs). The cell is
-- "passed", "error" (the rule could not be evaluated) or the severity of the failure.
with latest_runs as (
    select
        validation_run_id,
        suite_name,
        logical_date
    from {{ ref('int_quality__latest_validation_runs') }}
),

results as (
    select
        r.validation_run_id,
        r.rule_id,
        r.severity,
        r.rows_evaluated,
        r.rows_violating,
        r.violating_share,
        -- rows written before status existed have only GX's success
        coalesce(r.status, case when r.success then 'passed' else 'failed' end) as result_status
    from {{ source('audit', 'rule_results') }} r
)

select
    date_trunc('month', l.logical_date)::date as report_month,
    l.logical_date::date as logical_date,
    l.suite_name::text as suite_name,
    r.rule_id::text as rule_id,
    r.severity::text as severity,
    r.result_status::text as result_status,
    (case
        when r.result_status in ('passed', 'error') then r.result_status
        else r.severity
    end)::text as cell_status,
    r.rows_evaluated::bigint as rows_evaluated,
    r.rows_violating::bigint as rows_violating,
    r.violating_share::numeric as violating_share,
    l.validation_run_id::text as validation_run_id
from latest_runs l
inner join results r
    on l.validation_run_id = r.validation_run_id
