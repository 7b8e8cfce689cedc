{{ config(
    materialized='incremental',
    unique_key='encounter_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- One row per encounter (visit number at a facility): when it started, its inpatient
-- admission and discharge, length of stay, the units it passed through and its class
-- history. The patient is a salted pseudonym (patient_key); no name, MRN or birth date.
-- Length of stay counts inpatient days as docs/definitions.md#length-of-stay does: midnights present, and a
-- same-day admit-and-discharge is one day. Incremental by encounter.
with timeline as (
    select * from {{ ref('int_census__location_timeline') }}
    {% if is_incremental() %}
        where source_loaded_at > (select coalesce(max(t.source_loaded_at), '-infinity'::timestamptz) from {{ this }} t)
    {% endif %}
),

stays as (
    select
        encounter_key,
        inpatient_stay_no,
        min(segment_start) as stay_start,
        (array_agg(segment_end order by segment_no desc))[1] as stay_end
    from timeline
    where is_inpatient
    group by 1, 2
),

stay_totals as (
    select
        encounter_key,
        min(stay_start) as admit_at,
        case when bool_and(stay_end is not null) then max(stay_end) end as discharge_at,
        case
            when bool_and(stay_end is not null)
                then sum(greatest(stay_end::date - stay_start::date, 1))
        end as length_of_stay_days,
        count(*) as inpatient_stays
    from stays
    group by 1
),

paths as (
    -- consecutive repeats collapsed: ICU > ICU (a bed move) reads ICU
    select
        encounter_key,
        string_agg(unit_code, ' > ' order by segment_no) filter (
            where unit_code is not null and unit_code is distinct from prev_unit
        ) as unit_path,
        string_agg(census_class, ' > ' order by segment_no) filter (
            where segment_no > 0 and census_class is distinct from prev_class
        ) as class_history
    from (
        select
            *,
            lag(unit_code) over (partition by encounter_key order by segment_no) as prev_unit,
            lag(census_class) over (partition by encounter_key order by segment_no) as prev_class
        from timeline
    ) t
    group by 1
),

observation as (
    select
        encounter_key,
        sum(extract(epoch from (segment_end - segment_start)) / 3600.0) filter (
            where is_observation
        ) as observation_hours,
        bool_or(is_observation and segment_end is null) as observation_open
    from timeline
    group by 1
),

last_segment as (
    select distinct on (encounter_key)
        encounter_key,
        facility_code,
        patient_key,
        segment_no,
        unit_code as last_unit,
        segment_end is null as is_open,
        source_loaded_at
    from timeline
    order by encounter_key asc, segment_no desc
),

firsts as (
    select
        encounter_key,
        min(segment_start) as first_event_at
    from timeline
    group by 1
)

select
    l.facility_code::text as facility_code,
    l.encounter_key::text as encounter_key,
    l.patient_key::text as patient_key,
    f.first_event_at::timestamp as first_event_at,
    s.admit_at::timestamp as admit_at,
    s.discharge_at::timestamp as discharge_at,
    s.length_of_stay_days::integer as length_of_stay_days,
    coalesce(s.inpatient_stays, 0)::integer as inpatient_stays,
    p.unit_path::text as unit_path,
    p.class_history::text as class_history,
    (case when o.observation_open then null else round(o.observation_hours::numeric, 2) end)::numeric(10, 2)
        as observation_hours,
    (case
        when l.segment_no = 0 then 'cancelled'
        when l.is_open and l.last_unit is not null then 'in_house'
        else 'discharged'
    end)::text as encounter_status,
    l.source_loaded_at::timestamptz as source_loaded_at
from last_segment l
inner join firsts f using (encounter_key)
inner join paths p using (encounter_key)
inner join observation o using (encounter_key)
left join stay_totals s using (encounter_key)
