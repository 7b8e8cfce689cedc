{#- The first local date, per facility, whose staffing intervals a build must recompute:
    the earliest of
    * the census's (census_affected_from: new or cancelled movements, a day the feed
      has since moved past);
    * the punches': for every punch with a version loaded since the mart was computed,
      16 hours before the earliest time any version of it held (a corrected, deleted
      or late punch changes its shift, which began at most 16 hours before);
    * the HR snapshots': the earliest snapshot day of a workers or credentials
      delivery loaded since (a licence or contract status in force from that day);
    * for a facility with no rows yet, its first day.
    A facility is in the staffing marts from the first day a shift was worked on one
    of its units: before that nobody's staffing is known, and a unit would look
    unstaffed. -#}
{% macro staffing_affected_from(watermark_relation) %}
    {%- set tz = var('facility_tz') -%}
    select a.facility_code, greatest(min(a.from_date), f.first_day) as from_date
    from (
        {{ census_affected_from(watermark_relation) }}
        {% if is_incremental() %}
        union all
        select f.facility_code, ((min(v.punch_ts) - interval '16 hours') at time zone '{{ tz }}')::date
        from {{ source('timekeeping', 'tk_punches') }} v
        cross join (select distinct facility_code from {{ watermark_relation }}) f
        where v.punch_id in (
            select punch_id from {{ source('timekeeping', 'tk_punches') }}
            where loaded_at > (select max(computed_through_punch_loaded_at) from {{ watermark_relation }})
        )
        group by f.facility_code
        union all
        select f.facility_code, min(h.snapshot_date)
        from (
            select snapshot_date, loaded_at from {{ source('hr', 'hr_workers') }}
            union all
            select snapshot_date, loaded_at from {{ source('hr', 'hr_credentials') }}
        ) h
        cross join (select distinct facility_code from {{ watermark_relation }}) f
        where h.loaded_at > (select max(computed_through_hr_loaded_at) from {{ watermark_relation }})
        group by f.facility_code
        union all
        -- a facility whose first shifts arrived since: from its first day (the test on
        -- the groups, not on every segment: a NOT IN per segment ran 4 s at a year)
        select s.facility_code, min(s.work_date)
        from {{ ref('int_workforce__worked_segments') }} s
        where s.facility_code is not null
        group by s.facility_code
        having s.facility_code not in (select distinct facility_code from {{ watermark_relation }})
        {% endif %}
    ) a
    inner join (
        select facility_code, min(work_date) as first_day
        from {{ ref('int_workforce__worked_segments') }}
        where facility_code is not null
        group by facility_code
    ) f using (facility_code)
    group by a.facility_code, f.first_day
{% endmacro %}

{#- What the staffing marts were computed through: the newest punch version and HR
    delivery loaded (the incremental marts' watermarks). -#}
{% macro workforce_loaded_through() %}
    select
        coalesce((select max(loaded_at) from {{ source('timekeeping', 'tk_punches') }}), '-infinity'::timestamptz)
            as punches_loaded_through,
        coalesce(
            (select max(loaded_at) from (
                select loaded_at from {{ source('hr', 'hr_workers') }}
                union all
                select loaded_at from {{ source('hr', 'hr_credentials') }}
            ) h),
            '-infinity'::timestamptz
        ) as hr_loaded_through
{% endmacro %}
