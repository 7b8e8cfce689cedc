-- The staffing huddle's unit table, CSV and order: one row per facility, unit and day
-- with staffing intervals (fct_unit_staffing_interval). The day's census (midnight
-- census, patient days: fct_census_daily), its licensed nurses (the fewest at any
-- instant; the typical count, the most frequent of the intervals' fewest), the
-- intervals and minutes out of ratio and the worst interval (the most minutes out of
-- ratio; then the most patients per nurse, no nurse first; then the earliest), nursing
-- hours and NHPPD (fct_unit_staffing_daily) against the hospital's targets (seed
-- nhppd_targets: the unit's own row, else its type's), the open workforce findings
-- (rpt_staffing_findings) and the order the huddle reads the units in: out of ratio
-- first, the most minutes first.
with intervals as (
    select * from {{ ref('fct_unit_staffing_interval') }}
),

day_units as (
    select
        facility_code,
        unit_code,
        census_date,
        max(ratio_limit) as ratio_limit,
        max(patients_peak) as patients_peak,
        min(licensed_nurses_min) as licensed_nurses_fewest,
        mode() within group (order by licensed_nurses_min) as licensed_nurses_typical,
        count(*) filter (where minutes_out_of_ratio > 0) as intervals_out_of_ratio,
        sum(minutes_out_of_ratio) as minutes_out_of_ratio
    from intervals
    group by facility_code, unit_code, census_date
),

worst as (
    select distinct on (facility_code, unit_code, census_date)
        facility_code,
        unit_code,
        census_date,
        interval_start,
        patients_peak,
        licensed_nurses_min,
        minutes_out_of_ratio
    from intervals
    where minutes_out_of_ratio > 0
    order by
        facility_code asc,
        unit_code asc,
        census_date asc,
        minutes_out_of_ratio desc,
        max_patients_per_licensed_nurse desc nulls first,
        interval_start asc
),

findings as (
    select
        facility_code,
        unit_code,
        logical_date,
        count(*) filter (where finding_status = 'open') as open_findings
    from {{ ref('rpt_staffing_findings') }}
    where unit_code is not null
    group by facility_code, unit_code, logical_date
),

units as (
    select * from {{ ref('dim_units') }}
),

targets as (
    select * from {{ ref('nhppd_targets') }}
),

final as (
    select
        d.facility_code,
        coalesce(f.facility_name, d.facility_code) as facility_name,
        d.census_date,
        d.unit_code,
        coalesce(u.unit_name, d.unit_code || ' (not in reference data)') as unit_name,
        coalesce(u.unit_type, 'unknown') as unit_type,
        coalesce(u.is_inpatient_unit, true) as is_inpatient_unit,
        d.ratio_limit,
        c.midnight_census,
        c.patient_days,
        d.patients_peak,
        d.licensed_nurses_fewest,
        d.licensed_nurses_typical,
        d.intervals_out_of_ratio,
        d.minutes_out_of_ratio,
        w.interval_start as worst_interval_start,
        w.patients_peak as worst_patients,
        w.licensed_nurses_min as worst_licensed_nurses,
        w.minutes_out_of_ratio as worst_minutes_out_of_ratio,
        s.rn_hours,
        s.nursing_hours,
        s.nhppd_total,
        s.nhppd_rn,
        coalesce(tu.nhppd_total_target, tt.nhppd_total_target) as nhppd_total_target,
        coalesce(tu.nhppd_rn_target, tt.nhppd_rn_target) as nhppd_rn_target,
        coalesce(x.open_findings, 0) as open_findings
    from day_units d
    left join worst w
        on
            d.facility_code = w.facility_code
            and d.unit_code = w.unit_code
            and d.census_date = w.census_date
    left join {{ ref('fct_census_daily') }} c
        on
            d.facility_code = c.facility_code
            and d.unit_code = c.unit_code
            and d.census_date = c.census_date
    left join {{ ref('fct_unit_staffing_daily') }} s
        on
            d.facility_code = s.facility_code
            and d.unit_code = s.unit_code
            and d.census_date = s.census_date
    left join units u
        on d.facility_code = u.facility_code and d.unit_code = u.unit_code
    left join {{ ref('facilities') }} f
        on d.facility_code = f.facility_code
    left join targets tu
        on d.facility_code = tu.facility_code and d.unit_code = tu.unit_code
    left join targets tt
        on u.unit_type = tt.unit_type and tt.facility_code is null and tt.unit_code is null
    left join findings x
        on
            d.facility_code = x.facility_code
            and d.unit_code = x.unit_code
            and d.census_date = x.logical_date
)

select
    facility_code::text as facility_code,
    facility_name::text as facility_name,
    census_date::date as census_date,
    unit_code::text as unit_code,
    unit_name::text as unit_name,
    unit_type::text as unit_type,
    is_inpatient_unit,
    ratio_limit::integer as ratio_limit,
    midnight_census::integer as midnight_census,
    patient_days::integer as patient_days,
    patients_peak::integer as patients_peak,
    licensed_nurses_fewest::integer as licensed_nurses_fewest,
    licensed_nurses_typical::integer as licensed_nurses_typical,
    intervals_out_of_ratio::integer as intervals_out_of_ratio,
    round(minutes_out_of_ratio, 1)::numeric(7, 1) as minutes_out_of_ratio,
    coalesce(minutes_out_of_ratio > 0, false) as is_out_of_ratio,
    worst_interval_start::timestamp as worst_interval_start,
    to_char(worst_interval_start, 'HH24:MI')::text as worst_interval_label,
    worst_patients::integer as worst_patients,
    worst_licensed_nurses::integer as worst_licensed_nurses,
    round(worst_minutes_out_of_ratio, 1)::numeric(6, 1) as worst_minutes_out_of_ratio,
    round(rn_hours, 2)::numeric(9, 2) as rn_hours,
    round(nursing_hours, 2)::numeric(9, 2) as nursing_hours,
    nhppd_total::numeric(7, 2) as nhppd_total,
    nhppd_rn::numeric(7, 2) as nhppd_rn,
    nhppd_total_target::numeric(7, 2) as nhppd_total_target,
    nhppd_rn_target::numeric(7, 2) as nhppd_rn_target,
    (nhppd_total - nhppd_total_target)::numeric(7, 2) as nhppd_total_vs_target,
    (nhppd_rn - nhppd_rn_target)::numeric(7, 2) as nhppd_rn_vs_target,
    open_findings::integer as open_findings,
    (row_number() over (
        partition by facility_code, census_date
        order by coalesce(minutes_out_of_ratio, 0) desc, intervals_out_of_ratio desc, unit_code asc
    ))::integer as huddle_rank
from final
