-- The data-quality and governance report's "Rejected messages by reason" chart: one
-- bar per month and reason category for the 8 largest (rpt_dq_rejection_reasons), and
-- past them one "N other reasons" bar with their sum (the table lists them all).
with reasons as (
    select
        r.month_start,
        r.reason_category,
        r.rejected,
        r.share_pct,
        r.reason_rank,
        sum(r.rejected) over (partition by r.month_start) as month_rejected
    from {{ ref('rpt_dq_rejection_reasons') }} r
),

shown as (
    select
        r.month_start,
        r.reason_rank as bar_order,
        r.reason_category::text as label,
        r.rejected,
        r.share_pct,
        false as is_other,
        1 as reasons_in_bar
    from reasons r
    where r.reason_rank <= 8
),

others as (
    select
        r.month_start,
        9 as bar_order,
        count(*)::text || ' other reasons' as label,
        sum(r.rejected) as rejected,
        {{ percent('sum(r.rejected)', 'max(r.month_rejected)', 1) }} as share_pct,
        true as is_other,
        count(*) as reasons_in_bar
    from reasons r
    where r.reason_rank > 8
    group by r.month_start
),

bars as (
    select
        s.month_start,
        s.bar_order,
        s.label,
        s.rejected,
        s.share_pct,
        s.is_other,
        s.reasons_in_bar
    from shown s
    union all
    select
        o.month_start,
        o.bar_order,
        o.label,
        o.rejected,
        o.share_pct,
        o.is_other,
        o.reasons_in_bar
    from others o
)

select
    b.month_start::date as month_start,
    b.bar_order::integer as bar_order,
    b.label::text as label,
    b.rejected::integer as rejected,
    b.share_pct::numeric(5, 1) as share_pct,
    b.is_other::boolean as is_other,
    b.reasons_in_bar::integer as reasons_in_bar
from bars b
