{#- `dbt source freshness` "as of" an instant, so a night's verdict depends on its
    logical date only: a backfill or a re-run of a date gives the verdict that night
    gave, whenever it runs (healthops.quality.freshness passes the end of the logical
    day in the facility time zone).

    With the var `freshness_as_of` (an ISO 8601 timestamp with a UTC offset, e.g.
    --vars '{freshness_as_of: "2025-03-02T08:00:00+00:00"}'), or failing that the
    environment variable HEALTHOPS_FRESHNESS_AS_OF (what healthops sets: unlike
    --vars, which dbt hashes into its partial-parse state, a new value every night
    does not force a full re-parse): the newest loaded_at_field at or before that
    instant, and that instant as snapshotted_at (rows stamped later, e.g. the next
    days' messages of a backfill, are not seen). Without either: dbt's own behaviour
    (current_timestamp, no bound).

    Why here: `collect_freshness` dispatches in the `dbt` namespace, where dispatch
    searches the root project before dbt's global project, so this root-project
    `postgres__collect_freshness` replaces `default__collect_freshness` (dbt-core 1.11,
    core/dbt/context/providers.py _get_search_packages; the macro returns the whole
    load_result, not only its table, as dbt >= 1.5 expects). -#}
{% macro postgres__collect_freshness(source, loaded_at_field, filter) %}
    {%- set as_of = var('freshness_as_of', env_var('HEALTHOPS_FRESHNESS_AS_OF', '')) -%}
    {%- if as_of is none or (as_of is string and as_of | trim == '') -%}
        {{ return(dbt.default__collect_freshness(source, loaded_at_field, filter)) }}
    {%- endif -%}
    {%- set instant = healthops_freshness_instant(as_of) -%}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        select
            max({{ loaded_at_field }}) as max_loaded_at,
            cast('{{ instant }}' as timestamp with time zone) as snapshotted_at
        from {{ source }}
        where {{ loaded_at_field }} <= cast('{{ instant }}' as timestamp with time zone)
        {% if filter %}
          and ({{ filter }})
        {% endif %}
    {%- endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}


{#- The var as a timestamp with an offset, re-printed by Python (never pasted into
    SQL as given); a value without an offset or that is no timestamp is refused. -#}
{% macro healthops_freshness_instant(value) %}
    {%- set text = value.isoformat() if value is not string else value | trim -%}
    {%- set parsed = none -%}
    {%- if text | length <= 40 -%}
        {%- set iso_with_offset = '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$' -%}
        {%- set parsed = modules.re.match(iso_with_offset, text) -%}
    {%- endif -%}
    {%- if not parsed -%}
        {{ exceptions.raise_compiler_error(
            "freshness_as_of must be an ISO 8601 timestamp with a UTC offset, e.g. "
            ~ "2025-03-02T08:00:00+00:00; got " ~ (text | string)[:60]) }}
    {%- endif -%}
    {%- set instant = modules.datetime.datetime.fromisoformat(text | replace('Z', '+00:00')) -%}
    {{ return(instant.isoformat()) }}
{% endmacro %}
