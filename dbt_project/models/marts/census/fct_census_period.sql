{{ config(materialized='view') }}
-- Period census metrics by unit and facility (unit_code 'ALL': the facility's inpatient
-- units, dim_units.is_inpatient_unit, so not the emergency department), for day, month and
-- fiscal year (starting in month {{ var('fiscal_year_start_month') }}), from the daily mart:
--   ADC = patient days / days in period; occupancy = ADC / average staffed beds;
--   ALOS = inpatient days of the stays discharged in the period / discharges
--   (docs/definitions.md#average-length-of-stay).
-- Days in period counts the days the mart holds, so a month in progress is not diluted.
with daily as (
    -- a unit the reference data lacks counts as inpatient, as in the daily census
    select
        d.*,
        coalesce(u.is_inpatient_unit, true) as is_inpatient_unit
    from {{ ref('fct_census_daily') }} d
    left join {{ ref('dim_units') }} u using (facility_code, unit_code)
),

keyed as (
    select
        daily.*,
        p.period_type,
        p.period_start
    from daily
    cross join lateral (
        values
        ('day', daily.census_date),
        ('month', date_trunc('month', daily.census_date)::date),
        (
            'fiscal_year',
            make_date(
                extract(year from daily.census_date)::int
                - case
                    when extract(month from daily.census_date) < {{ var('fiscal_year_start_month') }} then 1
                    else 0
                end,
                {{ var('fiscal_year_start_month') }},
                1
            )
        )
    ) p (period_type, period_start)
),

by_unit as (
    select
        facility_code,
        unit_code,
        period_type,
        period_start,
        count(distinct census_date) as days_in_period,
        sum(patient_days) as patient_days,
        sum(observation_days) as observation_days,
        sum(admissions) as admissions,
        sum(discharges) as discharges,
        sum(discharged_stay_days) as discharged_stay_days,
        avg(staffed_beds) as avg_staffed_beds
    from keyed
    group by 1, 2, 3, 4
),

by_facility as (
    select
        facility_code,
        'ALL' as unit_code,
        period_type,
        period_start,
        count(distinct census_date) as days_in_period,
        sum(patient_days) as patient_days,
        sum(observation_days) as observation_days,
        sum(admissions) as admissions,
        sum(discharges) as discharges,
        sum(discharged_stay_days) as discharged_stay_days,
        -- staffed beds of the inpatient units on a day, averaged over the days
        sum(staffed_beds)::numeric / nullif(count(distinct census_date), 0) as avg_staffed_beds
    from keyed
    where is_inpatient_unit
    group by 1, 2, 3, 4
),

combined as (
    select * from by_unit
    union all
    select * from by_facility
)

select
    facility_code::text as facility_code,
    unit_code::text as unit_code,
    period_type::text as period_type,
    period_start::date as period_start,
    days_in_period::integer as days_in_period,
    patient_days::bigint as patient_days,
    observation_days::bigint as observation_days,
    admissions::bigint as admissions,
    discharges::bigint as discharges,
    round(patient_days::numeric / nullif(days_in_period, 0), 2)::numeric(12, 2) as average_daily_census,
    round(avg_staffed_beds::numeric, 2)::numeric(12, 2) as staffed_beds,
    round(patient_days::numeric / nullif(days_in_period, 0) / nullif(avg_staffed_beds, 0), 4)::numeric(7, 4)
        as occupancy,
    round(discharged_stay_days::numeric / nullif(discharges, 0), 2)::numeric(8, 2) as average_length_of_stay
from combined
