"""`healthops warehouse migrate`: the versioned migrations of what healthops keeps
outside dbt, on a real PostgreSQL. An empty database goes to head with every table,
trigger and role; a second run changes nothing; a warehouse set up by milestone 1
(before versioned migrations) goes to head in place, its rows kept, ending exactly
as a new one; and a warehouse behind this healthops stops the nightly steps at once,
before they touch it, naming the command to run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest

from healthops.errors import ConfigurationError, is_transient
from healthops.load.adt import load_adt_date
from healthops.quality import audit_trail
from healthops.warehouse import migrate as migrations
from healthops.warehouse.connection import connect
from healthops.warehouse.migrate import HEAD, migrate, require_current, status

import milestone1_schema
from hl7_builders import build_message

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))
COMMAND = "run `healthops warehouse migrate`"
D = date(2026, 2, 2)

TABLES = {
    "raw": {
        "adt_messages",
        "pseudonym_salt",
        "rejected",
        "duplicates",
        "hr_workers",
        "hr_credentials",
        "hr_training",
        "hr_exclusion_screening",
        "hr_positions",
        "tk_punches",
        "tk_pay_lines",
    },
    "audit": {"load_batches", "validation_runs", "rule_results", "rule_violations", "reviews", "refused_files"},
    "reporting": {"deliveries", "messages", "resends"},
    "healthops": {"alembic_version"},
}
CHAINED = ("validation_runs", "rule_results", "rule_violations", "reviews")
ROLES = {"healthops_loader", "healthops_transformer", "healthops_reporter", "healthops_auditor"}
OWN_SCHEMAS = "('raw', 'audit', 'reporting', 'healthops')"

# What healthops' migrations define, as PostgreSQL describes it: two warehouses with
# the same snapshot have the same tables, columns (order, type, default, generation),
# constraints, indexes, triggers, functions, views, comments and privileges.
CATALOG = f"""
select 'column', format('%s.%s #%s %s %s %s null default %s gen %s', table_schema, table_name, ordinal_position,
       column_name, data_type, is_nullable, column_default, generation_expression)
from information_schema.columns where table_schema in {OWN_SCHEMAS}
union all
select 'constraint', format('%s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
from pg_constraint where connamespace::regnamespace::text in {OWN_SCHEMAS}
union all
select 'index', format('%s.%s', schemaname, indexdef) from pg_indexes where schemaname in {OWN_SCHEMAS}
union all
select 'trigger', pg_get_triggerdef(oid) from pg_trigger where not tgisinternal
union all
select 'function', format('%s %s', p.oid::regprocedure, md5(p.prosrc))
from pg_proc p where pronamespace::regnamespace::text in {OWN_SCHEMAS}
union all
select 'view', format('%s.%s %s', schemaname, viewname, md5(definition)) from pg_views where schemaname in {OWN_SCHEMAS}
union all
select 'comment', format('%s %s %s', c.relkind, c.oid::regclass, obj_description(c.oid, 'pg_class'))
from pg_class c where relnamespace::regnamespace::text in {OWN_SCHEMAS}
union all
select 'privileges', format('%s %s', c.oid::regclass, c.relacl)
from pg_class c where relnamespace::regnamespace::text in {OWN_SCHEMAS}
union all
select 'schema', format('%s %s %s', nspname, nspacl, obj_description(oid, 'pg_namespace'))
from pg_namespace where nspname in ('raw', 'staging', 'intermediate', 'marts', 'audit', 'reporting', 'healthops')
"""


def catalog(url) -> set[tuple[str, str]]:
    with connect(url) as conn:
        return set(conn.execute(CATALOG).fetchall())


# Columns a later revision added with a default for the rows before it: a row whose value
# is that default is digested without it, as a null column is (0003: ledger rows written
# by earlier releases were sent once).
ADDED_WITH_DEFAULT = {
    "reporting.deliveries": {"state": "sent", "attempts": 1, "reconciled": False},
    "reporting.resends": {"state": "sent"},  # 0005
}


def contents(url) -> dict[str, tuple]:
    """Every row of healthops' own tables (count and digest per table), of those the
    warehouse has (one from before a revision lacks that revision's tables). A row is
    digested without its null columns: a revision that adds a nullable column keeps it
    (nor with a column added with a default that it holds, ``ADDED_WITH_DEFAULT``)."""
    out = {}
    with connect(url) as conn:
        for schema in ("raw", "audit", "reporting"):
            for table in sorted(TABLES[schema]):
                name = f"{schema}.{table}"
                if conn.execute("select to_regclass(%s)", (name,)).fetchone() == (None,):
                    continue
                defaults = ADDED_WITH_DEFAULT.get(name, {})
                rows = []
                for (r,) in conn.execute(f"select jsonb_strip_nulls(to_jsonb(t)) from {name} t"):
                    r = {k: v for k, v in r.items() if not (k in defaults and defaults[k] == v)}
                    rows.append(json.dumps(r, sort_keys=True))
                out[name] = (len(rows), hashlib.md5("|".join(sorted(rows)).encode()).hexdigest())
    return out


def write_feed(landing: Path, *control_ids: str) -> None:
    folder = landing / "adt" / D.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{control_ids[0]}.hl7").write_text(
        "".join(
            build_message("A01", control_id=cid, visit=f"V{cid}", unit="ICU", msg_ts="202602020800")
            for cid in control_ids
        )
    )


# -- a new warehouse ----------------------------------------------------------------------
def test_an_empty_database_goes_to_head_with_every_table_trigger_and_role(make_database):
    url = make_database()
    assert not status(url).up_to_date and status(url).current is None
    result = migrate(url)
    assert (result.before, result.after, result.adopted, result.changed) == (None, HEAD, False, True)
    assert status(url).up_to_date
    with connect(url) as conn:
        found = {}
        for schema, table in conn.execute(
            f"select schemaname, tablename from pg_tables where schemaname in {OWN_SCHEMAS}"
        ):
            found.setdefault(schema, set()).add(table)
        assert found == TABLES
        assert conn.execute("select version_num from healthops.alembic_version").fetchall() == [(HEAD,)]
        triggers = {r[0] for r in conn.execute("select tgname from pg_trigger where not tgisinternal")}
        chained = {f"{t}_{kind}" for t in CHAINED for kind in ("chain", "append_only", "no_truncate")}
        # the refused landing entries are append-only too, not chained (0004)
        assert triggers == chained | {"refused_files_append_only", "refused_files_no_truncate"}
        assert conn.execute("select to_regclass('audit.findings') is not null").fetchone() == (True,)
        assert conn.execute("select count(*) from raw.pseudonym_salt").fetchone() == (1,)
        assert ROLES <= {r[0] for r in conn.execute("select rolname from pg_roles")}
        # the generated column reports read instead of the reason (which may quote PHI)
        conn.execute(
            "insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason, "
            "raw_text) values (gen_random_uuid(), 'adt', %s, 'f', 1, %s, 'x')",
            (D, "bad PID-7: 'JANE' (not a date)"),
        )
        assert conn.execute("select reason_category from raw.rejected").fetchone() == ("bad PID-7",)
        # the audit history is append-only and chained from the first row
        conn.execute(
            "insert into audit.validation_runs (validation_run_id, suite_name, data_asset, logical_date, "
            "code_version, success, evaluated_expectations, successful_expectations, gx_result) "
            "values (gen_random_uuid(), 's', 'marts.t', %s, 'test', true, 1, 1, '{}')",
            (D,),
        )
        assert conn.execute("select chain_seq from audit.validation_runs").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from audit.validation_runs")


def test_migrating_twice_changes_nothing(make_database):
    warehouse_url = make_database()
    migrate(warehouse_url)
    before, rows = catalog(warehouse_url), contents(warehouse_url)
    result = migrate(warehouse_url)
    assert (result.before, result.after, result.changed) == (HEAD, HEAD, False)
    assert "nothing to do" in result.describe()
    assert catalog(warehouse_url) == before and contents(warehouse_url) == rows  # the salt too


def test_the_head_constant_is_the_scripts_head():
    """The nightly check compares with HEAD without loading Alembic: a new revision
    must move it."""
    assert migrations.script_head() == HEAD


# -- a warehouse from milestone 1 (before versioned migrations) ----------------------------
def milestone1_warehouse(url) -> None:
    """Set up as milestone 1's loads did, with a little of everything in it."""
    batch, run = uuid.uuid4(), uuid.uuid4()
    with connect(url) as conn:
        milestone1_schema.ensure_schema(conn)
        milestone1_schema.ensure_schema(conn)  # every load ran it
        conn.execute(
            "insert into raw.adt_messages (batch_id, received_date, file_path, message_index, control_id, "
            "sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, mrn, raw_text) "
            "values (%s, %s, 'adt/a.hl7', 1, 'C1', 'NGH', 'ADT', 'A01', now(), now(), 'V1', 'MRN1', 'MSH|...')",
            (batch, D),
        )
        conn.execute(
            "insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason, "
            "raw_text) values (%s, 'adt', %s, 'adt/a.hl7', 2, 'no PV1-19', 'MSH|...')",
            (batch, D),
        )
        conn.execute(
            "insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, "
            "file_bytes, records_in, records_loaded, records_rejected) "
            "values (%s, 'adt', %s, 'adt/a.hl7', 'abc', 10, 2, 1, 1)",
            (batch, D),
        )
        conn.execute(
            "insert into audit.validation_runs (validation_run_id, suite_name, data_asset, logical_date, "
            "code_version, success, evaluated_expectations, successful_expectations, gx_result) "
            "values (%s, 'census_daily', 'marts.fct_census_daily', %s, '0.1.0', false, 1, 0, '{}')",
            (run, D),
        )
        conn.execute(
            "insert into audit.rule_results (validation_run_id, rule_id, expectation_type, severity, "
            "success, status, detail) values (%s, 'CEN-001', 'x', 'blocking', false, 'failed', '{}')",
            (run,),
        )
        conn.execute(
            "insert into audit.reviews (finding_id, validation_run_id, rule_id, reviewed_by, note) "
            "values ('F-000001', %s, 'CEN-001', 'auditor', 'checked')",
            (run,),
        )
        conn.execute(
            "insert into reporting.messages (message_id, report_id, period, recipient, content_sha256, "
            "subject, eml, eml_sha256) values ('<m1@x>', 'daily_census', %s, 'a@x', 'h', 's', 'eml', 'e')",
            (D.isoformat(),),
        )
        conn.execute(
            "insert into reporting.deliveries (report_id, period, recipient, content_sha256, message_id, "
            "subject) values ('daily_census', %s, 'a@x', 'h', '<m1@x>', 's')",
            (D.isoformat(),),
        )


def test_a_milestone1_warehouse_goes_to_head_in_place_keeping_its_rows(make_database, tmp_path):
    old = make_database()
    milestone1_warehouse(old)
    rows = contents(old)
    assert rows["raw.adt_messages"][0] == 1 and rows["audit.reviews"][0] == 1

    with connect(old) as conn, pytest.raises(ConfigurationError, match=COMMAND):
        require_current(conn)  # never migrated: the nightly steps refuse it
    result = migrate(old)
    assert (result.before, result.after, result.adopted) == (None, HEAD, True)
    assert "set up before versioned migrations" in result.describe()

    after = contents(old)
    assert {t: after[t] for t in rows} == rows  # every row kept, the pseudonym salt (the patient keys) too
    assert after["audit.refused_files"][0] == 0  # and the later revisions' tables added
    with connect(old) as conn:
        assert audit_trail.verify(conn).ok
    # ... and the warehouse is now exactly what a new one is
    new = make_database()
    migrate(new)
    assert catalog(old) == catalog(new)
    assert not migrate(old).changed

    # the nightly load goes on from where it was
    write_feed(tmp_path / "landing", "C2")
    summary = load_adt_date(old, tmp_path / "landing", D)
    assert [b.status for b in summary.batches] == ["loaded"]
    with connect(old) as conn:
        assert conn.execute("select count(*) from raw.adt_messages").fetchone() == (2,)


# -- a warehouse behind this healthops ----------------------------------------------------
def test_the_nightly_steps_refuse_a_warehouse_never_migrated_and_change_nothing(make_database, tmp_path):
    from healthops.pipeline import load_adt, run_step
    from healthops.quality.gx_runner import validate_domain_and_record
    from healthops.reports.publish import publish

    url = make_database()
    write_feed(tmp_path / "landing", "C1")
    with pytest.raises(ConfigurationError) as e:
        load_adt_date(url, tmp_path / "landing", D)
    assert COMMAND in str(e.value) and "has no healthops schema version" in str(e.value)
    assert not is_transient(e.value)  # permanent: the task fails at once, no retries

    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=COMMAND):  # how the load task fails
        run_step(load_adt, D.isoformat(), "manual__test", url)
    with pytest.raises(ConfigurationError, match=COMMAND):  # before any rule is evaluated
        validate_domain_and_record(url, "census", D)
    with pytest.raises(ConfigurationError, match=COMMAND):  # before any report is built
        publish("daily_census", D.isoformat(), url=url, smtp=None)
    with connect(url) as conn:  # the steps created nothing: no schema, no table
        assert conn.execute(
            "select count(*) from pg_namespace where nspname in ('raw', 'audit', 'reporting', 'healthops')"
        ).fetchone() == (0,)


def test_a_nightly_load_changes_no_ddl(warehouse_url, tmp_path):
    before = catalog(warehouse_url)
    write_feed(tmp_path / "landing", "C1", "C2")
    assert [b.status for b in load_adt_date(warehouse_url, tmp_path / "landing", D).batches] == ["loaded"]
    assert catalog(warehouse_url) == before


NEXT_REVISION = f'''"""A later release's revision (test only)."""
from alembic import op

revision = "9999_test"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table reporting.deliveries add column test_note text")


def downgrade() -> None:
    op.execute("alter table reporting.deliveries drop column test_note")
'''


@pytest.fixture()
def next_release(tmp_path, monkeypatch):
    """This healthops with one more revision than the baseline."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_test.py").write_text(NEXT_REVISION)
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", scripts)
    monkeypatch.setattr(migrations, "HEAD", "9999_test")
    return scripts


def test_a_warehouse_one_revision_behind_stops_the_load_naming_the_command(warehouse_url, next_release, tmp_path):
    write_feed(tmp_path / "landing", "C1")
    with pytest.raises(ConfigurationError) as e:
        load_adt_date(warehouse_url, tmp_path / "landing", D)
    db = warehouse_url.rpartition("/")[2]
    assert str(e.value).startswith(f"warehouse {db} on ")
    assert str(e.value).endswith(f"is at revision {HEAD}, this healthops needs 9999_test: {COMMAND}")
    with connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from audit.load_batches").fetchone() == (0,)

    result = migrate(warehouse_url)
    assert (result.before, result.after, result.adopted) == (HEAD, "9999_test", False)
    assert [b.status for b in load_adt_date(warehouse_url, tmp_path / "landing", D).batches] == ["loaded"]
    with connect(warehouse_url) as conn:
        assert conn.execute(
            "select count(*) from information_schema.columns "
            "where table_name = 'deliveries' and column_name = 'test_note'"
        ).fetchone() == (1,)


def test_a_warehouse_migrated_by_a_newer_release_is_refused_too(make_database):
    warehouse_url = make_database()
    migrate(warehouse_url)
    with connect(warehouse_url) as conn:
        conn.execute("update healthops.alembic_version set version_num = '0099_future'")
    with connect(warehouse_url) as conn, pytest.raises(ConfigurationError, match="which this healthops does not know"):
        require_current(conn)


# -- the command --------------------------------------------------------------------------
def _cli(*args, url):
    env = {**os.environ, "HEALTHOPS_WAREHOUSE_URL": url}
    return subprocess.run([HEALTHOPS, *args], env=env, capture_output=True, text=True)


def test_the_warehouse_commands_and_a_run_against_a_warehouse_behind(make_database):
    url = make_database()
    st = _cli("warehouse", "status", url=url)
    assert st.returncode == 1 and COMMAND in st.stdout
    run = _cli("run", "--date", D.isoformat(), url=url)  # refused before Airflow starts
    assert run.returncode == 1 and COMMAND in run.stderr and "Running" not in run.stdout
    audit = _cli("audit", "findings", url=url)
    assert audit.returncode == 2 and COMMAND in audit.stderr

    mig = _cli("warehouse", "migrate", url=url)
    assert mig.returncode == 0 and f"migrated from nothing to {HEAD}" in mig.stdout, mig.stderr
    again = _cli("warehouse", "migrate", url=url)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    st = _cli("warehouse", "status", url=url)
    assert st.returncode == 0 and f"revision {HEAD} (head): up to date" in st.stdout


# -- 0005: the PHI scan's function and a rejection category that cannot quote -------------
REASONS = [  # reason -> its category under 0005: the text before the first : ' " ( [
    ("unknown unit 'O'BRIEN WARD'", "unknown unit"),  # the baseline left "BRIEN WARD'"
    ("unknown unit 'O''BRIEN'", "unknown unit"),
    ('bad PID-5 "WINTERBOTTOM^ROSALIND"', "bad PID-5"),
    ("bad PID-7 (got 19480719x, O'Brien)", "bad PID-7"),
    ("bad PID-3 [M7734001] for visit", "bad PID-3"),
    ("PV1 segment missing", "PV1 segment missing"),  # no ':' at all
    ("  two   spaces ;", "two spaces"),
    ("'M7734001' unknown", "unspecified"),  # a reason that starts with a quote: nothing of it
    ("", "unspecified"),
]


def add_rejections(conn, reasons) -> None:
    for i, reason in enumerate(reasons):
        conn.execute(
            "insert into raw.rejected (batch_id, source, received_date, file_path, message_index, reason, "
            "raw_text) values (gen_random_uuid(), 'adt', %s, 'f', %s, %s, 'x')",
            (D, i, reason),
        )


def test_the_rejection_category_holds_nothing_after_a_quote_or_bracket(warehouse_url):
    with connect(warehouse_url) as conn:
        add_rejections(conn, [r for r, _ in REASONS])
        got = conn.execute("select reason_category from raw.rejected order by message_index").fetchall()
    assert [c for (c,) in got] == [c for _, c in REASONS]


# dbt's views over the column (as rpt_dq_rejections_daily), one reading another, with a
# grant and comments: what a built warehouse has when 0005 arrives
DBT_VIEWS = """
create schema if not exists rpt;
create view rpt.v_categories as
    select received_date, reason_category, count(*) as rejected from raw.rejected group by 1, 2;
create view rpt.v_top as select reason_category from rpt.v_categories order by rejected desc;
comment on view rpt.v_categories is 'rejections by category';
comment on column rpt.v_categories.rejected is 'how many';
grant usage on schema rpt to healthops_reporter;
grant select on rpt.v_categories, rpt.v_top to healthops_reporter;
"""
VIEW_STATE = """
select c.oid::regclass::text, pg_get_viewdef(c.oid), c.relacl::text, obj_description(c.oid, 'pg_class'),
       (select string_agg(attname || '=' || coalesce(col_description(c.oid, attnum), ''), ',' order by attnum)
        from pg_attribute where attrelid = c.oid and attnum > 0)
from pg_class c where c.relnamespace = 'rpt'::regnamespace order by 1
"""


def test_0005_recategorises_kept_rows_and_keeps_the_dbt_views_over_the_column(make_database):
    url = make_database()
    migrate(url, "0004_refused_files_append_only")
    with connect(url) as conn:
        add_rejections(conn, [r for r, _ in REASONS])
        assert conn.execute("select reason_category from raw.rejected where message_index = 0").fetchone() == (
            "unknown unitBRIEN WARD'",  # the leak 0005 closes
        )
        conn.execute(DBT_VIEWS)
        views = conn.execute(VIEW_STATE).fetchall()
    rows = contents(url)
    result = migrate(url, "0005_phi_guard")  # 0006 then hands the views to the transformer
    assert (result.before, result.after) == ("0004_refused_files_append_only", "0005_phi_guard")
    with connect(url) as conn:
        assert conn.execute(VIEW_STATE).fetchall() == views  # the same views, grants and comments
    migrate(url)
    with connect(url) as conn:
        got = conn.execute("select reason_category from raw.rejected order by message_index").fetchall()
        assert [c for (c,) in got] == [c for _, c in REASONS]
        assert conn.execute("select count(*) from rpt.v_top").fetchone() == (len({c for _, c in REASONS}),)
        conn.execute("set role healthops_reporter")
        conn.execute("select * from rpt.v_top").fetchall()  # still granted
    after = contents(url)
    assert after["raw.rejected"][0] == rows["raw.rejected"][0]  # rows kept (only the category differs)
    new = make_database()
    migrate(new)
    with connect(new) as conn:
        conn.execute(DBT_VIEWS)
    assert catalog(url) == catalog(new)  # the column, its comment and the function as a new warehouse has them


def test_0005_stops_at_a_view_it_does_not_own_and_changes_nothing(make_database):
    url = make_database()
    migrate(url, "0004_refused_files_append_only")
    with connect(url) as conn:
        conn.execute("create view public.my_rejections as select reason_category from raw.rejected")
    before = catalog(url)
    with pytest.raises(ConfigurationError, match=r"public\.my_rejections.*nothing is dropped with CASCADE"):
        migrate(url)
    assert status(url).current == "0004_refused_files_append_only" and catalog(url) == before
    with connect(url) as conn:
        assert conn.execute("select to_regclass('public.my_rejections') is not null").fetchone() == (True,)
        assert (
            conn.execute("select to_regprocedure('reporting.phi_identifier_matches(text[], date[])')").fetchone()[0]
            is None
        )


def test_0009_drops_the_workforce_tables_an_earlier_release_built_whole_and_keeps_the_rest(make_database):
    """The models that became incremental: a full table of an earlier release's (no
    watermark column) would stop dbt's incremental build; it holds only what dbt
    derives from raw, so it goes and the next build makes it whole. A table already in
    the incremental shape, and every other relation, stays."""
    url = make_database()
    migrate(url, "0008_hr_snapshot_indexes")
    with connect(url) as conn:
        conn.execute("create table intermediate.int_timekeeping__punch_sequence (punch_id bigint, shift_no integer)")
        conn.execute("insert into intermediate.int_timekeeping__punch_sequence values (1, 1)")
        conn.execute(
            "create table intermediate.int_workforce__worker_compliance"
            " (worker_id text, computed_through_loaded_at timestamptz)"
        )
        conn.execute("create table intermediate.int_workforce__direct_care_days (worker_id text)")
        conn.execute("create table intermediate.int_workforce__punch_notes (worker_id text)")  # none of these
    result = migrate(url)
    assert result.after == "0009_punch_worker_index"
    with connect(url) as conn:
        left = {
            t
            for (t,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'intermediate'"
            )
        }
        index = conn.execute(
            "select count(*) from pg_indexes where indexname in"
            " ('tk_punches_worker_ts', 'hr_training_snapshot_date', 'hr_exclusion_screening_loaded_at')"
        ).fetchone()[0]
    assert left == {"int_workforce__worker_compliance", "int_workforce__punch_notes"}
    assert index == 3
    assert not migrate(url).changed
