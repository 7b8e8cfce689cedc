"""Reading the timekeeping vendor's database (docs/sources.md#timekeeping-database):
read-only, one snapshot for every table of an extract, each table's rows streamed as
PostgreSQL COPY text.

``source_snapshot(url)`` opens the source in a ``repeatable read, read only``
transaction (``set transaction ... read only``: healthops never writes to a hospital's
timekeeping database), with the session in UTC, ISO dates and UTF-8, so that the text
of a timestamp is the same whatever the vendor's settings. ``copy_rows(conn, table,
lower, upper)`` yields the COPY text of the rows of ``table`` (``TABLES``) with
``lower <= updated_at < upper`` (``lower`` None: from the first), ordered by
``updated_at`` and id: the rows the timekeeping system had committed, as of ``upper``,
since ``lower``. The caller pipes the blocks into its own ``COPY ... FROM STDIN``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from healthops.sources.timekeeping.schema import PAY_LINE_COLUMNS, PUNCH_COLUMNS
from healthops.warehouse.connection import libpq_url


@dataclass(frozen=True)
class SourceTable:
    name: str  # tk.punch, as the spec names it (and the batch's file_path)
    columns: tuple[str, ...]  # in the order the COPY text holds them

    @property
    def id_column(self) -> str:
        return self.columns[0]

    @property
    def updated_at_index(self) -> int:
        return self.columns.index("updated_at")


PUNCH = SourceTable("tk.punch", PUNCH_COLUMNS)
PAY_LINE = SourceTable("tk.pay_line", PAY_LINE_COLUMNS)
TABLES = (PUNCH, PAY_LINE)


@contextmanager
def source_snapshot(url: str):
    """A connection to the timekeeping database inside one read-only, repeatable-read
    transaction (every table read from the same snapshot), rolled back at the end."""
    import psycopg

    conn = psycopg.connect(libpq_url(url), client_encoding="UTF8", autocommit=False)
    try:
        conn.execute("set transaction isolation level repeatable read, read only")  # first, before any read
        conn.execute("set local timezone = 'UTC'")  # the text of a timestamptz, whatever the vendor's default
        conn.execute("set local datestyle = 'ISO, YMD'")
        yield conn
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def copy_rows(conn, table: SourceTable, lower: datetime | None, upper: datetime) -> Iterator[bytes]:
    """The COPY text (blocks of whole rows, each ending in a newline) of ``table``'s rows
    with ``lower <= updated_at < upper``, in (updated_at, id) order."""
    from psycopg import sql

    where = sql.SQL("updated_at < {}").format(sql.Literal(upper))
    if lower is not None:
        where = sql.SQL("{} and updated_at >= {}").format(where, sql.Literal(lower))
    schema, name = table.name.split(".")
    query = sql.SQL("copy (select {cols} from {table} where {where} order by updated_at, {id}) to stdout").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, table.columns)),
        table=sql.Identifier(schema, name),
        where=where,
        id=sql.Identifier(table.id_column),
    )
    with conn.cursor().copy(query) as copy:
        for block in copy:
            yield bytes(block)
