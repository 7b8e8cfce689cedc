-- The data-quality and governance report's "Suites validated" line: one row per month
-- and expectation suite, the days it validated (each day once, by its latest run) and
-- of them the days every rule of the run passed.
select
    l.suite_name::text as suite_name,
    date_trunc('month', l.logical_date)::date as month_start,
    count(*)::integer as days_validated,
    count(*) filter (where l.success)::integer as days_passed
from {{ ref('int_quality__latest_validation_runs') }} l
group by date_trunc('month', l.logical_date), l.suite_name
