-- The data-quality checks a daily report shows for its day: the results of the
-- latest validation run of each suite for that logical date (a re-run supersedes
-- earlier runs), one row per rule, with the verdict as every report counts it
-- (int_quality__latest_rule_results). Ids, verdicts and severities only. The census
-- domain's rules: the daily census report is about the census; the workforce rules'
-- findings go to the staffing huddle report (rpt_staffing_findings).
select
    r.logical_date,
    r.suite_name,
    r.rule_id,
    r.severity,
    r.status,
    r.validation_run_id::text as validation_run_id
from {{ ref('int_quality__latest_rule_results') }} r
where r.domain = 'census'
