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
)

select
    w.worker_id,
    w.work_date,
    w.facility_code,
    w.unit_code,
    w.first_start at time zone '{{ tz }}' as first_start_local,
    w.last_end at time zone '{{ tz }}' as last_end_local,
    w.worked_hours,
    coalesce((
        select
            bool_or(
                c.issue_date <= w.work_date
                and c.expiry_date >= w.work_date
                and c.verified_date is not null
            )
        from {{ ref('int_hr__credential_history') }} c
        where
            c.worker_id = w.worker_id
            and c.credential_type in ({{ bls_types }})
            and c.valid_from <= w.work_date
            and (c.valid_to is null or c.valid_to > w.work_date)
    ), false) as has_current_bls
from worked w
