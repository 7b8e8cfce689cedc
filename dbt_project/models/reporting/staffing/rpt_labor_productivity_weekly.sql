{%- set fte_hours = var('fte_hours_per_year') %}
-- The weekly labor productivity report's table and CSV: one row per facility, ISO
-- week (Monday to Sunday) and unit, plus the facility's total (unit_code 'ALL'), from
-- the days of fct_unit_staffing_daily: NHPPD (total and RN), overtime hours and % of
-- productive paid hours, contract (agency) share of nursing hours, paid FTEs against
-- the budgeted FTEs in force (fct_unit_staffing_monthly of the month holding the
-- week's Sunday) and the same figures for the week before. Ratios are of the week's
-- sums (docs/definitions.md#worked-and-paid-hours); FTEs prorate the hours per FTE a
-- year (var fte_hours_per_year) to the days covered.
with daily as (
    select
        *,
        (census_date - (extract(isodow from census_date)::integer - 1))::date as week_start
    from {{ ref('fct_unit_staffing_daily') }}
),

by_unit as (
    select
        facility_code,
        unit_code,
        week_start,
        count(*) as days_covered,
        sum(patient_days) as patient_days,
        sum(rn_hours) as rn_hours,
        sum(nursing_hours) as nursing_hours,
        sum(contract_hours) as contract_hours,
        sum(overtime_hours) as overtime_hours,
        sum(productive_paid_hours) as productive_paid_hours,
        sum(paid_hours) as paid_hours
    from daily
    group by facility_code, unit_code, week_start
),

budget as (
    select
        b.facility_code,
        b.unit_code,
        b.week_start,
        m.budgeted_fte
    from by_unit b
    left join {{ ref('fct_unit_staffing_monthly') }} m
        on
            b.facility_code = m.facility_code
            and b.unit_code = m.unit_code
            and date_trunc('month', b.week_start + 6)::date = m.month_start
),

weeks as (
    select
        b.*,
        g.budgeted_fte
    from by_unit b
    left join budget g
        on
            b.facility_code = g.facility_code
            and b.unit_code = g.unit_code
            and b.week_start = g.week_start
    union all
    select
        b.facility_code,
        'ALL' as unit_code,
        b.week_start,
        max(b.days_covered) as days_covered,
        sum(b.patient_days) as patient_days,
        sum(b.rn_hours) as rn_hours,
        sum(b.nursing_hours) as nursing_hours,
        sum(b.contract_hours) as contract_hours,
        sum(b.overtime_hours) as overtime_hours,
        sum(b.productive_paid_hours) as productive_paid_hours,
        sum(b.paid_hours) as paid_hours,
        sum(g.budgeted_fte) as budgeted_fte
    from by_unit b
    left join budget g
        on
            b.facility_code = g.facility_code
            and b.unit_code = g.unit_code
            and b.week_start = g.week_start
    group by b.facility_code, b.week_start
),

figures as (
    select
        facility_code,
        unit_code,
        week_start,
        days_covered,
        patient_days,
        rn_hours,
        nursing_hours,
        contract_hours,
        overtime_hours,
        productive_paid_hours,
        paid_hours,
        budgeted_fte,
        round(nursing_hours / nullif(patient_days, 0), 2) as nhppd_total,
        round(rn_hours / nullif(patient_days, 0), 2) as nhppd_rn,
        {{ percent('overtime_hours', 'productive_paid_hours', 1) }} as overtime_pct,
        {{ percent('contract_hours', 'nursing_hours', 1) }} as contract_pct,
        round(paid_hours / ({{ fte_hours }} * days_covered / 365.0), 2) as paid_fte
    from weeks
),

units as (
    select * from {{ ref('dim_units') }}
),

targets as (
    select * from {{ ref('nhppd_targets') }}
)

select
    w.facility_code::text as facility_code,
    coalesce(f.facility_name, w.facility_code)::text as facility_name,
    w.week_start::date as week_start,
    (w.week_start + 6)::date as week_end,
    to_char(w.week_start, 'IYYY-"W"IW')::text as week_key,
    w.unit_code::text as unit_code,
    (case
        when w.unit_code = 'ALL' then 'All units'
        else coalesce(u.unit_name, w.unit_code || ' (not in reference data)')
    end)::text as unit_name,
    (w.unit_code = 'ALL') as is_facility_total,
    w.days_covered::integer as days_covered,
    w.patient_days::integer as patient_days,
    round(w.rn_hours, 2)::numeric(10, 2) as rn_hours,
    round(w.nursing_hours, 2)::numeric(10, 2) as nursing_hours,
    round(w.contract_hours, 2)::numeric(10, 2) as contract_hours,
    round(w.overtime_hours, 2)::numeric(10, 2) as overtime_hours,
    round(w.productive_paid_hours, 2)::numeric(10, 2) as productive_paid_hours,
    round(w.paid_hours, 2)::numeric(10, 2) as paid_hours,
    w.nhppd_total::numeric(7, 2) as nhppd_total,
    w.nhppd_rn::numeric(7, 2) as nhppd_rn,
    coalesce(tu.nhppd_total_target, tt.nhppd_total_target)::numeric(7, 2) as nhppd_total_target,
    coalesce(tu.nhppd_rn_target, tt.nhppd_rn_target)::numeric(7, 2) as nhppd_rn_target,
    w.overtime_pct::numeric(7, 1) as overtime_pct,
    w.contract_pct::numeric(7, 1) as contract_pct,
    w.paid_fte::numeric(9, 2) as paid_fte,
    round(w.budgeted_fte, 2)::numeric(9, 2) as budgeted_fte,
    (w.paid_fte - round(w.budgeted_fte, 2))::numeric(9, 2) as fte_variance,
    p.patient_days::integer as prior_patient_days,
    p.nhppd_total::numeric(7, 2) as prior_nhppd_total,
    p.nhppd_rn::numeric(7, 2) as prior_nhppd_rn,
    round(p.overtime_hours, 2)::numeric(10, 2) as prior_overtime_hours,
    p.overtime_pct::numeric(7, 1) as prior_overtime_pct,
    p.contract_pct::numeric(7, 1) as prior_contract_pct,
    p.paid_fte::numeric(9, 2) as prior_paid_fte,
    (w.nhppd_total - p.nhppd_total)::numeric(7, 2) as nhppd_total_change,
    (w.nhppd_rn - p.nhppd_rn)::numeric(7, 2) as nhppd_rn_change,
    (w.overtime_pct - p.overtime_pct)::numeric(7, 1) as overtime_pct_change,
    (w.contract_pct - p.contract_pct)::numeric(7, 1) as contract_pct_change,
    (w.paid_fte - p.paid_fte)::numeric(9, 2) as paid_fte_change
from figures w
left join figures p
    on
        w.facility_code = p.facility_code
        and w.unit_code = p.unit_code
        and w.week_start - 7 = p.week_start
left join units u
    on w.facility_code = u.facility_code and w.unit_code = u.unit_code
left join {{ ref('facilities') }} f
    on w.facility_code = f.facility_code
left join targets tu
    on w.facility_code = tu.facility_code and w.unit_code = tu.unit_code
left join targets tt
    on u.unit_type = tt.unit_type and tt.facility_code is null and tt.unit_code is null
