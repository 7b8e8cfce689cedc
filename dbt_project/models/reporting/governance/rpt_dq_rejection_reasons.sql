-- The data-quality and governance report's "Rejections by reason" table: one row per
-- month and reason category (raw.rejected.reason_category), with its share of the
-- month's rejections, the days of receipt it occurred on, and its rank (1 = the most
-- rejections; ties in the category's code-point order, collation "C").
with by_day as (
    select
        d.month_start,
        d.received_date,
        d.reason_category,
        d.rejected
    from {{ ref('rpt_dq_rejections_daily') }} d
),

by_reason as (
    select
        b.month_start,
        b.reason_category,
        sum(b.rejected) as rejected,
        count(distinct b.received_date) as days_with_rejections,
        min(b.received_date) as first_day,
        max(b.received_date) as last_day
    from by_day b
    group by b.month_start, b.reason_category
),

with_month as (
    select
        r.month_start,
        r.reason_category,
        r.rejected,
        r.days_with_rejections,
        r.first_day,
        r.last_day,
        sum(r.rejected) over (partition by r.month_start) as month_rejected
    from by_reason r
)

select
    r.month_start::date as month_start,
    r.reason_category::text as reason_category,
    r.rejected::integer as rejected,
    {{ percent('r.rejected', 'r.month_rejected', 1) }}::numeric(5, 1) as share_pct,
    r.days_with_rejections::integer as days_with_rejections,
    r.first_day::date as first_day,
    r.last_day::date as last_day,
    row_number() over (
        partition by r.month_start
        order by r.rejected desc, r.reason_category collate "C" asc  -- noqa: RF03
    )::integer as reason_rank
from with_month r
