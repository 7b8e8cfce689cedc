-- The facilities whose census the warehouse built in a month: one row per month and
-- facility of marts.fct_census_daily, with its name (facilities seed; its code when
-- the seed lacks it). The data-quality and governance report names those that no
-- recipient of the report catalog covers (onboarding), so no facility is left
-- without its reports unseen.
with census as (
    select
        d.facility_code,
        date_trunc('month', d.census_date)::date as month_start,
        count(distinct d.census_date) as census_days
    from {{ ref('fct_census_daily') }} d
    group by date_trunc('month', d.census_date), d.facility_code
)

select
    c.month_start::date as month_start,
    c.facility_code::text as facility_code,
    c.census_days::integer as census_days,
    coalesce(f.facility_name, c.facility_code)::text as facility_name
from census c
left join {{ ref('facilities') }} f
    on c.facility_code = f.facility_code
