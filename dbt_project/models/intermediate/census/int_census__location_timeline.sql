{{ config(
    materialized='incremental',
    unique_key='encounter_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- Where each encounter was, and in which census class, from one standing movement
-- to the next: segment [segment_start, segment_end), open-ended while in house.
-- A03 ends the encounter's presence (no location after it). An encounter none of
-- whose movements stand (all cancelled, or only A08s) keeps one row, segment 0,
-- with no location: so a recompute replaces the segments it had before.
with events as (
    select * from {{ ref('int_adt__events') }}
    {% if is_incremental() %}
        where encounter_key in (
            select e.encounter_key
            from {{ ref('int_adt__events') }} e
            cross join (
                select coalesce(max(t.source_loaded_at), '-infinity'::timestamptz) as loaded_at
                from {{ this }} t
            ) w
            where e.source_loaded_at > w.loaded_at or e.voided_by_loaded_at > w.loaded_at
        )
    {% endif %}
),

encounter_meta as (
    select
        encounter_key,
        max(greatest(source_loaded_at, voided_by_loaded_at)) as source_loaded_at,
        min(effective_local_ts) as first_event_at,
        (array_agg(patient_key order by receipt_seq desc) filter (where patient_key is not null))[1] as patient_key
    from events
    group by 1
),

segments as (
    select
        facility_code,
        encounter_key,
        trigger_event,
        census_class,
        case when trigger_event = 'A03' then null else unit_code end as unit_code,
        case when trigger_event = 'A03' then null else room end as room,
        case when trigger_event = 'A03' then null else bed end as bed,
        effective_local_ts as segment_start,
        lead(effective_local_ts) over w as segment_end,
        row_number() over w as segment_no
    from events
    where is_standing_movement
    window w as (partition by encounter_key order by effective_local_ts, receipt_seq)
),

no_movement as (
    select
        e.facility_code,
        e.encounter_key,
        null::text as trigger_event,
        'none'::text as census_class,
        null::text as unit_code,
        null::text as room,
        null::text as bed,
        min(e.effective_local_ts) as segment_start,
        min(e.effective_local_ts) as segment_end,
        0::bigint as segment_no
    from events e
    where
        not exists (
            select 1 from segments s
            where s.encounter_key = e.encounter_key
        )
    group by 1, 2
),

all_segments as (
    select * from segments
    union all
    select * from no_movement
),

flagged as (
    select
        *,
        (census_class = 'inpatient' and unit_code is not null) as is_inpatient,
        (census_class = 'observation' and unit_code is not null) as is_observation
    from all_segments
),

stays as (
    -- An inpatient stay is a maximal run of consecutive inpatient segments.
    select
        *,
        sum(case when is_inpatient and not coalesce(prev_inpatient, false) then 1 else 0 end)
            over (partition by encounter_key order by segment_no rows unbounded preceding) as stay_no
    from (
        select
            *,
            lag(is_inpatient) over (partition by encounter_key order by segment_no) as prev_inpatient
        from flagged
    ) x
)

select
    s.facility_code,
    s.encounter_key,
    m.patient_key,
    s.segment_no::integer as segment_no,
    s.trigger_event,
    s.census_class,
    s.unit_code,
    s.room,
    s.bed,
    s.segment_start,
    s.segment_end,
    s.is_inpatient,
    s.is_observation,
    (case when s.is_inpatient then s.stay_no end)::integer as inpatient_stay_no,
    m.source_loaded_at
from stays s
inner join encounter_meta m using (encounter_key)
