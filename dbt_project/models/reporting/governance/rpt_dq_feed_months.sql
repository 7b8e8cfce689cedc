-- The data-quality and governance report's summary of the feed: one row per month.
-- Completeness (files and messages, days with and without a file, whether the
-- quarantine holds every rejection the load batches counted), timeliness (files loaded
-- more than a day after the day of receipt, in the facility's time zone) and the
-- lowest and highest daily rejection rates (the daily chart's description).
with days as (
    select
        d.received_date,
        d.month_start,
        d.has_data,
        d.files,
        d.messages_in,
        d.messages_loaded,
        d.messages_rejected,
        d.messages_duplicate,
        d.rejection_rate_pct,
        d.quarantined
    from {{ ref('rpt_dq_feed_days') }} d
),

months as (
    select
        d.month_start,
        count(*) as days_in_month,
        count(*) filter (where d.has_data) as days_with_data,
        sum(d.files) as files,
        sum(d.messages_in) as messages_in,
        sum(d.messages_loaded) as messages_loaded,
        sum(d.messages_rejected) as messages_rejected,
        sum(d.messages_duplicate) as messages_duplicate,
        sum(d.quarantined) as quarantined
    from days d
    group by d.month_start
),

-- lowest rate: the earliest day of the lowest; highest: the latest day of the highest
-- (a day with messages but none counted in has no rate and orders as 0)
lowest as (
    select distinct on (d.month_start)
        d.month_start,
        d.received_date as lowest_rate_date,
        d.rejection_rate_pct as lowest_rate_pct
    from days d
    where d.has_data
    order by d.month_start asc, coalesce(d.rejection_rate_pct, 0) asc, d.received_date asc
),

highest as (
    select distinct on (d.month_start)
        d.month_start,
        d.received_date as highest_rate_date,
        d.rejection_rate_pct as highest_rate_pct
    from days d
    where d.has_data
    order by d.month_start asc, coalesce(d.rejection_rate_pct, 0) desc, d.received_date desc
),

lags as (
    select
        date_trunc('month', b.received_date)::date as month_start,
        ((b.loaded_at at time zone '{{ var("facility_tz") }}')::date - b.received_date) as lag_days
    from {{ source('audit', 'load_batches') }} b
),

timeliness as (
    select
        l.month_start,
        count(*) filter (where l.lag_days > 1) as files_loaded_late,
        max(l.lag_days) as max_load_lag_days
    from lags l
    group by l.month_start
)

select
    m.month_start::date as month_start,
    (m.month_start + interval '1 month - 1 day')::date as month_end,
    m.days_in_month::integer as days_in_month,
    m.days_with_data::integer as days_with_data,
    (m.days_in_month - m.days_with_data)::integer as days_without_data,
    m.files::integer as files,
    m.messages_in::integer as messages_in,
    m.messages_loaded::integer as messages_loaded,
    m.messages_rejected::integer as messages_rejected,
    m.messages_duplicate::integer as messages_duplicate,
    {{ percent('m.messages_rejected', 'm.messages_in', 2) }}::numeric(7, 2) as rejection_rate_pct,
    m.quarantined::integer as quarantined,
    (m.quarantined = m.messages_rejected) as quarantine_reconciles,
    coalesce(t.files_loaded_late, 0)::integer as files_loaded_late,
    t.max_load_lag_days::integer as max_load_lag_days,
    lo.lowest_rate_date::date as lowest_rate_date,
    lo.lowest_rate_pct::numeric(7, 2) as lowest_rate_pct,
    hi.highest_rate_date::date as highest_rate_date,
    hi.highest_rate_pct::numeric(7, 2) as highest_rate_pct
from months m
left join timeliness t
    on m.month_start = t.month_start
left join lowest lo
    on m.month_start = lo.month_start
left join highest hi
    on m.month_start = hi.month_start
