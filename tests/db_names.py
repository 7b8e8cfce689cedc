"""The tests' databases on the session's server, under names this process reuses.

A test database is made for a test (or a module) and dropped after it; its name is
then free, and the next database made in this process gets the lowest free one
(``t_<process>_0``, ``t_<process>_1``, ...). Why not a new name each time: dbt's
partial-parse state holds for one host, port, login and database (the database is
in every node of its manifest), so dbt run against a database it has never seen
re-parses the whole project, ~1.7 s of CPU a run, and the suite runs dbt on a
hundred databases. With names reused, ``dbt_runner.target_path`` (one target path
per login and database) and Cosmos' cache find the state the name's last runs left.

Each database is still new and empty (or a fresh copy of its template): the name is
dropped, then made again. What a process keeps about a database it used is
forgotten when it is dropped (``forget``): a GX data source's connection pool would
otherwise hand a later test connections the drop has closed.

``<process>`` is random per pytest process (each xdist worker, and each session on a
shared server: HEALTHOPS_TEST_PG_URL), so two of them never take the same name."""

from __future__ import annotations

import sys
import uuid

PROCESS = uuid.uuid4().hex[:8]
_taken: set[str] = set()


def _admin(pg_server: str):
    import psycopg

    from healthops.warehouse.connection import libpq_url

    return psycopg.connect(libpq_url(pg_server), autocommit=True)


def create(pg_server: str, template: str | None = None) -> str:
    """A new database (a copy of the database ``template`` when given) under the lowest
    free name: its URL."""
    i = 0
    while f"t_{PROCESS}_{i}" in _taken:
        i += 1
    name = f"t_{PROCESS}_{i}"
    with _admin(pg_server) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')  # a drop that failed before
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    _taken.add(name)
    return url_of(pg_server, name)


def drop(pg_server: str, name: str) -> None:
    """Drop the database ``name`` (made by ``create``) and free its name."""
    forget(name)
    with _admin(pg_server) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
    _taken.discard(name)


def url_of(pg_server: str, name: str) -> str:
    return f"{pg_server.rpartition('/')[0]}/{name}"


def name_of(url: str) -> str:
    from healthops.warehouse.connection import url_parts

    return url_parts(url)["dbname"]


def forget(name: str) -> None:
    """Drop what this process keeps about the database ``name``: the GX data sources on
    it (``healthops.quality.gx_runner`` makes one per warehouse URL and keeps it, with
    its SQLAlchemy pool, for the process) and their batch definitions. A later database
    of the same name gets new ones, as a new name would."""
    gx_runner = sys.modules.get("healthops.quality.gx_runner")
    gx_context = sys.modules.get("healthops.quality.gx_context")
    if gx_runner is None or gx_context is None:
        return
    with gx_runner._lock:
        for key in [k for k in gx_runner._batch_definitions if name_of(k[0]) == name]:
            del gx_runner._batch_definitions[key]
        context = gx_context._context
        if context is None:
            return
        for ds_name, ds in list(context.data_sources.all().items()):
            connection = getattr(ds, "connection_string", None)
            if connection is None or name_of(str(connection)) != name:
                continue
            engine = getattr(ds, "_engine", None)
            if engine is not None:
                engine.dispose()  # closes its pooled connections
            context.data_sources.delete(ds_name)
