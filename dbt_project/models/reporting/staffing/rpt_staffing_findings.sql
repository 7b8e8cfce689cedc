-- The workforce compliance findings the staffing huddle lists: the rules of domain
-- 'workforce' (ids WFC-...) that did not pass in the latest validation run of their
-- suite for a day (int_quality__latest_rule_results: a re-run supersedes), one row per
-- row the rule kept as evidence (audit.rule_violations: key columns only), or one row
-- for the rule when it kept none. From the keys: the facility ('ALL' when they name
-- none), the unit, the worker's HR id and the time the finding points at. Never a name.
with results as (
    select
        logical_date,
        validation_run_id,
        rule_id,
        severity,
        status,
        rows_violating
    from {{ ref('int_quality__latest_rule_results') }}
    where domain = 'workforce' and status <> 'passed'
),

findings as (
    select
        validation_run_id,
        rule_id,
        finding_id,
        status
    from {{ source('audit', 'findings') }}
),

violations as (
    select
        validation_run_id,
        rule_id,
        violation_no,
        keys
    from {{ source('audit', 'rule_violations') }}
)

select
    r.logical_date::date as logical_date,
    coalesce(v.keys ->> 'facility_code', 'ALL')::text as facility_code,
    (v.keys ->> 'unit_code')::text as unit_code,
    r.rule_id::text as rule_id,
    r.severity::text as severity,
    r.status::text as result_status,
    f.finding_id::text as finding_id,
    coalesce(f.status, 'open')::text as finding_status,
    (v.keys ->> 'worker_id')::text as worker_id,
    coalesce(
        v.keys ->> 'interval_start',
        v.keys ->> 'shift_start',
        v.keys ->> 'punch_ts',
        v.keys ->> 'work_date',
        v.keys ->> 'census_date'
    )::text as finding_time,
    coalesce(v.violation_no, 0)::integer as violation_no,
    r.rows_violating::bigint as rows_violating,
    (case r.severity
        when 'blocking' then 0
        when 'warning' then 1
        when 'info' then 2
        else 9
    end)::integer as severity_rank
from results r
left join findings f
    on r.validation_run_id = f.validation_run_id and r.rule_id = f.rule_id
left join violations v
    on r.validation_run_id = v.validation_run_id and r.rule_id = v.rule_id
