"""Shared fixtures: a real PostgreSQL (the embedded one, on loopback) for the
whole session, and a clean database per test that asks for one."""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tests/hl7_builders.py and friends

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def healthops_dirs(tmp_path, monkeypatch):
    """Local state and outputs of the code under test go to the test's own folders,
    never to the checkout's .healthops/ and out/ (every validation writes Data Docs)."""
    for var, sub in (("HEALTHOPS_HOME", "home"), ("HEALTHOPS_OUT", "out"), ("HEALTHOPS_LANDING", "landing")):
        monkeypatch.setenv(var, str(tmp_path / sub))


@pytest.fixture(scope="session")
def pg_server():
    """An embedded PostgreSQL 18 cluster for this test session, or the server named
    by HEALTHOPS_TEST_PG_URL (a superuser URL) when set."""
    from healthops.warehouse.connection import normalize_url

    external = os.environ.get("HEALTHOPS_TEST_PG_URL")
    if external:
        yield normalize_url(external)
        return
    from healthops.warehouse.embedded import EmbeddedServer

    # Not under pytest's basetemp: pytest prunes old basetemps, and a concurrent
    # session on the same machine could delete a live cluster's files.
    root = Path(tempfile.mkdtemp(prefix="healthops-test-pg-"))
    server = EmbeddedServer(root)
    wh = server.ensure_running()
    try:
        yield wh.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def make_database(pg_server):
    """Makes fresh, empty databases (or copies of a template database) on the session's
    server (their URLs); all dropped afterwards."""
    import psycopg

    from healthops.warehouse.connection import libpq_url

    admin = libpq_url(pg_server)
    made = []

    def make(template: str | None = None) -> str:
        """A new database; a copy of the database ``template`` (a name) when given."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
        made.append(name)
        base, _, _ = pg_server.rpartition("/")
        return f"{base}/{name}"

    try:
        yield make
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in made:
                conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def migrated_template(pg_server):
    """A database migrated to head once per session (`healthops warehouse migrate`),
    the template fresh warehouses are copied from."""
    import psycopg

    from healthops.warehouse.connection import libpq_url
    from healthops.warehouse.migrate import migrate

    name = "tmpl_" + uuid.uuid4().hex[:12]
    with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        migrate(f"{pg_server.rpartition('/')[0]}/{name}")
        yield name
    finally:
        with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture()
def warehouse_url(make_database, migrated_template):
    """A fresh warehouse at head, as a deployment's `healthops warehouse migrate` leaves
    it (the nightly tasks never create tables); its URL. Dropped afterwards.
    ``make_database()`` gives an empty one."""
    return make_database(migrated_template)
