{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_ts='shift_in_ts',
    punch_window_id='shift_id',
    pre_hook="{{ punch_windows_prepare(ref('int_timekeeping__punch_sequence'), with_night=true, with_hr=true) }}",
    indexes=[{'columns': ['worker_id', 'shift_in_ts']}, {'columns': ['work_date']}],
    on_schema_change='fail',
) }}
-- Worked time, one row per stretch of a shift on one local date: the shift's counted
-- span less its meal breaks, cut at each local midnight so every minute falls on one
-- census day (docs/definitions.md#nursing-hours-per-patient-day), with what the
-- stretch counts as on that date:
--   * the unit whose cost center was punched (null: a cost center that is no unit's);
--   * the job punched: its nursing category, direct care, the licence it requires;
--   * whether the worker was a contract worker that day (HR history in force);
--   * whether the worker held the required licence that day, verified and unexpired,
--     per the HR snapshot in force (null when the job requires none);
--   * so whether the stretch puts a licensed nurse on the unit for ratios.
-- Times are real instants (timestamptz): a night shift across a DST change is as
-- long as it was. Incremental by worker window (macros/punch_windows.sql): an HR
-- snapshot day rebuilt since is a window for every worker from that day.
with state as (
    {{ punch_state(with_night=true, with_hr=true) }}
),

shifts as (
    select s.*
    from {{ ref('int_timekeeping__shifts') }} s
    {{ join_punch_window('s', 'in_ts', 'shift_id') }}
    where s.counted_until_ts > s.in_ts
),

meals as (
    select m.*
    from {{ ref('int_timekeeping__meal_breaks') }} m
    {{ join_punch_window('m', 'shift_in_ts', 'shift_id') }}
    where m.meal_end_ts > m.meal_start_ts
),

piece_starts as (
    select
        shift_id,
        in_ts as piece_start
    from shifts
    union
    select
        m.shift_id,
        m.meal_end_ts
    from meals m
    inner join shifts s using (shift_id)
    where m.meal_end_ts < s.counted_until_ts
),

pieces as (
    select
        ps.shift_id,
        ps.piece_start,
        least(s.counted_until_ts, coalesce(min(m.meal_start_ts), s.counted_until_ts)) as piece_end
    from piece_starts ps
    inner join shifts s using (shift_id)
    left join meals m
        on ps.shift_id = m.shift_id and ps.piece_start <= m.meal_start_ts
    group by ps.shift_id, ps.piece_start, s.counted_until_ts
),

-- A piece that starts inside a meal (two overlapping meal punches) is not worked.
worked as (
    select p.*
    from pieces p
    where
        p.piece_end > p.piece_start
        and not exists (
            select 1 from meals m
            where m.shift_id = p.shift_id and m.meal_start_ts <= p.piece_start and m.meal_end_ts > p.piece_start
        )
),

by_date as (
    select
        w.shift_id,
        d::date as work_date,
        greatest(w.piece_start, (d::date)::timestamp at time zone '{{ var("facility_tz") }}') as segment_start,
        least(w.piece_end, (d::date + 1)::timestamp at time zone '{{ var("facility_tz") }}') as segment_end
    from worked w
    cross join lateral generate_series(
        (w.piece_start at time zone '{{ var("facility_tz") }}')::date,
        ((w.piece_end - interval '1 microsecond') at time zone '{{ var("facility_tz") }}')::date,
        interval '1 day'
    ) d
),

-- the licence the job requires, held that day per the HR snapshot in force: verified,
-- issued on or before the day and expiring on or after it
licences as (
    select
        b.shift_id,
        b.segment_start,
        bool_or({{ credential_current_on('c', 'b.work_date') }}) as licence_held
    from by_date b
    inner join shifts s on b.shift_id = s.shift_id
    inner join {{ ref('job_codes') }} j on s.job_code = j.job_code
    inner join {{ ref('int_hr__credential_history') }} c
        on
            s.worker_id = c.worker_id
            and j.licensed_credential = c.credential_type
            and b.work_date >= c.valid_from
            and (c.valid_to is null or b.work_date < c.valid_to)
    group by b.shift_id, b.segment_start
),

attributed as (
    select
        s.worker_id,
        b.shift_id,
        s.in_ts as shift_in_ts,
        b.work_date,
        b.segment_start,
        b.segment_end,
        s.cost_center,
        s.job_code,
        u.facility_code,
        u.unit_code,
        j.nursing_category,
        coalesce(j.direct_care, false) as is_direct_care,
        nullif(j.licensed_credential, '') as licensed_credential,
        wh.worker_type,
        l.licence_held,
        {{ punch_build_state_columns(with_night=true, with_hr=true) }}
    from by_date b
    cross join state
    inner join shifts s on b.shift_id = s.shift_id
    left join licences l on b.shift_id = l.shift_id and b.segment_start = l.segment_start
    left join {{ ref('units') }} u on s.cost_center = u.cost_center
    left join {{ ref('job_codes') }} j on s.job_code = j.job_code
    left join {{ ref('int_hr__worker_history') }} wh
        on
            s.worker_id = wh.worker_id
            and b.work_date >= wh.valid_from
            and (wh.valid_to is null or b.work_date < wh.valid_to)
    where b.segment_end > b.segment_start
)

select
    worker_id,
    shift_id,
    shift_in_ts,
    work_date,
    segment_start,
    segment_end,
    round(extract(epoch from segment_end - segment_start) / 3600.0, 6) as worked_hours,
    cost_center,
    job_code,
    facility_code,
    unit_code,
    nursing_category,
    is_direct_care,
    licensed_credential,
    worker_type,
    coalesce(worker_type = 'CONTRACT', false) as is_contract,
    case when licensed_credential is not null then coalesce(licence_held, false) end as has_required_licence,
    (
        is_direct_care and licensed_credential is not null and coalesce(licence_held, false)
        and unit_code is not null
    ) as counts_as_licensed_nurse,
    computed_through_punch_loaded_at,
    computed_night_end_ts,
    computed_through_worker_changes,
    computed_through_credential_changes
from attributed
