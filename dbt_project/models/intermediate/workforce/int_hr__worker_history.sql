-- Who each worker was, day by day, as type 2 history of the HR snapshots: one row per
-- worker and stretch of snapshot days with the same employment attributes, valid on
-- [valid_from, valid_to). "Was worker W a contract RN on D" reads the version with
-- valid_from <= D < coalesce(valid_to, infinity). Built from the snapshot-to-snapshot
-- changes (int_hr__worker_changes).
{{ scd2_from_changes(
    ref('int_hr__worker_changes'),
    hr_history_columns('workers')['keys'],
    hr_history_columns('workers')['attributes'],
) }}
