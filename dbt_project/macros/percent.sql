{#- A percentage rounded half up (away from zero) to `digits` decimals; null when the
    denominator is 0 or null. The one definition of "n as a percent of d" in reports.
    healthops.reports.reader applies the same formula to the sums of a unit subset
    (a column's meta `ratio:` names its numerator, denominator and digits). -#}
{% macro percent(numerator, denominator, digits=1) -%}
    round(100.0 * ({{ numerator }})::numeric / nullif(({{ denominator }})::numeric, 0), {{ digits }})
{%- endmacro %}
