{{ config(
    materialized='incremental',
    unique_key='encounter_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- Every ADT message of an encounter, with what it means for the census: its census
-- class, effective local time, and whether it still stands after cancels.
--
-- Incremental by encounter: an encounter with any newly loaded message is recomputed
-- whole (its cancels may now void earlier events); the others are left alone.
--
-- Cancels (docs/definitions.md#cancels): A11 voids an A01/A04, A12 an A02, A13 an A03. They are never
-- movements themselves. A cancel voids the latest earlier-received event of its kind
-- that is not voided yet (stack matching, in receipt order). With +1 for an event and
-- -1 for a cancel, the stack depth is the running sum clamped at zero (a cancel on an
-- empty stack is an orphan and voids nothing); a cancel that leaves depth k voids the
-- latest earlier event that left depth k + 1.
with source as (
    select * from {{ ref('stg_adt__messages') }}
),

{% if is_incremental() %}
    changed as (
        select distinct encounter_key
        from source
        where source_loaded_at > (select coalesce(max(t.source_loaded_at), '-infinity'::timestamptz) from {{ this }} t)
    ),
{% endif %}

msgs as (
    select
        m.*,
        row_number() over (
            partition by m.encounter_key
            order by m.received_date, m.file_path, m.message_index
        ) as receipt_seq
    from source m
    {% if is_incremental() %}
        where m.encounter_key in (select changed.encounter_key from changed)
    {% endif %}
),

families as (
    select
        encounter_key,
        receipt_seq,
        trigger_event,
        case
            when trigger_event in ('A01', 'A04', 'A11') then 'admit'
            when trigger_event in ('A02', 'A12') then 'transfer'
            when trigger_event in ('A03', 'A13') then 'discharge'
        end as family,
        case when trigger_event in ('A11', 'A12', 'A13') then -1 else 1 end as delta
    from msgs
    where trigger_event in ('A01', 'A04', 'A11', 'A02', 'A12', 'A03', 'A13')
),

running as (
    select
        *,
        sum(delta) over w as raw_depth
    from families
    window w as (partition by encounter_key, family order by receipt_seq rows unbounded preceding)
),

clamped as (
    select
        *,
        raw_depth - least(0, min(raw_depth) over w) as depth_after
    from running
    window w as (partition by encounter_key, family order by receipt_seq rows unbounded preceding)
),

with_before as (
    select
        *,
        coalesce(lag(depth_after) over (partition by encounter_key, family order by receipt_seq), 0)
            as depth_before
    from clamped
),

-- The latest such event per cancel, as a grouped join, not a lateral subquery: the CTE
-- has no index, and a subquery per cancel scanned all of it (quadratic: a first build
-- of a year of a 1,000-bed system's feed ran for over ten minutes).
voids as (
    select
        c.encounter_key,
        c.receipt_seq as cancel_seq,
        max(o.receipt_seq) as voided_seq
    from with_before c
    inner join with_before o
        on
            c.encounter_key = o.encounter_key
            and c.family = o.family
            and c.depth_after + 1 = o.depth_after
            and c.receipt_seq > o.receipt_seq
    where
        c.delta = -1
        and c.depth_before > 0
        and o.delta = 1
    group by c.encounter_key, c.receipt_seq
),

classed as (
    select
        m.*,
        coalesce(exact.census_class, by_class.census_class, 'outpatient') as census_class
    from msgs m
    left join {{ ref('patient_class_map') }} exact
        on m.patient_class = exact.patient_class and m.patient_type = exact.patient_type
    left join {{ ref('patient_class_map') }} by_class
        on m.patient_class = by_class.patient_class and by_class.patient_type is null
)

select
    c.facility_code,
    c.encounter_key,
    c.patient_key,
    c.visit_number,
    c.control_id,
    c.receipt_seq::integer as receipt_seq,
    c.trigger_event,
    c.census_class,
    c.unit_code,
    c.room,
    c.bed,
    c.received_date,
    -- A03: the discharge time in PV1-45 when present (docs/definitions.md#event-time), else the event time.
    (
        (case when c.trigger_event = 'A03' then coalesce(c.discharge_ts, c.event_ts) else c.event_ts end)
        at time zone '{{ var("facility_tz") }}'
    ) as effective_local_ts,
    c.trigger_event in ('A11', 'A12', 'A13') as is_cancel,
    v.cancel_seq::integer as voided_by_seq,
    canceller.source_loaded_at as voided_by_loaded_at,
    (c.trigger_event in ('A01', 'A02', 'A03', 'A04', 'A06', 'A07') and v.cancel_seq is null)
        as is_standing_movement,
    c.source_loaded_at
from classed c
left join voids v
    on c.encounter_key = v.encounter_key and c.receipt_seq = v.voided_seq
left join msgs canceller
    on v.encounter_key = canceller.encounter_key and v.cancel_seq = canceller.receipt_seq
