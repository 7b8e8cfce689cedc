{{ config(
    materialized='incremental',
    unique_key='snapshot_date',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['snapshot_date']}],
    on_schema_change='fail',
    pre_hook="set local enable_nestloop = off",
) }}
{#- enable_nestloop off for this model's transaction only: PostgreSQL estimates a night's
    two snapshot days of workers (6,000 rows at 1,000 beds) at one row through the
    staging views' newest-delivery filter, and ran the training and screening
    aggregates again for each worker (23 s; with hash joins 0.5 s). -#}
{%- set courses = "'" ~ (var('hipaa_training_courses') | join("', '")) ~ "'" %}
-- One row per worker and HR snapshot day: what that day's snapshot says about the
-- worker's HIPAA training and exclusion screening (docs/definitions.md#workforce-compliance-checks),
-- in force on [snapshot_date, next_snapshot_date) like the type 2 histories: a night
-- checks the snapshot in force on its date, never a later one.
--   * HIPAA: training_due_date = hire_date + hipaa_training_days_after_hire (dbt var,
--     policy: 30); hipaa_completed_date = the first completion of a course on
--     hipaa_training_courses (var) the snapshot lists (any date: training before the
--     hire date counts, e.g. at orientation).
--   * Exclusion: the latest OIG_LEIE screening the snapshot lists (the export keeps the
--     last two months), its result, and screening_due_date = that date +
--     exclusion_screening_max_days (var, policy: 31, "at least monthly"); per list, the
--     latest screening decides: a CONFIRMED_MATCH is on the worker until a later
--     screening of that list clears it; a POSSIBLE_MATCH on OIG_LEIE is unresolved
--     until a later OIG_LEIE screening says CLEAR or CONFIRMED_MATCH.
-- Employed = status ACTIVE or LEAVE (on the payroll); TERMINATED is not.
-- Incremental by snapshot day: a night rebuilds the days a workers, training or
-- screening delivery loaded since touched, and the worker snapshot day before each
-- (whose next_snapshot_date it may now be); the days as literals, which reach the
-- staging views' day filter and the raw indexes.
{%- set build = worker_compliance_days() if is_incremental() else none %}
{%- set incremental = build is not none %}
{%- set days = build['days'] if incremental else [] %}
with loaded as (
    {% if incremental %}
        select '{{ build["loaded_through"] }}'::timestamptz as loaded_through
    {% else %}
        {{ hr_compliance_loaded_through() }}
    {% endif %}
),

workers as (
    select
        snapshot_date,
        worker_id,
        status,
        hire_date,
        home_cost_center
    from {{ ref('stg_hr__workers') }}
    {% if incremental %}where snapshot_date in ({% for d in days %}'{{ d[0] }}'::date, {% endfor %}null){% endif %}
),

days as (
    {% if not incremental %}
        select
            snapshot_date,
            lead(snapshot_date) over (order by snapshot_date) as next_snapshot_date
        from (select distinct snapshot_date from workers) d
    {% elif days %}
        select
            d.snapshot_date::date as snapshot_date,
            d.next_snapshot_date::date as next_snapshot_date
        from (values
            {%- for d in days %}
                ('{{ d[0] }}', {{ "'" ~ d[1] ~ "'" if d[1] else 'null' }}){{ ',' if not loop.last }}
            {%- endfor %}
        ) d (snapshot_date, next_snapshot_date)
    {% else %}
        select
            null::date as snapshot_date,
            null::date as next_snapshot_date
        where false
    {% endif %}
),

training as (
    select
        snapshot_date,
        worker_id,
        min(completed_date) as hipaa_completed_date
    from {{ ref('stg_hr__training') }}
    where
        course_code in ({{ courses }})
    {% if incremental %}and snapshot_date in ({% for d in days %}'{{ d[0] }}'::date, {% endfor %}null){% endif %}
    group by snapshot_date, worker_id
),

latest_per_list as (
    select distinct on (snapshot_date, worker_id, exclusion_list)
        snapshot_date,
        worker_id,
        exclusion_list,
        screened_date,
        screening_result
    from {{ ref('stg_hr__exclusion_screenings') }}
    {% if incremental %}where snapshot_date in ({% for d in days %}'{{ d[0] }}'::date, {% endfor %}null){% endif %}
    -- on one date a definite result outranks a possible match
    order by
        snapshot_date asc, worker_id asc, exclusion_list asc, screened_date desc,
        case screening_result when 'CONFIRMED_MATCH' then 0 when 'CLEAR' then 1 else 2 end asc
),

screening as (
    select
        snapshot_date,
        worker_id,
        max(screened_date) filter (where exclusion_list = 'OIG_LEIE') as last_oig_screened_date,
        max(screening_result) filter (where exclusion_list = 'OIG_LEIE') as last_oig_result,
        coalesce(bool_or(screening_result = 'CONFIRMED_MATCH'), false) as has_confirmed_match,
        string_agg(exclusion_list, ',' order by exclusion_list) filter (
            where screening_result = 'CONFIRMED_MATCH'
        ) as confirmed_match_lists
    from latest_per_list
    group by snapshot_date, worker_id
)

select
    w.worker_id,
    w.snapshot_date,
    d.next_snapshot_date,
    w.status,
    w.status in ('ACTIVE', 'LEAVE') as is_employed,
    u.facility_code,
    u.unit_code as home_unit_code,
    w.home_cost_center,
    w.hire_date,
    w.hire_date + {{ var('hipaa_training_days_after_hire') }} as training_due_date,
    t.hipaa_completed_date,
    s.last_oig_screened_date,
    s.last_oig_result,
    s.last_oig_screened_date + {{ var('exclusion_screening_max_days') }} as screening_due_date,
    coalesce(s.has_confirmed_match, false) as has_confirmed_match,
    s.confirmed_match_lists,
    coalesce(s.last_oig_result = 'POSSIBLE_MATCH', false) as has_unresolved_possible_match,
    l.loaded_through as computed_through_loaded_at
from workers w
cross join loaded l
inner join days d using (snapshot_date)
left join training t using (snapshot_date, worker_id)
left join screening s using (snapshot_date, worker_id)
left join {{ ref('units') }} u on w.home_cost_center = u.cost_center
