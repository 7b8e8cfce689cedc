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

from .hl7 import (
    Delimiters,
    RawItem,
    charset_codec,
    iter_file_chunks,
    iter_raw,
    parse_date,
    parse_ts,
    unescape,
    zone,
)
from .schema import KNOWN_EVENTS, AdtMessage, Rejection

DEFAULT_TZ = "America/Los_Angeles"

# Events whose PV1-3 (assigned location) and PV1-2 (class) drive the census.
LOCATION_EVENTS = frozenset({"A01", "A02", "A04", "A06", "A07"})

ParsedItem = Union[AdtMessage, Rejection]


class _Reject(Exception):
    pass


def parse_file(path: Union[str, Path], default_tz: str = DEFAULT_TZ) -> Iterator[ParsedItem]:
    """Parse an HL7 file, reading it in chunks (one chunk + one message in memory)."""
    zone(default_tz)                     # fail fast on a bad zone name
    return _parse_items(iter_raw(iter_file_chunks(path)), default_tz)


def parse_bytes(data: bytes, default_tz: str = DEFAULT_TZ) -> Iterator[ParsedItem]:
    zone(default_tz)
    return _parse_items(iter_raw((data,)), default_tz)


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
            snippet = first if len(first) <= 40 else first[:40] + "..."
            yield Rejection(index, f"not an HL7 message: {len(item.segments)} line(s) of text outside any "
                                   f"MSH-headed message, starting {snippet!r}", text)
        else:
            yield parse_message(item.segments, index, tz, item.problem, item.at_eof, item.unterminated)


_NO_FIELD: list = []


def _new_message(**values) -> AdtMessage:
    """AdtMessage without the frozen-dataclass __init__ (one object.__setattr__ per
    field costs ~7 µs a message). Same object: fields are all set, equality, repr,
    dataclasses.replace/asdict behave as usual."""
    obj = object.__new__(AdtMessage)
    obj.__dict__.update(values)
    return obj


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


def _ts(comps: list[str], where: str, tz: str):
    value = comps[0].strip() if comps else ""
    if not value:
        return None
    try:
        return parse_ts(value, tz)
    except ValueError:
        raise _Reject(f"unparseable time in {where}: {value!r}") from None


def parse_message(segs: list[bytes], index: int, tz: str = DEFAULT_TZ, problem: Optional[str] = None,
                  at_eof: bool = False, unterminated: bool = False) -> ParsedItem:
    """One message given as its segments (bytes, first one MSH)."""
    raw_bytes = b"\r".join(segs)
    msh_b = segs[0]
    fs_b = msh_b[3:4]
    control_id: Optional[str] = None
    text: Optional[str] = None
    try:
        if not fs_b or fs_b.isalnum() or fs_b.isspace():
            raise _Reject("MSH-1 field separator missing")
        fields_b = msh_b.split(fs_b, 18)
        if len(fields_b) > 9:
            control_id = fields_b[9].split(b"^")[0].decode("ascii", "replace").strip() or None
        msh18 = fields_b[17].split(b"~")[0].split(fs_b)[0].decode("ascii", "replace") if len(fields_b) > 17 else ""
        codec = charset_codec(msh18)
        if codec is None:
            raise _Reject(f"unsupported character set in MSH-18: {msh18!r}")
        try:
            text = raw_bytes.decode(codec)
        except UnicodeDecodeError as exc:
            bad = raw_bytes[exc.start:exc.end].hex(" ").upper()
            raise _Reject(f"undecodable bytes for character set {codec} (MSH-18 {msh18!r}): "
                          f"0x{bad} at byte {exc.start} of the message") from None
        lines = text.split("\r")
        d = Delimiters.from_msh(lines[0])
        if d.component == "\x00":
            raise _Reject("MSH-2 encoding characters missing")
        rep, comp = d.repetition, d.component
        # MSH-n is f[n - 1]: MSH-1 is the field separator itself
        f = [""] + lines[0].split(d.field)

        control_id = _piece(_field(f, 10, rep, comp), 0, d, codec, "MSH-10") or None
        if problem:
            raise _Reject(problem)
        if control_id is None:
            raise _Reject("MSH-10 message control id missing")
        facility = _piece(_field(f, 4, rep, comp), 0, d, codec, "MSH-4")
        if not facility:
            raise _Reject("MSH-4 sending facility missing")
        msh9_raw = f[9] if len(f) > 9 else ""
        msh9 = _field(f, 9, rep, comp)
        message_type = msh9[0].strip() if msh9 else ""
        if message_type != "ADT":
            raise _Reject(f"not an ADT message: MSH-9 is {msh9_raw!r}" if msh9_raw
                          else "not an ADT message: MSH-9 message type is empty")

        evn = pid = pv1 = None
        for line in lines[1:]:
            tag = line[:3]
            if tag == "PV1":
                if pv1 is None:
                    pv1 = line.split(d.field)
            elif tag == "EVN":
                if evn is None:
                    evn = line.split(d.field)
            elif tag == "PID":
                if pid is None:
                    pid = line.split(d.field)

        trigger = msh9[1].strip() if len(msh9) > 1 else ""
        if not trigger:
            trigger = _piece(_field(evn, 1, rep, comp), 0, d, codec, "EVN-1")
        if not trigger:
            raise _Reject("trigger event missing: MSH-9.2 and EVN-1 are empty")
        if trigger not in KNOWN_EVENTS:
            raise _Reject(f"unknown trigger event {trigger!r} (MSH-9 {msh9_raw!r})")

        msh7 = _field(f, 7, rep, comp)
        if not msh7 or not msh7[0].strip():
            raise _Reject("MSH-7 message time missing")
        message_ts = _ts(msh7, "MSH-7", tz)

        if pv1 is None:
            if at_eof:
                raise _Reject("file ends mid-message: PV1 segment missing (last message incomplete)")
            raise _Reject("PV1 segment missing")
        visit = _piece(_field(pv1, 19, rep, comp), 0, d, codec, "PV1-19")
        if not visit:
            raise _Reject("PV1-19 visit number missing")
        loc = _field(pv1, 3, rep, comp)
        unit = _piece(loc, 0, d, codec, "PV1-3")
        if not unit and trigger in LOCATION_EVENTS:
            raise _Reject(f"PV1-3 assigned unit missing (required for {trigger})")
        patient_class = _piece(_field(pv1, 2, rep, comp), 0, d, codec, "PV1-2")
        if not patient_class and trigger in LOCATION_EVENTS:
            raise _Reject(f"PV1-2 patient class missing (required for {trigger})")

        recorded_ts = _ts(_field(evn, 2, rep, comp), "EVN-2", tz)
        occurred_ts = _ts(_field(evn, 6, rep, comp), "EVN-6", tz)
        admit_ts = _ts(_field(pv1, 44, rep, comp), "PV1-44", tz)
        discharge_ts = _ts(_field(pv1, 45, rep, comp), "PV1-45", tz)

        birth_raw = _field(pid, 7, rep, comp)
        birth_raw = birth_raw[0].strip() if birth_raw else ""
        birth_date = None
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

        prior = _field(pv1, 6, rep, comp)
        return _new_message(
            message_index=index,
            control_id=control_id,
            sending_facility=facility,
            message_type=message_type,
            trigger_event=trigger,
            hl7_version=_piece(_field(f, 12, rep, comp), 0, d, codec, "MSH-12"),
            message_ts=message_ts,
            recorded_ts=recorded_ts,
            event_occurred_ts=occurred_ts,
            event_ts=occurred_ts or recorded_ts or message_ts,
            patient_class=patient_class,
            patient_type=_piece(_field(pv1, 18, rep, comp), 0, d, codec, "PV1-18") or None,
            unit=unit or None,
            room=_piece(loc, 1, d, codec, "PV1-3") or None,
            bed=_piece(loc, 2, d, codec, "PV1-3") or None,
            location_facility=_piece(loc, 3, d, codec, "PV1-3") or None,
            prior_unit=_piece(prior, 0, d, codec, "PV1-6") or None,
            prior_room=_piece(prior, 1, d, codec, "PV1-6") or None,
            prior_bed=_piece(prior, 2, d, codec, "PV1-6") or None,
            visit_number=visit,
            mrn=mrn,
            patient_name=name,
            birth_date=birth_date,
            sex=_piece(_field(pid, 8, rep, comp), 0, d, codec, "PID-8") or None,
            admit_ts=admit_ts,
            discharge_ts=discharge_ts,
            raw_text=text,
        )
    except (_Reject, ValueError) as exc:
        reason = str(exc)
        if at_eof and unterminated and not reason.startswith("file ends mid-message"):
            reason = "file ends mid-message: " + reason
        if text is None:
            text = raw_bytes.decode("utf-8", "backslashreplace")
        return Rejection(index, reason, text, control_id)
