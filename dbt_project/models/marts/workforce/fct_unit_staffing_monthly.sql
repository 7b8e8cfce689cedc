-- Staffing per unit and calendar month (docs/definitions.md#nursing-hours-per-patient-day,
-- #skill-mix-and-contract-labor, #worked-and-paid-hours): the month's hours and patient
-- days summed before dividing (NHPPD and shares are ratios of sums, never averages of
-- daily ratios); FTEs from pay lines against the budgeted positions in force at the
-- month's last day covered; headcount, separations and turnover of the workers whose
-- home cost center is the unit. A month still under way covers the days built so far
-- (days_covered).
{%- set fte_hours = var('fte_hours_per_year') %}
with days as (
    select
        *,
        date_trunc('month', census_date)::date as month_start
    from {{ ref('fct_unit_staffing_daily') }}
),

sums as (
    select
        facility_code,
        unit_code,
        month_start,
        count(*) as days_covered,
        min(census_date) as first_day,
        max(census_date) as last_day,
        sum(patient_days) as patient_days,
        sum(rn_hours) as rn_hours,
        sum(lpn_hours) as lpn_hours,
        sum(uap_hours) as uap_hours,
        sum(nursing_hours) as nursing_hours,
        sum(contract_hours) as contract_hours,
        sum(overtime_hours) as overtime_hours,
        sum(productive_paid_hours) as productive_paid_hours,
        sum(paid_hours) as paid_hours
    from days
    group by facility_code, unit_code, month_start
),

units as (
    select
        facility_code,
        unit_code,
        cost_center
    from {{ ref('units') }}
),

-- budgeted FTEs: per cost center and job code, the position line with the latest
-- effective date on or before the month's last day, in the HR snapshot in force then
-- (the latest snapshot day on or before it). The snapshot days are found once per
-- month end, not once per unit and month: the staging view ranks every delivery kept.
month_ends as (
    select distinct last_day
    from sums
),

position_days as (
    select distinct snapshot_date
    from {{ ref('stg_hr__positions') }}
),

snapshot_in_force as (
    select
        m.last_day,
        max(x.snapshot_date) as snapshot_date
    from month_ends m
    inner join position_days x on m.last_day >= x.snapshot_date
    group by m.last_day
),

position_lines as (
    select distinct on (f.last_day, sp.cost_center, sp.job_code)
        f.last_day,
        sp.cost_center,
        sp.budgeted_fte
    from snapshot_in_force f
    inner join {{ ref('stg_hr__positions') }} sp
        on f.snapshot_date = sp.snapshot_date and f.last_day >= sp.effective_date
    order by f.last_day asc, sp.cost_center asc, sp.job_code asc, sp.effective_date desc
),

-- materialized: PostgreSQL estimates the join of the month sums with the units at one
-- row and would run this aggregate again for every unit and month (8 s at a year)
positions as materialized (
    select
        s.facility_code,
        s.unit_code,
        s.month_start,
        sum(p.budgeted_fte) as budgeted_fte
    from sums s
    inner join units u using (facility_code, unit_code)
    inner join position_lines p on s.last_day = p.last_day and u.cost_center = p.cost_center
    group by s.facility_code, s.unit_code, s.month_start
),

-- headcount on a day: workers on the unit's cost center, active or on leave, per the
-- HR history in force that day; filled FTEs from their standard hours (40 h = 1 FTE)
staff_on as (
    select
        s.facility_code,
        s.unit_code,
        s.month_start,
        count(*) filter (where w.valid_from <= s.first_day and (w.valid_to is null or w.valid_to > s.first_day))
            as headcount_start,
        count(*) filter (where w.valid_from <= s.last_day and (w.valid_to is null or w.valid_to > s.last_day))
            as headcount_end,
        sum(w.standard_hours_per_week / 40.0) filter (
            where w.valid_from <= s.last_day and (w.valid_to is null or w.valid_to > s.last_day)
        ) as filled_fte
    from sums s
    inner join units u using (facility_code, unit_code)
    inner join {{ ref('int_hr__worker_history') }} w
        on
            u.cost_center = w.home_cost_center
            and w.status in ('ACTIVE', 'LEAVE')
            and s.last_day >= w.valid_from
            and (w.valid_to is null or s.first_day < w.valid_to)
    group by s.facility_code, s.unit_code, s.month_start
),

-- separations: workers of the unit whose termination date falls in the days covered
separations as (
    select
        s.facility_code,
        s.unit_code,
        s.month_start,
        count(distinct w.worker_id) as separations
    from sums s
    inner join units u using (facility_code, unit_code)
    inner join {{ ref('int_hr__worker_history') }} w
        on
            u.cost_center = w.home_cost_center
            and w.termination_date between s.first_day and s.last_day
    group by s.facility_code, s.unit_code, s.month_start
),

-- the first day of HR history: headcount before it is unknown, not zero
hr_known as (
    select min(valid_from) as first_snapshot
    from {{ ref('int_hr__worker_history') }}
),

fte_basis as (
    -- hours one FTE is paid over the days covered
    select
        facility_code,
        unit_code,
        month_start,
        {{ fte_hours }} * days_covered / 365.0 as hours_per_fte
    from sums
)

select
    s.facility_code::text as facility_code,
    s.unit_code::text as unit_code,
    s.month_start::date as month_start,
    s.days_covered::integer as days_covered,
    s.patient_days::integer as patient_days,
    s.rn_hours::numeric as rn_hours,
    s.lpn_hours::numeric as lpn_hours,
    s.uap_hours::numeric as uap_hours,
    s.nursing_hours::numeric as nursing_hours,
    s.contract_hours::numeric as contract_hours,
    s.overtime_hours::numeric as overtime_hours,
    s.productive_paid_hours::numeric as productive_paid_hours,
    s.paid_hours::numeric as paid_hours,
    round(s.rn_hours / nullif(s.patient_days, 0), 2)::numeric as nhppd_rn,
    round(s.nursing_hours / nullif(s.patient_days, 0), 2)::numeric as nhppd_total,
    round(s.rn_hours / nullif(s.nursing_hours, 0), 4)::numeric as rn_share,
    round(s.lpn_hours / nullif(s.nursing_hours, 0), 4)::numeric as lpn_share,
    round(s.uap_hours / nullif(s.nursing_hours, 0), 4)::numeric as uap_share,
    round(s.contract_hours / nullif(s.nursing_hours, 0), 4)::numeric as contract_share,
    round(s.overtime_hours / nullif(s.productive_paid_hours, 0), 4)::numeric as overtime_share,
    round(s.paid_hours / f.hours_per_fte, 2)::numeric as paid_fte,
    round(s.productive_paid_hours / f.hours_per_fte, 2)::numeric as worked_fte,
    round(p.budgeted_fte, 2)::numeric as budgeted_fte,
    round(s.paid_hours / f.hours_per_fte - p.budgeted_fte, 2)::numeric as paid_fte_variance,
    round(coalesce(h.filled_fte, 0), 2)::numeric as filled_fte,
    round(p.budgeted_fte - coalesce(h.filled_fte, 0), 2)::numeric as vacant_fte,
    round((p.budgeted_fte - coalesce(h.filled_fte, 0)) / nullif(p.budgeted_fte, 0), 4)::numeric as vacancy_rate,
    (case when s.first_day >= k.first_snapshot then coalesce(h.headcount_start, 0) end)::integer as headcount_start,
    (case when s.last_day >= k.first_snapshot then coalesce(h.headcount_end, 0) end)::integer as headcount_end,
    coalesce(x.separations, 0)::integer as separations,
    round(
        coalesce(x.separations, 0)
        / nullif(
            (
                (case when s.first_day >= k.first_snapshot then coalesce(h.headcount_start, 0) end)
                + (case when s.last_day >= k.first_snapshot then coalesce(h.headcount_end, 0) end)
            ) / 2.0,
            0
        ),
        4
    )::numeric as turnover_rate
from sums s
cross join hr_known k
inner join fte_basis f using (facility_code, unit_code, month_start)
left join positions p using (facility_code, unit_code, month_start)
left join staff_on h using (facility_code, unit_code, month_start)
left join separations x using (facility_code, unit_code, month_start)
