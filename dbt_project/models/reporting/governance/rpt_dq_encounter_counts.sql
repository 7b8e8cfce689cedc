{#- An encounter is listed as open when it is still in house (now) and began more than
    this many days before the end of the month: the usual sign of a discharge (A03)
    the EHR never sent. -#}
{%- set open_after_days = var('open_encounter_days', 30) -%}
-- The data-quality and governance report's "Records governance" table: one row per
-- month and facility (every facility of the facilities seed, and any other the
-- encounters name), counts only, from marts.fct_encounters (its keys are never read):
-- encounters begun in the month (first ADT event) and of them cancelled, inpatient
-- admissions and discharges, discharges without a length of stay, and encounters still
-- open more than {{ open_after_days }} days after they began (inpatient stays by their
-- admission; ED, outpatient and observation encounters by their first event). A
-- recipient's facility filter selects a row; all facilities are the sum of the rows.
-- Times are the mart's local timestamps.
with calendar as (
    select distinct
        c.month_start,
        c.next_month_start
    from {{ ref('int_governance__calendar') }} c
),

encounters as (
    select
        e.facility_code,
        e.first_event_at,
        e.admit_at,
        e.discharge_at,
        e.length_of_stay_days,
        e.encounter_status
    from {{ ref('fct_encounters') }} e
),

facilities as (
    select
        f.facility_code::text as facility_code,
        f.facility_name::text as facility_name
    from {{ ref('facilities') }} f
    union
    select distinct
        e.facility_code,
        e.facility_code as facility_name
    from encounters e
    left join {{ ref('facilities') }} s
        on e.facility_code = s.facility_code
    where s.facility_code is null
),

begun as (
    select
        e.facility_code,
        date_trunc('month', e.first_event_at)::date as month_start,
        count(*) as encounters_begun,
        count(*) filter (where e.encounter_status = 'cancelled') as encounters_cancelled
    from encounters e
    group by e.facility_code, date_trunc('month', e.first_event_at)
),

admitted as (
    select
        e.facility_code,
        date_trunc('month', e.admit_at)::date as month_start,
        count(*) as admissions
    from encounters e
    where e.admit_at is not null
    group by e.facility_code, date_trunc('month', e.admit_at)
),

discharged as (
    select
        e.facility_code,
        date_trunc('month', e.discharge_at)::date as month_start,
        count(*) as discharges,
        count(*) filter (where e.length_of_stay_days is null) as discharges_without_los
    from encounters e
    where e.discharge_at is not null
    group by e.facility_code, date_trunc('month', e.discharge_at)
),

still_open as (
    select
        e.facility_code,
        c.month_start,
        count(*) filter (
            where e.admit_at is not null
            and greatest(e.first_event_at, e.admit_at)
            < c.next_month_start - interval '{{ open_after_days }} days'
        ) as open_inpatient_stays,
        count(*) filter (
            where e.admit_at is null
            and e.first_event_at < c.next_month_start - interval '{{ open_after_days }} days'
        ) as open_other_encounters
    from encounters e
    inner join calendar c
        on e.first_event_at < c.next_month_start
    where e.encounter_status = 'in_house'
    group by e.facility_code, c.month_start
)

select
    c.month_start::date as month_start,
    f.facility_code::text as facility_code,
    f.facility_name::text as facility_name,
    coalesce(b.encounters_begun, 0)::integer as encounters_begun,
    coalesce(b.encounters_cancelled, 0)::integer as encounters_cancelled,
    coalesce(a.admissions, 0)::integer as admissions,
    coalesce(d.discharges, 0)::integer as discharges,
    coalesce(d.discharges_without_los, 0)::integer as discharges_without_los,
    coalesce(o.open_inpatient_stays, 0)::integer as open_inpatient_stays,
    coalesce(o.open_other_encounters, 0)::integer as open_other_encounters,
    {{ open_after_days }}::integer as open_after_days
from calendar c
cross join facilities f
left join begun b
    on c.month_start = b.month_start and f.facility_code = b.facility_code
left join admitted a
    on c.month_start = a.month_start and f.facility_code = a.facility_code
left join discharged d
    on c.month_start = d.month_start and f.facility_code = d.facility_code
left join still_open o
    on c.month_start = o.month_start and f.facility_code = o.facility_code
