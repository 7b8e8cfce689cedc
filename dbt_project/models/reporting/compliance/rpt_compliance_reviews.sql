-- The compliance report's reviews: one row per review recorded, in the month of the
-- finding it reviews (its logical date), with its id R-<review_no> as the
-- `healthops audit review` command prints it.
select
    date_trunc('month', f.logical_date)::date as report_month,
    x.review_no::bigint as review_no,
    ('R-' || lpad(x.review_no::text, greatest(6, length(x.review_no::text)), '0'))::text as review_id,
    x.finding_id::text as finding_id,
    x.rule_id::text as rule_id,
    f.logical_date::date as logical_date,
    x.reviewed_by::text as reviewed_by,
    x.reviewed_at::timestamptz as reviewed_at,
    x.note::text as note
from {{ source('audit', 'reviews') }} x
inner join {{ source('audit', 'findings') }} f
    on
        x.validation_run_id = f.validation_run_id
        and x.rule_id = f.rule_id
