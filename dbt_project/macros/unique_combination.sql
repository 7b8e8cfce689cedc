{#- A compound-key uniqueness test without pulling a package from the network
    (hospital networks and CI here reach only package registries). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
