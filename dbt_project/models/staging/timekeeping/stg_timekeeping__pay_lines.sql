-- One row per pay line: its latest version (corrections replace, soft deletes flag).
select distinct on (pay_line_id)
    pay_line_id,
    worker_id,
    work_date,
    cost_center,
    job_code,
    pay_code,
    hours,
    amount,
    updated_at,
    deleted as is_deleted,
    loaded_at
from {{ source('timekeeping', 'tk_pay_lines') }}
order by pay_line_id asc, updated_at desc, loaded_at desc
