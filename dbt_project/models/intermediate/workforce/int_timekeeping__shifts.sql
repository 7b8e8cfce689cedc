{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_ts='in_ts',
    punch_window_id='shift_id',
    pre_hook="{{ punch_windows_prepare(ref('int_timekeeping__punch_sequence'), with_night=true) }}",
    indexes=[{'columns': ['worker_id', 'in_ts']}],
    on_schema_change='fail',
) }}
-- One row per shift: an IN and the punches after it up to its first OUT
-- (int_timekeeping__punch_sequence), with the span it counts over
-- (docs/definitions.md#ratio-compliance-at-every-instant):
--   out          the OUT arrived: [IN, OUT)
--   next_in      no OUT before the worker's next IN (overlapping or doubled punches):
--                counted up to that IN, flagged
--   missed_out   still no OUT 16 hours after the IN: a missed punch, counted for 16
--                hours and no further, flagged
--   in_progress  no OUT yet, less than 16 hours before the end of the night being
--                built: counted up to that end (the night staff are on the floor at
--                midnight); recomputed when the OUT arrives.
-- Where and as what the shift was worked: the IN's cost center and job code.
-- Incremental by worker window (macros/punch_windows.sql).
with state as (
    {{ punch_state(with_night=true) }}
),

shift_punches as (
    select q.*
    from {{ ref('int_timekeeping__punch_sequence') }} q
    {{ join_punch_window('q', 'punch_ts', 'punch_id') }}
    where q.shift_id is not null and not q.after_out
),

shifts as (
    select
        worker_id,
        shift_id,
        min(punch_ts) filter (where pos = 1) as in_ts,
        min(cost_center) filter (where pos = 1) as cost_center,
        min(job_code) filter (where pos = 1) as job_code,
        min(punch_ts) filter (where punch_type = 'OUT') as out_ts,
        min(punch_id) filter (where punch_type = 'OUT') as out_punch_id
    from shift_punches
    group by worker_id, shift_id
),

bounded as (
    select
        s.*,
        lead(s.in_ts) over (partition by s.worker_id order by s.in_ts, s.shift_id) as next_in_ts,
        state.night_end_ts
    from shifts s
    cross join state
)

select
    b.shift_id,
    b.worker_id,
    b.cost_center,
    b.job_code,
    b.in_ts,
    b.out_ts,
    b.out_punch_id,
    case
        when b.out_ts is not null then b.out_ts
        when b.next_in_ts is not null and b.next_in_ts < b.in_ts + interval '16 hours' then b.next_in_ts
        when b.night_end_ts is null or b.night_end_ts >= b.in_ts + interval '16 hours'
            then b.in_ts + interval '16 hours'
        else greatest(b.night_end_ts, b.in_ts)
    end as counted_until_ts,
    case
        when b.out_ts is not null then 'out'
        when b.next_in_ts is not null and b.next_in_ts < b.in_ts + interval '16 hours' then 'next_in'
        when b.night_end_ts is null or b.night_end_ts >= b.in_ts + interval '16 hours' then 'missed_out'
        else 'in_progress'
    end as end_kind,
    {{ punch_build_state_columns(with_night=true) }}
from bounded b
cross join state
