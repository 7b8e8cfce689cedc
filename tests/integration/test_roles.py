"""Least privilege in use (docs/architecture.md#schemas-and-roles): each step logs in as
its own role, and each role can do its step's work and nothing else.

One warehouse for the module, as an existing deployment has it: migrated to the revision
before the step roles, dbt relations built by the owner, then migrated to head (which
hands them to the transformer) and built again by the nightly build, as the transformer.
Every check then logs in with the role's own URL (``healthops.warehouse.roles.step_url``),
exactly as the steps do.
"""

from __future__ import annotations

import psycopg
import pytest

from healthops.errors import ConfigurationError
from healthops.warehouse import roles
from healthops.warehouse.connection import libpq_url
from healthops.warehouse.dbt_runner import nightly_build
from healthops.warehouse.migrate import migrate

import db_names

PIPELINE_ROLES = [roles.role_name(s) for s in roles.STEPS]
RAW_TABLES = ["raw.adt_messages", "raw.rejected", "raw.duplicates", "raw.pseudonym_salt"]
AUDIT_TABLES = [
    "audit.load_batches",
    "audit.refused_files",
    "audit.validation_runs",
    "audit.rule_results",
    "audit.rule_violations",
    "audit.reviews",
]
BEFORE_ROLES = "0005_phi_guard"


@pytest.fixture(scope="module")
def warehouse(pg_server):
    url = db_names.create(pg_server)
    try:
        migrate(url, BEFORE_ROLES)
        # What a deployment of the previous release has: dbt relations the owner built
        # (made by hand here: today's project grants to a role that release did not have).
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("create table marts.dim_units (unit_code text)")
            conn.execute("create view staging.stg_adt__messages as select 1 as x")
        result = migrate(url)
        assert all(v == "password set" for v in result.logins.values()), result.logins
        nightly_build(url)  # as the transformer: it must be able to replace the owner's old relations
        yield url
    finally:
        db_names.drop(pg_server, db_names.name_of(url))


def login(url: str, step: str):
    return psycopg.connect(libpq_url(roles.step_url(url, step)), autocommit=True)


def refused(conn, statement: str) -> bool:
    """Whether PostgreSQL refuses ``statement`` for lack of a privilege (or ownership)."""
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def relations(url: str, schema: str, kinds=("r", "v")) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            """select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = %s and c.relkind = any(%s) order by 1""",
            (schema, list(kinds)),
        ).fetchall()
    return [r for (r,) in rows]


def test_each_step_logs_in_as_its_role(warehouse):
    for step in roles.STEPS:
        with login(warehouse, step) as conn:
            user, superuser = conn.execute(
                "select current_user, rolsuper from pg_roles where rolname = current_user"
            ).fetchone()
            assert user == f"healthops_{step}" and not superuser


def test_no_pipeline_role_has_an_attribute_around_the_grants(warehouse):
    with psycopg.connect(libpq_url(warehouse)) as conn:
        rows = conn.execute(
            """select rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
               from pg_roles where rolname = any(%s)""",
            (PIPELINE_ROLES,),
        ).fetchall()
    assert {r[0] for r in rows} == set(PIPELINE_ROLES)
    assert all(not any(r[1:]) for r in rows), rows


def test_no_pipeline_role_can_disable_a_trigger_or_the_replication_role(warehouse):
    """The append-only triggers hold for every step: none owns an audit table (only an
    owner may disable a trigger, drop or alter the table) and none may set
    session_replication_role = replica (which skips triggers)."""
    with psycopg.connect(libpq_url(warehouse)) as conn:
        owners = dict(
            conn.execute(
                "select schemaname || '.' || tablename, tableowner from pg_tables where schemaname in ('raw', 'audit')"
            ).fetchall()
        )
    assert not set(owners.values()) & set(PIPELINE_ROLES), owners
    for step in roles.STEPS:
        with login(warehouse, step) as conn:
            for table in AUDIT_TABLES:
                assert refused(conn, f"alter table {table} disable trigger all"), (step, table)
            assert refused(conn, "alter table raw.adt_messages disable trigger all"), step
            assert refused(conn, "set session_replication_role = replica"), step
            for table in AUDIT_TABLES:
                assert refused(conn, f"delete from {table}"), (step, table)
                assert refused(conn, f"truncate {table}"), (step, table)


def test_the_reporter_reads_the_reporting_layer_and_nothing_before_it(warehouse):
    rpt = relations(warehouse, "rpt")
    assert len(rpt) > 10
    with login(warehouse, "reporter") as conn:
        for view in rpt:
            conn.execute(f"select * from {view} limit 1")
        for schema in ("raw", "staging", "intermediate", "marts"):
            for rel in relations(warehouse, schema):
                assert refused(conn, f"select * from {rel} limit 1"), rel
        # its own ledger: it records intents and sends
        conn.execute("select count(*) from reporting.deliveries")
        assert refused(conn, "select * from audit.rule_results limit 1")


def test_the_reporting_layer_has_no_phi_column(warehouse):
    """What the reporter can read: every column of every rpt view is one dbt's yml marks
    ``phi: false`` (the reader's allow-list)."""
    from healthops.reports.reader import reporting_models

    specs = reporting_models()
    with psycopg.connect(libpq_url(warehouse)) as conn:
        cols = conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'rpt'"
        ).fetchall()
    for view, col in cols:
        assert specs[view].columns.get(col) is False, f"rpt.{view}.{col} is not marked phi: false"


def test_the_auditor_reads_audit_and_reports_never_raw(warehouse):
    with login(warehouse, "auditor") as conn:
        for table in AUDIT_TABLES:
            conn.execute(f"select count(*) from {table}")
        conn.execute("select count(*) from audit.findings")
        conn.execute("select count(*) from reporting.deliveries")
        for view in relations(warehouse, "rpt"):
            conn.execute(f"select * from {view} limit 1")
        for table in RAW_TABLES:
            assert refused(conn, f"select * from {table} limit 1"), table
        for schema in ("staging", "intermediate", "marts"):
            for rel in relations(warehouse, schema):
                assert refused(conn, f"select * from {rel} limit 1"), rel


def test_the_loader_cannot_touch_what_dbt_built(warehouse):
    marts = relations(warehouse, "marts", kinds=("r",))
    assert marts
    with login(warehouse, "loader") as conn:
        conn.execute("select count(*) from raw.adt_messages")
        for rel in marts:
            assert refused(conn, f"select * from {rel} limit 1"), rel
            assert refused(conn, f"delete from {rel}"), rel
            assert refused(conn, f"drop table {rel}"), rel
        assert refused(conn, "create table marts.planted (x int)")
        assert refused(conn, "insert into audit.rule_results (validation_run_id) values (gen_random_uuid())")


def test_the_transformer_and_checker_write_only_their_own(warehouse):
    with login(warehouse, "transformer") as conn:
        assert refused(conn, "delete from raw.adt_messages")
        assert refused(conn, "insert into audit.load_batches (batch_id) values (gen_random_uuid())")
        assert refused(conn, "insert into reporting.resends (message_id) values ('x')")
    with login(warehouse, "checker") as conn:
        conn.execute("select count(*) from marts.fct_census_daily")
        conn.execute("select count(*) from raw.adt_messages")
        assert refused(conn, "delete from raw.adt_messages")
        assert refused(conn, "delete from marts.fct_census_daily")
        assert refused(conn, "insert into raw.rejected (reason) values ('x')")


def test_dbt_relations_belong_to_the_transformer(warehouse):
    """Built before the roles by the owner, handed over by the migration, rebuilt by
    the transformer: every relation dbt keeps is the transformer's."""
    with psycopg.connect(libpq_url(warehouse)) as conn:
        owners = conn.execute(
            """select n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) from pg_class c
               join pg_namespace n on n.oid = c.relnamespace
               where n.nspname in ('staging', 'intermediate', 'marts', 'rpt') and c.relkind in ('r', 'v')"""
        ).fetchall()
    assert owners and {o for _, o in owners} == {"healthops_transformer"}, owners


def test_a_step_without_a_password_is_told_where_to_set_one(monkeypatch, warehouse):
    monkeypatch.delenv(roles.password_env("loader"))
    with pytest.raises(ConfigurationError, match="HEALTHOPS_LOADER_PASSWORD"):
        roles.step_url(warehouse, "loader")
