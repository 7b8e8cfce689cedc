"""The incremental workforce models: indexes for reading one worker's punch versions
from an instant on and the training and screening files one snapshot day at a time,
and the old full tables out of the way.

The punch models are built incrementally, one window per worker a change can reach
(dbt_project/macros/punch_windows.sql): a night reads every version of the punches of
those workers from the start of each window (``worker_id``, ``punch_ts``). Without
this index each night scanned every punch version kept: at a year of a 1,000-bed
system, about two million (bench/README.md). The worker compliance is built by HR
snapshot day: a night reads the training and screening files of the days delivered
since (``loaded_at``) and of those days (``snapshot_date``), as the worker and credential
snapshots already are (0008); at a year, 2.3 and 4.6 million rows.

An earlier release's dbt built these models, and the worker compliance, as full tables
without the watermark columns an incremental build reads: dbt would stop each night
on them ("out of sync"). They hold nothing but what dbt derives from ``raw``, and no
view reads them, so this revision drops each one that lacks its watermark; the next
build makes it whole. A view of someone else's on one stops the migration by name
(nothing is dropped with CASCADE).

Revision ID: 0009_punch_worker_index
Revises: 0008_hr_snapshot_indexes
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0009_punch_worker_index"
down_revision = "0008_hr_snapshot_indexes"
branch_labels = None
depends_on = None

# table in schema intermediate -> the watermark column its incremental build keeps
INCREMENTAL_SINCE_0009 = {
    "int_timekeeping__punch_sequence": "computed_through_punch_loaded_at",
    "int_timekeeping__shifts": "computed_through_punch_loaded_at",
    "int_timekeeping__meal_breaks": "computed_through_punch_loaded_at",
    "int_workforce__worked_segments": "computed_through_punch_loaded_at",
    "int_workforce__fatigue_windows": "computed_through_punch_loaded_at",
    "int_workforce__direct_care_days": "computed_through_punch_loaded_at",
    "int_workforce__worker_compliance": "computed_through_loaded_at",
}


INDEXES = {
    "tk_punches_worker_ts": "raw.tk_punches (worker_id, punch_ts)",
    "hr_training_snapshot_date": "raw.hr_training (snapshot_date, loaded_at)",
    "hr_training_loaded_at": "raw.hr_training (loaded_at)",
    "hr_exclusion_screening_snapshot_date": "raw.hr_exclusion_screening (snapshot_date, loaded_at)",
    "hr_exclusion_screening_loaded_at": "raw.hr_exclusion_screening (loaded_at)",
}


def upgrade() -> None:
    for name, on in INDEXES.items():
        op.execute(f"create index if not exists {name} on {on}")
    conn = op.get_bind()
    for table, watermark in INCREMENTAL_SINCE_0009.items():
        stale = conn.execute(
            text(
                "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'intermediate' and c.relname = :t and c.relkind = 'r'"
                " and not exists (select 1 from pg_attribute a where a.attrelid = c.oid"
                " and a.attname = :w and not a.attisdropped)"
            ),
            {"t": table, "w": watermark},
        ).first()
        if stale:
            op.execute(f'drop table intermediate."{table}"')


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"drop index if exists raw.{name}")
