"""Low-level HL7 v2 (ER7) reading: framing, message boundaries, delimiters,
escape sequences, character sets and times.

Design for speed: a file is read in fixed-size byte chunks; terminators and MLLP
block bytes are normalised with ``bytes.replace`` and the chunk is cut into
segments with ``bytes.split``, so the only Python-level loop is one step per
segment (never per character). Only the fields healthops needs are split further
(by ``parser.py``); nothing builds a full object tree as python-hl7 does.

Message boundaries: a message starts at each ``MSH`` segment and runs until the
next ``MSH``, a batch segment (FHS/BHS/BTS/FTS), an MLLP block byte, or a line
that is not an HL7 segment at all (which starts a stretch of "garbage").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Optional
from zoneinfo import ZoneInfo

CHUNK_SIZE = 1 << 20  # bytes read per step from a file

_SB = b"\x0b"  # MLLP start block
_EB = b"\x1c"  # MLLP end block (followed by 0x0D, a terminator for us)
_BOM = b"\xef\xbb\xbf"
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")


# --------------------------------------------------------------------------- framing


@dataclass(slots=True)
class RawItem:
    """One stretch of a file: an MSH-headed message or text outside any message."""

    kind: str  # "message" or "garbage"
    segments: list[bytes]  # the segments, terminators and MLLP bytes removed
    problem: Optional[str] = None  # a framing problem that makes the message unusable
    at_eof: bool = False  # the last message of the file
    unterminated: bool = False  # at_eof and the file did not end with a terminator


class _Splitter:
    """Cuts normalised segments into RawItems; state survives across chunks."""

    __slots__ = ("cur", "cur_fs", "garbage", "in_frame", "fhs_open", "bhs_open", "out")

    def __init__(self) -> None:
        self.cur: Optional[list[bytes]] = None
        self.cur_fs = b"|"
        self.garbage: list[bytes] = []
        self.in_frame = False
        self.fhs_open = False
        self.bhs_open = False
        self.out: list[RawItem] = []

    def _flush(self, problem: Optional[str] = None) -> None:
        if self.cur is not None:
            self.out.append(RawItem("message", self.cur, problem))
            self.cur = None
        if self.garbage:
            self.out.append(RawItem("garbage", self.garbage))
            self.garbage = []

    def feed(self, segs: list[bytes]) -> None:
        # The hot loop keeps the current message and its field separator in locals
        # and handles the two common cases (MSH, a segment of the open message)
        # inline; everything else goes through the state on ``self``.
        cur, cur_fs = self.cur, self.cur_fs
        out = self.out
        for seg in segs:
            if not seg:
                continue
            tag = seg[:3]
            if tag == b"MSH":
                if cur is not None:
                    out.append(RawItem("message", cur))
                if self.garbage:
                    out.append(RawItem("garbage", self.garbage))
                    self.garbage = []
                cur = [seg]
                cur_fs = seg[3:4]
                continue
            if cur is not None and seg[3:4] == cur_fs and len(seg) > 3 and tag.isalnum() and tag.isupper():
                if tag in _BATCH_SEGMENTS:
                    self.cur = cur
                    self._batch(tag)
                    cur = self.cur
                else:
                    cur.append(seg)
                continue
            self.cur, self.cur_fs = cur, cur_fs
            self._other(seg)
            cur = self.cur
        self.cur, self.cur_fs = cur, cur_fs

    def _other(self, seg: bytes) -> None:
        """A line that is neither MSH nor a segment of the open message."""
        tag = seg[:3]
        cur = self.cur
        if seg == _SB:
            # A start block while a framed message is still open: its end block never came.
            self._flush(
                "MLLP end block (0x1C) missing before the next start block; the message may be truncated"
                if self.in_frame
                else None
            )
            self.in_frame = True
            return
        if seg == _EB:
            self._flush()
            self.in_frame = False
            return
        if tag in _BATCH_SEGMENTS and (len(seg) == 3 or not seg[3:4].isalnum()):
            self._batch(tag)
            return
        if seg.isspace():
            return
        if cur is not None and len(seg) == 3 and tag.isalnum() and tag.isupper():
            cur.append(seg)  # an empty segment such as "PD1"
            return
        if cur is not None:
            self._flush()
        self.garbage.append(seg)

    def _batch(self, tag: bytes) -> None:
        self._flush()
        if tag == b"FHS":
            self.fhs_open = True
        elif tag == b"BHS":
            self.bhs_open = True
        elif tag == b"BTS":
            self.bhs_open = False
        else:
            self.fhs_open = False

    def finish(self, unterminated: bool) -> None:
        if self.cur is not None:
            problem = None
            if self.in_frame:
                problem = "file ends mid-message: MLLP end block (0x1C 0x0D) missing"
            elif self.fhs_open or self.bhs_open:
                problem = "file ends mid-message: batch trailer (BTS/FTS) missing after the last message"
            item = RawItem("message", self.cur, problem, at_eof=True, unterminated=unterminated and not self.garbage)
            self.cur = None
            self.out.append(item)
        if self.garbage:
            self.out.append(RawItem("garbage", self.garbage, at_eof=True))
            self.garbage = []


def _normalise(data: bytes) -> bytes:
    if b"\n" in data:
        data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    if _SB in data:
        data = data.replace(_SB, b"\r\x0b\r")
    if _EB in data:
        data = data.replace(_EB, b"\r\x1c\r")
    return data


def _without_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks with a UTF-8 byte order mark at the start of the stream removed,
    also when the BOM itself is split across the first chunks."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        if not chunk:
            continue
        head += chunk
        if len(head) < 3 and _BOM.startswith(head):
            continue  # may still turn out to be a BOM
        yield head[3:] if head.startswith(_BOM) else head
        break
    else:
        if head:  # the whole stream is shorter than a BOM
            yield head
        return
    yield from it


def iter_raw(chunks: Iterable[bytes]) -> Iterator[RawItem]:
    """Yield the messages and garbage stretches of a byte stream given in chunks.

    Holds one chunk (its segments and the items cut from it), the message or
    garbage stretch still open at its end, and one partial segment in memory:
    never the whole stream."""
    sp = _Splitter()
    carry = b""
    for chunk in _without_bom(chunks):
        if not chunk:
            continue
        segs = _normalise(carry + chunk).split(b"\r")
        carry = segs.pop()  # the tail after the last terminator may be incomplete
        sp.feed(segs)
        if sp.out:
            yield from sp.out
            sp.out = []
    unterminated = bool(carry.strip())
    if carry:
        sp.feed([carry])
    sp.finish(unterminated)
    yield from sp.out


def iter_file_chunks(path, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while True:
            block = fh.read(size)
            if not block:
                return
            yield block


# --------------------------------------------------------------------------- delimiters, escapes


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @staticmethod
    def from_msh(msh: str) -> "Delimiters":
        """From the decoded MSH segment text. A missing encoding character is
        replaced by a character that cannot occur, so it never splits anything."""
        fs = msh[3:4]
        return _delimiters(fs, msh[4:].split(fs, 1)[0] if fs else "")


@lru_cache(maxsize=256)
def _delimiters(fs: str, enc: str) -> Delimiters:
    pad = (enc + "\x00\x00\x00\x00")[:4]
    return Delimiters(fs, pad[0], pad[1], pad[2], pad[3])


def unescape(value: str, d: Delimiters, codec: str = "utf-8", where: str = "field") -> str:
    """Decode HL7 escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh..\\, \\H\\ \\N\\ dropped,
    \\.br\\ as a newline). Unknown sequences are kept as received. Raises ValueError
    for a malformed \\X\\ sequence and for one that decodes to a NUL character."""
    esc = d.escape
    if esc not in value:
        return value
    parts = value.split(esc)
    n = len(parts)
    out = [parts[0]]
    i = 1
    while i + 1 < n:
        seq = parts[i]
        if seq == "F":
            out.append(d.field)
        elif seq == "S":
            out.append(d.component)
        elif seq == "T":
            out.append(d.subcomponent)
        elif seq == "R":
            out.append(d.repetition)
        elif seq == "E":
            out.append(esc)
        elif seq in ("H", "N"):
            pass
        elif seq == ".br":
            out.append("\n")
        elif seq[:1] == "X" and len(seq) > 1:
            try:
                decoded = bytes.fromhex(seq[1:]).decode(codec)
            except ValueError as exc:  # bad hex or undecodable bytes
                raise ValueError(f"invalid escape sequence in {where}: {esc}{seq}{esc}") from exc
            if "\x00" in decoded:
                # A valid escape, but PostgreSQL text cannot hold its NUL: one such value
                # would make the COPY of the whole file fail.
                raise ValueError(
                    f"NUL byte in {where}: the escape sequence {esc}{seq}{esc} decodes to NUL, "
                    "which PostgreSQL text cannot hold"
                )
            out.append(decoded)
        else:
            out.append(esc + seq + esc)
        out.append(parts[i + 1])
        i += 2
    if i < n:  # an escape character without its closing partner
        out.append(esc + parts[i])
    return "".join(out)


# --------------------------------------------------------------------------- NUL bytes

# PostgreSQL text holds any character but NUL (U+0000): a NUL in a value or in the
# raw_text kept for a message makes the COPY of its whole file fail.
NUL_NOTE = " (raw_text keeps each NUL byte written as \\x00)"


def without_nul(text: str) -> str:
    """``text`` with each NUL written as the four characters ``\\x00``: storable, and
    read as the byte it was (the notation Python's ``backslashreplace`` uses for the
    undecodable bytes of a rejected message)."""
    return text.replace("\x00", "\\x00")


def nul_fields(segs: list[bytes]) -> list[str]:
    """The fields of a message that hold a NUL byte, named as HL7 names them (``MSH-1``,
    ``PID-5``, ``ZPI-2``), in message order, each once. ``segs``: the message's
    segments, the first its MSH, whose MSH-1 (the field separator) is present."""
    fs = segs[0][3:4]
    if fs == b"\x00":
        return ["MSH-1"]  # the separator itself: no field can be told from another
    names: list[str] = []
    for seg in segs:
        if b"\x00" not in seg:
            continue
        tag = seg[:3].decode("ascii", "backslashreplace")
        first = 1 if tag == "MSH" else 0  # MSH-1 is the separator: MSH-2 follows it
        for i, value in enumerate(seg.split(fs)):
            if b"\x00" in value:
                name = f"{tag}-{i + first}" if i else f"the {tag} segment name"
                if name not in names:
                    names.append(name)
    return names


# --------------------------------------------------------------------------- character sets

_CHARSETS = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ASCII": "ascii",
    "8859/1": "iso-8859-1",
    "ISO-8859-1": "iso-8859-1",
    "ISO8859/1": "iso-8859-1",
    "8859/2": "iso-8859-2",
    "8859/3": "iso-8859-3",
    "8859/4": "iso-8859-4",
    "8859/5": "iso-8859-5",
    "8859/6": "iso-8859-6",
    "8859/7": "iso-8859-7",
    "8859/8": "iso-8859-8",
    "8859/9": "iso-8859-9",
    "8859/15": "iso-8859-15",
}


def charset_codec(msh18: str) -> Optional[str]:
    """Python codec for an MSH-18 value (first repetition); None when unsupported."""
    return _CHARSETS.get(msh18.strip().upper())


# --------------------------------------------------------------------------- times

_TS = re.compile(
    r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,6})\d*)?)?(?:([+-])(\d{2})(\d{2}))?",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d+)?)?)?)?(?:[+-]\d{4})?", re.ASCII)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=64)
def _fixed_offset(sign: str, hh: int, mm: int) -> timezone:
    if hh > 23 or mm > 59:
        raise ValueError("bad offset")
    delta = timedelta(hours=hh, minutes=mm)
    return timezone(-delta if sign == "-" else delta)


# Two ASCII digits -> int (a dict lookup is ~3x cheaper than int() on a slice).
_D2 = {f"{i:02d}": i for i in range(100)}
# "YYYYMMDDHH" -> (year, month, day, hour), only for valid ones: a feed has few
# distinct hours (~9k a year), so most times skip four int() calls and the
# date validation. Plain ints, no zone: the zone is attached per call, so DST
# gaps/folds behave exactly as datetime(..., tzinfo=ZoneInfo) does (fold=0).
_HOURS: dict[str, tuple[int, int, int, int]] = {}
_HOURS_MAX = 4096  # ~170 days of hours (< 1 MB); then it starts over


def _hour(key: str) -> tuple[int, int, int, int]:
    t = _HOURS.get(key)
    if t is None:
        t = (int(key[:4]), int(key[4:6]), int(key[6:8]), int(key[8:10]))
        datetime(*t)  # ValueError for an impossible date or hour
        if len(_HOURS) >= _HOURS_MAX:
            _HOURS.clear()
        _HOURS[key] = t
    return t


@lru_cache(maxsize=16384)
def parse_ts(value: str, tz_name: str) -> datetime:
    """``YYYYMMDDHHMM[SS[.S+]][+/-ZZZZ]`` → aware datetime (facility zone when no
    offset; fold=0 for an ambiguous local time, and a time in a DST gap keeps its
    wall-clock fields with fold=0, as ``datetime(..., tzinfo=ZoneInfo(...))``).
    Raises ValueError otherwise, including for precision coarser than minutes."""
    n = len(value)
    if value.isascii():
        # the common shapes, without the regex: YYYYMMDDHHMM[SS] and YYYYMMDDHHMM[SS]+/-ZZZZ
        if (n == 14 or n == 12) and value.isdigit():
            y, mo, d, h = _HOURS.get(value[:10]) or _hour(value[:10])
            return datetime(y, mo, d, h, _D2[value[10:12]], _D2[value[12:14]] if n == 14 else 0, 0, zone(tz_name))
        if (n == 19 or n == 17) and value[n - 5] in "+-":
            local, off = value[: n - 5], value[n - 4 :]
            if local.isdigit() and off.isdigit():
                y, mo, d, h = _HOURS.get(local[:10]) or _hour(local[:10])
                return datetime(
                    y,
                    mo,
                    d,
                    h,
                    _D2[local[10:12]],
                    _D2[local[12:14]] if n == 19 else 0,
                    0,
                    _fixed_offset(value[n - 5], _D2[off[:2]], _D2[off[2:]]),
                )
    m = _TS.fullmatch(value)
    if m is None:
        raise ValueError(value)
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    tz = _fixed_offset(sign, int(oh), int(om)) if sign else zone(tz_name)
    us = int(frac.ljust(6, "0")) if frac else 0
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s) if s else 0, us, tzinfo=tz)


@lru_cache(maxsize=8192)
def parse_date(value: str) -> date:
    """A birth date: at least ``YYYYMMDD`` (any time part is ignored)."""
    m = _DATE.fullmatch(value)
    if m is None:
        raise ValueError(value)
    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
