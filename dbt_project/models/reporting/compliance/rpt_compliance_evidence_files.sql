-- The compliance report's evidence lineage table: one row per day and source file
-- received that day (file_no 0: a day with validation runs but no file), with the
-- number of that day's validation runs and of those with every rule passing, shown
-- on the day's first row. Read from the lineage (rpt_compliance_lineage): its rows
-- of the day's first file carry each run once.
with lineage as (
    select
        report_month,
        logical_date,
        file_no,
        run_no,
        source,
        file_path,
        file_name,
        file_sha256,
        file_bytes,
        records_in,
        records_loaded,
        records_rejected,
        records_duplicate,
        batch_id,
        load_dag_run_id,
        loaded_at,
        passed
    from {{ ref('rpt_compliance_lineage') }}
),

day_runs as (
    select
        logical_date,
        count(*) filter (where run_no > 0) as validation_runs,
        count(*) filter (where passed) as validation_runs_passed
    from lineage
    where file_no <= 1
    group by logical_date
)

select
    l.report_month,
    l.logical_date,
    l.file_no,
    (l.file_no <= 1) as is_first_of_day,
    l.source,
    l.file_path,
    l.file_name,
    l.file_sha256,
    l.file_bytes,
    l.records_in,
    l.records_loaded,
    l.records_rejected,
    l.records_duplicate,
    l.batch_id,
    l.load_dag_run_id,
    l.loaded_at,
    r.validation_runs::integer as validation_runs,
    r.validation_runs_passed::integer as validation_runs_passed
from lineage l
inner join day_runs r
    on l.logical_date = r.logical_date
where l.run_no <= 1
