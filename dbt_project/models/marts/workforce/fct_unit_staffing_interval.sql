{{ config(
    materialized='incremental',
    unique_key=['facility_code', 'unit_code', 'interval_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
{%- set tz = var('facility_tz') %}
-- Licensed-nurse ratio compliance at every instant, per unit and 15-minute interval
-- (Title 22 §70217(a); docs/definitions.md#ratio-compliance-at-every-instant), on the
-- grid of fct_census_interval. Patients and licensed nurses present are step functions
-- of real time: every arrival, departure, punch and meal break is a step, so within an
-- interval the figures are exact, not sampled. Patients present on [arrival,
-- departure), nurses on their worked segments (half-open too): a bed turned over at
-- 10:05 holds one patient at a time, and a nurse clocking out at 07:00 as another
-- clocks in at 07:00 leaves no gap. Incremental: a night recomputes from the first day
-- a new message, punch version or HR snapshot can change (staffing_affected_from).
with affected as (
    {{ staffing_affected_from(this) }}
),

as_of as (
    {{ census_as_of() }}
),

loaded as (
    {{ workforce_loaded_through() }}
),

bounds as (
    select
        a.facility_code,
        a.from_date,
        (a.from_date::timestamp at time zone '{{ tz }}') as from_ts,
        ((as_of.as_of_date + 1)::timestamp at time zone '{{ tz }}') as to_ts
    from affected a
    cross join as_of
    where a.from_date <= as_of.as_of_date
),

grid as (
    select
        g.facility_code,
        g.unit_code,
        g.interval_start,
        g.census_date
    from {{ ref('fct_census_interval') }} g
    inner join bounds b using (facility_code)
    where g.census_date >= b.from_date
),

unit_bounds as (
    select distinct
        g.facility_code,
        g.unit_code,
        b.from_ts,
        b.to_ts
    from grid g
    inner join bounds b using (facility_code)
),

patients as (
    select
        t.facility_code,
        t.unit_code,
        greatest(t.segment_start at time zone '{{ tz }}', u.from_ts) as span_start,
        least(coalesce(t.segment_end at time zone '{{ tz }}', 'infinity'::timestamptz), u.to_ts) as span_end
    from {{ ref('int_census__location_timeline') }} t
    inner join unit_bounds u using (facility_code, unit_code)
    where t.segment_end is null or t.segment_end > t.segment_start
),

nurses as (
    select
        s.facility_code,
        s.unit_code,
        greatest(s.segment_start, u.from_ts) as span_start,
        least(s.segment_end, u.to_ts) as span_end
    from {{ ref('int_workforce__worked_segments') }} s
    inner join unit_bounds u using (facility_code, unit_code)
    where s.counts_as_licensed_nurse
),

events as (
    select
        facility_code,
        unit_code,
        span_start as ts,
        1 as d_patients,
        0 as d_nurses
    from patients
    where span_end > span_start
    union all
    select
        facility_code,
        unit_code,
        span_end as ts,
        -1 as d_patients,
        0 as d_nurses
    from patients
    where span_end > span_start
    union all
    select
        facility_code,
        unit_code,
        span_start as ts,
        0 as d_patients,
        1 as d_nurses
    from nurses
    where span_end > span_start
    union all
    select
        facility_code,
        unit_code,
        span_end as ts,
        0 as d_patients,
        -1 as d_nurses
    from nurses
    where span_end > span_start
    union all
    -- every interval boundary, so that each constant stretch lies in one interval
    select
        u.facility_code,
        u.unit_code,
        i as ts,
        0 as d_patients,
        0 as d_nurses
    from unit_bounds u
    cross join lateral generate_series(u.from_ts, u.to_ts, interval '15 minutes') i
),

steps as (
    select
        facility_code,
        unit_code,
        ts,
        sum(d_patients) as d_patients,
        sum(d_nurses) as d_nurses
    from events
    group by facility_code, unit_code, ts
),

levels as (
    select
        facility_code,
        unit_code,
        ts,
        sum(d_patients) over w as patients,
        sum(d_nurses) over w as nurses,
        lead(ts) over w as next_ts
    from steps
    window w as (partition by facility_code, unit_code order by ts rows between unbounded preceding and current row)
),

stretches as (
    select
        l.facility_code,
        l.unit_code,
        date_bin('15 minutes', l.ts, timestamptz '2000-01-01 00:00:00+00') as real_interval_start,
        l.patients,
        l.nurses,
        extract(epoch from l.next_ts - l.ts) / 60.0 as minutes,
        l.patients > d.max_patients_per_licensed_nurse * l.nurses as out_of_ratio
    from levels l
    left join {{ ref('dim_units') }} d using (facility_code, unit_code)
    where l.next_ts is not null
),

-- Real intervals to local labels: in the autumn DST hour two real intervals share
-- one label (their figures combine: 30 real minutes); in the spring hour a label has
-- no real time at all.
per_label as (
    select
        facility_code,
        unit_code,
        real_interval_start at time zone '{{ tz }}' as interval_start,
        max(patients) as patients_peak,
        min(nurses) as licensed_nurses_min,
        bool_or(patients > 0 and nurses = 0) as uncovered,
        max(patients::numeric / nullif(nurses, 0)) as max_ratio,
        sum(minutes) filter (where out_of_ratio) as minutes_out,
        bool_or(out_of_ratio is null) as no_ratio,
        sum(minutes) as real_minutes
    from stretches
    group by facility_code, unit_code, real_interval_start at time zone '{{ tz }}'
)

select
    g.facility_code::text as facility_code,
    g.unit_code::text as unit_code,
    g.interval_start::timestamp as interval_start,
    g.census_date::date as census_date,
    p.patients_peak::integer as patients_peak,
    p.licensed_nurses_min::integer as licensed_nurses_min,
    (case when not p.uncovered then round(p.max_ratio, 2) end)::numeric as max_patients_per_licensed_nurse,
    d.max_patients_per_licensed_nurse::integer as ratio_limit,
    (case
        when p.interval_start is null then 0
        when not p.no_ratio then round(coalesce(p.minutes_out, 0), 2)
    end)::numeric as minutes_out_of_ratio,
    (case
        when p.interval_start is null then true
        when not p.no_ratio then coalesce(p.minutes_out, 0) = 0
    end)::boolean as in_ratio,
    round(coalesce(p.real_minutes, 0), 2)::numeric as real_minutes,
    as_of.loaded_through::timestamptz as computed_through_loaded_at,
    loaded.punches_loaded_through::timestamptz as computed_through_punch_loaded_at,
    loaded.hr_loaded_through::timestamptz as computed_through_hr_loaded_at
from grid g
cross join as_of
cross join loaded
left join per_label p using (facility_code, unit_code, interval_start)
left join {{ ref('dim_units') }} d using (facility_code, unit_code)
