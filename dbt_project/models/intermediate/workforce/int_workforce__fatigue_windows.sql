{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_date='window_end_date',
    pre_hook="{{ punch_windows_prepare(ref('int_timekeeping__punch_sequence')) }}",
    on_schema_change='fail',
) }}
{%- set tz = var('facility_tz') %}
-- Fatigue (docs/definitions.md#fatigue-limits): per worker and local date, the most
-- hours worked in the rolling 24 hours and 7 days (168 real hours) before the end of a
-- shift ending that date. Worked time is the worker's worked stretches (all
-- jobs: int_workforce__worked_segments), with every punch rounded to the nearest
-- quarter hour as 29 CFR 785.48(b) allows (7 minutes 29 seconds or less down, 7 1/2
-- minutes or more up): a nurse who clocks in a few minutes early for 07:00-19:30 with
-- a 30-minute meal has worked 12.00 hours, not 12 h 07 min. Rounding is monotone, so a
-- 30-minute meal stays at least 30 minutes; a cut at local midnight is already on the
-- quarter hour. Hours are exact (multiples of 0.25).
-- The windows evaluated end at the end of each shift (its last worked stretch, after
-- rounding): the hours worked in the 24 hours, and in the 7 days, before a shift ends.
-- Not at every stretch's end: the maximum over every window (reached at a window ending
-- at some stretch's end, a meal's start included) holds 24 - 11.5 = 12.5 hours for two
-- ordinary consecutive 07:00-19:30 shifts whenever the first day's meal came earlier
-- than the second's (a window from after one meal to before the next), which would
-- make most full-time nurses a finding; a window ending at a shift's end holds that
-- shift and what was worked in the 24 hours before it. Windows are real time
-- (timestamptz): a night shift across the autumn DST change is as long as it was. A
-- window ending exactly at midnight belongs to the day before (half-open).
-- Only shifts whose OUT was punched count here: a shift still under way, or one
-- whose OUT is missing (counted for 16 hours for ratios), says when the worker came
-- but not how long they stayed; it is flagged (int_timekeeping__punch_flags) and its
-- hours count once a timecard edit gives it an end. Counting the 16 hours would make
-- every missed punch a fatigue finding.
-- Incremental by worker window (macros/punch_windows.sql): a punch edit changes the
-- windows ending from its time on, so a night recomputes each edited worker's days
-- from the first day of the worker's window, reading the week of work before it. A
-- shift's end kind changing with the night (in progress, then missed) does not count
-- here: neither is an 'out'.
with state as (
    {{ punch_state() }}
),

rounded as (
    select
        s.worker_id,
        s.shift_id,
        s.facility_code,
        s.unit_code,
        s.nursing_category,
        to_timestamp(round(extract(epoch from s.segment_start) / 900) * 900) as start_ts,
        to_timestamp(round(extract(epoch from s.segment_end) / 900) * 900) as end_ts
    from {{ ref('int_workforce__worked_segments') }} s
    inner join {{ ref('int_timekeeping__shifts') }} k on s.shift_id = k.shift_id
    {% if is_incremental() %}
        -- the week (and the rounding) before the window's first day
        inner join healthops_punch_windows w
            on
                s.worker_id = w.worker_id
                and s.segment_end > ((w.anchor_ts at time zone '{{ tz }}')::date::timestamp at time zone '{{ tz }}')
                - interval '169 hours'
    {% endif %}
    where k.end_kind = 'out'
),

stretches as (
    select *
    from rounded
    where end_ts > start_ts
),

-- each shift's last worked stretch: where its windows end
shift_ends as (
    select distinct on (shift_id)
        worker_id,
        facility_code,
        unit_code,
        nursing_category,
        end_ts
    from stretches
    order by shift_id asc, end_ts desc
),

windows as (
    select
        e.worker_id,
        e.end_ts as window_end,
        e.facility_code,
        e.unit_code,
        e.nursing_category,
        sum(
            extract(
                epoch from least(s.end_ts, e.end_ts) - greatest(s.start_ts, e.end_ts - interval '24 hours')
            )
        ) filter (where s.end_ts > e.end_ts - interval '24 hours') / 3600.0 as hours_24h,
        sum(
            extract(epoch from least(s.end_ts, e.end_ts) - greatest(s.start_ts, e.end_ts - interval '168 hours'))
        ) / 3600.0 as hours_7d
    from shift_ends e
    inner join stretches s
        on
            e.worker_id = s.worker_id
            and e.end_ts > s.start_ts
            and e.end_ts - interval '168 hours' < s.end_ts
    group by e.worker_id, e.end_ts, e.facility_code, e.unit_code, e.nursing_category
),

dated as (
    select
        x.*,
        ((x.window_end - interval '1 microsecond') at time zone '{{ tz }}')::date as window_end_date
    from windows x
),

in_window as (
    select
        d.*,
        {{ punch_build_state_columns() }}
    from dated d
    cross join state
    {{ join_punch_window('d', day='window_end_date') }}
)

select
    worker_id,
    window_end_date,
    (array_agg(facility_code order by window_end desc))[1] as facility_code,
    (array_agg(unit_code order by window_end desc))[1] as unit_code,
    coalesce(bool_or(nursing_category in ('RN', 'LPN', 'UAP')), false) as worked_nursing_job,
    round(max(coalesce(hours_24h, 0)), 2) as max_hours_24h,
    (array_agg(window_end - interval '24 hours' order by hours_24h desc nulls last, window_end asc))[1]
    at time zone '{{ tz }}' as max_24h_window_start,
    (array_agg(window_end order by hours_24h desc nulls last, window_end asc))[1]
    at time zone '{{ tz }}' as max_24h_window_end,
    (array_agg(unit_code order by hours_24h desc nulls last, window_end asc))[1] as max_24h_unit_code,
    round(max(hours_7d), 2) as max_hours_7d,
    (array_agg(window_end - interval '168 hours' order by hours_7d desc, window_end asc))[1]
    at time zone '{{ tz }}' as max_7d_window_start,
    (array_agg(window_end order by hours_7d desc, window_end asc))[1] at time zone '{{ tz }}' as max_7d_window_end,
    (array_agg(unit_code order by hours_7d desc, window_end asc))[1] as max_7d_unit_code,
    max(computed_through_punch_loaded_at) as computed_through_punch_loaded_at
from in_window
group by worker_id, window_end_date
