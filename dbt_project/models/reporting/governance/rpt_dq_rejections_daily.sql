-- The data-quality and governance report's CSV attachment: rejected messages by day of
-- receipt, source and reason category. The category is raw.rejected.reason_category,
-- the one definition (a column PostgreSQL generates from the reason: its kind, without
-- the values it quotes from the message). Neither reason nor raw_text is read.
select
    r.received_date::date as received_date,
    r.source::text as source,
    r.reason_category::text collate "C" as reason_category,  -- noqa: RF03
    date_trunc('month', r.received_date)::date as month_start,
    count(*)::integer as rejected
from {{ source('raw_quarantine', 'rejected') }} r
group by r.received_date, r.source, r.reason_category
