"""Extract the timekeeping database's punches and pay lines into ``raw.tk_*``
(docs/sources.md#timekeeping-database).

Per table (``tk.punch``, ``tk.pay_line``), in one warehouse transaction:

1. The window: ``updated_at`` from the newest version already in the raw table (of
   those before ``as_of``) minus the overlap (default 2 hours: a row committed late
   with an earlier ``updated_at`` is still read), up to, not including, ``as_of``: the
   end of the night being built, so that a backfill of an old night reads only what
   was known by then and a re-run reads the same rows. An empty raw table reads
   everything before ``as_of``.
2. The rows are streamed from the source's read-only snapshot
   (``healthops.sources.timekeeping.extract``) straight into a temporary table of text
   columns with COPY: nothing is held in memory but one block.
3. SQL sorts them: a version (id, ``updated_at``) already in raw is a duplicate; a
   version that breaks the spec's types (an empty worker id, cost center, job code, a
   punch type, punch source or pay code outside the spec's lists, no punch time, work
   date or hours) goes to ``raw.rejected`` once (the same version rejected before is a
   duplicate); every other version is inserted, deleted ones too: raw keeps every
   version and ``deleted`` is honoured downstream. What needs the whole picture (an
   OUT without its IN, overlapping punches, an unknown cost center) is dbt's to flag.
4. The batch: ``audit.load_batches`` with file_path the table's name, the SHA-256 of
   the extracted (id, ``updated_at``) in order, the bytes streamed and the counts
   (in = loaded + rejected + duplicate). When nothing new was loaded or rejected no
   batch is recorded, so re-running a night changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from healthops.load.batches import BatchResult, LoadSummary, require_utf8
from healthops.sources.timekeeping.extract import PAY_LINE, PUNCH, SourceTable, copy_rows, source_snapshot
from healthops.sources.timekeeping.schema import (
    PAID_NOT_WORKED_PAY_CODES,
    PUNCH_SOURCES,
    PUNCH_TYPES,
    WORKED_PAY_CODES,
)
from healthops.warehouse.connection import connect
from healthops.warehouse.migrate import require_current

log = logging.getLogger(__name__)

SOURCE = "timekeeping"
DEFAULT_OVERLAP = timedelta(hours=2)


@dataclass(frozen=True)
class Target:
    source: SourceTable
    raw_table: str
    casts: dict[str, str]  # column -> SQL type the text is cast to (others stay text)
    required: tuple[str, ...]  # empty or null: rejected (missing field)
    enums: tuple[tuple[str, str, tuple[str, ...]], ...]  # (column, reason category, allowed values)


TARGETS = (
    Target(
        PUNCH,
        "raw.tk_punches",
        {"punch_id": "bigint", "punch_ts": "timestamptz", "updated_at": "timestamptz", "deleted": "boolean"},
        ("worker_id", "punch_type", "punch_ts", "cost_center", "job_code", "source", "deleted"),
        (("punch_type", "invalid punch type", PUNCH_TYPES), ("source", "invalid punch source", PUNCH_SOURCES)),
    ),
    Target(
        PAY_LINE,
        "raw.tk_pay_lines",
        {
            "pay_line_id": "bigint",
            "work_date": "date",
            "hours": "numeric(6,2)",
            "amount": "numeric(12,2)",
            "updated_at": "timestamptz",
            "deleted": "boolean",
        },
        ("worker_id", "work_date", "cost_center", "job_code", "pay_code", "hours", "deleted"),
        (("pay_code", "invalid pay code", WORKED_PAY_CODES + PAID_NOT_WORKED_PAY_CODES),),
    ),
)


def extract_timekeeping(
    url: str,
    source_url: str,
    as_of: datetime,
    dag_run_id: str | None = None,
    received_date: date | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> LoadSummary:
    """Extract the versions of every timekeeping table updated before ``as_of`` that the
    warehouse does not hold yet (see the module's notes); ``url`` the warehouse (as the
    loader), ``source_url`` the vendor's database. ``received_date``: the batches' date,
    by default the facility's date just before ``as_of`` (the night it ends)."""
    from healthops import config

    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=ZoneInfo(config.facility_tz()))
    if received_date is None:
        received_date = (as_of.astimezone(ZoneInfo(config.facility_tz())) - timedelta(microseconds=1)).date()
    summary = LoadSummary(SOURCE, received_date.isoformat())
    with connect(url) as conn, source_snapshot(source_url) as src:
        require_current(conn)  # a warehouse behind this healthops: stop before touching it
        require_utf8(conn)
        for target in TARGETS:
            summary.batches.append(_extract(conn, src, target, as_of, overlap, received_date, dag_run_id))
    return summary


def _iso(expr: str) -> str:
    """SQL: the timestamptz ``expr`` as ISO 8601 in UTC, e.g. 2026-03-02T08:00:00+00:00."""
    return (
        f"""regexp_replace(to_char(({expr}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '\\.0+$', '')"""
        " || '+00:00'"
    )


def _reason_sql(target: Target) -> str:
    """SQL: the first spec violation of a row of the temporary table, or null."""
    whens = [f"when nullif(btrim(i.{c}), '') is null then 'missing field: {c} is empty'" for c in target.required]
    for column, category, allowed in target.enums:
        listed = ", ".join(f"'{v}'" for v in allowed)
        whens.append(
            f"when i.{column} not in ({listed}) then '{category}: ' || quote_literal(i.{column})"
            f" || ' is not one of {', '.join(allowed)}'"
        )
    return "case " + " ".join(whens) + " end"


def _extract(conn, src, target: Target, as_of, overlap, received_date, dag_run_id) -> BatchResult:
    table, cols = target.source, target.source.columns
    id_col, path = table.id_column, table.name
    with conn.transaction():
        # One extract at a time per table: a retried task racing its zombie must not double-load.
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{SOURCE}:{path}",))
        (newest,) = conn.execute(
            f"select max(updated_at) from {target.raw_table} where updated_at < %s", (as_of,)
        ).fetchone()
        lower = newest - overlap if newest is not None else None

        conn.execute(
            f"create temp table _tk_in (n integer generated always as identity, {', '.join(f'{c} text' for c in cols)})"
            " on commit drop"
        )
        digest, n_in, n_bytes = hashlib.sha256(), 0, 0
        upd = table.updated_at_index
        with conn.cursor().copy(f"copy _tk_in ({', '.join(cols)}) from stdin") as copy:
            for block in copy_rows(src, table, lower, as_of):
                copy.write(block)
                n_bytes += len(block)
                for line in block.splitlines():  # COPY text escapes newlines in values: one line, one row
                    fields = line.split(b"\t")
                    digest.update(fields[0] + b"\t" + fields[upd] + b"\n")
                    n_in += 1
        sha = digest.hexdigest()
        window = (
            f"updated_at {'from ' + lower.isoformat() if lower else 'from the first'} to before {as_of.isoformat()}"
        )

        done = conn.execute(
            "select batch_id from audit.load_batches where source = %s and file_path = %s and file_sha256 = %s",
            (SOURCE, path, sha),
        ).fetchone()
        if done:
            log.info("%s: %d row(s) %s already extracted as batch %s: skipped", path, n_in, window, done[0])
            return BatchResult(path, str(done[0]), "skipped")

        typed = ", ".join(f"i.{c}::{target.casts[c]}" if c in target.casts else f"i.{c}" for c in cols)
        # Joins, not a subquery per row: the planner can hash millions of rows against
        # the version key and the (few) earlier rejections.
        conn.execute("analyze _tk_in")
        conn.execute(
            f"""
            create temp table _tk_sorted on commit drop as
            select c.*,
                   case when c.reason is null then case when held.{id_col} is null then 'load' else 'duplicate' end
                        when before.control_id is null then 'reject'
                        else 'duplicate'
                   end as outcome
            from (select i.*, {_reason_sql(target)} as reason,
                         '{path} ' || i.{id_col} || ' @ ' || {_iso("i.updated_at::timestamptz")} as control_id
                  from _tk_in i) c
            left join {target.raw_table} held
              on c.reason is null and held.{id_col} = c.{id_col}::bigint and held.updated_at = c.updated_at::timestamptz
            left join (select distinct control_id from raw.rejected where source = %(source)s) before
              on c.reason is not null and before.control_id = c.control_id
            """,
            {"source": SOURCE},
        )
        counts = dict(conn.execute("select outcome, count(*) from _tk_sorted group by outcome").fetchall())
        loaded, rejected, dup = (counts.get(k, 0) for k in ("load", "reject", "duplicate"))
        if not loaded and not rejected:
            log.info(
                "%s: %d row(s) %s, every one already held (%d duplicate): nothing new, no batch recorded",
                path,
                n_in,
                window,
                dup,
            )
            return BatchResult(path, None, "skipped", n_in, 0, 0, dup)

        batch_id = uuid.uuid4()
        conn.execute(
            f"insert into {target.raw_table} (batch_id, {', '.join(cols)})"
            f" select %s, {typed} from _tk_sorted i where i.outcome = 'load' order by i.n",
            (batch_id,),
        )
        raw_text = " || E'\\t' || ".join(f"coalesce(i.{c}, '\\N')" for c in cols)
        conn.execute(
            f"""insert into raw.rejected (batch_id, source, received_date, file_path, message_index, control_id,
                                          reason, raw_text)
                select %s, %s, %s, %s, i.n, i.control_id, i.reason, {raw_text}
                from _tk_sorted i where i.outcome = 'reject' order by i.n""",
            (batch_id, SOURCE, received_date, path),
        )
        conn.execute(
            """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, file_bytes,
                                               records_in, records_loaded, records_rejected, records_duplicate,
                                               dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (batch_id, SOURCE, received_date, path, sha, n_bytes, n_in, loaded, rejected, dup, dag_run_id),
        )
        log.info(
            "%s: %d row(s) %s: %d loaded, %d rejected, %d duplicate (batch %s)",
            path,
            n_in,
            window,
            loaded,
            rejected,
            dup,
            batch_id,
        )
        return BatchResult(path, str(batch_id), "loaded", n_in, loaded, rejected, dup)
