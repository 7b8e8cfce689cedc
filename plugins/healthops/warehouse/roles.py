"""Who each pipeline step logs in as (docs/architecture.md#schemas-and-roles).

Every step connects to the warehouse as a role of its own, with only the grants its
work needs, so that a step cannot do what another step's job is (the loader cannot
alter a mart, the reporter cannot read raw, no step can switch the audit triggers
off):

========================  ============================================================
``healthops_loader``      writes ``raw`` and the load's audit rows (batches, refusals)
``healthops_transformer`` dbt: reads ``raw`` and ``audit``, builds ``staging`` and after
``healthops_checker``     the quality rules: reads what they check, writes audit results
``healthops_reporter``    reads the reporting layer ``rpt``, writes the delivery ledger
``healthops_auditor``     reads ``audit``, ``reporting`` and ``rpt``, records reviews;
                          never ``raw``
========================  ============================================================

Only ``healthops warehouse migrate`` uses the owner: the user of
``HEALTHOPS_WAREHOUSE_URL`` (or the ``healthops_warehouse`` Airflow connection). The
steps take the server, port and database from that URL and log in with their role's
own name and password; the owner's password need not be, and should not be, where
the steps run.

A role's password comes from, in order: the environment (``HEALTHOPS_LOADER_PASSWORD``
and so on), the Airflow connection ``healthops_warehouse_<step>`` (its password), and,
for the embedded warehouse only, the passwords healthops generated for it (kept with
its superuser's, mode 0600). ``migrate`` creates the roles and gives each the password
it finds for it, so a deployment sets the passwords in one place, its secrets.
"""

from __future__ import annotations

import os

from healthops.errors import ConfigurationError

STEPS = ("loader", "transformer", "checker", "reporter", "auditor")


def role_name(step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"no healthops step {step!r} (steps: {', '.join(STEPS)})")
    return f"healthops_{step}"


def password_env(step: str) -> str:
    role_name(step)
    return f"HEALTHOPS_{step.upper()}_PASSWORD"


def airflow_conn_id(step: str) -> str:
    role_name(step)
    return f"healthops_warehouse_{step}"


def airflow_connection_password(conn_id: str) -> str | None:
    """The password of an Airflow connection; None when it is not defined, or when
    Airflow is not installed (the CLI may run without it)."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        return BaseHook.get_connection(conn_id).password or None  # Airflow masks it in its logs
    except AirflowNotFoundException:
        return None


def password(step: str, base_url: str) -> str | None:
    """The password ``step``'s role logs in with, for the warehouse at ``base_url``; None
    when none is set anywhere."""
    value = os.environ.get(password_env(step))
    if value:
        return value
    if os.environ.get("AIRFLOW_CONN_" + airflow_conn_id(step).upper()) or os.environ.get("AIRFLOW_CTX_DAG_ID"):
        value = airflow_connection_password(airflow_conn_id(step))
        if value:
            return value
    from healthops.warehouse.connection import embedded_server, url_parts

    server = embedded_server()
    if server.serves(url_parts(base_url)):
        return server.role_password(role_name(step), tuple(role_name(s) for s in STEPS))
    return None


def step_url(base_url: str, step: str) -> str:
    """The URL ``step`` connects with: ``base_url``'s server, port and database, the
    step's role and its password. A ``ConfigurationError`` (permanent: no retry) names
    where to set a password that is missing."""
    from urllib.parse import quote

    from healthops.warehouse.connection import url_parts

    secret = password(step, base_url)
    role = role_name(step)
    if not secret:
        raise ConfigurationError(
            f"the {step} step logs in as the warehouse role {role}, and no password is set for it: "
            f"set {password_env(step)} (or the Airflow connection {airflow_conn_id(step)}) where the "
            f"step runs and where `healthops warehouse migrate` runs (migrate gives the role that "
            "password); see docs/architecture.md#schemas-and-roles"
        )
    p = url_parts(base_url)
    return f"postgresql+psycopg://{role}:{quote(secret, safe='')}@{p['host']}:{p['port']}/{quote(p['dbname'], safe='')}"


def without_password(url: str) -> str:
    """``url`` with its password left out: the server, port, database and user the
    steps need from it, not the owner's secret."""
    from urllib.parse import quote

    from healthops.warehouse.connection import url_parts

    p = url_parts(url)
    return f"postgresql+psycopg://{quote(p['user'], safe='')}@{p['host']}:{p['port']}/{quote(p['dbname'], safe='')}"


def ensure_logins(conn, base_url: str) -> dict[str, str]:
    """Let each step's role log in with the password set for it (``password``); run by
    ``migrate`` as the owner, after the migrations have created the roles. Returns
    {role: "password set" | "no password set: cannot log in" | "left to the DBA"}.

    ``conn`` is a psycopg 3 connection. A role without a password set is left unable to
    log in (``NOLOGIN``), never given a default one."""
    from psycopg import sql

    can = conn.execute("select rolcreaterole or rolsuper from pg_roles where rolname = current_user").fetchone()
    out = {}
    for step in STEPS:
        role = role_name(step)
        if not (can and can[0]):
            out[role] = "left to the DBA"
            continue
        secret = password(step, base_url)
        if secret:
            # The SCRAM verifier, computed here: the password itself never reaches the
            # server, where a statement log could keep it.
            verifier = conn.pgconn.encrypt_password(secret.encode(), role.encode(), b"scram-sha-256").decode()
            conn.execute(sql.SQL("alter role {} login password {}").format(sql.Identifier(role), sql.Literal(verifier)))
            out[role] = "password set"
        else:
            conn.execute(sql.SQL("alter role {} nologin").format(sql.Identifier(role)))
            out[role] = "no password set: cannot log in"
    return out
