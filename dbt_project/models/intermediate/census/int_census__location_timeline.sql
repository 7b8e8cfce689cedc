-- Where each encounter was, and in which census class, from one standing event
-- to the next: segment [segment_start, segment_end), open-ended while in house.
-- A03 ends the encounter's presence (no location after it).
with events as (
    select * from {{ ref('int_adt__effective_events') }}
),

segments as (
    select
        facility_code,
        encounter_key,
        receipt_seq,
        trigger_event,
        census_class,
        case when trigger_event = 'A03' then null else unit_code end as unit_code,
        effective_local_ts as segment_start,
        lead(effective_local_ts) over w as segment_end,
        row_number() over w as segment_no
    from events
    window w as (partition by encounter_key order by effective_local_ts, receipt_seq)
),

flagged as (
    select *,
        (census_class = 'inpatient' and unit_code is not null) as is_inpatient
    from segments
),

stays as (
    -- An inpatient stay is a maximal run of consecutive inpatient segments.
    select *,
        sum(case when is_inpatient and not coalesce(prev_inpatient, false) then 1 else 0 end)
            over (partition by encounter_key order by segment_no rows unbounded preceding) as stay_no
    from (
        select *, lag(is_inpatient) over (partition by encounter_key order by segment_no) as prev_inpatient
        from flagged
    ) x
)

select
    facility_code,
    encounter_key,
    segment_no,
    trigger_event,
    census_class,
    unit_code,
    segment_start,
    segment_end,
    is_inpatient,
    case when is_inpatient then stay_no end as inpatient_stay_no
from stays
