-- Punches that the timekeeping record cannot place or that a timecard edit should fix,
-- one row per punch and flag, with the reason (no names: the worker id only). None of
-- them is dropped: each is counted here, and the data-quality checks report them.
--   out_without_in        an OUT with no open shift (before the first IN, or a second OUT)
--   meal_outside_shift    a meal punch with no open shift
--   in_without_out        an IN closed by the worker's next IN: overlapping punches
--   missed_out            an IN still open 16 hours later
--   meal_out_without_in   a meal break never ended before the shift did
--   meal_in_without_out   a MEAL_IN with no open meal break
--   unknown_cost_center   a shift punched on a cost center that is no unit's and no budgeted position's
--   unknown_job_code      a shift punched with a job code missing from the job_codes seed
with seq as (
    select * from {{ ref('int_timekeeping__punch_sequence') }}
),

shifts as (
    select * from {{ ref('int_timekeeping__shifts') }}
),

known_cost_centers as (
    select cost_center from {{ ref('units') }}
    union
    select cost_center from {{ ref('stg_hr__positions') }}
),

meal_ins as (
    select
        s.*,
        count(*) filter (where s.punch_type = 'MEAL_OUT') over (
            partition by s.shift_id order by s.pos rows between unbounded preceding and current row
        ) as meals_opened,
        count(*) filter (where s.punch_type = 'MEAL_IN') over (
            partition by s.shift_id order by s.pos rows between unbounded preceding and current row
        ) as meals_closed
    from seq s
    where s.shift_id is not null and not s.after_out and s.punch_type in ('MEAL_OUT', 'MEAL_IN')
),

flags as (
    select
        punch_id,
        worker_id,
        punch_ts,
        cost_center,
        case when punch_type = 'OUT' then 'out_without_in' else 'meal_outside_shift' end as flag,
        case
            when punch_type = 'OUT' then 'OUT with no open shift: no IN before it, or the shift was already closed'
            else punch_type || ' with no open shift'
        end as reason
    from seq
    where (shift_id is null or after_out) and punch_type <> 'IN'

    union all

    select
        shift_id as punch_id,
        worker_id,
        in_ts as punch_ts,
        cost_center,
        case when end_kind = 'next_in' then 'in_without_out' else 'missed_out' end as flag,
        case
            when
                end_kind = 'next_in'
                then 'IN with no OUT before the next IN: overlapping punches, counted up to the next IN'
            else 'IN with no OUT 16 hours later: a missed punch, counted for 16 hours'
        end as reason
    from shifts
    where end_kind in ('next_in', 'missed_out')

    union all

    select
        meal_out_punch_id as punch_id,
        worker_id,
        meal_start_ts as punch_ts,
        null as cost_center,
        'meal_out_without_in' as flag,
        'MEAL_OUT with no MEAL_IN before the shift ended: off the floor until the end of the shift' as reason
    from {{ ref('int_timekeeping__meal_breaks') }}
    where missing_meal_in

    union all

    select
        punch_id,
        worker_id,
        punch_ts,
        cost_center,
        'meal_in_without_out' as flag,
        'MEAL_IN with no open meal break' as reason
    from meal_ins
    where punch_type = 'MEAL_IN' and meals_closed > meals_opened

    union all

    select
        s.shift_id as punch_id,
        s.worker_id,
        s.in_ts as punch_ts,
        s.cost_center,
        'unknown_cost_center' as flag,
        'shift punched on cost center '
        || s.cost_center
        || ', which is no unit''s (units seed) and no budgeted position''s' as reason
    from shifts s
    where
        not exists (
            select 1 from known_cost_centers k
            where k.cost_center = s.cost_center
        )

    union all

    select
        s.shift_id as punch_id,
        s.worker_id,
        s.in_ts as punch_ts,
        s.cost_center,
        'unknown_job_code' as flag,
        'shift punched with job code ' || s.job_code || ', missing from the job_codes seed' as reason
    from shifts s
    where not exists (
        select 1 from {{ ref('job_codes') }} j
        where j.job_code = s.job_code
    )
)

select
    punch_id,
    worker_id,
    punch_ts,
    cost_center,
    flag,
    reason
from flags
