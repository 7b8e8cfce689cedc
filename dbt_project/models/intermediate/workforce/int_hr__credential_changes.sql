{{ config(
    materialized='incremental',
    unique_key='snapshot_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- The changes in each credential from one HR snapshot day to the next
-- (macros/hr_snapshots.sql): incremental by snapshot day.
{{ scd2_changes_from_daily_snapshots(
    ref('stg_hr__credentials'),
    source('hr', 'hr_credentials'),
    hr_history_columns('credentials')['keys'],
    hr_history_columns('credentials')['attributes'],
) }}
