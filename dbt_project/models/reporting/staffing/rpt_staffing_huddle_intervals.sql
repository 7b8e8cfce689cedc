-- The staffing huddle's chart: one row per facility, unit and 15-minute interval of
-- fct_unit_staffing_interval, with the licensed-nurse capacity the chart draws against
-- the patients present (the fewest licensed nurses in the interval times the unit's
-- ratio: the most patients they may have) and whether the interval was out of ratio.
select
    i.facility_code::text as facility_code,
    i.unit_code::text as unit_code,
    i.census_date::date as census_date,
    i.interval_start::timestamp as interval_start,
    i.patients_peak::integer as patients_peak,
    i.licensed_nurses_min::integer as licensed_nurses_min,
    i.ratio_limit::integer as ratio_limit,
    (i.licensed_nurses_min * i.ratio_limit)::integer as licensed_capacity,
    i.minutes_out_of_ratio::numeric(6, 2) as minutes_out_of_ratio,
    coalesce(i.minutes_out_of_ratio > 0, false) as is_out_of_ratio,
    i.real_minutes::numeric(6, 2) as real_minutes
from {{ ref('fct_unit_staffing_interval') }} i
