"""The audit chains' heads, kept outside the warehouse, where its superuser cannot
rewrite them.

Why
---
The hash chains of ``healthops.quality.audit_trail`` show any change to a stored row,
but only to someone who knows what the chain looked like before: a superuser can
turn the triggers off, edit a row and recompute every ``row_hash`` and ``prev_hash``
after it, and ``verify`` passes again. What anchors a chain is a copy of its head
that the database does not control. So each night, once the night's audit rows are
committed, the heads (each chained table's last ``chain_seq``, that row's
``row_hash`` and the table's row count) are appended as one line to
``$HEALTHOPS_OUT/audit/heads/heads.jsonl``, and ``verify_file`` checks later that
every recorded head is still in its chain: a recomputed chain has another hash at
that seq, a truncated one ends before it.

The file
--------
One JSON object per line (keys sorted, no spaces): ``format``, ``record`` (1, 2, 3
... in the order written), ``written_at`` (UTC), ``logical_date``, ``dag_run_id``,
``heads`` (``{table: {chain_seq, row_hash, rows}}``; an empty table has seq and hash
null), ``key_id``, ``prev_hmac`` and ``hmac``. ``hmac`` is HMAC-SHA256 over the
line's other fields, ``prev_hmac`` included: that is the previous line's ``hmac`` (64
zeros on the first line), so an edited, removed, inserted or reordered line breaks a
MAC or a link, and nobody without the key can write a line that passes.

The key comes from ``HEALTHOPS_AUDIT_HMAC_KEY`` or the password of the Airflow
connection ``healthops_audit_hmac``; for the embedded warehouse of the demo and
``healthops run`` it is generated once into ``$HEALTHOPS_HOME/audit_hmac.key``. It is
never written to the warehouse (a key the superuser can read lets him re-sign a
forged file) and never logged. ``key_id`` (an HMAC of a fixed label under the key,
not the key's hash) tells a wrong key from an edited line.

What the file cannot show on its own: lines removed from its end, and rows written
after its last line. That is why a hospital keeps copies elsewhere (WORM storage,
each line forwarded to syslog; docs/architecture.md#the-heads-file).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from healthops import config
from healthops.errors import ConfigurationError
from healthops.warehouse.connection import is_embedded
from healthops.warehouse.schema import AUDIT_CHAIN

log = logging.getLogger(__name__)

KEY_ENV = "HEALTHOPS_AUDIT_HMAC_KEY"
KEY_CONNECTION = "healthops_audit_hmac"  # Airflow connection: its password is the key
LOCAL_KEY_FILE = "audit_hmac.key"  # under $HEALTHOPS_HOME, for the embedded warehouse only
MIN_KEY_CHARS = 32  # a short key can be guessed offline from any line of the file
FORMAT = 1
GENESIS_HMAC = "0" * 64
FIELDS = ("format", "record", "written_at", "logical_date", "dag_run_id", "heads", "key_id", "prev_hmac", "hmac")
TAIL_BYTES = 1 << 16  # enough for the last line: a record is well under 2 kB


class HeadsFileError(ConfigurationError):
    """The heads file cannot be appended to as it is (cut-off last line, another key)."""


# -- the key -------------------------------------------------------------------------
def hmac_key(url: str, from_connection: Callable[[str], str | None] | None = None) -> bytes:
    """The heads file's key: ``HEALTHOPS_AUDIT_HMAC_KEY``; else, for the embedded
    warehouse under $HEALTHOPS_HOME, the key generated there once; else the password of
    the Airflow connection ``healthops_audit_hmac`` (``from_connection(conn_id)`` looks it
    up). Refuses a short key, and a deployment that gives none."""
    value, source = os.environ.get(KEY_ENV), KEY_ENV
    if not value and is_embedded(url):
        return local_key()
    if not value and from_connection is not None:
        value, source = from_connection(KEY_CONNECTION), f"the password of the Airflow connection {KEY_CONNECTION}"
    if not value:
        raise ConfigurationError(
            f"no key for the audit heads file: set {KEY_ENV} or the password of the Airflow connection "
            f"{KEY_CONNECTION} (at least {MIN_KEY_CHARS} characters, e.g. from "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`), the same wherever the file is "
            "written or verified; never in the warehouse"
        )
    if len(value) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"{source} has {len(value)} characters; the audit heads key needs at least {MIN_KEY_CHARS}"
        )
    return value.encode("utf-8")


def local_key() -> bytes:
    """The embedded warehouse's key, generated on first use into $HEALTHOPS_HOME (mode 0600)."""
    path = config.home() / LOCAL_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{LOCAL_KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic, and never over a key another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_KEY_CHARS:  # emptied or cut short: signing with it would anchor nothing
        raise ConfigurationError(f"{path} holds no usable key ({len(key)} characters); restore it from a copy")
    return key.encode("utf-8")


def key_id(key: bytes) -> str:
    """Names the key in each line without revealing it: a wrong key is then told from an
    edited line."""
    return hmac.new(key, b"healthops audit heads key id", hashlib.sha256).hexdigest()[:16]


# -- the heads -------------------------------------------------------------------------
@dataclass(frozen=True)
class Head:
    chain_seq: int | None  # None: the table has no chained row yet
    row_hash: str | None
    rows: int

    def as_dict(self) -> dict:
        return {"chain_seq": self.chain_seq, "row_hash": self.row_hash, "rows": self.rows}


def read_heads(conn) -> dict[str, Head]:
    """Each chained table's newest row (seq, hash) and row count, in one statement, so
    all four come from one snapshot. Reads only."""
    parts = [
        f"select %s::text, c.n, h.chain_seq, h.row_hash from (select count(*) as n from {t.qualified}) c "
        f"left join lateral (select chain_seq, row_hash from {t.qualified} where chain_seq is not null "
        "order by chain_seq desc limit 1) h on true"
        for t in AUDIT_CHAIN
    ]
    rows = conn.execute(" union all ".join(parts), [t.qualified for t in AUDIT_CHAIN]).fetchall()
    return {table: Head(seq, row_hash, n) for table, n, seq, row_hash in rows}


# -- the record --------------------------------------------------------------------------
def canonical(record: dict) -> bytes:
    """The bytes a record's HMAC covers: every field but ``hmac``, keys sorted, no spaces."""
    return _json({k: v for k, v in record.items() if k != "hmac"})


def _json(obj) -> bytes:
    # One spelling of a record (sorted keys, no spaces, ASCII): what is signed is what is read back.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(record: dict, key: bytes) -> str:
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def make_record(
    heads: dict[str, Head],
    key: bytes,
    number: int,
    prev_hmac: str,
    written_at: dt.datetime,
    logical_date: dt.date | None,
    dag_run_id: str | None,
) -> dict:
    record = {
        "format": FORMAT,
        "record": number,
        "written_at": written_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "logical_date": logical_date.isoformat() if logical_date else None,
        "dag_run_id": dag_run_id,
        "heads": {table: h.as_dict() for table, h in heads.items()},
        "key_id": key_id(key),
        "prev_hmac": prev_hmac,
    }
    record["hmac"] = sign(record, key)
    return record


def line_of(record: dict) -> bytes:
    return _json(record) + b"\n"


# -- appending -------------------------------------------------------------------------
def heads_path() -> Path:
    return config.out() / "audit" / "heads" / "heads.jsonl"


def append_heads(
    heads: dict[str, Head],
    key: bytes,
    logical_date: dt.date | None,
    dag_run_id: str | None,
    path: Path | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Append the heads (``read_heads``) as the file's next line, creating the file (mode
    0600) in directories made 0700. A re-run night appends another line: the file is a
    log of what the chains were each time, not one line per date. The record written."""
    path = path or heads_path()
    for d in (path.parent.parent, path.parent):  # $HEALTHOPS_OUT/audit, .../heads
        if not d.exists():
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b", buffering=0) as f:
        # Two writers (a night and its manual re-run) must not both link to the same line.
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        number, prev = _last_link(f, path, key)
        record = make_record(
            heads, key, number + 1, prev, now or dt.datetime.now(dt.timezone.utc), logical_date, dag_run_id
        )
        line = line_of(record)
        if os.write(f.fileno(), line) != len(line):  # one write() in O_APPEND mode: a whole line at the end
            raise OSError(f"{path}: the heads line was cut off (disk full?)")
        os.fsync(f.fileno())
    log.info("audit heads record %d appended to %s", record["record"], path)
    return record


def _last_link(f, path: Path, key: bytes) -> tuple[int, str]:
    """(record number, hmac) of the file's last line; (0, genesis) for an empty file."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return 0, GENESIS_HMAC
    f.seek(max(0, size - TAIL_BYTES))
    tail = f.read()
    if not tail.endswith(b"\n"):
        raise HeadsFileError(
            f"{path} ends in a cut-off line (a write was interrupted): check it with "
            "`healthops audit verify --against`, then move it aside; the next night starts a new file"
        )
    try:
        last = json.loads(tail[:-1].rsplit(b"\n", 1)[-1])
        number, prev, signed_by = int(last["record"]), str(last["hmac"]), last.get("key_id")
    except (ValueError, KeyError, TypeError):
        raise HeadsFileError(f"the last line of {path} is not a heads record: check the file") from None
    if signed_by != key_id(key):
        raise HeadsFileError(
            f"the last line of {path} was signed with another key (key id {signed_by}; the key given has id "
            f"{key_id(key)}). If {KEY_ENV} was changed on purpose, move the file aside, kept with its key for "
            "the auditors; the next night starts a new file"
        )
    return number, prev


# -- verifying -------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadsProblem:
    line: int | None  # None: the file as a whole
    reason: str  # unreadable line | another key | HMAC mismatch | broken link | no records
    #              | head rewritten | chain truncated | row missing | rows removed | unknown table
    detail: str
    table: str | None = None
    chain_seq: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        if self.table:
            where += f": {self.table}" + (f" seq {self.chain_seq}" if self.chain_seq is not None else "")
        return f"{where}: {self.reason}: {self.detail}"


@dataclass
class HeadsCheck:
    path: Path
    lines: int = 0
    records: list[tuple[int, dict]] = field(default_factory=list)  # (line, record) whose HMAC verified
    heads_checked: int = 0
    tables: list[str] = field(default_factory=list)
    problems: list[HeadsProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_lines(data: bytes, key: bytes) -> tuple[int, list[tuple[int, dict]], list[HeadsProblem]]:
    """The file on its own: every line a record, signed with this key, its HMAC right,
    linked to the line before and numbered after it. (lines, authentic records,
    problems); a record whose HMAC verified is authentic even when its link is broken."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    authentic, problems = [], []
    prev: tuple[str, int] | None = (GENESIS_HMAC, 0)  # the line before: its hmac and record number
    mine = key_id(key)
    for no, raw in enumerate(lines, 1):
        record, why = _parse(raw)
        if why:
            problems.append(HeadsProblem(no, "unreadable line", f"not a heads record: {why}"))
            prev = None  # the next line's link cannot be checked
            continue
        if record["key_id"] != mine:
            problems.append(
                HeadsProblem(
                    no,
                    "another key",
                    f"signed with key id {record['key_id']}, the key given has id {mine}: "
                    f"another {KEY_ENV}, or the key id was edited",
                )
            )
        elif not hmac.compare_digest(record["hmac"], sign(record, key)):
            problems.append(
                HeadsProblem(no, "HMAC mismatch", "the line was changed after it was written (its HMAC does not match)")
            )
        else:
            authentic.append((no, record))
        if prev is not None and (record["prev_hmac"], record["record"]) != (prev[0], prev[1] + 1):
            before = "the start of the file" if no == 1 else f"line {no - 1} (record {prev[1]})"
            problems.append(
                HeadsProblem(
                    no,
                    "broken link",
                    f"record {record['record']} does not follow {before}: "
                    "a line was removed, inserted or moved before it",
                )
            )
        prev = (record["hmac"], record["record"])
    return len(lines), authentic, problems


def _parse(raw: bytes) -> tuple[dict | None, str | None]:
    """(record, None), or (None, why the line is no record of this format)."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None, "not JSON"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    missing = [k for k in FIELDS if k not in record]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    if record["format"] != FORMAT:
        return None, f"format {record['format']!r} (this release reads {FORMAT})"
    heads = record["heads"]
    typed = (
        isinstance(record["record"], int)
        and all(isinstance(record[k], str) for k in ("written_at", "key_id", "prev_hmac", "hmac"))
        and all(isinstance(record[k], (str, type(None))) for k in ("logical_date", "dag_run_id"))
        and isinstance(heads, dict)
        and all(
            isinstance(h, dict)
            and {"chain_seq", "row_hash", "rows"} <= h.keys()
            and isinstance(h.get("chain_seq"), (int, type(None)))
            and isinstance(h.get("row_hash"), (str, type(None)))
            and isinstance(h.get("rows"), int)
            for h in heads.values()
        )
    )
    return (record, None) if typed else (None, "a field has the wrong type")


def verify_file(conn, path: Path, key: bytes) -> HeadsCheck:
    """Check a heads file on its own (``check_lines``), then the warehouse against every
    authentic record: each table's row at the recorded seq still has the recorded hash
    (the chain reaches that seq and was not recomputed up to it), and the table has at
    least the rows counted then. Reads only."""
    check = HeadsCheck(Path(path))
    check.lines, check.records, check.problems = check_lines(check.path.read_bytes(), key)
    if not check.lines:
        check.problems.append(HeadsProblem(None, "no records", f"{check.path} is empty: it anchors nothing"))
    known = [t.qualified for t in AUDIT_CHAIN]
    for no, record in check.records:
        check.problems += [
            HeadsProblem(no, "unknown table", "this release chains no such table", table=table)
            for table in record["heads"]
            if table not in known
        ]
    check.tables = [t for t in known if any(t in r["heads"] for _, r in check.records)]
    anchored = []
    for table in check.tables:
        recorded = [(no, r["heads"][table]) for no, r in check.records if table in r["heads"]]
        check.heads_checked += len(recorded)
        anchored += _table_problems(conn, table, recorded)
    check.problems += sorted(anchored, key=lambda p: (p.line, check.tables.index(p.table)))
    return check


def _table_problems(conn, table: str, recorded: list[tuple[int, dict]]) -> list[HeadsProblem]:
    """The heads of one table that its chain no longer extends."""
    seqs = sorted({h["chain_seq"] for _, h in recorded if h["chain_seq"] is not None})
    stored = dict(conn.execute(f"select chain_seq, row_hash from {table} where chain_seq = any(%s)", (seqs,)))
    rows, last = conn.execute(f"select count(*), max(chain_seq) from {table}").fetchone()
    problems = []
    for no, h in recorded:
        seq, want = h["chain_seq"], h["row_hash"]
        if seq is not None and seq not in stored and (last is None or seq > last):
            ends = f"ends at seq {last}" if last is not None else "is empty"
            why = ("chain truncated", f"recorded as the head ({_short(want)}); the chain now {ends}: rows were removed")
        elif seq is not None and seq not in stored:
            why = ("row missing", f"recorded as the head ({_short(want)}); no row has that seq now")
        elif seq is not None and stored[seq] != want:
            why = (
                "head rewritten",
                f"recorded row_hash {_short(want)}, the row there now has {_short(stored[seq])}: "
                "the chain was recomputed after this line was written",
            )
        elif rows < h["rows"]:
            why = ("rows removed", f"{h['rows']} rows recorded, {rows} now")
        else:
            continue
        problems.append(HeadsProblem(no, *why, table=table, chain_seq=seq))
    return problems


def _short(h: str | None) -> str:
    return f"{h[:16]}..." if h else "none"


def describe_records(check: HeadsCheck) -> str:
    """'3 record(s), logical dates 2025-03-01 .. 2025-03-03, written 2026-...Z .. 2026-...Z'."""
    recs = [r for _, r in check.records]
    if not recs:
        return "no authentic record"
    dates = sorted(r["logical_date"] for r in recs if r["logical_date"])
    parts = [f"{len(recs)} record(s)"]
    if dates:
        parts.append(("logical date " if dates[0] == dates[-1] else "logical dates ") + _span(dates[0], dates[-1]))
    parts.append(f"written {_span(recs[0]['written_at'], recs[-1]['written_at'])}")
    return ", ".join(parts)


def _span(first: str, last: str) -> str:
    return first if first == last else f"{first} .. {last}"
