{{ config(materialized='ephemeral') }}
-- The days the data-quality and records governance report can cover: every day of
-- every month from the first month of the feed (the first file received or day
-- validated) through the current month in the facility's time zone, so that a day or
-- a month without any file still has its row, and its zeros.
with bounds as (
    select
        date_trunc(
            'month',
            least(
                (select min(b.received_date) from {{ source('audit', 'load_batches') }} b),
                (select min(v.logical_date) from {{ source('audit', 'validation_runs') }} v),
                (now() at time zone '{{ var("facility_tz") }}')::date
            )
        )::date as first_month,
        (
            date_trunc('month', (now() at time zone '{{ var("facility_tz") }}')::date)
            + interval '1 month - 1 day'
        )::date as last_day
)

select
    d.calendar_date::date as calendar_date,
    date_trunc('month', d.calendar_date)::date as month_start,
    (date_trunc('month', d.calendar_date) + interval '1 month')::date as next_month_start
from bounds b
cross join lateral generate_series(b.first_month, b.last_day, interval '1 day') d (calendar_date)
