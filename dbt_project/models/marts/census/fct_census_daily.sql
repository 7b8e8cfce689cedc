{{ config(
    materialized='incremental',
    unique_key=['facility_code', 'unit_code', 'census_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- Daily census per facility, unit and local date (docs/definitions.md#census-and-utilization, SSA POMS HI 00601.070):
-- midnight census = inpatients in the unit at the midnight that ends the date; patient
-- days = that census + same-day admit-and-discharge stays, which belong to the last
-- unit occupied. Observation patients are counted the same way in their own columns
-- and never as inpatients (Medicare Benefit Policy Manual ch. 6 §20.6). A patient is
-- present at midnight M when the segment started before M and had not ended before M
-- (start < M <= end). Incremental: only the days a newly loaded message can change.
with affected as (
    {{ census_affected_from(this) }}
),

as_of as (
    {{ census_as_of() }}
),

timeline as (
    -- every segment that reaches into an affected day (its encounter's stays too)
    select t.*
    from {{ ref('int_census__location_timeline') }} t
    inner join affected using (facility_code)
    where t.encounter_key in (
        select x.encounter_key from {{ ref('int_census__location_timeline') }} x
        inner join affected ax using (facility_code)
        where x.segment_end is null or x.segment_end >= ax.from_date
    )
),

located as (
    select
        t.*,
        a.from_date
    from timeline t
    inner join affected a using (facility_code)
    where t.is_inpatient or t.is_observation
),

stays as (
    select
        facility_code,
        encounter_key,
        inpatient_stay_no,
        min(segment_start) as stay_start,
        (array_agg(segment_end order by segment_no desc))[1] as stay_end,
        (array_agg(unit_code order by segment_no))[1] as first_unit,
        (array_agg(unit_code order by segment_no desc))[1] as last_unit
    from located
    where is_inpatient
    group by 1, 2, 3
),

obs_runs as (
    -- observation stays: runs of consecutive observation segments, for same-day counting
    select
        facility_code,
        encounter_key,
        run_no,
        min(segment_start) as run_start,
        (array_agg(segment_end order by segment_no desc))[1] as run_end,
        (array_agg(unit_code order by segment_no desc))[1] as last_unit
    from (
        select
            *,
            segment_no - row_number() over (partition by encounter_key order by segment_no) as run_no
        from located
        where is_observation
    ) o
    group by 1, 2, 3
),

midnight as (
    select
        l.facility_code,
        l.unit_code,
        d::date as census_date,
        count(*) filter (where l.is_inpatient) as midnight_census,
        count(*) filter (where l.is_observation) as observation_census
    from located l
    cross join as_of
    cross join
        lateral generate_series(
            greatest(l.segment_start::date, l.from_date),
            least(coalesce(l.segment_end::date - 1, as_of.as_of_date), as_of.as_of_date),
            interval '1 day'
        ) d
    -- start < M holds for every d >= the start date; end >= M means d <= end date - 1
    group by 1, 2, 3
),

admissions as (
    select
        facility_code,
        first_unit as unit_code,
        stay_start::date as census_date,
        count(*) as admissions
    from stays
    group by 1, 2, 3
),

discharges as (
    select
        facility_code,
        last_unit as unit_code,
        stay_end::date as census_date,
        count(*) as discharges,
        -- inpatient days of the stays ending here: midnights present, or 1 for a same-day stay
        sum(greatest(stay_end::date - stay_start::date, 1)) as discharged_stay_days,
        count(*) filter (where stay_end::date = stay_start::date) as same_day_stays
    from stays
    where stay_end is not null
    group by 1, 2, 3
),

obs_same_day as (
    select
        facility_code,
        last_unit as unit_code,
        run_start::date as census_date,
        count(*) as same_day_obs
    from obs_runs
    where run_end is not null and run_end::date = run_start::date
    group by 1, 2, 3
),

moves as (
    select
        facility_code,
        lag(unit_code) over (partition by encounter_key, inpatient_stay_no order by segment_no) as from_unit,
        unit_code as to_unit,
        segment_start::date as census_date
    from located
    where is_inpatient
),

transfers as (
    select
        facility_code,
        unit_code,
        census_date,
        sum(t_in) as transfers_in,
        sum(t_out) as transfers_out
    from (
        select
            facility_code,
            to_unit as unit_code,
            census_date,
            1 as t_in,
            0 as t_out
        from moves
        where from_unit is not null and from_unit <> to_unit
        union all
        select
            facility_code,
            from_unit as unit_code,
            census_date,
            0 as t_in,
            1 as t_out
        from moves
        where from_unit is not null and from_unit <> to_unit
    ) x
    group by 1, 2, 3
),

units as (
    -- the inpatient units of the reference data, any unit the feed put a patient in
    -- that it lacks (nothing is dropped; the quality rules flag unknown units), and
    -- any unit already in the mart (so a unit whose last patient was cancelled is zeroed)
    select
        u.facility_code,
        u.unit_code
    from {{ ref('dim_units') }} u
    inner join affected using (facility_code)
    where u.is_inpatient_unit
    union
    select
        facility_code,
        unit_code
    from located
    {% if is_incremental() %}
        union
        select
            facility_code,
            cur.unit_code
        from {{ this }} cur inner join affected using (facility_code)
    {% endif %}
),

grid as (
    select
        u.facility_code,
        u.unit_code,
        d::date as census_date
    from units u
    inner join affected a using (facility_code)
    cross join as_of
    cross join lateral generate_series(a.from_date, as_of.as_of_date, interval '1 day') d
)

select
    g.facility_code::text as facility_code,
    g.unit_code::text as unit_code,
    g.census_date::date as census_date,
    coalesce(m.midnight_census, 0)::integer as midnight_census,
    coalesce(a.admissions, 0)::integer as admissions,
    coalesce(dc.discharges, 0)::integer as discharges,
    coalesce(t.transfers_in, 0)::integer as transfers_in,
    coalesce(t.transfers_out, 0)::integer as transfers_out,
    (coalesce(m.midnight_census, 0) + coalesce(dc.same_day_stays, 0))::integer as patient_days,
    coalesce(dc.discharged_stay_days, 0)::integer as discharged_stay_days,
    coalesce(m.observation_census, 0)::integer as observation_census,
    (coalesce(m.observation_census, 0) + coalesce(o.same_day_obs, 0))::integer as observation_days,
    u.staffed_beds::integer as staffed_beds,
    round(coalesce(m.midnight_census, 0)::numeric / nullif(u.staffed_beds, 0), 4)::numeric(7, 4)
        as occupancy,
    as_of.loaded_through::timestamptz as computed_through_loaded_at
from grid g
cross join as_of
left join midnight m using (facility_code, unit_code, census_date)
left join admissions a using (facility_code, unit_code, census_date)
left join discharges dc using (facility_code, unit_code, census_date)
left join obs_same_day o using (facility_code, unit_code, census_date)
left join transfers t using (facility_code, unit_code, census_date)
left join {{ ref('dim_units') }} u using (facility_code, unit_code)
