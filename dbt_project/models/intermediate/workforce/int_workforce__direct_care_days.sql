{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_date='work_date',
    pre_hook="{{ punch_windows_prepare(ref('int_timekeeping__punch_sequence'), with_night=true, with_hr=true) }}",
    on_schema_change='fail',
) }}
{%- set tz = var('facility_tz') %}
{%- set bls_types = "'" ~ (var('bls_credential_types') | join("', '")) ~ "'" %}
-- One row per worker, local date and unit on which a direct-care job was worked, with
-- whether the worker held current BLS that day (docs/definitions.md#workforce-compliance-checks):
-- a credential of a type the hospital's policy counts as BLS (dbt var
-- bls_credential_types, default BLS), issued on or before the date, expiring on or
-- after it and verified, per the HR snapshot in force that day
-- (int_hr__credential_history), never a later one.
-- Incremental by worker window (macros/punch_windows.sql), whole days: a night
-- recomputes each windowed worker's days from the window's first date (the segments
-- of those days, an HR day redelivered, a shift still under way at the last build).
with state as (
    {{ punch_state(with_night=true, with_hr=true) }}
),

worked as (
    select
        s.worker_id,
        s.work_date,
        s.facility_code,
        s.unit_code,
        min(s.segment_start) as first_start,
        max(s.segment_end) as last_end,
        sum(s.worked_hours) as worked_hours
    from {{ ref('int_workforce__worked_segments') }} s
    {{ join_punch_window('s', day='work_date') }}
    where s.is_direct_care
    group by s.worker_id, s.work_date, s.facility_code, s.unit_code
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
    coalesce(b.has_current_bls, false) as has_current_bls,
    {{ punch_build_state_columns(with_night=true, with_hr=true) }}
from worked w
cross join state
left join bls b on w.worker_id = b.worker_id and w.work_date = b.work_date
