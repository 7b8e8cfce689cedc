{#- The rows of each HR snapshot day's newest delivery of one file. A day's file
    delivered again (same name, other bytes) is a new batch and replaces the earlier
    one (docs/sources.md#hr-export); a delivery whose every record was rejected left
    no rows, and the day keeps the earlier delivery. -#}
{% macro hr_newest_delivery(relation) %}
    {#- A window partitioned by the day, not a join to a DISTINCT ON subquery: a filter on
        snapshot_date then reaches the raw table (and its index) on both sides, so
        reading one day reads that day's rows only (int_hr__worker_changes). -#}
    select *
    from (
        select
            r.*,
            rank() over (partition by r.snapshot_date order by r.loaded_at desc, r.batch_id desc) as delivery_rank
        from {{ relation }} r
    ) ranked
    where delivery_rank = 1
{% endmacro %}

{#- The changes between consecutive HR snapshot days, for an incremental model (one per
    snapshot file): for each snapshot day, one 'day' row (the day is built) and, per key,
    a 'start' row when the key is present that day but was absent from the previous
    snapshot day or had other attributes there (a new version begins), or an 'end' row
    when it was present the previous snapshot day and is absent now (removed in the
    source that day). The first snapshot day starts every key.

    A day's changes depend only on that day's snapshot and the previous snapshot day's,
    so a build recomputes only the days a delivery loaded since the last build can
    change: the delivered days and, for each, the next snapshot day (whose previous day
    it may now be). Every built day keeps its 'day' row, so a day recomputed to no
    change still replaces its earlier rows (delete+insert by snapshot_date). A late,
    repeated or out-of-order day thus gives the same rows as days loaded in order
    (docs/definitions.md#workforce-history). -#}
{% macro scd2_changes_from_daily_snapshots(relation, raw_relation, key_columns, attribute_columns) %}
    {#- relation: the staging view of the file (each day's newest delivery); raw_relation:
        its raw table, whose loaded_at says what was delivered since the last build. -#}
    {%- set attrs = attribute_columns | join(', ') -%}
    {%- set on_keys = [] -%}
    {%- for k in key_columns -%}{%- do on_keys.append('c.' ~ k ~ ' = p.' ~ k) -%}{%- endfor -%}
    {%- set incremental = is_incremental() -%}
    {%- if incremental and execute -%}
        {#- What this build reads through, fixed before the days are listed: a delivery
            loaded while it runs is the next build's, not marked built without its day. -#}
        {%- set loaded_through = run_query(
            "select coalesce(max(loaded_at), '-infinity'::timestamptz) from " ~ raw_relation
        ).columns[0].values()[0] -%}
        {#- The days to build, as literals: a filter on constants reaches the staging view's
            newest-delivery subquery and the raw indexes (0008_hr_snapshot_indexes), a
            semi-join would not. A snapshot day, once built, keeps its 'day' row here. -#}
        {%- set days_sql -%}
            with delivered as (
                select distinct snapshot_date
                from {{ raw_relation }}
                where loaded_at > (
                    select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz) from {{ this }}
                ) and loaded_at <= '{{ loaded_through }}'::timestamptz
            ),
            day_list as (
                select snapshot_date, lag(snapshot_date) over (order by snapshot_date) as prev_day
                from (
                    select snapshot_date from {{ this }} where change_kind = 'day'
                    union
                    select snapshot_date from delivered
                ) d
            )
            select snapshot_date::text, prev_day::text
            from day_list
            where snapshot_date in (select snapshot_date from delivered)
               or prev_day in (select snapshot_date from delivered)
        {%- endset -%}
        {%- set days = run_query(days_sql).rows -%}
    {%- endif %}
    with affected as (
        {% if not incremental %}
            select
                snapshot_date,
                lag(snapshot_date) over (order by snapshot_date) as prev_day
            from (select distinct snapshot_date from {{ relation }}) d
        {% elif days %}
            select
                a.snapshot_date::date as snapshot_date,
                a.prev_day::date as prev_day
            from (values
                {%- for d in days %}
                    ('{{ d[0] }}', {{ "'" ~ d[1] ~ "'" if d[1] else 'null' }}){{ ',' if not loop.last }}
                {%- endfor %}
            ) a (snapshot_date, prev_day)
        {% else %}
            select
                null::date as snapshot_date,
                null::date as prev_day
            where false
        {% endif %}
    ),

    cur as (
        select
            s.snapshot_date,
            {% for k in key_columns %}s.{{ k }},{% endfor %}
            {% for a in attribute_columns %}s.{{ a }},{% endfor %}
            md5(row({{ attrs }})::text) as attr_hash
        from {{ relation }} s
        inner join affected a on s.snapshot_date = a.snapshot_date
        {% if incremental %}
            where s.snapshot_date in ({% for d in days %}'{{ d[0] }}'::date, {% endfor %}null)
        {% endif %}
    ),

    prev as (
        select
            a.snapshot_date,
            {% for k in key_columns %}s.{{ k }},{% endfor %}
            md5(row({{ attrs }})::text) as attr_hash
        from {{ relation }} s
        inner join affected a on s.snapshot_date = a.prev_day
        {% if incremental %}
            where s.snapshot_date in ({% for d in days if d[1] %}'{{ d[1] }}'::date, {% endfor %}null)
        {% endif %}
    )

    select
        x.snapshot_date,
        x.change_kind,
        {% for k in key_columns %}x.{{ k }},{% endfor %}
        {% for a in attribute_columns %}x.{{ a }},{% endfor %}
        {% if incremental -%}
            '{{ loaded_through }}'::timestamptz
        {%- else -%}
            (select max(loaded_at) from {{ raw_relation }})
        {%- endif %} as computed_through_loaded_at
    from (
        select
            a.snapshot_date,
            'day' as change_kind,
            {% for k in key_columns %}null as {{ k }},{% endfor %}
            {% for a in attribute_columns %}null as {{ a }}{{ ',' if not loop.last }}{% endfor %}
        from affected a
        union all
        -- a full join (hash or merge: never a nested loop, whatever the row estimates)
        select
            coalesce(c.snapshot_date, p.snapshot_date) as snapshot_date,
            case when c.attr_hash is null then 'end' else 'start' end as change_kind,
            {% for k in key_columns %}coalesce(c.{{ k }}, p.{{ k }}) as {{ k }},{% endfor %}
            {% for a in attribute_columns %}c.{{ a }}{{ ',' if not loop.last }}{% endfor %}
        from cur c
        full join prev p on c.snapshot_date = p.snapshot_date and {{ on_keys | join(' and ') }}
        where c.attr_hash is null or p.attr_hash is null or c.attr_hash <> p.attr_hash
    ) x
{% endmacro %}

{#- Type 2 history from the changes above: one row per key and version, valid on
    [valid_from, valid_to): from a 'start' to the key's next change (a new version, or
    its removal); valid_to null while still in force after the latest snapshot. The
    same history as comparing every snapshot day with the one before it, read from a
    few thousand changes instead of every snapshot row
    (docs/definitions.md#workforce-history). -#}
{% macro scd2_from_changes(changes, key_columns, attribute_columns) %}
    {%- set keys = key_columns | join(', ') -%}
    with ordered as (
        select
            *,
            lead(snapshot_date) over (partition by {{ keys }} order by snapshot_date) as next_change,
            count(*) filter (where change_kind = 'start') over (
                partition by {{ keys }} order by snapshot_date rows between unbounded preceding and current row
            ) as version_no
        from {{ changes }}
        where change_kind <> 'day'
    )

    select
        {{ keys }},
        version_no::integer as version_no,
        {{ attribute_columns | join(', ') }},
        snapshot_date as valid_from,
        next_change as valid_to
    from ordered
    where change_kind = 'start'
{% endmacro %}

{#- The keys and attributes of each HR file's history, the one list the changes model
    and the history model of that file both read. -#}
{% macro hr_history_columns(file) %}
    {{ return({
        'workers': {
            'keys': ['worker_id'],
            'attributes': ['worker_type', 'job_code', 'home_cost_center', 'standard_hours_per_week', 'status',
                           'hire_date', 'termination_date'],
        },
        'credentials': {
            'keys': ['worker_id', 'credential_type', 'credential_number'],
            'attributes': ['issuing_state', 'issue_date', 'expiry_date', 'verified_date'],
        },
    }[file]) }}
{% endmacro %}

{#- What int_workforce__worker_compliance reads through: the newest workers, training or
    screening delivery loaded. -#}
{% macro hr_compliance_loaded_through() %}
    select coalesce(max(loaded_at), '-infinity'::timestamptz) as loaded_through
    from (
        select max(loaded_at) as loaded_at from {{ source('hr', 'hr_workers') }}
        union all
        select max(loaded_at) from {{ source('hr', 'hr_training') }}
        union all
        select max(loaded_at) from {{ source('hr', 'hr_exclusion_screening') }}
    ) r
{% endmacro %}

{#- The snapshot days an incremental build of int_workforce__worker_compliance rebuilds:
    {'loaded_through': what it reads through, fixed first (a delivery loaded while it
    runs is the next build's), 'days': [(snapshot_date, next worker snapshot day)]}: the
    days a workers, training or screening delivery loaded since touched, and the worker
    snapshot day before each (whose next_snapshot_date it may now be). None outside
    execution. -#}
{% macro worker_compliance_days() %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set loaded_through = run_query(hr_compliance_loaded_through()).columns[0].values()[0] -%}
    {%- set days_sql -%}
        with since as (
            select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz) as loaded_at
            from {{ this }}
        ),
        delivered as (
            {%- for file in ['hr_workers', 'hr_training', 'hr_exclusion_screening'] %}
            select r.snapshot_date
            from {{ source('hr', file) }} r, since
            where r.loaded_at > since.loaded_at and r.loaded_at <= '{{ loaded_through }}'::timestamptz
            {{ 'union' if not loop.last }}
            {%- endfor %}
        ),
        worker_days as (
            select snapshot_date, lead(snapshot_date) over (order by snapshot_date) as next_day
            from (
                select distinct snapshot_date from {{ this }}
                union
                select r.snapshot_date
                from {{ source('hr', 'hr_workers') }} r, since
                where r.loaded_at > since.loaded_at and r.loaded_at <= '{{ loaded_through }}'::timestamptz
            ) d
        )
        select w.snapshot_date::text, w.next_day::text
        from worker_days w
        where w.snapshot_date in (select snapshot_date from delivered)
           or w.next_day in (select snapshot_date from delivered)
    {%- endset -%}
    {{ return({'loaded_through': loaded_through, 'days': run_query(days_sql).rows}) }}
{% endmacro %}

{#- Whether credential version `c` (of int_hr__credential_history, in force on `day`)
    makes the credential current on `day` (docs/definitions.md#workforce-compliance-checks):
    issued on or before the day, expiring on or after it, and verified. -#}
{% macro credential_current_on(c, day) %}
    ({{ c }}.issue_date <= {{ day }} and {{ c }}.expiry_date >= {{ day }} and {{ c }}.verified_date is not null)
{% endmacro %}
