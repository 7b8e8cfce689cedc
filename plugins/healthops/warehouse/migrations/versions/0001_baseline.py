"""Baseline: the raw, audit and reporting tables, audit triggers, salt, roles and grants.

Everything healthops created outside dbt when versioned migrations began (healthops
0.1): the raw, audit and reporting tables with their comments, generated columns,
constraints and indexes; the audit hash-chain and append-only triggers and the
findings view; the pseudonym salt; the least-privilege roles and their grants.

The one revision that must also *adopt* a warehouse: one set up by a healthops from
before versioned migrations (``ensure_schema``, run by every load) has these objects,
perhaps an older shape of them, and no version table. So this revision is written
in the forms that code used (``create ... if not exists``, ``add column if not
exists``, triggers created when missing) and does what it did on upgrade (adds the
columns of later releases, seals audit rows written before the hash chain): on such
a warehouse it adds what is missing and keeps every row. Later revisions are
ordinary migrations that run once.

Frozen: the SQL below is the baseline's, not the running code's. A change to a
table (or to ``healthops.warehouse.schema.AUDIT_CHAIN``: a new hashed column means
new chain functions) is a new revision.

Revision ID: 0001_baseline
Revises: -
"""

from __future__ import annotations

import logging
import os
import secrets

from alembic import op

from healthops.warehouse.schema import AUDIT_CHAIN_V1, CHAIN_LOCK_KEY, GENESIS_HASH, ChainedTable, row_hash_sql

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("healthops.warehouse.migrations")

SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit", "reporting")

# Least-privilege roles (docs/architecture.md#schemas-and-roles). Created where the
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
    -- docs/sources.md#duplicates-and-resends: the same MSH-10 from the same MSH-4 is loaded once.
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
-- The reason's kind without the values it may quote from the message (which can be
-- PHI): the text before the first ':', quoted values and bracketed notes removed.
-- Reports read this column, never reason or raw_text (report_templates/catalog.yml phi).
alter table raw.rejected add column if not exists reason_category text generated always as (
    coalesce(nullif(rtrim(btrim(regexp_replace(regexp_replace(regexp_replace(
        split_part(reason, ':', 1), '\\s*\\([^()]*\\)', '', 'g'), '\\s*''[^'']*''', '', 'g'), '\\s+', ' ', 'g')),
        ' ;,.'), ''), 'unspecified')) stored;

-- Resent messages: the same message (MSH-4 + MSH-10, the same text) received again,
-- after an interface engine's timeout or reconnect. Loaded once; each copy kept here
-- with the batch and message that hold the loaded one. Not a rejection: nothing is lost.
create table if not exists raw.duplicates (
    batch_id            uuid        not null,
    source              text        not null,
    received_date       date        not null,
    file_path           text        not null,
    message_index       integer     not null,
    sending_facility    text        not null,
    control_id          text        not null,
    first_batch_id      uuid        not null,
    first_message_index integer     not null,
    raw_text            text        not null,
    detected_at         timestamptz not null default now()
);
comment on table raw.duplicates is 'Resent copies of a message already loaded (same MSH-4, MSH-10 and text): kept, counted, loaded once (PHI: raw_text).';

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
    records_duplicate integer   not null default 0,
    dag_run_id      text,
    loaded_at       timestamptz not null default now(),
    constraint load_batches_file_key unique (source, file_path, file_sha256),
    constraint load_batches_reconcile_dup check (records_in = records_loaded + records_rejected + records_duplicate)
);
-- Resent messages are counted apart from rejections: in = loaded + rejected + duplicate
-- (a warehouse from before records_duplicate gets the column and the new check).
alter table audit.load_batches add column if not exists records_duplicate integer not null default 0;
do $$ begin
    if not exists (select 1 from pg_constraint where conname = 'load_batches_reconcile_dup'
                   and conrelid = 'audit.load_batches'::regclass) then
        alter table audit.load_batches drop constraint if exists load_batches_reconcile;
        alter table audit.load_batches add constraint load_batches_reconcile_dup
            check (records_in = records_loaded + records_rejected + records_duplicate);
    end if;
end $$;
comment on table audit.load_batches is 'One row per landed file loaded: its hash and counts; in = loaded + rejected + duplicate always.';

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
-- what was sent (the figures, so a revision can say which changed), which revision
-- of the period it was (0 = the first report), and the recipient's filter
alter table reporting.deliveries add column if not exists figures jsonb;
alter table reporting.deliveries add column if not exists revision integer not null default 0;
alter table reporting.deliveries add column if not exists recipient_filter jsonb;

-- The archive: every message exactly as handed to the SMTP server (PDF, CSV and
-- charts included), so it can be listed, read and resent.
create table if not exists reporting.messages (
    message_id      text        primary key,
    report_id       text        not null,
    period          text        not null,
    recipient       text        not null,
    content_sha256  text        not null,
    revision        integer     not null default 0,
    subject         text        not null,
    eml             bytea       not null,
    eml_sha256      text        not null,
    created_at      timestamptz not null default now()
);
-- 'archived': rendered and kept, never emailed (a history period of a backfill; it can
-- still be emailed with `healthops reports resend`).
alter table reporting.messages add column if not exists delivery text not null default 'sent'
    check (delivery in ('sent', 'archived'));
alter table reporting.messages add column if not exists dag_run_id text;
create table if not exists reporting.resends (
    resend_no       bigint      generated always as identity primary key,
    message_id      text        not null references reporting.messages,
    recipient       text        not null,
    resent_by       text,
    resent_at       timestamptz not null default now()
);
"""

# The audit tables' hash chains as of this revision (healthops.warehouse.schema
# explains the chain and keeps each revision's columns: AUDIT_CHAIN_V1 is this one's).
AUDIT_CHAIN = AUDIT_CHAIN_V1

AUDIT_DDL = """
alter table audit.validation_runs add column if not exists rules_file text;
alter table audit.validation_runs add column if not exists rules_sha256 text;

-- status is the verdict against the rule's threshold (GX's success), or 'error' when
-- the rule could not be evaluated; the catalog fields are as reviewed for this run.
alter table audit.rule_results add column if not exists status text
    check (status in ('passed', 'failed', 'error'));
alter table audit.rule_results add column if not exists threshold numeric;
alter table audit.rule_results add column if not exists description text;
alter table audit.rule_results add column if not exists kahn_category text;
alter table audit.rule_results add column if not exists citation text;
alter table audit.rule_results add column if not exists domain text;
alter table audit.rule_results add column if not exists owner text;
-- the drill-down kept in audit.rule_violations: where the keys came from, how many,
-- and the most that would have been kept
alter table audit.rule_results add column if not exists evidence text
    check (evidence in ('rows_query', 'gx_sample'));
-- ... or dbt's own figures for a source freshness rule (healthops.quality.freshness)
alter table audit.rule_results drop constraint if exists rule_results_evidence_check;
alter table audit.rule_results add constraint rule_results_evidence_check
    check (evidence in ('rows_query', 'gx_sample', 'dbt_freshness'));
alter table audit.rule_results add column if not exists violations_kept integer;
alter table audit.rule_results add column if not exists violations_cap integer;

create table if not exists audit.rule_violations (
    validation_run_id uuid      not null,
    rule_id         text        not null,
    violation_no    integer     not null,
    keys            jsonb       not null,
    primary key (validation_run_id, rule_id, violation_no),
    foreign key (validation_run_id, rule_id) references audit.rule_results
);
comment on table audit.rule_violations is 'The rows behind a failed rule: key and code columns only (never names, MRNs or birth dates), at most rule_results.violations_cap per rule.';

create table if not exists audit.reviews (
    review_no       bigint      generated always as identity primary key,
    finding_id      text        not null,
    validation_run_id uuid      not null,
    rule_id         text        not null,
    reviewed_by     text        not null check (btrim(reviewed_by) <> ''),
    note            text        not null check (btrim(note) <> ''),
    reviewed_at     timestamptz not null default now(),
    foreign key (validation_run_id, rule_id) references audit.rule_results
);
comment on table audit.reviews is 'Auditor reviews of findings; a finding is open until it has one.';
"""
for _t in AUDIT_CHAIN:
    AUDIT_DDL += f"""
alter table {_t.qualified} add column if not exists chain_seq bigint;
alter table {_t.qualified} add column if not exists prev_hash text;
alter table {_t.qualified} add column if not exists row_hash text;
create unique index if not exists {_t.name}_chain_seq_key on {_t.qualified} (chain_seq);
create or replace function audit.chain_{_t.name}() returns trigger language plpgsql as $fn$
declare
    last_seq  bigint;
    last_hash text;
begin
    perform pg_advisory_xact_lock({CHAIN_LOCK_KEY});
    select t.chain_seq, t.row_hash into last_seq, last_hash
    from {_t.qualified} t where t.chain_seq is not null order by t.chain_seq desc limit 1;
    NEW.chain_seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '{GENESIS_HASH}');
    NEW.row_hash := {row_hash_sql(_t, "NEW", "NEW.prev_hash")};
    return NEW;
end $fn$;
"""

AUDIT_DDL += """
-- Rows are never changed or removed. The one exception is sealing a row written
-- before the chain existed (chain_seq still null), once, by this migration.
create or replace function audit.refuse_change() returns trigger language plpgsql as $fn$
begin
    if tg_level = 'ROW' and tg_op = 'UPDATE' then
        if OLD.chain_seq is null then
            return NEW;
        end if;
    end if;
    raise exception 'audit.% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege',
              hint = 'audit history is kept as written; record a review instead';
end $fn$;

-- A finding is a rule result that did not pass (one per validation run and rule),
-- open until reviewed. Its id comes from the result row's place in the chain.
create or replace view audit.findings as
select 'F-' || lpad(r.chain_seq::text, greatest(6, length(r.chain_seq::text)), '0') as finding_id,
       r.validation_run_id, r.rule_id, v.suite_name, v.data_asset, v.logical_date, v.dag_run_id, v.run_at,
       r.severity, r.status as result_status, r.rows_evaluated, r.rows_violating, r.violating_share,
       r.threshold, coalesce(r.description, r.expectation_type) as description, r.kahn_category,
       r.citation, r.owner, r.evidence, r.violations_kept, r.violations_cap,
       case when w.reviews > 0 then 'reviewed' else 'open' end as status,
       coalesce(w.reviews, 0) as reviews, w.last_reviewed_by, w.last_reviewed_at, r.chain_seq
from audit.rule_results r
join audit.validation_runs v using (validation_run_id)
left join lateral (
    select count(*) as reviews,
           (array_agg(x.reviewed_by order by x.review_no desc))[1] as last_reviewed_by,
           max(x.reviewed_at) as last_reviewed_at
    from audit.reviews x
    where x.validation_run_id = r.validation_run_id and x.rule_id = r.rule_id
    having count(*) > 0
) w on true
where r.status is distinct from 'passed' and (r.status is not null or not r.success);
"""


def upgrade() -> None:
    # The psycopg 3 connection under Alembic's, in the same transaction: the SQL above
    # runs as written (several statements at once, '%' in PL/pgSQL messages).
    conn = op.get_bind().connection.driver_connection
    # A healthops from before versioned migrations still running (its loads ran
    # ensure_schema) waits for this, and finds nothing left to do.
    conn.execute("select pg_advisory_xact_lock(hashtext('healthops.ensure_schema'))")
    for schema in SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")
    conn.execute(DDL)
    _audit_chain(conn)
    # The pseudonym salt: generated once per warehouse, or HEALTHOPS_PSEUDONYM_SALT when
    # set at the first migration. Kept when the warehouse has one.
    conn.execute(
        "insert into raw.pseudonym_salt (salt) values (%s) on conflict do nothing",
        (os.environ.get("HEALTHOPS_PSEUDONYM_SALT") or secrets.token_hex(32),),
    )
    _roles(conn)


def downgrade() -> None:
    # Undoing the baseline would drop the raw feed (PHI), the audit history and the
    # delivery ledger: never what anyone wants from a migration tool.
    raise NotImplementedError("the healthops baseline is not reversible: drop the database instead")


def _audit_chain(conn) -> None:
    conn.execute(AUDIT_DDL)
    for t in AUDIT_CHAIN:
        _seal_legacy_rows(conn, t)
        for trigger, ddl in (
            (f"{t.name}_chain", f"before insert on {t.qualified} for each row execute function audit.chain_{t.name}()"),
            (
                f"{t.name}_append_only",
                f"before update or delete on {t.qualified} for each row execute function audit.refuse_change()",
            ),
            (
                f"{t.name}_no_truncate",
                f"before truncate on {t.qualified} for each statement execute function audit.refuse_change()",
            ),
        ):
            conn.execute(
                f"do $$ begin if not exists (select 1 from pg_trigger where tgname = '{trigger}' "
                f"and tgrelid = '{t.qualified}'::regclass) then create trigger {trigger} {ddl}; "
                f"end if; end $$"
            )
    # The code before versioned migrations marked the audit schema with the version of
    # its audit DDL (to skip re-running it on every load); the version table says it now.
    conn.execute(
        "do $$ begin if obj_description('audit'::regnamespace, 'pg_namespace') like "
        "'healthops audit chain %' then comment on schema audit is null; end if; end $$"
    )


def _seal_legacy_rows(conn, t: ChainedTable) -> None:
    """Chain rows written before the hash chain (chain columns null), in the order they
    were written, then make the chain columns mandatory. Once per table."""
    (sealed,) = conn.execute(
        "select attnotnull from pg_attribute where attrelid = %s::regclass and attname = 'chain_seq'", (t.qualified,)
    ).fetchone()
    if sealed:
        return
    if t.name == "rule_results":  # rows from before status existed
        conn.execute(
            "update audit.rule_results set status = case when success then 'passed' "
            "else 'failed' end where status is null and chain_seq is null"
        )
    last = conn.execute(
        f"select chain_seq, row_hash from {t.qualified} where chain_seq is not null order by chain_seq desc limit 1"
    ).fetchone()
    seq, prev = last or (0, GENESIS_HASH)
    keys = ", ".join(f"t.{k}" for k in t.key)
    legacy = conn.execute(
        f"select {keys} from {t.qualified} t where t.chain_seq is null order by {t.legacy_order or keys}"
    ).fetchall()
    where = " and ".join(f"t.{k} = %s" for k in t.key)
    for key in legacy:
        seq += 1
        (prev,) = conn.execute(
            f"update {t.qualified} t set chain_seq = %s, prev_hash = %s, "
            f"row_hash = {row_hash_sql(t, 't', '%s::text')} where {where} returning t.row_hash",
            (seq, prev, prev, *key),
        ).fetchone()
    if legacy:
        log.info("sealed %d audit row(s) of %s written before the hash chain", len(legacy), t.qualified)
    for col in ("chain_seq", "prev_hash", "row_hash"):
        conn.execute(f"alter table {t.qualified} alter column {col} set not null")


def _roles(conn) -> None:
    can = conn.execute("select rolcreaterole or rolsuper from pg_roles where rolname = current_user").fetchone()
    if not (can and can[0]):
        log.warning(
            "the warehouse user cannot create roles: the healthops roles and grants are left to the DBA "
            "(docs/architecture.md#schemas-and-roles)"
        )
        return
    for role in ROLES:
        conn.execute(
            f"do $$ begin if not exists (select 1 from pg_roles where rolname = '{role}') "
            f"then create role {role} nologin; end if; end $$"
        )
    conn.execute("grant usage on schema raw, audit to healthops_loader")
    conn.execute("grant insert, select on raw.adt_messages, raw.rejected, raw.duplicates to healthops_loader")
    conn.execute("grant insert, select on audit.load_batches to healthops_loader")
    conn.execute("grant usage on schema raw to healthops_transformer")
    conn.execute("grant select on all tables in schema raw to healthops_transformer")  # incl. the salt
    conn.execute("grant usage, create on schema staging, intermediate, marts to healthops_transformer")
    conn.execute("grant usage on schema marts, reporting to healthops_reporter")
    conn.execute(
        "grant select, insert on reporting.deliveries, reporting.messages, reporting.resends to healthops_reporter"
    )
    conn.execute("grant usage on schema audit to healthops_auditor")
    conn.execute("grant select on all tables in schema audit to healthops_auditor")
    # Audit history is append-only for every role (the owner is held by the triggers).
    chained = ", ".join(f"audit.{t.name}" for t in AUDIT_CHAIN)
    conn.execute(f"revoke update, delete, truncate on {chained} from public, {', '.join(ROLES)}")
    conn.execute("grant insert on audit.reviews to healthops_auditor")  # auditors record reviews
    # Every task checks the warehouse's revision before it writes (healthops.warehouse.migrate).
    conn.execute(f"grant usage on schema healthops to {', '.join(ROLES)}")
    conn.execute(f"grant select on healthops.alembic_version to {', '.join(ROLES)}")
