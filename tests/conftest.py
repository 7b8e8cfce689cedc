"""Shared fixtures: a real PostgreSQL (the embedded one, on loopback) for the
whole session, and a clean database per test that asks for one.

The suite may run in parallel (pytest-xdist, ``make test``): each worker is its own
pytest process with its own PostgreSQL cluster, its own dbt target and log paths,
its own Cosmos cache and its own temporary folders, so workers share nothing that
one of them writes (the checkout's dbt manifest is written atomically)."""

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

import db_names  # noqa: E402 (tests/, on the path from the line above)

logging.getLogger("great_expectations").setLevel(logging.WARNING)

_SCRATCH: Path | None = None
TEST_AUDIT_KEY = "test-key-" + "0123456789abcdef" * 2  # HEALTHOPS_AUDIT_HMAC_KEY in every test
TEST_ROLE_PASSWORDS = {s: f"test-{s}-password" for s in ("loader", "transformer", "checker", "reporter", "auditor")}


def pytest_configure(config):
    """Per process (per xdist worker): where dbt run by the tests keeps its artifacts
    and logs (``healthops.warehouse.dbt_runner``; the checkout's dbt_project/target
    would be written by two workers at once), and Cosmos' cache (shared by default by
    every Airflow run on the machine). Set before any test runs; child processes
    (``healthops``, Airflow) inherit them."""
    global _SCRATCH
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    _SCRATCH = Path(tempfile.mkdtemp(prefix=f"healthops-test-{worker}-"))
    for var, sub in (
        ("HEALTHOPS_DBT_TARGET_PATH", "dbt/target"),
        ("HEALTHOPS_DBT_LOG_PATH", "dbt/logs"),
        ("AIRFLOW__COSMOS__CACHE_DIR", "cosmos"),
    ):
        os.environ[var] = str(_SCRATCH / sub)
    # The step roles' passwords, as a deployment sets them (healthops.warehouse.roles):
    # every migrate of the session's cluster gives them to the roles, every step logs in
    # with them. The same on every worker: the roles are the cluster's, not a database's.
    from healthops.warehouse.roles import STEPS, password_env

    for step in STEPS:
        os.environ.setdefault(password_env(step), TEST_ROLE_PASSWORDS[step])


def pytest_unconfigure(config):
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the markers
def pytest_collection_modifyitems(config, items):
    """Tests on the session's PostgreSQL are marked ``db`` (``make test-fast`` leaves
    them out with the ``slow`` ones). Under xdist (``--dist loadgroup``) the tests that
    share a module-scoped fixture stay on one worker, so it is built once; and the
    slow tests (Airflow end to end) are started first, so that the two workers finish
    together instead of one of them starting a three-minute test at the end."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if "pg_server" in info.names_closure:
            item.add_marker(pytest.mark.db)
        shared = any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs)
        if shared and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: otherwise as collected


@pytest.fixture(autouse=True)
def healthops_dirs(tmp_path, monkeypatch):
    """Local state and outputs of the code under test go to the test's own folders,
    never to the checkout's .healthops/ and out/ (every validation writes Data Docs).
    The tests' warehouses are not the embedded one under $HEALTHOPS_HOME, so like a
    deployment they set the audit heads key (every night appends to the heads file)."""
    for var, sub in (("HEALTHOPS_HOME", "home"), ("HEALTHOPS_OUT", "out"), ("HEALTHOPS_LANDING", "landing")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HEALTHOPS_AUDIT_HMAC_KEY", TEST_AUDIT_KEY)


@pytest.fixture(scope="session")
def _airflow_db_template(tmp_path_factory):
    """Airflow's metadata database as ``healthops run`` makes it in a new
    $HEALTHOPS_HOME (``orchestration.ensure_airflow_db``: ``airflow db migrate`` and its
    marker), made once per session: every test that runs Airflow would otherwise pay
    the same migration, an Airflow start-up of its own."""
    from healthops import orchestration

    root = tmp_path_factory.mktemp("airflow_template")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEALTHOPS_HOME", str(root))
        env = orchestration.airflow_env("postgresql+psycopg://unused@127.0.0.1:1/unused", None)
        orchestration.ensure_airflow_db(env)
    return root / "airflow"


@pytest.fixture()
def airflow_db(_airflow_db_template):
    """seed(home): a copy of the session's migrated Airflow metadata database (and the
    marker that says it is migrated) in the $HEALTHOPS_HOME ``home``, as if a first
    ``healthops run`` had made it there. airflow.cfg is not copied: Airflow writes its
    own, with that home's paths."""

    def seed(home: Path) -> Path:
        target = Path(home) / "airflow"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("airflow.db", ".migrated"):
            shutil.copy2(_airflow_db_template / name, target / name)
        return target

    return seed


@pytest.fixture(autouse=True)
def _migrated_airflow_for_slow_tests(request, healthops_dirs, tmp_path):
    """Tests that start Airflow (marked slow) find its metadata database migrated in
    their $HEALTHOPS_HOME (tmp_path/home, as healthops_dirs sets it)."""
    if request.node.get_closest_marker("slow"):
        request.getfixturevalue("airflow_db")(tmp_path / "home")


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
    _throwaway_cluster(wh.url)
    try:
        yield wh.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _throwaway_cluster(url: str) -> None:
    """The test cluster is deleted at the end of the session: no fsync, no waiting for
    the WAL at commit, no full-page images (every ``create database``, dbt model and
    audit row otherwise waits for the disk). Durability is not under test here; the
    embedded server's restart test runs its own cluster with the defaults."""
    import psycopg

    from healthops.warehouse.connection import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"alter system set {setting} = off")
        conn.execute("select pg_reload_conf()")


@pytest.fixture()
def make_database(pg_server):
    """Makes fresh, empty databases (or copies of a template database) on the session's
    server (their URLs); all dropped afterwards. Their names are reused by later tests
    of this process, so dbt finds its partial-parse state for them (tests/db_names.py)."""
    made = []

    def make(template: str | None = None) -> str:
        """A new database; a copy of the database ``template`` (a name) when given."""
        url = db_names.create(pg_server, template)
        made.append(db_names.name_of(url))
        return url

    try:
        yield make
    finally:
        for name in made:
            db_names.drop(pg_server, name)


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
