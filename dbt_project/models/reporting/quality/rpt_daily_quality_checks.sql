-- The data-quality checks a daily report shows for its day: the results of the
-- latest validation run of each suite for that logical date (a re-run supersedes
-- earlier runs), one row per rule, with the verdict as every report counts it
-- (int_quality__latest_rule_results). Ids, verdicts and severities only.
select
    r.logical_date,
    r.suite_name,
    r.rule_id,
    r.severity,
    r.status,
    r.validation_run_id::text as validation_run_id
from {{ ref('int_quality__latest_rule_results') }} r
