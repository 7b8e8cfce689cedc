-- One row per screening of a worker against an exclusion list per HR snapshot day
-- (the day's newest delivery).
with source as (
    {{ hr_newest_delivery(source('hr', 'hr_exclusion_screening')) }}
)

select
    snapshot_date,
    worker_id,
    screened_date,
    list as exclusion_list,
    result as screening_result,
    batch_id
from source
