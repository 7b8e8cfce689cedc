-- The compliance report's summary: one row per month, from the first month of the
-- audit history to the current month (a month with nothing recorded has zeros): the
-- validation runs, the rules that failed, the findings and reviews, the files loaded
-- and their records (in = loaded + rejected + duplicate), and the facilities covered.
with events as (
    select v.logical_date as event_date from {{ source('audit', 'validation_runs') }} v
    union all
    select b.received_date as event_date from {{ source('audit', 'load_batches') }} b
),

bounds as (
    select
        date_trunc('month', coalesce(min(e.event_date), current_date))::date as first_month,
        date_trunc('month', greatest(max(e.event_date), current_date))::date as last_month
    from events e
),

months as (
    select s.report_month::date as report_month
    from bounds b
    cross join lateral generate_series(b.first_month, b.last_month, interval '1 month') s (report_month)
),

runs as (
    select
        date_trunc('month', v.logical_date)::date as report_month,
        count(*) as validation_runs,
        count(*) filter (where v.success) as validation_runs_passed,
        count(distinct v.logical_date) as days_validated,
        count(distinct v.dag_run_id) as airflow_runs
    from {{ source('audit', 'validation_runs') }} v
    group by date_trunc('month', v.logical_date)
),

rules as (
    select
        d.report_month,
        count(distinct d.rule_id) filter (where d.result_status <> 'passed') as rules_failed,
        count(distinct d.rule_id) filter (
            where d.result_status <> 'passed' and d.severity = 'blocking'
        ) as blocking_rules_failed
    from {{ ref('rpt_compliance_rule_days') }} d
    group by d.report_month
),

findings as (
    select
        f.report_month,
        count(*) as findings,
        count(*) filter (where f.status = 'open') as open_findings,
        count(*) filter (where f.status = 'open' and f.severity = 'blocking') as open_blocking_findings
    from {{ ref('rpt_compliance_findings') }} f
    group by f.report_month
),

reviews as (
    select
        x.report_month,
        count(*) as reviews
    from {{ ref('rpt_compliance_reviews') }} x
    group by x.report_month
),

files as (
    select
        date_trunc('month', b.received_date)::date as report_month,
        count(*) as files,
        sum(b.records_in) as records_in,
        sum(b.records_loaded) as records_loaded,
        sum(b.records_rejected) as records_rejected,
        sum(b.records_duplicate) as records_duplicate
    from {{ source('audit', 'load_batches') }} b
    group by date_trunc('month', b.received_date)
),

facilities as (
    select
        string_agg(
            f.facility_name || ' (' || f.facility_code || ')', ', ' order by f.facility_code
        ) as facilities_label
    from {{ ref('facilities') }} f
)

select
    m.report_month,
    coalesce(r.validation_runs, 0)::integer as validation_runs,
    coalesce(r.validation_runs_passed, 0)::integer as validation_runs_passed,
    coalesce(r.days_validated, 0)::integer as days_validated,
    coalesce(r.airflow_runs, 0)::integer as airflow_runs,
    coalesce(u.rules_failed, 0)::integer as rules_failed,
    coalesce(u.blocking_rules_failed, 0)::integer as blocking_rules_failed,
    coalesce(f.findings, 0)::integer as findings,
    coalesce(f.open_findings, 0)::integer as open_findings,
    coalesce(f.open_blocking_findings, 0)::integer as open_blocking_findings,
    coalesce(x.reviews, 0)::integer as reviews,
    coalesce(b.files, 0)::integer as files,
    coalesce(b.records_in, 0)::bigint as records_in,
    coalesce(b.records_loaded, 0)::bigint as records_loaded,
    coalesce(b.records_rejected, 0)::bigint as records_rejected,
    coalesce(b.records_duplicate, 0)::bigint as records_duplicate,
    c.facilities_label::text as facilities_label
from months m
left join runs r
    on m.report_month = r.report_month
left join rules u
    on m.report_month = u.report_month
left join findings f
    on m.report_month = f.report_month
left join reviews x
    on m.report_month = x.report_month
left join files b
    on m.report_month = b.report_month
cross join facilities c
