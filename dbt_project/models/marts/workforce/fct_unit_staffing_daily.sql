-- Nursing hours and skill mix per unit and local date (docs/definitions.md#nursing-hours-per-patient-day,
-- #skill-mix-and-contract-labor, #worked-and-paid-hours). Worked hours come from
-- punches (int_workforce__worked_segments: [IN, OUT) less meal breaks, cut at local
-- midnight, on the unit punched, direct-care jobs by nursing category); paid and
-- overtime hours from pay lines, by their work date and cost center. NHPPD per day is
-- hours ÷ the day's patient days (fct_census_daily); the monthly figure sums both
-- before dividing (fct_unit_staffing_monthly), never averages daily ratios.
with as_of as (
    {{ census_as_of() }}
),

coverage as (
    select
        facility_code,
        min(work_date) as first_day
    from {{ ref('int_workforce__worked_segments') }}
    where facility_code is not null
    group by facility_code
),

hours as (
    select
        facility_code,
        unit_code,
        work_date as census_date,
        sum(worked_hours) filter (where is_direct_care and nursing_category = 'RN') as rn_hours,
        sum(worked_hours) filter (where is_direct_care and nursing_category = 'LPN') as lpn_hours,
        sum(worked_hours) filter (where is_direct_care and nursing_category = 'UAP') as uap_hours,
        sum(worked_hours) filter (
            where is_direct_care and nursing_category in ('RN', 'LPN', 'UAP') and is_contract
        ) as contract_hours,
        sum(worked_hours) as all_worked_hours
    from {{ ref('int_workforce__worked_segments') }}
    where unit_code is not null
    group by facility_code, unit_code, work_date
),

pay as (
    select
        u.facility_code,
        u.unit_code,
        p.work_date as census_date,
        sum(p.hours) as paid_hours,
        sum(p.hours) filter (where c.is_worked) as productive_paid_hours,
        sum(p.hours) filter (where c.is_overtime) as overtime_hours
    from {{ ref('stg_timekeeping__pay_lines') }} p
    inner join {{ ref('units') }} u on p.cost_center = u.cost_center
    left join {{ ref('pay_codes') }} c on p.pay_code = c.pay_code
    where not p.is_deleted
    group by u.facility_code, u.unit_code, p.work_date
),

census as (
    select
        facility_code,
        unit_code,
        census_date,
        patient_days
    from {{ ref('fct_census_daily') }}
),

keys as (
    select
        facility_code,
        unit_code,
        census_date
    from census
    union
    select
        facility_code,
        unit_code,
        census_date
    from hours
    union
    select
        facility_code,
        unit_code,
        census_date
    from pay
),

joined as (
    select
        k.facility_code,
        k.unit_code,
        k.census_date,
        coalesce(h.rn_hours, 0) as rn_hours,
        coalesce(h.lpn_hours, 0) as lpn_hours,
        coalesce(h.uap_hours, 0) as uap_hours,
        coalesce(h.contract_hours, 0) as contract_hours,
        coalesce(h.all_worked_hours, 0) as all_worked_hours,
        coalesce(p.paid_hours, 0) as paid_hours,
        coalesce(p.productive_paid_hours, 0) as productive_paid_hours,
        coalesce(p.overtime_hours, 0) as overtime_hours,
        coalesce(c.patient_days, 0) as patient_days
    from keys k
    inner join coverage v on k.facility_code = v.facility_code and k.census_date >= v.first_day
    cross join as_of
    left join hours h
        on k.facility_code = h.facility_code and k.unit_code = h.unit_code and k.census_date = h.census_date
    left join pay p
        on k.facility_code = p.facility_code and k.unit_code = p.unit_code and k.census_date = p.census_date
    left join census c
        on k.facility_code = c.facility_code and k.unit_code = c.unit_code and k.census_date = c.census_date
    where k.census_date <= as_of.as_of_date
)

select
    facility_code::text as facility_code,
    unit_code::text as unit_code,
    census_date::date as census_date,
    patient_days::integer as patient_days,
    round(rn_hours, 2)::numeric as rn_hours,
    round(lpn_hours, 2)::numeric as lpn_hours,
    round(uap_hours, 2)::numeric as uap_hours,
    round(rn_hours + lpn_hours + uap_hours, 2)::numeric as nursing_hours,
    round(contract_hours, 2)::numeric as contract_hours,
    round(all_worked_hours, 2)::numeric as all_worked_hours,
    round(paid_hours, 2)::numeric as paid_hours,
    round(productive_paid_hours, 2)::numeric as productive_paid_hours,
    round(overtime_hours, 2)::numeric as overtime_hours,
    round(rn_hours / nullif(patient_days, 0), 2)::numeric as nhppd_rn,
    round((rn_hours + lpn_hours + uap_hours) / nullif(patient_days, 0), 2)::numeric as nhppd_total,
    round(rn_hours / nullif(rn_hours + lpn_hours + uap_hours, 0), 4)::numeric as rn_share,
    round(lpn_hours / nullif(rn_hours + lpn_hours + uap_hours, 0), 4)::numeric as lpn_share,
    round(uap_hours / nullif(rn_hours + lpn_hours + uap_hours, 0), 4)::numeric as uap_share,
    round(contract_hours / nullif(rn_hours + lpn_hours + uap_hours, 0), 4)::numeric as contract_share,
    round(overtime_hours / nullif(productive_paid_hours, 0), 4)::numeric as overtime_share
from joined
