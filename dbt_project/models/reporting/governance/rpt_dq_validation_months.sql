-- The data-quality and governance report's validation summary: one row per month. The
-- validation runs (all, and the latest per suite and day that the counts use), the days
-- validated, the checks of those latest runs in all (the total row of the Kahn table)
-- and the rules that did not pass on at least one day (rpt_dq_failing_rules).
with calendar as (
    select distinct c.month_start
    from {{ ref('int_governance__calendar') }} c
),

runs as (
    select
        date_trunc('month', v.logical_date)::date as month_start,
        count(*) as validation_runs
    from {{ source('audit', 'validation_runs') }} v
    group by date_trunc('month', v.logical_date)
),

latest as (
    select
        date_trunc('month', l.logical_date)::date as month_start,
        count(*) as latest_runs,
        count(distinct l.logical_date) as days_validated
    from {{ ref('int_quality__latest_validation_runs') }} l
    group by date_trunc('month', l.logical_date)
),

checks as (
    select
        r.month_start,
        count(*) as checks,
        count(*) filter (where r.status = 'passed') as passed,
        count(*) filter (where r.status = 'failed') as failed,
        count(*) filter (where r.status = 'error') as not_evaluated
    from {{ ref('int_quality__latest_rule_results') }} r
    group by r.month_start
),

failing as (
    select
        f.month_start,
        count(*) as rules_failed,
        count(*) filter (where f.severity = 'blocking') as blocking_rules_failed,
        count(*) filter (where not f.is_listed) as rules_failed_not_listed
    from {{ ref('rpt_dq_failing_rules') }} f
    group by f.month_start
)

select
    c.month_start::date as month_start,
    coalesce(r.validation_runs, 0)::integer as validation_runs,
    coalesce(l.latest_runs, 0)::integer as latest_runs,
    (coalesce(r.validation_runs, 0) - coalesce(l.latest_runs, 0))::integer as superseded_runs,
    coalesce(l.days_validated, 0)::integer as days_validated,
    coalesce(k.checks, 0)::integer as checks,
    coalesce(k.passed, 0)::integer as passed,
    coalesce(k.failed, 0)::integer as failed,
    coalesce(k.not_evaluated, 0)::integer as not_evaluated,
    {{ percent('k.passed', 'k.checks', 1) }}::numeric(5, 1) as pass_rate_pct,
    coalesce(f.rules_failed, 0)::integer as rules_failed,
    coalesce(f.blocking_rules_failed, 0)::integer as blocking_rules_failed,
    coalesce(f.rules_failed_not_listed, 0)::integer as rules_failed_not_listed
from calendar c
left join runs r
    on c.month_start = r.month_start
left join latest l
    on c.month_start = l.month_start
left join checks k
    on c.month_start = k.month_start
left join failing f
    on c.month_start = f.month_start
