-- The data-quality checks a daily report shows for its day: the results of the
-- latest validation run of each suite for that logical date (a re-run supersedes
-- earlier runs), one row per rule. Ids, outcomes and severities only.
select
    l.logical_date::date as logical_date,
    l.suite_name::text as suite_name,
    r.rule_id::text as rule_id,
    r.severity::text as severity,
    r.success as passed,
    l.validation_run_id::text as validation_run_id
from {{ ref('int_quality__latest_validation_runs') }} l
inner join {{ source('audit', 'rule_results') }} r
    on l.validation_run_id = r.validation_run_id
