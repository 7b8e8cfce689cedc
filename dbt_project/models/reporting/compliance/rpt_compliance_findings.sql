-- The compliance report's findings: one row per finding (a rule result that did not
-- pass, in any validation run, re-runs included: each one is kept and can be
-- reviewed), from the audit.findings view, with the month it counts in and the order
-- the report lists open findings in (blocking first).
select
    date_trunc('month', f.logical_date)::date as report_month,
    f.finding_id::text as finding_id,
    f.logical_date::date as logical_date,
    f.suite_name::text as suite_name,
    f.rule_id::text as rule_id,
    f.severity::text as severity,
    (case f.severity
        when 'blocking' then 0
        when 'warning' then 1
        when 'info' then 2
        else 9
    end)::integer as severity_rank,
    f.result_status::text as result_status,
    f.rows_evaluated::bigint as rows_evaluated,
    f.rows_violating::bigint as rows_violating,
    f.violating_share::numeric as violating_share,
    f.validation_run_id::text as validation_run_id,
    f.status::text as status,
    f.reviews::integer as reviews,
    f.chain_seq::bigint as chain_seq
from {{ source('audit', 'findings') }} f
