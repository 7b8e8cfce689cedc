"""Versioned migrations of what healthops creates outside dbt: the raw, audit and
reporting tables, their comments, generated columns, indexes, the audit triggers,
the least-privilege roles and their grants. After the revisions, every time,
``migrate`` lets each step's role log in with the password the deployment set for it
(``healthops.warehouse.roles.ensure_logins``).

``healthops warehouse migrate`` (``migrate()``) applies them with Alembic; the demo
and the deployment run it before any DAG. The nightly tasks never change DDL: they
call ``require_current()`` first, one query, and stop at once with a
``ConfigurationError`` naming the command when the warehouse is behind.

The migration scripts ship inside the package (``healthops/warehouse/migrations``,
Alembic's ``script_location`` is set here from the package's own path, so no
alembic.ini and no particular working directory is needed). The revision a
warehouse is at is kept in ``healthops.alembic_version``: a schema of its own,
not ``public`` (where an Airflow metadata database sharing the server's database
keeps its own ``alembic_version``) and not ``audit`` (whose tables are the
append-only, hash-chained history auditors read; the version row is updated in
place).

A new revision: write ``migrations/versions/NNNN_what.py`` (``down_revision`` the
previous one; ``alembic.command.revision(alembic_config(), "what")`` writes the
skeleton) and set ``HEAD`` below to its id; a test checks the two agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from healthops.errors import ConfigurationError
from healthops.warehouse.roles import ensure_logins

log = logging.getLogger(__name__)

# The revision this healthops needs. The nightly tasks compare the warehouse's
# revision with this constant, so they need not load Alembic's script directory.
HEAD = "0009_punch_worker_index"

VERSION_SCHEMA = "healthops"
VERSION_TABLE = "alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
MIGRATE_COMMAND = "healthops warehouse migrate"
# Two deployments migrating the same warehouse at once: one waits for the other.
LOCK_KEY = int.from_bytes(b"hopsmigr", "big")


def alembic_config(url: str | None = None, connection=None):
    """An Alembic ``Config`` for the packaged migrations: ``url`` (any PostgreSQL URL;
    the psycopg 3 dialect is made explicit) or an open SQLAlchemy ``connection``."""
    from alembic.config import Config

    from healthops.warehouse.connection import normalize_url

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # attributes, not the ini option: a password may hold '%' (configparser interpolation)
        cfg.attributes["url"] = normalize_url(url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_head() -> str:
    """The head of the packaged migration scripts (Alembic's view; ``HEAD`` must agree)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the healthops migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def _describe(conn) -> str:
    """'healthops on warehouse:5432' for a psycopg 3 connection (never the password)."""
    info = conn.info
    where = info.host if info.host.startswith("/") else f"{info.host}:{info.port}"
    return f"{info.dbname} on {where}"


def current_revision(conn) -> str | None:
    """The revision the warehouse is at (None: never migrated), in one query. ``conn``
    is a psycopg 3 connection; outside a transaction it is left outside one."""
    import psycopg

    try:
        with conn.transaction():  # a savepoint inside the caller's transaction
            row = conn.execute(f"select version_num from {VERSION_SCHEMA}.{VERSION_TABLE}").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return None
    return row[0] if row else None


def require_current(conn) -> None:
    """Stop (``ConfigurationError``: permanent, no retry) unless the warehouse is at
    the revision this healthops needs. What every task that writes calls first."""
    current = current_revision(conn)
    if current == HEAD:
        return
    raise ConfigurationError(behind_message(_describe(conn), current))


def behind_message(warehouse: str, current: str | None) -> str:
    if current is None:
        return (
            f"warehouse {warehouse} has no healthops schema version (new, or set up by a healthops "
            f"before versioned migrations), this healthops needs {HEAD}: run `{MIGRATE_COMMAND}`"
        )
    if current not in _known_revisions():
        return (
            f"warehouse {warehouse} is at revision {current}, which this healthops does not know "
            f"(it needs {HEAD}): a newer healthops migrated it; run that release (no downgrade is done)"
        )
    return f"warehouse {warehouse} is at revision {current}, this healthops needs {HEAD}: run `{MIGRATE_COMMAND}`"


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@dataclass(frozen=True)
class MigrateResult:
    warehouse: str
    before: str | None  # None: never migrated
    after: str
    adopted: bool  # tables of a healthops from before versioned migrations were found and kept
    logins: dict = field(default_factory=dict)  # step role -> what migrate did about its login

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            text = f"warehouse {self.warehouse} is at {self.after}: nothing to do"
        elif self.adopted:
            text = (
                f"warehouse {self.warehouse}: set up before versioned migrations; brought to {self.after} "
                "in place (its tables and rows kept)"
            )
        else:
            text = f"warehouse {self.warehouse} migrated from {self.before or 'nothing'} to {self.after}"
        unset = sorted(r for r, what in self.logins.items() if what != "password set")
        if unset:
            text += (
                f"; step roles that cannot log in: {', '.join(unset)} ({self.logins[unset[0]]}: "
                "docs/architecture.md#schemas-and-roles)"
            )
        return text


def migrate(url: str, revision: str = "head") -> MigrateResult:
    """Bring the warehouse at ``url`` to ``revision`` (default: this healthops' head),
    in one transaction. A warehouse set up by a healthops from before versioned
    migrations (its tables there, no version table) is brought to head in place: the
    baseline only adds what is missing."""
    import psycopg
    from alembic import command
    from sqlalchemy import create_engine, pool, text

    from healthops.warehouse.connection import normalize_url

    engine = create_engine(normalize_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:  # one transaction: all revisions or none; committed here
            conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            pg = conn.connection.driver_connection
            before = current_revision(pg)
            adopted = (
                before is None
                and conn.execute(
                    text("select exists (select from pg_tables where schemaname in ('raw', 'audit', 'reporting'))")
                ).scalar()
            )
            command.upgrade(alembic_config(connection=conn), revision)
            after = current_revision(pg)
            logins = ensure_logins(pg, url) if after == HEAD else {}
            result = MigrateResult(_describe(pg), before, after, bool(adopted), logins)
    except psycopg.errors.InsufficientPrivilege as e:
        raise ConfigurationError(f"the warehouse user may not run the healthops migrations: {e}") from e
    finally:
        engine.dispose()
    log.info("%s", result.describe())
    return result


@dataclass(frozen=True)
class Status:
    warehouse: str
    current: str | None
    head: str = HEAD

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.up_to_date:
            return f"warehouse {self.warehouse}: revision {self.current} (head): up to date"
        return behind_message(self.warehouse, self.current)


def status(url: str) -> Status:
    from healthops.warehouse.connection import connect

    with connect(url, autocommit=True) as conn:
        return Status(_describe(conn), current_revision(conn))
