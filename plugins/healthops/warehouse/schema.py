"""Schemas, roles and the tables healthops itself writes (raw, audit, reporting).

dbt owns staging, intermediate and marts. Everything here is idempotent
(``create ... if not exists``) and runs at the start of every load.
"""
from __future__ import annotations

import logging
import os
import secrets

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit", "reporting")

# Least-privilege roles (DESIGN.md "Schemas and roles"). Created where the
# connecting user may create roles (the embedded warehouse); elsewhere a DBA does.
ROLES = ("healthops_loader", "healthops_transformer", "healthops_reporter", "healthops_auditor")

DDL = """
create table if not exists raw.adt_messages (
    batch_id            uuid        not null,
    received_date       date        not null,
    file_path           text        not null,
    message_index       integer     not null,
    control_id          text        not null,
    sending_facility    text        not null,
    message_type        text        not null,
    trigger_event       text        not null,
    hl7_version         text,
    message_ts          timestamptz not null,
    recorded_ts         timestamptz,
    event_occurred_ts   timestamptz,
    event_ts            timestamptz not null,
    patient_class       text,
    patient_type        text,
    unit                text,
    room                text,
    bed                 text,
    location_facility   text,
    prior_unit          text,
    prior_room          text,
    prior_bed           text,
    visit_number        text        not null,
    mrn                 text,
    patient_name        text,
    birth_date          date,
    sex                 text,
    admit_ts            timestamptz,
    discharge_ts        timestamptz,
    raw_text            text        not null,
    loaded_at           timestamptz not null default now(),
    -- SOURCES.md: the same MSH-10 from the same MSH-4 is loaded once.
    constraint adt_messages_control_id_key unique (sending_facility, control_id)
);
comment on table raw.adt_messages is 'HL7 v2 ADT messages as received, one row per usable message (PHI: mrn, patient_name, birth_date, sex, raw_text).';

-- The secret salt of the patient pseudonym (patient_key = sha256(salt | facility | MRN)).
-- Generated once per warehouse (or taken from HEALTHOPS_PSEUDONYM_SALT on first use) and
-- kept beside the PHI it protects, so it never appears in compiled SQL, logs or marts.
create table if not exists raw.pseudonym_salt (
    salt        text        not null,
    created_at  timestamptz not null default now(),
    singleton   boolean     primary key default true check (singleton)
);

create table if not exists raw.rejected (
    batch_id        uuid        not null,
    source          text        not null,
    received_date   date        not null,
    file_path       text        not null,
    message_index   integer     not null,
    control_id      text,
    reason          text        not null,
    raw_text        text        not null,
    rejected_at     timestamptz not null default now()
);
comment on table raw.rejected is 'Quarantine: every record that could not be loaded, with the reason and the original text. Nothing is dropped.';

create table if not exists audit.load_batches (
    batch_id        uuid        primary key,
    source          text        not null,
    received_date   date        not null,
    file_path       text        not null,
    file_sha256     text        not null,
    file_bytes      bigint      not null,
    records_in      integer     not null,
    records_loaded  integer     not null,
    records_rejected integer    not null,
    dag_run_id      text,
    loaded_at       timestamptz not null default now(),
    constraint load_batches_file_key unique (source, file_path, file_sha256),
    constraint load_batches_reconcile check (records_in = records_loaded + records_rejected)
);
comment on table audit.load_batches is 'One row per landed file loaded: its hash and counts; in = loaded + rejected always.';

create table if not exists audit.validation_runs (
    validation_run_id uuid       primary key,
    suite_name      text        not null,
    data_asset      text        not null,
    logical_date    date        not null,
    dag_run_id      text,
    code_version    text        not null,
    success         boolean     not null,
    evaluated_expectations integer not null,
    successful_expectations integer not null,
    run_at          timestamptz not null default now(),
    gx_result       jsonb       not null
);

create table if not exists audit.rule_results (
    validation_run_id uuid      not null references audit.validation_runs,
    rule_id         text        not null,
    expectation_type text       not null,
    column_name     text,
    severity        text        not null,
    success         boolean     not null,
    rows_evaluated  bigint,
    rows_violating  bigint,
    violating_share numeric,
    detail          jsonb       not null,
    primary key (validation_run_id, rule_id)
);

create table if not exists reporting.deliveries (
    report_id       text        not null,
    period          text        not null,
    recipient       text        not null,
    content_sha256  text        not null,
    message_id      text        not null,
    subject         text        not null,
    sent_at         timestamptz not null default now(),
    dag_run_id      text,
    primary key (report_id, period, recipient, content_sha256)
);
comment on table reporting.deliveries is 'Delivery ledger: a report, period, recipient and content version is sent once.';
"""


def ensure_schema(conn) -> None:
    """Create schemas, roles (where allowed) and healthops-owned tables. ``conn`` is a
    psycopg 3 connection; the caller commits."""
    # Serialize concurrent first runs (two tasks creating the same schema race).
    conn.execute("select pg_advisory_xact_lock(hashtext('healthops.ensure_schema'))")
    for schema in SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")
    conn.execute(DDL)
    conn.execute("insert into raw.pseudonym_salt (salt) values (%s) on conflict do nothing",
                 (os.environ.get("HEALTHOPS_PSEUDONYM_SALT") or secrets.token_hex(32),))
    _ensure_roles(conn)


def _ensure_roles(conn) -> None:
    can = conn.execute(
        "select rolcreaterole or rolsuper from pg_roles where rolname = current_user"
    ).fetchone()
    if not (can and can[0]):
        log.info("connecting role cannot create roles; leaving role setup to the DBA")
        return
    for role in ROLES:
        conn.execute(
            f"do $$ begin if not exists (select 1 from pg_roles where rolname = '{role}') "
            f"then create role {role} nologin; end if; end $$"
        )
    conn.execute("grant usage on schema raw, audit to healthops_loader")
    conn.execute("grant insert, select on raw.adt_messages, raw.rejected to healthops_loader")
    conn.execute("grant insert, select on audit.load_batches to healthops_loader")
    conn.execute("grant usage on schema raw to healthops_transformer")
    conn.execute("grant select on all tables in schema raw to healthops_transformer")  # incl. the salt
    conn.execute("grant usage, create on schema staging, intermediate, marts to healthops_transformer")
    conn.execute("grant usage on schema marts, reporting to healthops_reporter")
    conn.execute("grant select, insert on reporting.deliveries to healthops_reporter")
    conn.execute("grant usage on schema audit to healthops_auditor")
    conn.execute("grant select on all tables in schema audit to healthops_auditor")
