{{ config(
    materialized='incremental',
    incremental_strategy='replace_punch_windows',
    punch_window_ts='shift_in_ts',
    punch_window_id='shift_id',
    pre_hook="{{ punch_windows_prepare(ref('int_timekeeping__punch_sequence'), with_night=true) }}",
    indexes=[{'columns': ['worker_id', 'shift_in_ts']}],
    on_schema_change='fail',
) }}
-- One row per meal break of a shift: a MEAL_OUT and the first MEAL_IN after it
-- within the shift, [meal_start, meal_end) clipped to the shift's counted span. A
-- MEAL_OUT with no MEAL_IN before the shift ends runs to the end of the shift (the
-- nurse did not come back on the floor as far as the record shows) and is flagged,
-- unless the shift is still under way at the end of the night being built.
-- Incremental by worker window (macros/punch_windows.sql).
with state as (
    {{ punch_state(with_night=true) }}
),

meal_punches as (
    select
        p.*,
        count(*) filter (where p.punch_type = 'MEAL_OUT') over (
            partition by p.shift_id order by p.pos rows between unbounded preceding and current row
        ) as meal_no
    from {{ ref('int_timekeeping__punch_sequence') }} p
    {{ join_punch_window('p', 'punch_ts', 'punch_id') }}
    where p.shift_id is not null and not p.after_out and p.punch_type in ('MEAL_OUT', 'MEAL_IN')
),

paired as (
    select
        shift_id,
        meal_no,
        min(punch_id) filter (where punch_type = 'MEAL_OUT') as meal_out_punch_id,
        min(punch_ts) filter (where punch_type = 'MEAL_OUT') as meal_out_ts,
        min(punch_ts) filter (where punch_type = 'MEAL_IN') as meal_in_ts
    from meal_punches
    where meal_no > 0
    group by shift_id, meal_no
)

select
    s.shift_id,
    s.worker_id,
    s.in_ts as shift_in_ts,
    p.meal_no::integer as meal_no,
    p.meal_out_punch_id,
    greatest(p.meal_out_ts, s.in_ts) as meal_start_ts,
    least(coalesce(p.meal_in_ts, s.counted_until_ts), s.counted_until_ts) as meal_end_ts,
    -- a break still open in a shift still under way is in progress, not missing
    p.meal_in_ts is null and s.end_kind <> 'in_progress' as missing_meal_in,
    {{ punch_build_state_columns(with_night=true) }}
from paired p
inner join {{ ref('int_timekeeping__shifts') }} s on p.shift_id = s.shift_id
cross join state
