{#- The punch models built incrementally (int_timekeeping__punch_sequence, __shifts,
    __meal_breaks, int_workforce__worked_segments; docs/architecture.md#incremental-punch-models).

    A night does not rebuild every worker's whole punch history. It rebuilds, for each
    worker a change can reach, everything from one shift on: the worker's window,
    which starts at an IN (the anchor) and runs to the end of the record.

    A worker's window starts at the last IN strictly before the earliest of:
    * for every punch with a version loaded since the model was built: the earliest
      instant any version of it held (a punch moved, deleted, added or given to
      another worker changes its shift, which starts at its last IN before it; the
      shift before that one can end at that IN, so it is rebuilt too);
    * with_night: 16 hours before the end of the night the model was built through,
      or of the night being built if earlier, for every worker (a shift still under
      way then was counted up to that end, and is counted anew);
    * with_hr: the earliest HR snapshot day rebuilt in the HR change tables since,
      for every worker (a licence or contract status in force from that day).
    Everything before the anchor is unchanged: no punch before it has a version loaded
    since, and a shift that starts before it ends at or before it.

    A build keeps the windows in two temporary tables, made by the pre-hook
    (punch_windows_prepare) in the model's transaction: the model's query reads them to
    compute the windows' rows, and the strategy (replace_punch_windows) deletes the
    windows' rows before inserting the new ones, so a row that a correction removed
    goes too. The watermarks (what the build read through) are kept on every row. -#}

{#- What a build reads through: the newest punch version loaded; with_night, the end
    of the night being built (the day after the latest ADT receipt date); with_hr, the
    HR change tables' watermarks. -#}
{% macro punch_build_state(with_night=false, with_hr=false) %}
    select
        (select coalesce(max(loaded_at), '-infinity'::timestamptz) from {{ source('timekeeping', 'tk_punches') }})
            as punches_through
        {%- if with_night %},
        (
            select (max(received_date) + 1)::timestamp at time zone '{{ var("facility_tz") }}'
            from {{ ref('int_adt__events') }}
        ) as night_end_ts
        {%- endif %}
        {%- if with_hr %},
        (select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz)
         from {{ ref('int_hr__worker_changes') }}) as worker_changes_through,
        (select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz)
         from {{ ref('int_hr__credential_changes') }}) as credential_changes_through
        {%- endif %}
{% endmacro %}

{#- The watermark columns every row of a punch model carries. -#}
{% macro punch_build_state_columns(with_night=false, with_hr=false) %}
    state.punches_through as computed_through_punch_loaded_at
    {%- if with_night %},
    state.night_end_ts as computed_night_end_ts
    {%- endif %}
    {%- if with_hr %},
    state.worker_changes_through as computed_through_worker_changes,
    state.credential_changes_through as computed_through_credential_changes
    {%- endif %}
{% endmacro %}

{#- The build state as the model's query reads it: the pre-hook's when incremental. -#}
{% macro punch_state(with_night=false, with_hr=false) %}
    {%- if is_incremental() -%}
        select * from healthops_punch_state
    {%- else -%}
        {{ punch_build_state(with_night, with_hr) }}
    {%- endif -%}
{% endmacro %}

{#- Pre-hook: the build state and the windows, as temporary tables dropped at commit.
    sequence_relation is where the live punches and their shifts are read from: the
    model itself for the punch sequence (its rows before the anchors are unchanged),
    the punch sequence just built for the others. -#}
{% macro punch_windows_prepare(sequence_relation, with_night=false, with_hr=false) %}
    {%- if is_incremental() -%}
        {%- set tz = var('facility_tz') -%}
        create temp table healthops_punch_state on commit drop as
        {{ punch_build_state(with_night, with_hr) }};

        create temp table healthops_punch_windows on commit drop as
        with prev as (
            select
                coalesce(max(computed_through_punch_loaded_at), '-infinity'::timestamptz) as punches_through
                {%- if with_night %},
                max(computed_night_end_ts) as night_end_ts
                {%- endif %}
                {%- if with_hr %},
                coalesce(max(computed_through_worker_changes), '-infinity'::timestamptz) as worker_changes_through,
                coalesce(max(computed_through_credential_changes), '-infinity'::timestamptz)
                    as credential_changes_through
                {%- endif %}
            from {{ this }}
        ),

        changed_punches as (
            select distinct r.punch_id
            from {{ source('timekeeping', 'tk_punches') }} r
            cross join prev
            cross join healthops_punch_state s
            where r.loaded_at > prev.punches_through and r.loaded_at <= s.punches_through
        ),

        everyone_from as (
            select null::timestamptz as from_ts
            {%- if with_night %}
            union all
            select least(prev.night_end_ts, s.night_end_ts) - interval '16 hours'
            from prev
            cross join healthops_punch_state s
            {%- endif %}
            {%- if with_hr %}
            union all
            select (min(c.snapshot_date)::timestamp at time zone '{{ tz }}')
            from (
                select w.snapshot_date
                from {{ ref('int_hr__worker_changes') }} w
                cross join prev
                where w.change_kind = 'day' and w.computed_through_loaded_at > prev.worker_changes_through
                union all
                select c.snapshot_date
                from {{ ref('int_hr__credential_changes') }} c
                cross join prev
                where c.change_kind = 'day' and c.computed_through_loaded_at > prev.credential_changes_through
            ) c
            {%- endif %}
        ),

        everyone as (
            select min(from_ts) as from_ts from everyone_from
        ),

        worker_from as (
            select
                v.worker_id,
                min(v.punch_ts) as from_ts
            from {{ source('timekeeping', 'tk_punches') }} v
            inner join changed_punches c on v.punch_id = c.punch_id
            group by v.worker_id
            {%- if with_night or with_hr %}
            union all
            select distinct
                q.worker_id,
                e.from_ts
            from {{ sequence_relation }} q
            inner join everyone e on q.punch_ts >= e.from_ts
            {%- endif %}
        ),

        windows as (
            select
                worker_id,
                min(from_ts) as from_ts
            from worker_from
            group by worker_id
        )

        select
            w.worker_id,
            coalesce(a.punch_ts, '-infinity'::timestamptz) as anchor_ts,
            coalesce(a.punch_id, 0) as anchor_id
        from windows w
        left join lateral (
            select
                q.punch_ts,
                q.punch_id
            from {{ sequence_relation }} q
            where q.worker_id = w.worker_id and q.punch_type = 'IN' and q.punch_ts < w.from_ts
            order by q.punch_ts desc, q.punch_id desc
            limit 1
        ) a on true;

        analyze healthops_punch_windows
    {%- endif -%}
{% endmacro %}

{#- Whether a row at (ts, id) is in its worker's window (its worker joined as w). -#}
{% macro in_punch_window(ts, id, w='w') %}
    ({{ ts }}, {{ id }}) >= ({{ w }}.anchor_ts, {{ w }}.anchor_id)
{% endmacro %}

{#- Whether a row of local date `day` is in its worker's window: on or after the
    window's first local date (a model by worker and day recomputes whole days). -#}
{% macro in_punch_window_days(day, w='w') %}
    {{ day }} >= ({{ w }}.anchor_ts at time zone '{{ var("facility_tz") }}')::date
{% endmacro %}

{#- In an incremental build, keep only the rows of `row` (a table alias with worker_id)
    in their worker's window: by `ts` and `id`, or by local date `day`. -#}
{% macro join_punch_window(row, ts=none, id=none, day=none) %}
    {%- if is_incremental() %}
        inner join healthops_punch_windows w
            on {{ row }}.worker_id = w.worker_id and
            {%- if day %} {{ in_punch_window_days(row ~ '.' ~ day) }}
            {%- else %} {{ in_punch_window(row ~ '.' ~ ts, row ~ '.' ~ id) }}
            {%- endif %}
    {%- endif %}
{% endmacro %}

{#- The incremental strategy of the punch models: delete the windows' rows, insert the
    rows the model computed for them. config: punch_window_ts, punch_window_id (the
    columns that place a row in its worker's window: the punch's, or its shift's IN),
    or punch_window_date (a model by worker and local date). -#}
{% macro get_incremental_replace_punch_windows_sql(arg_dict) %}
    {%- set day = config.get('punch_window_date') -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }} t
    using healthops_punch_windows w
    where
        t.worker_id = w.worker_id
        {% if day -%}
            and {{ in_punch_window_days('t.' ~ day) }};
        {%- else -%}
            and {{ in_punch_window('t.' ~ config.require('punch_window_ts'), 't.' ~ config.require('punch_window_id')) }};
        {%- endif %}

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}
