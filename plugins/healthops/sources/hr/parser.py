"""Read one HR export file (docs/sources.md#hr-export): RFC 4180 CSV in UTF-8 with a
header row, checked against ``spec.FILES``.

``parse_csv(name, data, tz)`` returns the records to load (typed values in the spec's
column order), the rejections (record number, reason, the record's original text, its
worker id or ``cost_center/job_code``) and how many exact repeats were left out, so
that per file: records in = loaded + rejected + duplicate. Nothing is guessed:

- a header without one of the file's columns rejects every record of the file
  (``missing column: ...``); a column the spec does not know is ignored (``extra``);
- a record is rejected for the first problem found, in this order: bytes that are not
  UTF-8, a NUL character, malformed quoting, the wrong number of fields, then each
  column in the spec's order (an empty required field, a value outside the spec's
  list, an unparseable date, timestamp or number);
- a key repeated within the file (``FileSpec.key``) with exactly the same fields is
  loaded once, the repeats counted as duplicates; with any other difference every copy
  is rejected, since which one is right cannot be told.

A reason starts with its category, the text before the first ``:`` (what reports
show); values are quoted after it, never a name or a birth date (``Column.phi``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from healthops.sources.hr.spec import DATE, FILES, NUMBER, TIMESTAMP, Column, FileSpec

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_SHOWN = 40  # characters of a value quoted in a reason


@dataclass(frozen=True)
class HrRecord:
    record_index: int  # 1-based data record number (the header is not counted)
    values: tuple  # typed, in the spec's column order
    raw_text: str


@dataclass(frozen=True)
class Rejection:
    record_index: int
    reason: str
    raw_text: str
    control_id: str | None = None


@dataclass
class ParsedFile:
    spec: FileSpec
    records_in: int = 0
    records: list[HrRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    extra_columns: list[str] = field(default_factory=list)


class _Invalid(Exception):
    pass


def parse_csv(name: str, data: bytes, tz: str) -> ParsedFile:
    """Parse the HR file ``name`` (one of ``spec.FILES``) from its bytes; times without
    an offset are in the zone ``tz``."""
    spec = FILES[name]
    out = ParsedFile(spec)
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    records = list(_records(text))
    if not records:
        return out
    (_, header, header_error), data_records = records[0], records[1:]
    columns: list[str] = []
    if header_error is None:
        columns = [h.strip() for h in header]
        header_error = _check_header(spec, columns, out)
    zone = ZoneInfo(tz)
    candidates: list[tuple[HrRecord, tuple[str, ...]]] = []
    keyed: dict[tuple, list[tuple[int, tuple[str, ...] | None]]] = defaultdict(list)
    for index, (raw, fields, error) in enumerate(data_records, start=1):
        out.records_in += 1
        raw_text = _storable(raw)
        # the id is read where it can be, even from a record with fields missing
        control_id = _storable(spec.control_id(dict(zip(columns, fields)))) if fields else None
        if header_error:
            out.rejected.append(Rejection(index, header_error, raw_text, control_id))
            continue
        values = dict(zip(columns, fields)) if fields is not None and len(fields) == len(columns) else {}
        try:
            if error:
                raise _Invalid(error)
            if raw_text != raw:
                raise _Invalid(_unstorable(raw))
            if len(fields) != len(columns):
                raise _Invalid(f"wrong field count: the record has {len(fields)} fields, the header {len(columns)}")
            record = HrRecord(index, tuple(_value(spec, c, values[c.name], zone) for c in spec.columns), raw_text)
        except _Invalid as e:
            out.rejected.append(Rejection(index, str(e), raw_text, control_id))
            record = None
        if values and all(values[k].strip() for k in spec.key):
            key = tuple(values[k] for k in spec.key)
            keyed[key].append((index, tuple(fields) if record else None))
            if record:
                candidates.append((record, key))
        elif record:
            candidates.append((record, ()))
    _resolve_keys(spec, out, candidates, keyed)
    out.rejected.sort(key=lambda r: r.record_index)
    return out


def _records(text: str):
    """(original text, fields or None, error or None) per CSV record; blank lines are
    not records. The original text is the lines the csv reader consumed for it."""
    consumed: list[str] = []

    def lines():
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    reader = csv.reader(lines(), strict=True)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raw = "".join(consumed).rstrip("\r\n")
            consumed.clear()
            yield raw, None, f"malformed CSV: {e}"
            continue
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        if fields:
            yield raw, fields, None


def _check_header(spec: FileSpec, columns: list[str], out: ParsedFile) -> str | None:
    """Why no record of the file can be read, or None."""
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        return f"duplicate column: {spec.name} has column {', '.join(repeated)} more than once"
    missing = [c for c in spec.column_names if c not in columns]
    if missing:
        return f"missing column: {spec.name} has no column {', '.join(missing)}"
    out.extra_columns = [c for c in columns if c not in spec.column_names]
    return None


def _value(spec: FileSpec, col: Column, value: str, zone: ZoneInfo):
    if not value.strip():
        if col.required:
            raise _Invalid(f"missing field: {col.name} is empty")
        return None
    shown = "" if col.phi else f" {_quote(value)}"
    if col.allowed is not None:
        if value not in col.allowed:
            raise _Invalid(f"invalid {col.name}:{shown} is not one of {', '.join(col.allowed)}")
        return value
    if col.kind == DATE:
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise _Invalid(f"unparseable date: {col.name}{shown} is not a date YYYY-MM-DD") from None
    if col.kind == TIMESTAMP:
        try:
            if not _TIMESTAMP.fullmatch(value):
                raise ValueError
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Invalid(
                f"unparseable timestamp: {col.name}{shown} is not an ISO 8601 timestamp YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
            ) from None
        return ts if ts.tzinfo else ts.replace(tzinfo=zone)  # naive: facility time, first occurrence
    if col.kind == NUMBER:
        if not _NUMBER.fullmatch(value):
            raise _Invalid(f"unparseable number: {col.name}{shown} is not a decimal number")
        number = Decimal(value)
        precision, scale = col.digits or (38, 10)
        _, digits, exponent = number.as_tuple()
        if number < 0 or -exponent > scale or number >= Decimal(10) ** (precision - scale):
            raise _Invalid(
                f"number out of range: {col.name}{shown} is not between 0 and {10 ** (precision - scale)} "
                f"with at most {scale} decimals"
            )
        return number
    return value


def _resolve_keys(spec: FileSpec, out: ParsedFile, candidates, keyed) -> None:
    """Records whose key appears once load; exact repeats load once and count as
    duplicates; a key with copies that differ in anything rejects every valid copy."""
    conflicting = {
        key
        for key, copies in keyed.items()
        if len(copies) > 1 and (any(f is None for _, f in copies) or len({f for _, f in copies}) > 1)
    }
    seen: set[tuple] = set()
    for record, key in candidates:
        if key and key in conflicting:
            shown = ", ".join(f"{k} {_quote(v)}" for k, v in zip(spec.key, key))
            out.rejected.append(
                Rejection(
                    record.record_index,
                    f"{spec.key_label}: {shown} appears {len(keyed[key])} times in {spec.name} with different "
                    "content; none of the copies is loaded",
                    record.raw_text,
                    _storable(spec.control_id(dict(zip(spec.key, key)))),
                )
            )
        elif key and key in seen:
            out.duplicates += 1
        else:
            seen.add(key) if key else None
            out.records.append(record)


def _quote(value: str) -> str:
    value = _storable(value)
    return "'" + (value if len(value) <= _SHOWN else value[:_SHOWN] + "…") + "'"


def _storable(text: str | None) -> str | None:
    """``text`` as PostgreSQL can store it: bytes that were not UTF-8 as \\xNN, a NUL as
    the four characters \\x00."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _unstorable(raw: str) -> str:
    if "\x00" in raw:
        return "NUL character: the record holds a NUL (0x00), which cannot be stored; raw_text keeps each as \\x00"
    return "invalid UTF-8: the record holds bytes that are not UTF-8; raw_text keeps each as \\xNN"
