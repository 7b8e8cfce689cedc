-- The data-quality and governance report's daily chart and per-day figures: one row
-- per day of receipt, every day of the months the feed covers. Files and messages as
-- the load batches counted them (per file, in = loaded + rejected + duplicate; a
-- duplicate is a resent copy, not a rejection), the day's rejection rate, and the
-- rejected messages the quarantine holds for the day. A day without any file has
-- has_data false and zeros.
with calendar as (
    select
        c.calendar_date,
        c.month_start
    from {{ ref('int_governance__calendar') }} c
),

batches as (
    select
        b.received_date,
        count(*) as files,
        sum(b.records_in) as messages_in,
        sum(b.records_loaded) as messages_loaded,
        sum(b.records_rejected) as messages_rejected,
        sum(b.records_duplicate) as messages_duplicate
    from {{ source('audit', 'load_batches') }} b
    group by b.received_date
),

quarantine as (
    select
        r.received_date,
        count(*) as quarantined
    from {{ source('raw_quarantine', 'rejected') }} r
    group by r.received_date
)

select
    c.calendar_date::date as received_date,
    c.month_start::date as month_start,
    (b.received_date is not null) as has_data,
    coalesce(b.files, 0)::integer as files,
    coalesce(b.messages_in, 0)::integer as messages_in,
    coalesce(b.messages_loaded, 0)::integer as messages_loaded,
    coalesce(b.messages_rejected, 0)::integer as messages_rejected,
    coalesce(b.messages_duplicate, 0)::integer as messages_duplicate,
    {{ percent('b.messages_rejected', 'b.messages_in', 2) }}::numeric(7, 2) as rejection_rate_pct,
    coalesce(q.quarantined, 0)::integer as quarantined
from calendar c
left join batches b
    on c.calendar_date = b.received_date
left join quarantine q
    on c.calendar_date = q.received_date
