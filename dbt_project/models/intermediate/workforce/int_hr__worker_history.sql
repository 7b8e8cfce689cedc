-- Who each worker was, day by day, as type 2 history of the HR snapshots: one row per
-- worker and stretch of snapshot days with the same employment attributes, valid on
-- [valid_from, valid_to). "Was worker W a contract RN on D" reads the version with
-- valid_from <= D < coalesce(valid_to, infinity).
{{ scd2_from_daily_snapshots(
    ref('stg_hr__workers'),
    ['worker_id'],
    ['worker_type', 'job_code', 'home_cost_center', 'standard_hours_per_week', 'status', 'hire_date',
     'termination_date'],
) }}
