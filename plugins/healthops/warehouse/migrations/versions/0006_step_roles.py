"""Least privilege in use: each pipeline step logs in as its own role.

The baseline created four ``NOLOGIN`` roles nothing used, with grants that predate the
reporting layer. This revision adds ``healthops_checker`` (the quality checks), makes
sure no step role holds an attribute that would let it around the grants (superuser,
createrole, createdb, replication, bypassrls) and gives each role what its step does,
nothing more (docs/architecture.md#schemas-and-roles):

- loader: insert and read ``raw``'s loaded, rejected and duplicate messages and the
  load's audit rows (batches, refused files); not the pseudonym salt;
- transformer (dbt): read ``raw`` (the salt included) and ``audit`` (the quality and
  governance models read the results), and the delivery ledger (the governance
  report counts what went out); create in ``staging``, ``intermediate``, ``marts``
  and ``rpt``, which this revision creates so that dbt never needs to create a schema
  (the right to create schemas would let it make any). dbt gives read access on what
  it builds itself (``grants`` in dbt_project.yml); what the owner made in those
  schemas (an earlier release's dbt, a hand-made fix) the same roles read, by
  default privileges;
- checker: read ``raw``, ``audit`` and what dbt built (its grants), insert the
  validation runs, rule results and violations;
- reporter: the ``rpt`` views (dbt's grants), and insert, read and update the
  delivery ledger; never ``raw``, ``staging``, ``intermediate`` or ``marts``;
- auditor: read ``audit``, ``reporting`` and ``rpt`` (dbt's grants), insert reviews;
  never ``raw``.

None of them owns a table, so none can disable a trigger or drop one, and setting
``session_replication_role`` is for superusers. dbt relations built before this
revision (by the owner) are handed to the transformer, which must replace them.

Which password each role logs in with is not a migration: ``migrate`` sets it after
the revisions, every time, from the deployment's settings (``healthops.warehouse.roles``).

Revision ID: 0006_step_roles
Revises: 0005_phi_guard
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0006_step_roles"
down_revision = "0005_phi_guard"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

# The names as of this revision (healthops.warehouse.roles.STEPS may grow later).
ROLES = ("healthops_loader", "healthops_transformer", "healthops_checker", "healthops_reporter", "healthops_auditor")
DBT_SCHEMAS = ("staging", "intermediate", "marts", "rpt")

GRANTS = """
-- every step checks the warehouse's revision first
grant usage on schema healthops to {all};
grant select on healthops.alembic_version to {all};

-- loader
grant usage on schema raw, audit to healthops_loader;
grant select, insert on raw.adt_messages, raw.rejected, raw.duplicates to healthops_loader;
grant select, insert on audit.load_batches, audit.refused_files to healthops_loader;

-- transformer (dbt)
grant usage on schema raw, audit, reporting to healthops_transformer;
grant select on all tables in schema raw to healthops_transformer;
grant select on all tables in schema audit to healthops_transformer;
grant select on all tables in schema reporting to healthops_transformer;
grant usage, create on schema staging, intermediate, marts, rpt to healthops_transformer;

-- checker
grant usage on schema raw, audit, staging, intermediate, marts to healthops_checker;
grant select on all tables in schema raw to healthops_checker;
grant select on all tables in schema audit to healthops_checker;
grant insert on audit.validation_runs, audit.rule_results, audit.rule_violations to healthops_checker;
-- what the owner made in dbt's schemas (an earlier release's dbt, a hand-made fix)
grant select on all tables in schema staging, intermediate, marts to healthops_checker;
alter default privileges in schema staging, intermediate, marts grant select on tables to healthops_checker;

-- reporter
grant usage on schema rpt, reporting to healthops_reporter;
grant select, insert on reporting.deliveries, reporting.messages, reporting.resends to healthops_reporter;
grant update on reporting.deliveries, reporting.resends to healthops_reporter;
grant usage on sequence reporting.resends_resend_no_seq to healthops_reporter;
grant execute on function reporting.phi_identifier_matches(text[], date[]) to healthops_reporter;
grant select on all tables in schema rpt to healthops_reporter;
alter default privileges in schema rpt grant select on tables to healthops_reporter;

-- auditor
grant usage on schema audit, reporting, rpt to healthops_auditor;
grant select on all tables in schema audit to healthops_auditor;
grant select on all tables in schema reporting to healthops_auditor;
grant insert on audit.reviews to healthops_auditor;
grant usage on sequence audit.reviews_review_no_seq to healthops_auditor;
grant execute on function reporting.phi_identifier_matches(text[], date[]) to healthops_auditor;  -- alerts' PHI scan
grant select on all tables in schema rpt to healthops_auditor;
alter default privileges in schema rpt grant select on tables to healthops_auditor;
"""

# What the baseline granted that a step no longer needs: the reporter read marts
# (reports now read only the rpt views).
REVOKES = """
revoke all on schema marts from healthops_reporter;
revoke all on all tables in schema marts from healthops_reporter;
"""


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    for schema in DBT_SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")
    can = conn.execute("select rolcreaterole or rolsuper from pg_roles where rolname = current_user").fetchone()
    if can and can[0]:
        for role in ROLES:
            conn.execute(
                f"do $$ begin if not exists (select 1 from pg_roles where rolname = '{role}') "
                f"then create role {role} nologin; end if; end $$"
            )
            conn.execute(f"alter role {role} nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit")
    existing = {r for (r,) in conn.execute("select rolname from pg_roles where rolname = any(%s)", (list(ROLES),))}
    if existing != set(ROLES):
        # A warehouse whose user may not create roles: its DBA creates them
        # (docs/architecture.md#schemas-and-roles); until then nothing can be granted.
        log.warning(
            "roles %s do not exist and the warehouse user cannot create them: the grants are left to the DBA",
            ", ".join(sorted(set(ROLES) - existing)),
        )
        return
    conn.execute(GRANTS.format(all=", ".join(ROLES)))
    conn.execute(REVOKES)
    _hand_dbt_relations_to_transformer(conn)


def _hand_dbt_relations_to_transformer(conn) -> None:
    """dbt replaces what it built (drop, rename): only a relation's owner may. Relations
    built by the owner before this revision become the transformer's."""
    rows = conn.execute(
        """select n.nspname, c.relname, c.relkind
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'p')
              and pg_get_userbyid(c.relowner) <> 'healthops_transformer'""",
        (list(DBT_SCHEMAS),),
    ).fetchall()
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    for schema, name, kind in rows:
        conn.execute(f'alter {kinds[kind]} "{schema}"."{name}" owner to healthops_transformer')
    if rows:
        log.info("handed %d dbt relation(s) built before the step roles to healthops_transformer", len(rows))


def downgrade() -> None:
    raise NotImplementedError("0006_step_roles is not reversed: going back would widen what each step may do")
