-- Daily inpatient census per facility, unit and local date (DOMAIN.md, SSA POMS
-- HI 00601.070): midnight census = inpatients in the unit at the midnight that ends
-- the date; patient days = that census + same-day admit-and-discharge stays, which
-- belong to the last unit occupied. Observation, outpatient and emergency patients
-- are not inpatients. A patient is present at midnight M when the segment started
-- before M and had not ended before M (start < M <= end).
with timeline as (
    select * from {{ ref('int_census__location_timeline') }}
),

as_of as (
    select max(received_date) as as_of_date, min(received_date) as first_date
    from {{ ref('stg_adt__messages') }}
),

ip as (
    select * from timeline where is_inpatient
),

stays as (
    select
        facility_code,
        encounter_key,
        inpatient_stay_no,
        min(segment_start) as stay_start,
        -- open while the last segment is open
        (array_agg(segment_end order by segment_no desc))[1] as stay_end,
        (array_agg(unit_code order by segment_no))[1] as first_unit,
        (array_agg(unit_code order by segment_no desc))[1] as last_unit
    from ip
    group by 1, 2, 3
),

midnight as (
    select ip.facility_code, ip.unit_code, d::date as census_date, count(*) as midnight_census
    from ip
    cross join as_of
    cross join lateral generate_series(
        ip.segment_start::date,
        least(coalesce((ip.segment_end::date - 1), as_of.as_of_date), as_of.as_of_date),
        interval '1 day') d
    -- start < M: the segment started before the midnight ending its start date, always true
    -- for d >= start date; end >= M: d <= end date - 1 (or end exactly at a midnight).
    where ip.segment_end is null or ip.segment_end >= (d::date + 1)::timestamp
    group by 1, 2, 3
),

admissions as (
    select facility_code, first_unit as unit_code, stay_start::date as census_date, count(*) as admissions
    from stays group by 1, 2, 3
),

discharges as (
    select facility_code, last_unit as unit_code, stay_end::date as census_date, count(*) as discharges
    from stays where stay_end is not null group by 1, 2, 3
),

same_day as (
    select facility_code, last_unit as unit_code, stay_start::date as census_date, count(*) as same_day_stays
    from stays where stay_end is not null and stay_end::date = stay_start::date group by 1, 2, 3
),

moves as (
    select
        facility_code,
        lag(unit_code) over (partition by encounter_key, inpatient_stay_no order by segment_no) as from_unit,
        unit_code as to_unit,
        segment_start::date as census_date
    from ip
),

transfers_out as (
    select facility_code, from_unit as unit_code, census_date, count(*) as transfers_out
    from moves where from_unit is not null and from_unit <> to_unit group by 1, 2, 3
),

transfers_in as (
    select facility_code, to_unit as unit_code, census_date, count(*) as transfers_in
    from moves where from_unit is not null and from_unit <> to_unit group by 1, 2, 3
),

units as (
    -- every unit of the reference data, and any unit the feed names that it lacks
    -- (so nothing is dropped; the quality checks flag unknown units)
    select facility_code, unit_code from {{ ref('units') }} where unit_type <> 'emergency'
    union
    select facility_code, unit_code from ip
),

dates as (
    select d::date as census_date
    from as_of,
         lateral generate_series(
             least(as_of.first_date, (select min(segment_start)::date from ip)),
             as_of.as_of_date, interval '1 day') d
),

grid as (
    select u.facility_code, u.unit_code, d.census_date from units u cross join dates d
)

select
    g.facility_code::text                                           as facility_code,
    g.unit_code::text                                               as unit_code,
    g.census_date::date                                             as census_date,
    coalesce(m.midnight_census, 0)::integer                         as midnight_census,
    coalesce(a.admissions, 0)::integer                              as admissions,
    coalesce(dc.discharges, 0)::integer                             as discharges,
    coalesce(ti.transfers_in, 0)::integer                           as transfers_in,
    coalesce(tout.transfers_out, 0)::integer                        as transfers_out,
    (coalesce(m.midnight_census, 0) + coalesce(s.same_day_stays, 0))::integer as patient_days,
    u.staffed_beds::integer                                         as staffed_beds
from grid g
left join midnight m using (facility_code, unit_code, census_date)
left join admissions a using (facility_code, unit_code, census_date)
left join discharges dc using (facility_code, unit_code, census_date)
left join same_day s using (facility_code, unit_code, census_date)
left join transfers_in ti using (facility_code, unit_code, census_date)
left join transfers_out tout using (facility_code, unit_code, census_date)
left join {{ ref('units') }} u using (facility_code, unit_code)
