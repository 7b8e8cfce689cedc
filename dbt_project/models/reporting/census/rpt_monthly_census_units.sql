{#- The measures of a month the report shows, and which of them are patient counts
    (compared only between two months the data cover in full). -#}
{%- set measures = ['staffed_beds', 'average_daily_census', 'occupancy_pct', 'average_length_of_stay',
                    'admissions', 'discharges', 'patient_days'] -%}
{%- set counts = ['admissions', 'discharges', 'patient_days'] -%}
{%- set types = {'staffed_beds': 'numeric(12, 2)', 'average_daily_census': 'numeric(12, 2)',
                 'occupancy_pct': 'numeric(7, 1)', 'average_length_of_stay': 'numeric(8, 2)',
                 'admissions': 'bigint', 'discharges': 'bigint', 'patient_days': 'bigint'} -%}
-- The monthly census report's tables and CSV: one row per facility, month and unit
-- with data in the month, plus the facility's inpatient units together (unit_code
-- 'ALL', from fct_census_period). The month's figures as the report shows them, the
-- same unit's figures the month before and a year before (self-joins on the month:
-- a unit's months need not be consecutive), and the changes: difference of the values
-- shown and, but for occupancy (in points), that difference as a percent of the
-- earlier value. Changes of counts only between two months the data cover in full
-- (rpt_monthly_census_trend.counts_comparable_*).
with months as (
    select
        p.facility_code,
        p.unit_code,
        p.period_start as month_start,
        p.days_in_period as days_with_data,
        p.staffed_beds,
        p.average_daily_census,
        {{ percent('p.occupancy', '1', 1) }} as occupancy_pct,
        p.average_length_of_stay,
        p.admissions,
        p.discharges,
        p.patient_days
    from {{ ref('fct_census_period') }} p
    where p.period_type = 'month'
),

units as (
    select
        u.facility_code,
        u.unit_code,
        u.unit_name,
        u.unit_type,
        u.is_inpatient_unit
    from {{ ref('dim_units') }} u
),

facility_months as (
    select
        t.facility_code,
        t.month_start,
        t.facility_name,
        t.days_in_month,
        t.counts_comparable_prev_month,
        t.counts_comparable_prev_year
    from {{ ref('rpt_monthly_census_trend') }} t
)

select
    m.facility_code::text as facility_code,
    fm.facility_name::text as facility_name,
    m.month_start::date as month_start,
    m.unit_code::text as unit_code,
    (case
        when m.unit_code = 'ALL' then 'All inpatient units'
        else coalesce(u.unit_name, m.unit_code || ' (not in reference data)')
    end)::text as unit_name,
    (case when m.unit_code <> 'ALL' then coalesce(u.unit_type, 'unknown') end)::text as unit_type,
    (m.unit_code = 'ALL')::boolean as is_facility_total,
    (m.unit_code = 'ALL' or coalesce(u.is_inpatient_unit, true))::boolean as is_inpatient_unit,
    fm.days_in_month::integer as days_in_month,
    m.days_with_data::integer as days_with_data,
    fm.counts_comparable_prev_month::boolean as counts_comparable_prev_month,
    fm.counts_comparable_prev_year::boolean as counts_comparable_prev_year,
    {%- for col in measures %}
        m.{{ col }}::{{ types[col] }} as {{ col }},
    {%- endfor %}
{%- for suffix, alias in [('prev_month', 'pm'), ('prev_year', 'py')] %}
    ({{ alias }}.unit_code is not null)::boolean as has_{{ suffix }},
    {%- for col in measures %}
        {{ alias }}.{{ col }}::{{ types[col] }} as {{ col }}_{{ suffix }},
    {%- endfor %}
{%- for col in measures %}
    {%- set change = 'm.' ~ col ~ ' - ' ~ alias ~ '.' ~ col %}
    {%- set pct = percent(change, alias ~ '.' ~ col, 1) %}
    {%- if col in counts %}
        (case when fm.counts_comparable_{{ suffix }} then {{ change }} end)::{{ types[col] }}
            as {{ col }}_change_{{ suffix }},
        (
            case when fm.counts_comparable_{{ suffix }} then {{ pct }} end
        )::numeric(9, 1) as {{ col }}_change_pct_{{ suffix }}
    {%- else %}
        ({{ change }})::{{ types[col] }} as {{ col }}_change_{{ suffix }}
        {%- if col != 'occupancy_pct' %}
            ,
            {{ pct }}::numeric(9, 1) as {{ col }}_change_pct_{{ suffix }}
        {%- endif %}
    {%- endif %}{{ ',' if not (loop.last and suffix == 'prev_year') }}
{%- endfor %}
{%- endfor %}
from months m
inner join facility_months fm
    on m.facility_code = fm.facility_code and m.month_start = fm.month_start
left join units u
    on m.facility_code = u.facility_code and m.unit_code = u.unit_code
left join months pm
    on
        m.facility_code = pm.facility_code
        and m.unit_code = pm.unit_code
        and pm.month_start = (m.month_start - interval '1 month')::date
left join months py
    on
        m.facility_code = py.facility_code
        and m.unit_code = py.unit_code
        and py.month_start = (m.month_start - interval '12 months')::date
