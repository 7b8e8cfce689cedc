"""Which warehouse healthops talks to: ``HEALTHOPS_WAREHOUSE_URL`` when set (any
PostgreSQL), else the embedded one under ``$HEALTHOPS_HOME/warehouse``."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from healthops import config
from healthops.urls import normalize_url  # the one definition; imported from here too


def embedded_server():
    from healthops.warehouse.embedded import EmbeddedServer

    return EmbeddedServer(config.home() / "warehouse")


def is_embedded(url: str) -> bool:
    """Whether ``url`` is the embedded warehouse under $HEALTHOPS_HOME (its loopback port
    and generated password), told without starting it. Local defaults that must never
    reach a deployment's own warehouse (the audit heads key) are for it alone."""
    return embedded_server().serves(url_parts(url))


def warehouse_url(start: bool = True) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://``) of the warehouse."""
    url = os.environ.get("HEALTHOPS_WAREHOUSE_URL")
    if url:
        return normalize_url(url)
    if not start:
        raise RuntimeError("HEALTHOPS_WAREHOUSE_URL is not set and the embedded warehouse is not started")
    return embedded_server().ensure_running().url


def libpq_url(url: str) -> str:
    """The same URL for psycopg/psql (no SQLAlchemy dialect)."""
    return "postgresql://" + normalize_url(url).split("://", 1)[1]


def url_parts(url: str) -> dict:
    """host, port, user, password, dbname: for dbt profiles and Airflow connections."""
    u = urlsplit(libpq_url(url))
    return {
        "host": u.hostname or "localhost",
        "port": u.port or 5432,
        "user": unquote(u.username or ""),
        "password": unquote(u.password or ""),
        "dbname": (u.path or "/").lstrip("/") or "postgres",
    }


def connect(url: str | None = None, **kwargs):
    """A psycopg 3 connection to the warehouse."""
    import psycopg

    return psycopg.connect(libpq_url(url or warehouse_url()), **kwargs)
