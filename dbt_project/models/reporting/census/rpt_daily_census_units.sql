-- The daily census report's unit table, chart and CSV: one row per facility, census
-- day and unit, with the unit's name and type from the reference data, whether it is
-- an inpatient unit (the ED is not: it counts in no inpatient total), its occupancy
-- and its census the day before. A recipient's totals and trend are the sums of the
-- inpatient rows of the units she receives (healthops.reports.reader.sums).
with daily as (
    select * from {{ ref('fct_census_daily') }}
),

units as (
    select * from {{ ref('dim_units') }}
),

facilities as (
    select * from {{ ref('facilities') }}
)

select
    d.facility_code::text as facility_code,
    coalesce(f.facility_name, d.facility_code)::text as facility_name,
    d.census_date::date as census_date,
    d.unit_code::text as unit_code,
    coalesce(u.unit_name, d.unit_code || ' (not in reference data)')::text as unit_name,
    coalesce(u.unit_type, 'unknown')::text as unit_type,
    coalesce(u.is_inpatient_unit, true) as is_inpatient_unit,
    coalesce(d.staffed_beds, 0)::integer as staffed_beds,
    d.midnight_census::integer as midnight_census,
    d.admissions::integer as admissions,
    d.discharges::integer as discharges,
    d.transfers_in::integer as transfers_in,
    d.transfers_out::integer as transfers_out,
    d.patient_days::integer as patient_days,
    {{ percent('d.midnight_census', 'd.staffed_beds', 1) }}::numeric(7, 1) as occupancy_pct,
    p.midnight_census::integer as previous_day_census,
    (d.midnight_census - p.midnight_census)::integer as census_change,
    1 as unit_count
from daily d
left join units u
    on d.facility_code = u.facility_code and d.unit_code = u.unit_code
left join facilities f
    on d.facility_code = f.facility_code
left join daily p
    on
        d.facility_code = p.facility_code
        and d.unit_code = p.unit_code
        and p.census_date = d.census_date - 1
