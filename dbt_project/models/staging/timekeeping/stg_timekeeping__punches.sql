-- One row per punch: its latest version (the source corrects and soft-deletes punches
-- after the fact; raw keeps every version). Deleted punches are kept here, flagged,
-- so that what a correction removed stays visible.
select distinct on (punch_id)
    punch_id,
    worker_id,
    punch_type,
    punch_ts,
    cost_center,
    job_code,
    source as punch_source,
    updated_at,
    deleted as is_deleted,
    loaded_at
from {{ source('timekeeping', 'tk_punches') }}
order by punch_id asc, updated_at desc, loaded_at desc
