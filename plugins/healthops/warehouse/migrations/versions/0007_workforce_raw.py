"""The workforce sources' raw tables: the HR export's daily snapshots and the
timekeeping extract (docs/sources.md#hr-export, docs/sources.md#timekeeping-database).

- ``raw.hr_*``: one table per file of the HR export, one row per usable CSV record,
  with the snapshot date its folder names (``hr/YYYY-MM-DD/``). Each day's files are
  complete snapshots, all kept: history (who held what when) is derived from them by
  dbt, and a day's file delivered again under the same name with other bytes is a new
  batch (staging reads a day's newest batch of each file).
- ``raw.tk_punches`` and ``raw.tk_pay_lines``: every version of a timekeeping row the
  extract has seen, keyed by the source's id and ``updated_at``. The source edits and
  soft-deletes rows after the fact (timecard corrections): a new version is a new row
  here, never an update, so a correction's before and after are both kept. The
  extract's overlap window re-reads versions already held: the key makes them
  duplicates, counted, not loaded twice.

Rows that do not fit the spec go to ``raw.rejected`` (source ``hr`` or
``timekeeping``) with a reason, and every file or extract is a batch in
``audit.load_batches`` (in = loaded + rejected + duplicate), as for the ADT feed.

``audit.refused_files`` gets a sixth kind, ``unknown_file``: a CSV in an HR day's folder
that is not one of the export's five files is refused, not read and not ignored
(docs/sources.md#landing-hygiene).

Grants: the loader inserts and reads these tables; the transformer and the checker
read them (0006 granted ``select on all tables in schema raw``, which covers only the
tables that existed then). Reporter and auditor never read raw.

Revision ID: 0007_workforce_raw
Revises: 0006_step_roles
"""

from __future__ import annotations

from alembic import op

revision = "0007_workforce_raw"
down_revision = "0006_step_roles"
branch_labels = None
depends_on = None

_BATCH = """
    batch_id        uuid        not null,
    snapshot_date   date        not null,
    file_path       text        not null,
    record_index    integer     not null,"""

DDL = f"""
create table raw.hr_workers ({_BATCH}
    worker_id       text        not null,
    last_name       text,
    first_name      text,
    birth_date      date,
    hire_date       date        not null,
    termination_date date,
    worker_type     text        not null,
    job_code        text        not null,
    home_cost_center text       not null,
    standard_hours_per_week numeric(5,2) not null,
    status          text        not null,
    last_modified   timestamptz,
    loaded_at       timestamptz not null default now(),
    constraint hr_workers_key unique (batch_id, worker_id)
);
comment on table raw.hr_workers is 'HR export workers.csv, one row per worker per delivered daily snapshot (PHI for the staff member: last_name, first_name, birth_date; never in marts).';

create table raw.hr_credentials ({_BATCH}
    worker_id       text        not null,
    credential_type text        not null,
    credential_number text      not null,
    issuing_state   text,
    issue_date      date        not null,
    expiry_date     date,
    verified_date   date,
    loaded_at       timestamptz not null default now(),
    constraint hr_credentials_key unique (batch_id, worker_id, credential_type, credential_number)
);
comment on table raw.hr_credentials is 'HR export credentials.csv: licences and certifications per worker per daily snapshot.';

create table raw.hr_training ({_BATCH}
    worker_id       text        not null,
    course_code     text        not null,
    completed_date  date        not null,
    loaded_at       timestamptz not null default now(),
    constraint hr_training_key unique (batch_id, worker_id, course_code, completed_date)
);
comment on table raw.hr_training is 'HR export training.csv: completed courses per worker per daily snapshot.';

create table raw.hr_exclusion_screening ({_BATCH}
    worker_id       text        not null,
    screened_date   date        not null,
    list            text        not null,
    result          text        not null,
    loaded_at       timestamptz not null default now(),
    constraint hr_exclusion_screening_key unique (batch_id, worker_id, screened_date, list)
);
comment on table raw.hr_exclusion_screening is 'HR export exclusion_screening.csv: OIG LEIE / SAM screenings per worker per daily snapshot.';

create table raw.hr_positions ({_BATCH}
    cost_center     text        not null,
    job_code        text        not null,
    budgeted_fte    numeric(8,2) not null,
    effective_date  date        not null,
    loaded_at       timestamptz not null default now(),
    constraint hr_positions_key unique (batch_id, cost_center, job_code, effective_date)
);
comment on table raw.hr_positions is 'HR export positions.csv: budgeted FTEs per cost center and job code per daily snapshot.';

create table raw.tk_punches (
    batch_id        uuid        not null,
    punch_id        bigint      not null,
    worker_id       text        not null,
    punch_type      text        not null check (punch_type in ('IN', 'OUT', 'MEAL_OUT', 'MEAL_IN')),
    punch_ts        timestamptz not null,
    cost_center     text        not null,
    job_code        text        not null,
    source          text        not null,
    updated_at      timestamptz not null,
    deleted         boolean     not null,
    loaded_at       timestamptz not null default now(),
    constraint tk_punches_version_key unique (punch_id, updated_at)
);
comment on table raw.tk_punches is 'Timekeeping tk.punch: every version of every punch the extract has read (one row per punch_id and updated_at).';
create index tk_punches_loaded_at on raw.tk_punches (loaded_at);
create index tk_punches_updated_at on raw.tk_punches (updated_at);

create table raw.tk_pay_lines (
    batch_id        uuid        not null,
    pay_line_id     bigint      not null,
    worker_id       text        not null,
    work_date       date        not null,
    cost_center     text        not null,
    job_code        text        not null,
    pay_code        text        not null,
    hours           numeric(6,2) not null,
    amount          numeric(12,2),
    updated_at      timestamptz not null,
    deleted         boolean     not null,
    loaded_at       timestamptz not null default now(),
    constraint tk_pay_lines_version_key unique (pay_line_id, updated_at)
);
comment on table raw.tk_pay_lines is 'Timekeeping tk.pay_line: every version of every pay line the extract has read (one row per pay_line_id and updated_at).';
create index tk_pay_lines_loaded_at on raw.tk_pay_lines (loaded_at);
create index tk_pay_lines_updated_at on raw.tk_pay_lines (updated_at);

alter table audit.refused_files drop constraint refused_files_kind_check;
alter table audit.refused_files add constraint refused_files_kind_check
    check (kind in ('symlink', 'outside_landing', 'special_file', 'folder', 'bad_name', 'unknown_file'));
"""

TABLES = (
    "raw.hr_workers",
    "raw.hr_credentials",
    "raw.hr_training",
    "raw.hr_exclusion_screening",
    "raw.hr_positions",
    "raw.tk_punches",
    "raw.tk_pay_lines",
)


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    conn.execute(DDL)
    roles = {
        r
        for (r,) in conn.execute(
            "select rolname from pg_roles where rolname = any(%s)",
            (["healthops_loader", "healthops_transformer", "healthops_checker"],),
        )
    }
    tables = ", ".join(TABLES)
    if "healthops_loader" in roles:
        conn.execute(f"grant select, insert on {tables} to healthops_loader")
    for role in ("healthops_transformer", "healthops_checker"):
        if role in roles:
            conn.execute(f"grant select on {tables} to {role}")


def downgrade() -> None:
    raise NotImplementedError("0007_workforce_raw is not reversed: its tables hold loaded source data")
