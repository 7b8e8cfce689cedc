-- The data-quality and governance report's "Rules that failed most" table: one row per
-- month and rule that did not pass on at least one day (latest run per suite and day),
-- with the days it ran and failed, its worst day (the most violating rows; the earliest
-- such day on a tie) and its rank: most failed days first, then by severity (blocking,
-- warning, info: healthops.quality.rules.SEVERITIES), most violating rows, rule id.
-- The report lists the first 10 (is_listed); the rest are counted in
-- rpt_dq_validation_months.rules_failed_not_listed.
with results as (
    select
        r.month_start,
        r.logical_date,
        r.suite_name,
        r.rule_id,
        r.severity,
        r.domain,
        r.kahn_category,
        r.status,
        r.rows_evaluated,
        r.rows_violating
    from {{ ref('int_quality__latest_rule_results') }} r
),

by_rule as (
    select
        r.month_start,
        r.rule_id,
        -- the rule's catalog fields as of its last day in the month
        (array_agg(r.severity order by r.logical_date desc))[1] as severity,
        (array_agg(r.kahn_category order by r.logical_date desc))[1] as kahn_category,
        (array_agg(r.domain order by r.logical_date desc))[1] as domain,
        (array_agg(r.suite_name order by r.logical_date desc))[1] as suite_name,
        count(*) as days_run,
        count(*) filter (where r.status <> 'passed') as days_failed,
        count(*) filter (where r.status = 'error') as days_error,
        array_agg(r.logical_date order by r.logical_date) filter (where r.status <> 'passed') as failed_days
    from results r
    group by r.month_start, r.rule_id
    having count(*) filter (where r.status <> 'passed') > 0
),

worst as (
    select distinct on (r.month_start, r.rule_id)
        r.month_start,
        r.rule_id,
        r.logical_date as worst_date,
        r.rows_violating as worst_rows_violating,
        r.rows_evaluated as worst_rows_evaluated
    from results r
    where r.status <> 'passed' and r.rows_violating is not null
    order by r.month_start asc, r.rule_id asc, r.rows_violating desc, r.logical_date asc
),

ranked as (
    select
        b.month_start,
        b.rule_id,
        b.severity,
        b.kahn_category,
        b.domain,
        b.suite_name,
        b.days_run,
        b.days_failed,
        b.days_error,
        b.failed_days,
        w.worst_date,
        w.worst_rows_violating,
        w.worst_rows_evaluated,
        row_number() over (
            partition by b.month_start
            order by
                b.days_failed desc,
                case b.severity when 'blocking' then 0 when 'warning' then 1 when 'info' then 2 else 9 end asc,
                coalesce(w.worst_rows_violating, 0) desc,
                b.rule_id collate "C" asc  -- noqa: RF02
        ) as failure_rank
    from by_rule b
    left join worst w
        on b.month_start = w.month_start and b.rule_id = w.rule_id
)

select
    r.month_start::date as month_start,
    r.rule_id::text as rule_id,
    r.severity::text as severity,
    r.kahn_category::text as kahn_category,
    r.domain::text as domain,
    r.suite_name::text as suite_name,
    r.days_run::integer as days_run,
    r.days_failed::integer as days_failed,
    r.days_error::integer as days_error,
    r.failed_days::date[] as failed_days,
    r.worst_date::date as worst_date,
    r.worst_rows_violating::bigint as worst_rows_violating,
    r.worst_rows_evaluated::bigint as worst_rows_evaluated,
    r.failure_rank::integer as failure_rank,
    (r.failure_rank <= 10) as is_listed
from ranked r
