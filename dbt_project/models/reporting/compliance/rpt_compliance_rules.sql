-- The compliance report's rules table: one row per month and rule that ran that month
-- or has findings in it. Days run and failed, the worst day and the last day are read
-- from the latest validation of each day (rpt_compliance_rule_days); the findings are
-- counted over every run, re-runs too (rpt_compliance_findings).
with rule_days as (
    select
        report_month,
        rule_id,
        logical_date,
        result_status,
        rows_evaluated,
        rows_violating
    from {{ ref('rpt_compliance_rule_days') }}
),

findings as (
    select
        report_month,
        rule_id,
        status
    from {{ ref('rpt_compliance_findings') }}
),

day_counts as (
    select
        report_month,
        rule_id,
        count(*) as days_run,
        count(*) filter (where result_status <> 'passed') as days_failed
    from rule_days
    group by report_month, rule_id
),

-- the failed day with the most violating rows (the earliest of equals)
worst_days as (
    select
        report_month,
        rule_id,
        logical_date,
        rows_violating,
        rows_evaluated,
        row_number() over (
            partition by report_month, rule_id order by rows_violating desc, logical_date asc
        ) as worst_rank
    from rule_days
    where result_status <> 'passed' and rows_violating is not null
),

last_days as (
    select
        report_month,
        rule_id,
        logical_date,
        result_status,
        row_number() over (partition by report_month, rule_id order by logical_date desc) as last_rank
    from rule_days
),

finding_counts as (
    select
        report_month,
        rule_id,
        count(*) filter (where status = 'open') as open_findings,
        count(*) filter (where status <> 'open') as reviewed_findings
    from findings
    group by report_month, rule_id
),

rules as (
    select
        report_month,
        rule_id
    from day_counts
    union
    select
        report_month,
        rule_id
    from finding_counts
)

select
    r.report_month::date as report_month,
    r.rule_id::text as rule_id,
    coalesce(d.days_run, 0)::integer as days_run,
    coalesce(d.days_failed, 0)::integer as days_failed,
    w.logical_date::date as worst_date,
    w.rows_violating::bigint as worst_rows_violating,
    w.rows_evaluated::bigint as worst_rows_evaluated,
    l.logical_date::date as last_date,
    l.result_status::text as last_status,
    coalesce(f.open_findings, 0)::integer as open_findings,
    coalesce(f.reviewed_findings, 0)::integer as reviewed_findings
from rules r
left join day_counts d
    on r.report_month = d.report_month and r.rule_id = d.rule_id
left join worst_days w
    on r.report_month = w.report_month and r.rule_id = w.rule_id and w.worst_rank = 1
left join last_days l
    on r.report_month = l.report_month and r.rule_id = l.rule_id and l.last_rank = 1
left join finding_counts f
    on r.report_month = f.report_month and r.rule_id = f.rule_id
