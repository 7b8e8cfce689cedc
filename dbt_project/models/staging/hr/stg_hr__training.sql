-- One row per completed course per worker per HR snapshot day (the day's newest delivery).
with source as (
    {{ hr_newest_delivery(source('hr', 'hr_training')) }}
)

select
    snapshot_date,
    worker_id,
    course_code,
    completed_date,
    batch_id
from source
