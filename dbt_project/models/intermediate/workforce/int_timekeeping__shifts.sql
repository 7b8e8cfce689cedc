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
with as_of as (
    {{ census_as_of() }}
),

shift_punches as (
    select *
    from {{ ref('int_timekeeping__punch_sequence') }}
    where shift_no > 0 and not after_out
),

shifts as (
    select
        worker_id,
        shift_no,
        min(punch_id) filter (where pos = 1) as shift_id,
        min(punch_ts) filter (where pos = 1) as in_ts,
        min(cost_center) filter (where pos = 1) as cost_center,
        min(job_code) filter (where pos = 1) as job_code,
        min(punch_ts) filter (where punch_type = 'OUT') as out_ts,
        min(punch_id) filter (where punch_type = 'OUT') as out_punch_id
    from shift_punches
    group by worker_id, shift_no
),

bounded as (
    select
        s.*,
        lead(s.in_ts) over (partition by s.worker_id order by s.shift_no) as next_in_ts,
        ((as_of.as_of_date + 1)::timestamp at time zone '{{ var("facility_tz") }}') as night_end_ts
    from shifts s
    cross join as_of
)

select
    shift_id,
    worker_id,
    shift_no,
    cost_center,
    job_code,
    in_ts,
    out_ts,
    out_punch_id,
    case
        when out_ts is not null then out_ts
        when next_in_ts is not null and next_in_ts < in_ts + interval '16 hours' then next_in_ts
        when night_end_ts is null or night_end_ts >= in_ts + interval '16 hours' then in_ts + interval '16 hours'
        else greatest(night_end_ts, in_ts)
    end as counted_until_ts,
    case
        when out_ts is not null then 'out'
        when next_in_ts is not null and next_in_ts < in_ts + interval '16 hours' then 'next_in'
        when night_end_ts is null or night_end_ts >= in_ts + interval '16 hours' then 'missed_out'
        else 'in_progress'
    end as end_kind
from bounded
