{%- set tz = var('facility_tz') %}
{%- set bls_types = "'" ~ (var('bls_credential_types') | join("', '")) ~ "'" %}
-- One row per worker, local date and unit on which a direct-care job was worked, with
-- whether the worker held current BLS that day (docs/definitions.md#workforce-compliance-checks):
-- a credential of a type the hospital's policy counts as BLS (dbt var
-- bls_credential_types, default BLS), issued on or before the date, expiring on or
-- after it and verified, per the HR snapshot in force that day
-- (int_hr__credential_history), never a later one.
with worked as (
    select
        worker_id,
        work_date,
        facility_code,
        unit_code,
        min(segment_start) as first_start,
        max(segment_end) as last_end,
        sum(worked_hours) as worked_hours
    from {{ ref('int_workforce__worked_segments') }}
    where is_direct_care
    group by worker_id, work_date, facility_code, unit_code
),

worker_days as (
    select distinct
        worker_id,
        work_date
    from worked
),

-- the BLS versions in force each day, joined (not a subquery per worker and day: at a
-- year of a 1,000-bed system that scanned the credential history 300,000 times, 5 min)
bls as (
    select
        w.worker_id,
        w.work_date,
        bool_or({{ credential_current_on('c', 'w.work_date') }}) as has_current_bls
    from worker_days w
    inner join {{ ref('int_hr__credential_history') }} c
        on
            w.worker_id = c.worker_id
            and w.work_date >= c.valid_from
            and (c.valid_to is null or w.work_date < c.valid_to)
    where c.credential_type in ({{ bls_types }})
    group by w.worker_id, w.work_date
)

select
    w.worker_id,
    w.work_date,
    w.facility_code,
    w.unit_code,
    w.first_start at time zone '{{ tz }}' as first_start_local,
    w.last_end at time zone '{{ tz }}' as last_end_local,
    w.worked_hours,
    coalesce(b.has_current_bls, false) as has_current_bls
from worked w
left join bls b on w.worker_id = b.worker_id and w.work_date = b.work_date
