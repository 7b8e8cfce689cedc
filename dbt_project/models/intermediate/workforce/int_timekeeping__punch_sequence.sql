-- Every standing punch (latest version, not deleted) placed in its worker's shifts:
-- a shift starts at each IN and takes the punches after it, up to and including its
-- first OUT (docs/definitions.md#ratio-compliance-at-every-instant). shift_no 0 holds
-- punches before the worker's first IN; after_out marks punches after the shift's
-- first OUT. Both belong to no shift and are flagged (int_timekeeping__punch_flags).
with live as (
    select *
    from {{ ref('stg_timekeeping__punches') }}
    where not is_deleted
),

numbered as (
    select
        *,
        count(*) filter (where punch_type = 'IN') over (
            partition by worker_id order by punch_ts, punch_id rows between unbounded preceding and current row
        ) as shift_no
    from live
),

positioned as (
    select
        *,
        row_number() over (partition by worker_id, shift_no order by punch_ts, punch_id) as pos
    from numbered
)

select
    punch_id,
    worker_id,
    punch_type,
    punch_ts,
    cost_center,
    job_code,
    punch_source,
    shift_no::integer as shift_no,
    pos::integer as pos,
    coalesce(pos > min(pos) filter (where punch_type = 'OUT') over (partition by worker_id, shift_no), false)
        as after_out,
    loaded_at
from positioned
