{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_ts='punch_ts',
    punch_window_id='punch_id',
    pre_hook="{{ punch_windows_prepare(this) }}",
    indexes=[{'columns': ['worker_id', 'punch_ts']}, {'columns': ['punch_ts']}],
    on_schema_change='fail',
) }}
-- Every standing punch (latest version, not deleted) placed in its worker's shifts:
-- a shift starts at each IN and takes the punches after it, up to and including its
-- first OUT (docs/definitions.md#ratio-compliance-at-every-instant). shift_id is the
-- IN's punch_id; it is null for punches before the worker's first IN, and after_out
-- marks punches after the shift's first OUT. Both belong to no shift and are flagged
-- (int_timekeeping__punch_flags). Incremental by worker window (macros/punch_windows.sql).
with state as (
    {{ punch_state() }}
),

live as (
    {% if is_incremental() %}
        -- the windows' punches: the latest version of every punch a version of which
        -- fell in a window, if that version is still in one
        select p.*
        from (
            select distinct r.punch_id
            from {{ source('timekeeping', 'tk_punches') }} r
            inner join healthops_punch_windows rw on r.worker_id = rw.worker_id and r.punch_ts >= rw.anchor_ts
        ) c
        cross join
            lateral (
                select s.*
                from {{ ref('stg_timekeeping__punches') }} s
                where s.punch_id = c.punch_id
            ) p
        inner join healthops_punch_windows w using (worker_id)
        where not p.is_deleted and {{ in_punch_window('p.punch_ts', 'p.punch_id') }}
    {% else %}
        select *
        from {{ ref('stg_timekeeping__punches') }}
        where not is_deleted
    {% endif %}
),

numbered as (
    select
        *,
        count(*) filter (where punch_type = 'IN') over (
            partition by worker_id order by punch_ts, punch_id rows between unbounded preceding and current row
        ) as ins_so_far
    from live
),

positioned as (
    select
        *,
        case
            when ins_so_far > 0
                then first_value(punch_id) over (partition by worker_id, ins_so_far order by punch_ts, punch_id)
        end as shift_id,
        row_number() over (partition by worker_id, ins_so_far order by punch_ts, punch_id) as pos
    from numbered
)

select
    p.punch_id,
    p.worker_id,
    p.punch_type,
    p.punch_ts,
    p.cost_center,
    p.job_code,
    p.punch_source,
    p.shift_id,
    p.pos::integer as pos,
    coalesce(
        p.pos > min(p.pos) filter (where p.punch_type = 'OUT') over (partition by p.worker_id, p.ins_so_far), false
    ) as after_out,
    p.loaded_at,
    {{ punch_build_state_columns() }}
from positioned p
cross join state
