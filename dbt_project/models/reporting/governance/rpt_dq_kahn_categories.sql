-- The data-quality and governance report's "Data-quality checks by category" table:
-- one row per month and Kahn category (Kahn et al. 2016) of the rules evaluated that
-- month, each suite and day counted once, by its latest run. A check not evaluated
-- (status 'error') counts as a check that did not pass.
select
    r.month_start::date as month_start,
    r.kahn_category::text as kahn_category,
    count(*)::integer as checks,
    count(*) filter (where r.status = 'passed')::integer as passed,
    count(*) filter (where r.status = 'failed')::integer as failed,
    count(*) filter (where r.status = 'error')::integer as not_evaluated,
    {{ percent("count(*) filter (where r.status = 'passed')", 'count(*)', 1) }}::numeric(5, 1) as pass_rate_pct
from {{ ref('int_quality__latest_rule_results') }} r
group by r.month_start, r.kahn_category
