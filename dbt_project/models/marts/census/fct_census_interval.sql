{{ config(
    materialized='incremental',
    unique_key=['facility_code', 'unit_code', 'interval_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- Patients present per unit per 15-minute interval: the denominator of nurse : patient
-- ratios, which apply at all times (Title 22 §70217;
-- docs/definitions.md#patients-present-per-interval). A patient counts in an interval
-- [t, t + 15 min) when present in the unit at any moment of it, so the count is the
-- most the nurses could have had to cover. Every class counts (inpatient, observation,
-- emergency, outpatient): a nurse cares for whoever is in the bed.
with affected as (
    {{ census_affected_from(this) }}
),

as_of as (
    {{ census_as_of() }}
),

located as (
    select
        t.*,
        a.from_date
    from {{ ref('int_census__location_timeline') }} t
    inner join affected a using (facility_code)
    where
        t.unit_code is not null
        and (t.segment_end is null or t.segment_end > a.from_date::timestamp)
        and (t.segment_end is null or t.segment_end > t.segment_start)
),

presence as (
    select
        l.facility_code,
        l.unit_code,
        i as interval_start,
        l.is_inpatient,
        l.is_observation
    from located l
    cross join as_of
    cross join lateral generate_series(
        date_bin('15 minutes', greatest(l.segment_start, l.from_date::timestamp), timestamp '2000-01-01'),
        date_bin(
            '15 minutes',
            least(
                coalesce(l.segment_end - interval '1 microsecond', 'infinity'::timestamp),
                (as_of.as_of_date + 1)::timestamp - interval '1 microsecond'
            ),
            timestamp '2000-01-01'
        ),
        interval '15 minutes'
    ) i
),

counts as (
    select
        facility_code,
        unit_code,
        interval_start,
        count(*) as patients_present,
        count(*) filter (where is_inpatient) as inpatients_present,
        count(*) filter (where is_observation) as observation_present
    from presence
    group by 1, 2, 3
),

units as (
    select
        u.facility_code,
        u.unit_code
    from {{ ref('units') }} u inner join affected using (facility_code)
    union
    select
        facility_code,
        unit_code
    from located
    {% if is_incremental() %}
        union
        select
            facility_code,
            cur.unit_code
        from {{ this }} cur inner join affected using (facility_code)
    {% endif %}
),

grid as (
    select
        u.facility_code,
        u.unit_code,
        i as interval_start
    from units u
    inner join affected a using (facility_code)
    cross join as_of
    cross join lateral generate_series(
        a.from_date::timestamp,
        (as_of.as_of_date + 1)::timestamp - interval '15 minutes',
        interval '15 minutes'
    ) i
)

select
    g.facility_code::text as facility_code,
    g.unit_code::text as unit_code,
    g.interval_start::timestamp as interval_start,
    g.interval_start::date as census_date,
    coalesce(c.patients_present, 0)::integer as patients_present,
    coalesce(c.inpatients_present, 0)::integer as inpatients_present,
    coalesce(c.observation_present, 0)::integer as observation_present,
    as_of.loaded_through::timestamptz as computed_through_loaded_at
from grid g
cross join as_of
left join counts c using (facility_code, unit_code, interval_start)
