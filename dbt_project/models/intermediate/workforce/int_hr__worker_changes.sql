{{ config(
    materialized='incremental',
    unique_key='snapshot_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
-- The changes in each worker's employment attributes from one HR snapshot day to the
-- next (macros/hr_snapshots.sql): incremental by snapshot day, so a night reads the
-- day delivered and the one before it, not every snapshot kept.
{{ scd2_changes_from_daily_snapshots(
    ref('stg_hr__workers'),
    source('hr', 'hr_workers'),
    hr_history_columns('workers')['keys'],
    hr_history_columns('workers')['attributes'],
) }}
