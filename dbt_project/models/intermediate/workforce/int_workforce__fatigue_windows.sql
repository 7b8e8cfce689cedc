{%- set tz = var('facility_tz') %}
-- Fatigue (docs/definitions.md#fatigue-limits): per worker and local date, the most
-- hours worked in any rolling 24 hours and in any rolling 7 days (168 real hours)
-- whose window ends that date. Worked time is the worker's worked stretches (all
-- jobs: int_workforce__worked_segments), with every punch rounded to the nearest
-- quarter hour as 29 CFR 785.48(b) allows (7 minutes 29 seconds or less down, 7 1/2
-- minutes or more up): a nurse who clocks in a few minutes early for 07:00-19:30 with
-- a 30-minute meal has worked 12.00 hours, not 12 h 07 min. Rounding is monotone, so a
-- 30-minute meal stays at least 30 minutes; a cut at local midnight is already on the
-- quarter hour. Hours are exact (multiples of 0.25).
-- The sum over a window sliding along a step function (1 while working, 0 otherwise)
-- grows only while the window's end is in worked time, so its maximum is reached at a
-- window ending at a stretch's end: those are the only windows evaluated. Windows are
-- real time (timestamptz): a night shift across the autumn DST change is as long as
-- it was. A window ending exactly at midnight belongs to the day before (half-open).
with rounded as (
    select
        worker_id,
        facility_code,
        unit_code,
        nursing_category,
        to_timestamp(round(extract(epoch from segment_start) / 900) * 900) as start_ts,
        to_timestamp(round(extract(epoch from segment_end) / 900) * 900) as end_ts
    from {{ ref('int_workforce__worked_segments') }}
),

stretches as (
    select *
    from rounded
    where end_ts > start_ts
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
    from stretches e
    inner join stretches s
        on
            e.worker_id = s.worker_id
            and e.end_ts > s.start_ts
            and e.end_ts - interval '168 hours' < s.end_ts
    group by e.worker_id, e.end_ts, e.facility_code, e.unit_code, e.nursing_category
),

dated as (
    select
        *,
        ((window_end - interval '1 microsecond') at time zone '{{ tz }}')::date as window_end_date
    from windows
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
    (array_agg(unit_code order by hours_7d desc, window_end asc))[1] as max_7d_unit_code
from dated
group by worker_id, window_end_date
