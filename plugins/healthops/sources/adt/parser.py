"""HL7 v2 ADT parser: bytes or a file → ``AdtMessage`` | ``Rejection``, streaming.

Every MSH-headed message and every stretch of text outside a message yields
exactly one item, numbered 1, 2, 3, … in file order (``message_index``; messages
and rejections share the numbering, so in = loaded + rejected per file).
Duplicates are not handled here (the loader does that across files).
See README.md in this folder for the rejection reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from healthops import config

from .hl7 import (
    CHUNK_SIZE,
    NUL_NOTE,
    Delimiters,
    RawItem,
    charset_codec,
    iter_file_chunks,
    iter_raw,
    nul_fields,
    parse_date,
    parse_ts,
    unescape,
    without_nul,
    zone,
)
from .schema import KNOWN_EVENTS, AdtMessage, Rejection

DEFAULT_TZ = config.DEFAULT_FACILITY_TZ  # times without an offset are the facility's local time

# Events whose PV1-3 (assigned location) and PV1-2 (class) drive the census.
LOCATION_EVENTS = frozenset({"A01", "A02", "A04", "A06", "A07"})

ParsedItem = Union[AdtMessage, Rejection]


class _Reject(Exception):
    pass


def parse_file(path: Union[str, Path], default_tz: str = DEFAULT_TZ) -> Iterator[ParsedItem]:
    """Parse an HL7 file, reading it in chunks (one chunk + one message in memory)."""
    zone(default_tz)  # fail fast on a bad zone name
    return _parse_items(iter_raw(iter_file_chunks(path)), default_tz)


def parse_bytes(data: bytes, default_tz: str = DEFAULT_TZ) -> Iterator[ParsedItem]:
    """Parse bytes already in memory (a whole file, as the loader reads it), cut into
    chunks as a file is: terminators are normalised one chunk at a time, never on a
    second copy of the whole."""
    zone(default_tz)
    chunks = (data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE))
    return _parse_items(iter_raw(chunks), default_tz)


def parse_chunks(chunks: Iterable[bytes], default_tz: str = DEFAULT_TZ) -> Iterator[ParsedItem]:
    zone(default_tz)
    return _parse_items(iter_raw(chunks), default_tz)


def _parse_items(items: Iterable[RawItem], tz: str) -> Iterator[ParsedItem]:
    index = 0
    for item in items:
        index += 1
        if item.kind == "garbage":
            text = "\r".join(s.decode("utf-8", "backslashreplace") for s in item.segments)
            first = text.split("\r", 1)[0]
            snippet = first if len(first) <= 40 else first[:40] + "..."  # repr() shows a NUL as \x00
            reason = (
                f"not an HL7 message: {len(item.segments)} line(s) of text outside any "
                f"MSH-headed message, starting {snippet!r}"
            )
            if "\x00" in text:
                text, reason = without_nul(text), reason + NUL_NOTE
            yield Rejection(index, reason, text)
        else:
            yield parse_message(item.segments, index, tz, item.problem, item.at_eof, item.unterminated)


_NO_FIELD: list = []
_STD_MSH = "MSH|^~\\&|"  # the usual MSH-1/MSH-2: the default delimiters
_STD = Delimiters.from_msh(_STD_MSH)


def _field(seg: Optional[list[str]], n: int, rep: str, comp: str) -> list[str]:
    """Components of the first repetition of field n of a split segment."""
    if seg is None or n >= len(seg):
        return _NO_FIELD
    v = seg[n]
    if not v:
        return _NO_FIELD
    return v.partition(rep)[0].split(comp)


def _piece(comps: list[str], k: int, d: Delimiters, codec: str, where: str) -> str:
    """Component k (first subcomponent), escape-decoded and stripped; "" when absent."""
    if k >= len(comps):
        return ""
    v = comps[k]
    if d.subcomponent in v:
        v = v.partition(d.subcomponent)[0]
    if d.escape in v:
        v = unescape(v, d, codec, where)
    return v.strip()


def _first(seg: Optional[list[str]], i: int, d: Delimiters, codec: str, where: str) -> str:
    """``_piece(_field(seg, i, ...), 0, ...)`` in one step: the first component (first
    subcomponent) of the first repetition of ``seg[i]``, escape-decoded and stripped."""
    if seg is None or i >= len(seg):
        return ""
    v = seg[i]
    if not v:
        return ""
    v = v.partition(d.repetition)[0].partition(d.component)[0]
    if d.subcomponent in v:
        v = v.partition(d.subcomponent)[0]
    if d.escape in v:
        v = unescape(v, d, codec, where)
    return v.strip()


def _ts_at(seg: Optional[list[str]], i: int, where: str, tz: str, rep: str, comp: str):
    """The time in ``seg[i]`` (first component of the first repetition, stripped; a TS
    ``^precision`` component is ignored; no escape decoding); None when empty."""
    if seg is None or i >= len(seg):
        return None
    v = seg[i]
    if not v:
        return None
    if rep in v:
        v = v.partition(rep)[0]
    if comp in v:
        v = v.partition(comp)[0]
    value = v.strip()
    if not value:
        return None
    try:
        return parse_ts(value, tz)
    except ValueError:
        raise _Reject(f"unparseable time in {where}: {value!r}") from None


def _control_id_from_bytes(fields_b: Optional[list[bytes]]) -> Optional[str]:
    """MSH-10 read from the undecoded MSH (for rejections before the text is decoded)."""
    if fields_b is None or len(fields_b) <= 9:
        return None
    return fields_b[9].split(b"^")[0].decode("ascii", "replace").strip() or None


def parse_message(
    segs: list[bytes],
    index: int,
    tz: str = DEFAULT_TZ,
    problem: Optional[str] = None,
    at_eof: bool = False,
    unterminated: bool = False,
) -> ParsedItem:
    """One message given as its segments (bytes, first one MSH).

    Written for speed (this is the per-message hot path): only the needed fields are
    split, each once; escape decoding, subcomponent splitting and time parsing run
    only where the value needs them. The checks run in the order of README.md."""
    raw_bytes = b"\r".join(segs)
    msh_b = segs[0]
    fs_b = msh_b[3:4]
    fields_b: Optional[list[bytes]] = None
    control_id: Optional[str] = None
    have_control_id = False  # control_id read from the decoded text
    text: Optional[str] = None
    try:
        if not fs_b or fs_b.isalnum() or fs_b.isspace():
            raise _Reject("MSH-1 field separator missing")
        if b"\x00" in raw_bytes:
            # Neither a value nor the raw_text holding it could be stored (PostgreSQL
            # text cannot hold NUL): the message is rejected, naming the fields.
            where = nul_fields(segs)
            if where[0] == "MSH-1":
                fields_b = []  # no separator to find MSH-10 by
            also = f"; also in {', '.join(where[1:])}" if len(where) > 1 else ""
            raise _Reject(f"NUL byte in {where[0]}: PostgreSQL text cannot hold it{also}")
        if raw_bytes.isascii():
            # Every supported character set is an ASCII superset: decode first, then
            # read MSH-18 from the text (one split of MSH instead of two).
            text = raw_bytes.decode("ascii")
            lines = text.split("\r")
            msh = lines[0]
            f = msh.split(msh[3])  # MSH-n is f[n - 1]: MSH-1 is the field separator itself
            msh18 = f[17].split("~")[0] if len(f) > 17 else ""
            codec = charset_codec(msh18)
            if codec is None:
                raise _Reject(f"unsupported character set in MSH-18: {msh18!r}")
        else:
            fields_b = msh_b.split(fs_b, 18)
            if len(fields_b) > 17:
                msh18 = fields_b[17].split(b"~")[0].decode("ascii", "replace")
                codec = charset_codec(msh18)
                if codec is None:
                    raise _Reject(f"unsupported character set in MSH-18: {msh18!r}")
            else:
                msh18, codec = "", "utf-8"
            try:
                text = raw_bytes.decode(codec)
            except UnicodeDecodeError as exc:
                bad = raw_bytes[exc.start : exc.end].hex(" ").upper()
                raise _Reject(
                    f"undecodable bytes for character set {codec} (MSH-18 {msh18!r}): "
                    f"0x{bad} at byte {exc.start} of the message"
                ) from None
            lines = text.split("\r")
            msh = lines[0]
            f = None
        if msh.startswith(_STD_MSH):
            d = _STD
        else:
            d = Delimiters.from_msh(msh)
            if d.component == "\x00":
                raise _Reject("MSH-2 encoding characters missing")
        rep, comp = d.repetition, d.component
        if f is None:
            f = msh.split(d.field)  # MSH-n is f[n - 1]
        nf = len(f)

        control_id = _first(f, 9, d, codec, "MSH-10") or None
        have_control_id = True
        if problem:
            raise _Reject(problem)
        if control_id is None:
            raise _Reject("MSH-10 message control id missing")
        facility = _first(f, 3, d, codec, "MSH-4")
        if not facility:
            raise _Reject("MSH-4 sending facility missing")
        msh9_raw = f[8] if nf > 8 else ""
        msh9 = msh9_raw.partition(rep)[0].split(comp) if msh9_raw else _NO_FIELD
        message_type = msh9[0].strip() if msh9 else ""
        if message_type != "ADT":
            raise _Reject(
                f"not an ADT message: MSH-9 is {msh9_raw!r}"
                if msh9_raw
                else "not an ADT message: MSH-9 message type is empty"
            )

        evn = pid = pv1 = None
        fs = d.field
        for line in lines[1:]:
            tag = line[:3]
            if tag == "PV1":
                if pv1 is None:
                    pv1 = line.split(fs)
            elif tag == "EVN":
                if evn is None:
                    evn = line.split(fs)
            elif tag == "PID":
                if pid is None:
                    pid = line.split(fs)

        trigger = msh9[1].strip() if len(msh9) > 1 else ""
        if not trigger:
            trigger = _first(evn, 1, d, codec, "EVN-1")
        if not trigger:
            raise _Reject("trigger event missing: MSH-9.2 and EVN-1 are empty")
        if trigger not in KNOWN_EVENTS:
            raise _Reject(f"unknown trigger event {trigger!r} (MSH-9 {msh9_raw!r})")

        message_ts = _ts_at(f, 6, "MSH-7", tz, rep, comp)
        if message_ts is None:
            raise _Reject("MSH-7 message time missing")

        if pv1 is None:
            if at_eof:
                raise _Reject("file ends mid-message: PV1 segment missing (last message incomplete)")
            raise _Reject("PV1 segment missing")
        visit = _first(pv1, 19, d, codec, "PV1-19")
        if not visit:
            raise _Reject("PV1-19 visit number missing")
        loc = _field(pv1, 3, rep, comp)
        unit = _piece(loc, 0, d, codec, "PV1-3")
        if not unit and trigger in LOCATION_EVENTS:
            raise _Reject(f"PV1-3 assigned unit missing (required for {trigger})")
        patient_class = _first(pv1, 2, d, codec, "PV1-2")
        if not patient_class and trigger in LOCATION_EVENTS:
            raise _Reject(f"PV1-2 patient class missing (required for {trigger})")

        recorded_ts = _ts_at(evn, 2, "EVN-2", tz, rep, comp)
        occurred_ts = _ts_at(evn, 6, "EVN-6", tz, rep, comp)
        admit_ts = _ts_at(pv1, 44, "PV1-44", tz, rep, comp)
        discharge_ts = _ts_at(pv1, 45, "PV1-45", tz, rep, comp)

        birth_date = None
        birth_raw = pid[7] if pid is not None and len(pid) > 7 else ""
        if birth_raw:
            birth_raw = birth_raw.partition(rep)[0].partition(comp)[0].strip()
            if birth_raw:
                try:
                    birth_date = parse_date(birth_raw)
                except ValueError:
                    raise _Reject(f"unparseable date in PID-7: {birth_raw!r}") from None

        mrn = None
        if pid is not None and len(pid) > 3:
            for r in pid[3].split(rep):
                cx = r.split(comp)
                if len(cx) > 4 and cx[4].partition(d.subcomponent)[0].strip() == "MR":
                    mrn = _piece(cx, 0, d, codec, "PID-3") or None
                    break

        xpn = _field(pid, 5, rep, comp)
        family = _piece(xpn, 0, d, codec, "PID-5")
        given = _piece(xpn, 1, d, codec, "PID-5")
        name = (f"{family}^{given}" if given else family) if (family or given) else None

        hl7_version = _first(f, 11, d, codec, "MSH-12")
        patient_type = _first(pv1, 18, d, codec, "PV1-18") or None
        if len(loc) > 1:
            room = _piece(loc, 1, d, codec, "PV1-3") or None
            bed = _piece(loc, 2, d, codec, "PV1-3") or None
            location_facility = _piece(loc, 3, d, codec, "PV1-3") or None
        else:
            room = bed = location_facility = None
        prior = _field(pv1, 6, rep, comp)
        if prior:
            prior_unit = _piece(prior, 0, d, codec, "PV1-6") or None
            prior_room = _piece(prior, 1, d, codec, "PV1-6") or None
            prior_bed = _piece(prior, 2, d, codec, "PV1-6") or None
        else:
            prior_unit = prior_room = prior_bed = None
        sex = _first(pid, 8, d, codec, "PID-8") or None

        # AdtMessage without the frozen-dataclass __init__ (one object.__setattr__ per
        # field costs ~7 µs a message): the same object, all fields set; equality,
        # repr, hash, dataclasses.replace/asdict behave as usual.
        obj = object.__new__(AdtMessage)
        object.__setattr__(
            obj,
            "__dict__",
            {
                "message_index": index,
                "control_id": control_id,
                "sending_facility": facility,
                "message_type": message_type,
                "trigger_event": trigger,
                "hl7_version": hl7_version,
                "message_ts": message_ts,
                "recorded_ts": recorded_ts,
                "event_occurred_ts": occurred_ts,
                "event_ts": occurred_ts or recorded_ts or message_ts,
                "patient_class": patient_class,
                "patient_type": patient_type,
                "unit": unit or None,
                "room": room,
                "bed": bed,
                "location_facility": location_facility,
                "prior_unit": prior_unit,
                "prior_room": prior_room,
                "prior_bed": prior_bed,
                "visit_number": visit,
                "mrn": mrn,
                "patient_name": name,
                "birth_date": birth_date,
                "sex": sex,
                "admit_ts": admit_ts,
                "discharge_ts": discharge_ts,
                "raw_text": text,
            },
        )
        return obj
    except (_Reject, ValueError) as exc:
        reason = str(exc)
        if at_eof and unterminated and not reason.startswith("file ends mid-message"):
            reason = "file ends mid-message: " + reason
        if not have_control_id:
            if fields_b is None and fs_b and not (fs_b.isalnum() or fs_b.isspace()):
                fields_b = msh_b.split(fs_b, 18)  # the ASCII path did not split the bytes
            control_id = _control_id_from_bytes(fields_b)
            if control_id is not None:
                control_id = without_nul(control_id)
        if text is None:
            text = raw_bytes.decode("utf-8", "backslashreplace")
        if "\x00" in text:
            text, reason = without_nul(text), reason + NUL_NOTE
        return Rejection(index, reason, text, control_id)
