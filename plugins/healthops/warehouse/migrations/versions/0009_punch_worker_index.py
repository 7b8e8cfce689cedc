"""An index for reading one worker's punch versions from an instant on.

The punch models are built incrementally, one window per worker a change can reach
(dbt_project/macros/punch_windows.sql): a night reads every version of the punches of
those workers from the start of each window (``worker_id``, ``punch_ts``). Without
this index each night scanned every punch version kept: at a year of a 1,000-bed
system, about two million (bench/README.md).

Revision ID: 0009_punch_worker_index
Revises: 0008_hr_snapshot_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0009_punch_worker_index"
down_revision = "0008_hr_snapshot_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("create index if not exists tk_punches_worker_ts on raw.tk_punches (worker_id, punch_ts)")


def downgrade() -> None:
    op.execute("drop index if exists raw.tk_punches_worker_ts")
