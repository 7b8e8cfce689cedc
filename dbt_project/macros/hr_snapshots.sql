{#- The rows of each HR snapshot day's newest delivery of one file. A day's file
    delivered again (same name, other bytes) is a new batch and replaces the earlier
    one (docs/sources.md#hr-export); a delivery whose every record was rejected left
    no rows, and the day keeps the earlier delivery. -#}
{% macro hr_newest_delivery(relation) %}
    select r.*
    from {{ relation }} r
    inner join (
        select distinct on (snapshot_date)
            snapshot_date,
            batch_id
        from {{ relation }}
        order by snapshot_date, loaded_at desc, batch_id desc
    ) newest using (snapshot_date, batch_id)
{% endmacro %}

{#- Type 2 history from complete daily snapshots: one row per key and stretch of
    snapshot days over which the key was present with the same attributes, valid on
    [valid_from, valid_to) (valid_to null: still in force after the latest snapshot).
    A key missing from a day's snapshot was removed in the source that day, so its
    version ends there. Derived from every snapshot kept in raw, so a late, repeated
    or out-of-order day gives the same history as days loaded in order
    (docs/definitions.md#workforce-history). -#}
{% macro scd2_from_daily_snapshots(relation, key_columns, attribute_columns) %}
    {%- set keys = key_columns | join(', ') -%}
    {%- set attrs = attribute_columns | join(', ') -%}
    with snap as (
        select
            {{ keys }},
            {{ attrs }},
            snapshot_date,
            md5(row({{ attrs }})::text) as attr_hash
        from {{ relation }}
    ),

    days as (
        select
            snapshot_date,
            lag(snapshot_date) over (order by snapshot_date) as prev_day,
            lead(snapshot_date) over (order by snapshot_date) as next_day
        from (select distinct snapshot_date from {{ relation }}) d
    ),

    lagged as (
        select
            s.*,
            d.prev_day,
            d.next_day,
            lag(s.snapshot_date) over (partition by {{ keys }} order by s.snapshot_date) as prev_present,
            lag(s.attr_hash) over (partition by {{ keys }} order by s.snapshot_date) as prev_hash
        from snap s
        inner join days d using (snapshot_date)
    ),

    marked as (
        select
            *,
            case
                when prev_present is null or prev_day is null then 1
                when prev_present <> prev_day or prev_hash <> attr_hash then 1
                else 0
            end as starts_version
        from lagged
    ),

    islands as (
        select
            *,
            sum(starts_version) over (partition by {{ keys }} order by snapshot_date) as version_no
        from marked
    )

    select
        {{ keys }},
        version_no::integer as version_no,
        {{ attrs }},
        min(snapshot_date) as valid_from,
        (array_agg(next_day order by snapshot_date desc))[1] as valid_to
    from islands
    group by {{ keys }}, version_no, {{ attrs }}
{% endmacro %}
