-- One row per worker credential per HR snapshot day (the day's newest delivery).
with source as (
    {{ hr_newest_delivery(source('hr', 'hr_credentials')) }}
)

select
    snapshot_date,
    worker_id,
    credential_type,
    credential_number,
    issuing_state,
    issue_date,
    expiry_date,
    verified_date,
    batch_id,
    loaded_at
from source
