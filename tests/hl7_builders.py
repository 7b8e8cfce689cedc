"""Builders for hand-made HL7 v2 ADT messages and AdtMessage objects, shared by
unit and integration tests.

    build_message("A02", control_id="C7", unit="SDU", prior_unit="ICU", visit="V1")
    -> "MSH|^~\\&|ADT|NGH|...\rEVN|...\rPID|...\rPV1|...\r"

Values are written as given (pass already-escaped text, e.g. ``name="O\\T\\BRIEN^PAT"``).
Pass ``None`` for a segment keyword in ``omit`` to leave that segment out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Iterable, Optional
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from healthops.sources.adt.schema import AdtMessage

STRUCTURES = {
    "A01": "ADT_A01",
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    "A04": "ADT_A01",
    "A06": "ADT_A06",
    "A07": "ADT_A06",
    "A08": "ADT_A01",
    "A11": "ADT_A09",
    "A12": "ADT_A12",
    "A13": "ADT_A01",
}


def build_message(
    event: str = "A01",
    *,
    control_id: str = "MSG00001",
    facility: str = "NGH",
    sending_app: str = "EPIC",
    version: str = "2.5.1",
    msg_ts: str = "20240115103000",
    recorded_ts: Optional[str] = None,  # EVN-2; defaults to msg_ts
    occurred_ts: str = "",  # EVN-6
    evn_event: Optional[str] = None,  # EVN-1; defaults to event
    msh9: Optional[str] = None,  # overrides MSH-9 entirely
    charset: str = "",  # MSH-18
    mrn: str = "MRN0001",
    pid3: Optional[str] = None,  # overrides PID-3 entirely
    name: str = "DOE^JANE",
    birth_date: str = "19800101",
    sex: str = "F",
    patient_class: str = "I",
    unit: str = "ICU",
    room: str = "201",
    bed: str = "A",
    loc_facility: Optional[str] = None,  # PV1-3.4; defaults to facility
    prior_unit: str = "",
    prior_room: str = "",
    prior_bed: str = "",
    patient_type: str = "",  # PV1-18
    visit: str = "V0001",
    admit_ts: str = "",  # PV1-44
    discharge_ts: str = "",  # PV1-45
    extra_segments: Iterable[str] = (),  # appended after PV1 (e.g. Z segments)
    omit: Iterable[str] = (),  # segment ids to leave out: "EVN", "PID", "PV1"
    terminator: str = "\r",
    delimiters: str = "^~\\&",
    field_sep: str = "|",
) -> str:
    omit = set(omit)
    fs = field_sep
    if msh9 is None:
        msh9 = f"ADT^{event}" if version == "2.3" else f"ADT^{event}^{STRUCTURES.get(event, 'ADT_A01')}"
    recorded = msg_ts if recorded_ts is None else recorded_ts
    loc_fac = facility if loc_facility is None else loc_facility
    location = f"{unit}^{room}^{bed}^{loc_fac}" if (unit or room or bed) else ""
    prior = f"{prior_unit}^{prior_room}^{prior_bed}" if (prior_unit or prior_room or prior_bed) else ""
    msh = [
        f"MSH{fs}{delimiters}",
        sending_app,
        facility,
        "HL7IF",
        "HEALTHOPS",
        msg_ts,
        "",
        msh9,
        control_id,
        "P",
        version,
        "",
        "",
        "AL",
        "NE",
        "",
        charset,
    ]
    segs = [fs.join(msh).rstrip(fs)]
    if "EVN" not in omit:
        evn1 = event if evn_event is None else evn_event
        segs.append(fs.join(["EVN", evn1, recorded, "", "", "", occurred_ts]).rstrip(fs))
    if "PID" not in omit:
        pid3 = f"{mrn}^^^{facility}^MR" if pid3 is None else pid3
        segs.append(fs.join(["PID", "1", "", pid3, "", name, "", birth_date, sex]))
    if "PV1" not in omit:
        pv1 = (
            ["PV1", "1", patient_class, location, "", "", prior]
            + [""] * 11
            + [patient_type, visit]
            + [""] * 24
            + [admit_ts, discharge_ts]
        )
        segs.append(fs.join(pv1).rstrip(fs))
    segs.extend(extra_segments)
    return terminator.join(segs) + terminator


# Where a NUL can sit in a message, by the field it lands in: build_message keywords
# with "{}" where it goes (a NUL byte, or the escape \\X00\\ that decodes to one). The
# other fields that carry the sending facility are set apart, so that only the named
# field holds it.
NUL_FIELDS: dict[str, dict] = {
    "MSH-1": {"field_sep": "{}"},
    "MSH-2": {"delimiters": "^~\\&{}"},
    "MSH-4": {"facility": "N{}GH", "pid3": "MRN0001^^^NGH^MR", "loc_facility": "NGH"},
    "MSH-7": {"msg_ts": "20240115{}103000", "recorded_ts": "20240115103000"},
    "MSH-9": {"msh9": "ADT^A01{}^ADT_A01"},
    "MSH-10": {"control_id": "NUL{}MSH10"},
    "MSH-12": {"version": "2.5{}"},
    "MSH-18": {"charset": "UTF{}-8"},
    "EVN-1": {"msh9": "ADT", "evn_event": "A0{}1"},
    "EVN-2": {"recorded_ts": "20240115{}103000"},
    "EVN-6": {"occurred_ts": "20240115{}103000"},
    "PID-3": {"pid3": "MRN{}0001^^^NGH^MR"},
    "PID-5": {"name": "DOE{}^JANE"},
    "PID-7": {"birth_date": "1980{}0101"},
    "PID-8": {"sex": "F{}"},
    "PV1-2": {"patient_class": "I{}"},
    "PV1-3": {"unit": "IC{}U"},
    "PV1-6": {"prior_unit": "TE{}LE"},
    "PV1-18": {"patient_type": "OBS{}"},
    "PV1-19": {"visit": "V{}0001"},
    "PV1-44": {"admit_ts": "20240115{}103000"},
    "PV1-45": {"discharge_ts": "20240115{}103000"},
    "ZPI-2": {"extra_segments": ["ZPI|1|NOTE{}TEXT"]},
}
# The fields healthops escape-decodes (the rest it reads as they are, or not at all):
# only there does \\X00\\ become a NUL.
NUL_DECODED_FIELDS = (
    "MSH-4",
    "MSH-10",
    "MSH-12",
    "EVN-1",
    "PID-3",
    "PID-5",
    "PID-8",
    "PV1-2",
    "PV1-3",
    "PV1-6",
    "PV1-18",
    "PV1-19",
)


def nul_message(field: str, nul: str = "\x00", **kwargs) -> str:
    """A message with ``nul`` in ``field`` (a key of NUL_FIELDS); other keywords as
    build_message's."""
    case = {
        k: [s.format(nul) for s in v] if isinstance(v, list) else v.format(nul) for k, v in NUL_FIELDS[field].items()
    }
    return build_message(**{**kwargs, **case})


def mllp(message: str | bytes, encoding: str = "utf-8") -> bytes:
    body = message.encode(encoding) if isinstance(message, str) else message
    return b"\x0b" + body + b"\x1c\r"


def batch(messages: Iterable[str], terminator: str = "\r") -> str:
    msgs = list(messages)
    head = f"FHS|^~\\&|EPIC|NGH|||20240115120000{terminator}BHS|^~\\&|EPIC|NGH|||20240115120000{terminator}"
    tail = f"BTS|{len(msgs)}{terminator}FTS|1{terminator}"
    return head + "".join(msgs) + tail


# --------------------------------------------------------------------------- AdtMessage objects

_LA = ZoneInfo("America/Los_Angeles")


def ts(value: str) -> datetime:
    """'2024-01-15 10:30' → aware datetime in America/Los_Angeles."""
    return datetime.fromisoformat(value).replace(tzinfo=_LA)


def adt_message(
    event: str,
    when: str | datetime,
    *,
    visit: str = "V1",
    unit: Optional[str] = "ICU",
    room: Optional[str] = "1",
    bed: Optional[str] = "A",
    patient_class: str = "I",
    patient_type: Optional[str] = None,
    prior_unit: Optional[str] = None,
    discharge: Optional[str | datetime] = None,
    control_id: Optional[str] = None,
    facility: str = "NGH",
    index: int = 1,
) -> "AdtMessage":
    """An AdtMessage built directly (no HL7 text), for census tests."""
    from healthops.sources.adt.schema import AdtMessage

    t = ts(when) if isinstance(when, str) else when
    dis = ts(discharge) if isinstance(discharge, str) else discharge
    adt_message.counter += 1
    return AdtMessage(
        message_index=index,
        control_id=control_id or f"C{adt_message.counter:06d}",
        sending_facility=facility,
        message_type="ADT",
        trigger_event=event,
        hl7_version="2.5.1",
        message_ts=t,
        recorded_ts=t,
        event_occurred_ts=None,
        event_ts=t,
        patient_class=patient_class,
        patient_type=patient_type,
        unit=unit,
        room=room,
        bed=bed,
        location_facility=facility,
        prior_unit=prior_unit,
        prior_room=None,
        prior_bed=None,
        visit_number=visit,
        mrn="M1",
        patient_name="DOE^JANE",
        birth_date=date(1980, 1, 1),
        sex="F",
        admit_ts=None,
        discharge_ts=dis,
        raw_text="",
    )


adt_message.counter = 0
