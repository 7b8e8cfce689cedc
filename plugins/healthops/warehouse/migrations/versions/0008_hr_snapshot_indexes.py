"""Indexes for reading the HR snapshots one day at a time.

The workforce history is built incrementally (docs/definitions.md#workforce-history):
a night finds the snapshot days delivered since the last build (``loaded_at``) and reads
those days and the ones before them (``snapshot_date``). Without these indexes each
night scanned every snapshot kept: at a year of a 1,000-bed system's export, over a
million worker rows and two million credential rows (bench/README.md).

Revision ID: 0008_hr_snapshot_indexes
Revises: 0007_workforce_raw
"""

from __future__ import annotations

from alembic import op

revision = "0008_hr_snapshot_indexes"
down_revision = "0007_workforce_raw"
branch_labels = None
depends_on = None

INDEXES = {
    "hr_workers_snapshot_date": "raw.hr_workers (snapshot_date, loaded_at)",
    "hr_workers_loaded_at": "raw.hr_workers (loaded_at)",
    "hr_credentials_snapshot_date": "raw.hr_credentials (snapshot_date, loaded_at)",
    "hr_credentials_loaded_at": "raw.hr_credentials (loaded_at)",
}


def upgrade() -> None:
    for name, on in INDEXES.items():
        op.execute(f"create index if not exists {name} on {on}")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"drop index if exists raw.{name}")
