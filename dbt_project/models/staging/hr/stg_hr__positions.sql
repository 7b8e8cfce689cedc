-- One row per budgeted position line (cost center, job code, effective date) per HR
-- snapshot day (the day's newest delivery).
with source as (
    {{ hr_newest_delivery(source('hr', 'hr_positions')) }}
)

select
    snapshot_date,
    cost_center,
    job_code,
    budgeted_fte,
    effective_date,
    batch_id
from source
