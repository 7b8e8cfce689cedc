-- One row per worker per HR snapshot day (the day's newest delivery). Renamed and
-- cast only: the staff member's name and birth date stay in raw.
with source as (
    {{ hr_newest_delivery(source('hr', 'hr_workers')) }}
)

select
    snapshot_date,
    worker_id,
    worker_type,
    job_code,
    home_cost_center,
    standard_hours_per_week,
    status,
    hire_date,
    termination_date,
    last_modified,
    batch_id,
    loaded_at
from source
