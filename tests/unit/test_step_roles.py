"""Which login each step uses (healthops.warehouse.roles), without a server: the URL a
step gets, where its password comes from, and what the Airflow child is given."""

from __future__ import annotations

import json

import pytest

from healthops import orchestration
from healthops.errors import ConfigurationError
from healthops.warehouse import roles
from healthops.warehouse.connection import url_parts
from healthops.warehouse.embedded import EmbeddedServer

OWNER = "postgresql+psycopg://owner:owner-secret@db.example.org:6543/hospital"


def test_a_step_url_is_the_owners_server_with_the_steps_role(monkeypatch):
    monkeypatch.setenv("HEALTHOPS_REPORTER_PASSWORD", "p@ss/word:1")
    p = url_parts(roles.step_url(OWNER, "reporter"))
    assert p == {
        "host": "db.example.org",
        "port": 6543,
        "user": "healthops_reporter",
        "password": "p@ss/word:1",
        "dbname": "hospital",
    }


def test_a_missing_password_names_the_variable_and_the_connection(monkeypatch):
    monkeypatch.delenv("HEALTHOPS_CHECKER_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError) as e:
        roles.step_url(OWNER, "checker")
    assert "HEALTHOPS_CHECKER_PASSWORD" in str(e.value) and "healthops_warehouse_checker" in str(e.value)


def test_no_step_named_otherwise():
    with pytest.raises(ValueError):
        roles.role_name("owner")


def test_the_airflow_child_never_gets_the_owners_password():
    """The tasks run with the server and database of HEALTHOPS_WAREHOUSE_URL, not its
    password: a step that tried to log in as the owner would fail (the DAG tests run
    every step this way)."""
    env = orchestration.airflow_env(OWNER, None)
    assert not [k for k, v in env.items() if "owner-secret" in v]
    assert url_parts(env["HEALTHOPS_WAREHOUSE_URL"])["user"] == "owner"
    transformer = env["AIRFLOW_CONN_HEALTHOPS_WAREHOUSE_TRANSFORMER"]
    assert transformer.startswith("postgres://healthops_transformer:") and "db.example.org:6543/hospital" in transformer


def test_the_embedded_warehouse_knows_its_urls_with_and_without_the_password(tmp_path):
    server = EmbeddedServer(tmp_path)
    state = {"password": "super", "port": 45678, "roles": {"healthops_loader": "lp"}}
    server.state_file.write_text(json.dumps(state))

    def parts(user, password, port=45678):
        return {"host": "127.0.0.1", "port": port, "user": user, "password": password, "dbname": "healthops"}

    assert server.serves(parts("postgres", "super"))
    assert server.serves(parts("postgres", ""))  # as the steps are given it
    assert server.serves(parts("healthops_loader", "lp"))
    assert not server.serves(parts("postgres", "wrong"))
    assert not server.serves(parts("healthops_loader", ""))
    assert not server.serves(parts("postgres", "super", port=45679))
    assert server.role_password("healthops_loader") == "lp"
    made = server.role_password("healthops_auditor")  # generated once, then kept
    assert made and server.role_password("healthops_auditor") == made
