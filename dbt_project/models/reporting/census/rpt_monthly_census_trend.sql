-- The monthly census report's facility lines: one row per facility and calendar month,
-- every month from a year before the mart's first month to its last (months without
-- data included, so a trend window shows them as gaps). How much of the month the data
-- cover (days with data, first and last day, days missing in between), the facility's
-- inpatient ADC, occupancy and ALOS (the trend charts and table), the same coverage for
-- the month before and the month a year before, and whether this month's counts may be
-- compared with theirs (only between two months the data cover in full: a month to
-- date against a full month would read as a collapse).
with month_totals as (
    select
        p.facility_code,
        p.period_start as month_start,
        p.days_in_period,
        p.average_daily_census,
        p.occupancy,
        p.average_length_of_stay,
        p.discharges
    from {{ ref('fct_census_period') }} p
    where p.period_type = 'month' and p.unit_code = 'ALL'
),

day_span as (
    select
        d.facility_code,
        date_trunc('month', d.period_start)::date as month_start,
        min(d.period_start) as first_day,
        max(d.period_start) as last_day,
        count(*) as days
    from {{ ref('fct_census_period') }} d
    where d.period_type = 'day' and d.unit_code = 'ALL'
    group by d.facility_code, date_trunc('month', d.period_start)::date
),

facility_codes as (
    select f.facility_code from {{ ref('facilities') }} f
    union
    select t.facility_code from month_totals t
),

bounds as (
    select
        (min(t.month_start) - interval '12 months')::date as first_month,
        max(t.month_start) as last_month
    from month_totals t
),

spine as (
    select
        c.facility_code,
        m.month_start::date as month_start
    from facility_codes c
    cross join bounds b
    cross join lateral generate_series(b.first_month, b.last_month, interval '1 month') m (month_start)
),

covered as (
    select
        s.facility_code,
        s.month_start,
        (s.month_start + interval '1 month')::date - s.month_start as days_in_month,
        s.month_start - (s.month_start - interval '1 month')::date as prev_month_days_in_month,
        (s.month_start - interval '11 months')::date - (s.month_start - interval '12 months')::date
            as prev_year_days_in_month,
        t.facility_code is not null as has_data,
        coalesce(t.days_in_period, 0) as days_with_data,
        ds.first_day,
        ds.last_day,
        ds.last_day - ds.first_day + 1 - ds.days as days_missing_within,
        t.average_daily_census,
        t.occupancy,
        t.average_length_of_stay,
        t.discharges
    from spine s
    left join month_totals t
        on s.facility_code = t.facility_code and s.month_start = t.month_start
    left join day_span ds
        on s.facility_code = ds.facility_code and s.month_start = ds.month_start
),

complete as (
    select
        c.*,
        c.has_data and c.days_with_data >= c.days_in_month as is_complete_month
    from covered c
),

compared as (
    -- the spine has every month of every facility: lag 1 is the month before, lag 12 a year before
    select
        c.*,
        coalesce(lag(c.has_data, 1) over w, false) as prev_month_has_data,
        coalesce(lag(c.days_with_data, 1) over w, 0) as prev_month_days_with_data,
        coalesce(lag(c.is_complete_month, 1) over w, false) as prev_month_is_complete,
        coalesce(lag(c.has_data, 12) over w, false) as prev_year_has_data,
        coalesce(lag(c.days_with_data, 12) over w, 0) as prev_year_days_with_data,
        coalesce(lag(c.is_complete_month, 12) over w, false) as prev_year_is_complete
    from complete c
    window w as (partition by c.facility_code order by c.month_start)
)

select
    c.facility_code::text as facility_code,
    coalesce(f.facility_name, c.facility_code)::text as facility_name,
    c.month_start::date as month_start,
    c.days_in_month::integer as days_in_month,
    c.has_data::boolean as has_data,
    c.days_with_data::integer as days_with_data,
    c.is_complete_month::boolean as is_complete_month,
    c.first_day::date as first_day_with_data,
    c.last_day::date as last_day_with_data,
    c.days_missing_within::integer as days_missing_within,
    c.average_daily_census::numeric(12, 2) as average_daily_census,
    {{ percent('c.occupancy', '1', 1) }}::numeric(7, 1) as occupancy_pct,
    c.average_length_of_stay::numeric(8, 2) as average_length_of_stay,
    c.discharges::bigint as discharges,
    c.prev_month_has_data::boolean as prev_month_has_data,
    c.prev_month_days_with_data::integer as prev_month_days_with_data,
    c.prev_month_days_in_month::integer as prev_month_days_in_month,
    c.prev_month_is_complete::boolean as prev_month_is_complete,
    c.prev_year_has_data::boolean as prev_year_has_data,
    c.prev_year_days_with_data::integer as prev_year_days_with_data,
    c.prev_year_days_in_month::integer as prev_year_days_in_month,
    c.prev_year_is_complete::boolean as prev_year_is_complete,
    (c.is_complete_month and c.prev_month_is_complete)::boolean as counts_comparable_prev_month,
    (c.is_complete_month and c.prev_year_is_complete)::boolean as counts_comparable_prev_year
from compared c
left join {{ ref('facilities') }} f
    on c.facility_code = f.facility_code
