"""Database URLs, as healthops' settings give them (the warehouse's, the timekeeping
source's): read by ``healthops.config`` and ``healthops.warehouse.connection`` alike,
so it imports nothing of healthops."""

from __future__ import annotations


def normalize_url(url: str, what: str = "warehouse") -> str:
    """Accept postgres://, postgresql:// and postgresql+driver:// and always hand back
    the explicit psycopg 3 dialect."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme in ("postgres", "postgresql") or scheme.startswith("postgresql+"):
        return "postgresql+psycopg://" + rest
    raise ValueError(f"healthops needs a PostgreSQL {what}, got scheme {scheme!r}")
