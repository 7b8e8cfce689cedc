"""Alembic's environment for the healthops warehouse migrations (see
``healthops.warehouse.migrate``, which builds the ``Config``: an open SQLAlchemy
connection in ``config.attributes["connection"]``, or a URL in ``["url"]``).

Online only (no ``--sql`` output): the baseline reads the catalog to adopt a
warehouse set up before versioned migrations. No autogenerate either: dbt, not
SQLAlchemy models, describes most of the warehouse; revisions are written by hand.
"""

from alembic import context
from sqlalchemy import create_engine, pool, text

from healthops.warehouse.migrate import LOCK_KEY, VERSION_SCHEMA, VERSION_TABLE

config = context.config


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        version_table_schema=VERSION_SCHEMA,
        transactional_ddl=True,  # PostgreSQL: every revision of a run commits together, or none does
    )
    with context.begin_transaction():
        connection.execute(text("select pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        # Alembic creates the version table before the first revision runs; its schema first.
        connection.execute(text(f"create schema if not exists {VERSION_SCHEMA}"))
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("the healthops migrations run against a database (no --sql mode)")

connection = config.attributes.get("connection")
if connection is not None:
    run(connection)  # the caller's transaction: the caller commits
else:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no warehouse: pass a URL or a connection (healthops.warehouse.migrate.alembic_config)")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()
