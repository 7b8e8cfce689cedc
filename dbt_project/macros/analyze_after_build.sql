{#- Post-hook of every intermediate and mart model (dbt_project.yml): ANALYZE the table
    just built, in the build's transaction, so that the models after it are planned
    with its statistics. Without them PostgreSQL plans a table created moments ago
    (autovacuum has not analyzed it yet) as if it were tiny: at a year of a 1,000-bed
    system's feed that turned a two-second query of fct_census_daily into nested loops
    that ran for over ten minutes (bench/README.md). Views have no statistics: nothing
    to do for them. -#}
{% macro analyze_after_build() %}
    {%- if model.config.materialized in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
