"""Landing hygiene: the entries a load refuses, and whole files delivered again.

``audit.refused_files``: what the loader found in a landing folder and did not read
(a symbolic link, a FIFO, socket or device, a folder inside the day's folder, a name
that is not UTF-8), with the reason, once per day and entry; named relative to the
landing root, never by where a link points.

``audit.load_batches.duplicate_of_batch_id``: a file whose bytes (SHA-256) were loaded
before under another name is a duplicate delivery of that batch. Its messages are not
parsed or loaded again; its row counts them all as duplicates (in = duplicate), apart
from rejections, as a resent message is.

Revision ID: 0002_landing_hygiene
Revises: 0001_baseline
"""

from __future__ import annotations

from alembic import op

revision = "0002_landing_hygiene"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

DDL = """
create table audit.refused_files (
    source          text        not null,
    received_date   date        not null,
    file_path       text        not null,
    kind            text        not null check (kind in ('symlink', 'outside_landing', 'special_file', 'folder',
                                                         'bad_name')),
    reason          text        not null,
    dag_run_id      text,
    refused_at      timestamptz not null default now(),
    -- a day's entry is recorded once, by the first run that met it: re-running the
    -- date adds nothing
    primary key (source, received_date, file_path, kind)
);
comment on table audit.refused_files is 'Landing-folder entries the loader refused to read (symbolic links, special files, folders, names that are not UTF-8), with the reason; file_path is relative to the landing root, never a link''s target.';
comment on column audit.refused_files.file_path is 'The entry as found under the landing root (adt/YYYY-MM-DD/name); where a link points is neither followed nor recorded.';

alter table audit.load_batches add column duplicate_of_batch_id uuid references audit.load_batches (batch_id);
-- A duplicate delivery loads nothing and rejects nothing: every record of it is a
-- duplicate of the batch it repeats.
alter table audit.load_batches add constraint load_batches_duplicate_delivery check (
    duplicate_of_batch_id is null
    or (records_loaded = 0 and records_rejected = 0 and records_duplicate = records_in)
);
comment on column audit.load_batches.duplicate_of_batch_id is 'Set when the file''s bytes (SHA-256) were loaded before under another name: the batch it repeats. Nothing of it is loaded again; its records count as duplicates.';
comment on table audit.load_batches is 'One row per landed file: loaded, or a duplicate delivery of a file loaded before (duplicate_of_batch_id); its hash and counts; in = loaded + rejected + duplicate always.';
"""


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    conn.execute(DDL)
    # The baseline's grants name the tables of its day: the loader writes the new one,
    # the auditor reads it (where the roles exist: see the baseline's _roles).
    have = {
        r
        for (r,) in conn.execute(
            "select rolname from pg_roles where rolname in ('healthops_loader', 'healthops_auditor')"
        )
    }
    if "healthops_loader" in have:
        conn.execute("grant insert, select on audit.refused_files to healthops_loader")
    if "healthops_auditor" in have:
        conn.execute("grant select on audit.refused_files to healthops_auditor")


def downgrade() -> None:
    # Going back would drop the record of what was refused and of which files were
    # delivered twice: audit history, kept as written.
    raise NotImplementedError("0002_landing_hygiene keeps audit history and is not reversible")
