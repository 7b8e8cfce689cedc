{#- The first local date, per facility, whose census a build must recompute.

    Full build: every date. Incremental: the earliest effective time of any message
    loaded since the mart was last computed, and of any earlier event such a message
    cancelled. Segments before that time are unchanged (a message only changes the
    timeline from its own time on; a cancel from its target's time on), so days
    before it keep their figures; days from it on are recomputed. And the day after
    the last date the mart holds for a facility, when the feed has since moved past
    it: a day on which no message arrived (an interface outage, a quiet facility)
    still has a census, the patients present carried over, and is built as soon as
    the feed is known beyond it. -#}
{% macro census_affected_from(watermark_relation) %}
    select facility_code, min(from_date) as from_date
    from (
        select facility_code, min(effective_local_ts)::date as from_date
        from {{ ref('int_adt__events') }}
        {% if is_incremental() %}
        where source_loaded_at > (select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz)
                                  from {{ watermark_relation }})
           or voided_by_loaded_at > (select coalesce(max(computed_through_loaded_at), '-infinity'::timestamptz)
                                     from {{ watermark_relation }})
        {% endif %}
        group by facility_code
        {% if is_incremental() %}
        union all
        select w.facility_code, max(w.census_date) + 1
        from {{ watermark_relation }} w
        group by w.facility_code
        having max(w.census_date) < (select max(received_date) from {{ ref('int_adt__events') }})
        {% endif %}
    ) affected_days
    group by facility_code
{% endmacro %}

{#- The date the feed is known through: the latest receipt date loaded. -#}
{% macro census_as_of() %}
    select max(received_date) as as_of_date, max(source_loaded_at) as loaded_through
    from {{ ref('int_adt__events') }}
{% endmacro %}
