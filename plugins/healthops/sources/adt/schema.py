"""The shape of one parsed ADT message, as it lands in ``raw.adt_messages``.

The column order of ``ADT_COLUMNS`` is the COPY column order: keep the two in step
with the table's migrations (``healthops/warehouse/migrations``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional

# Trigger events healthops understands (docs/definitions.md#trigger-events, HL7 v2 chapter 3).
KNOWN_EVENTS = ("A01", "A02", "A03", "A04", "A06", "A07", "A08", "A11", "A12", "A13")


@dataclass(frozen=True)
class AdtMessage:
    """One usable ADT message. Times are timezone-aware (facility zone applied
    when the message carried no offset). PHI: mrn, patient_name, birth_date, sex."""

    message_index: int  # 1-based position of the message in its file
    control_id: str  # MSH-10
    sending_facility: str  # MSH-4 (first component)
    message_type: str  # MSH-9.1, e.g. "ADT"
    trigger_event: str  # MSH-9.2 (or EVN-1 when MSH-9.2 is empty), e.g. "A02"
    hl7_version: str  # MSH-12
    message_ts: datetime  # MSH-7
    recorded_ts: Optional[datetime]  # EVN-2
    event_occurred_ts: Optional[datetime]  # EVN-6
    event_ts: datetime  # EVN-6, else EVN-2, else MSH-7
    patient_class: str  # PV1-2 (I, O, E, ...)
    patient_type: Optional[str]  # PV1-18 (OBS marks observation)
    unit: Optional[str]  # PV1-3.1
    room: Optional[str]  # PV1-3.2
    bed: Optional[str]  # PV1-3.3
    location_facility: Optional[str]  # PV1-3.4
    prior_unit: Optional[str]  # PV1-6.1
    prior_room: Optional[str]  # PV1-6.2
    prior_bed: Optional[str]  # PV1-6.3
    visit_number: str  # PV1-19.1 (the encounter key)
    mrn: Optional[str]  # PID-3 repetition with identifier type MR
    patient_name: Optional[str]  # PID-5 as "FAMILY^GIVEN" decoded text
    birth_date: Optional[date]  # PID-7
    sex: Optional[str]  # PID-8
    admit_ts: Optional[datetime]  # PV1-44
    discharge_ts: Optional[datetime]  # PV1-45
    raw_text: str  # the original message text, segments joined by "\r"


@dataclass(frozen=True)
class Rejection:
    """A message (or a stretch of a file) that cannot be used, with the reason."""

    message_index: int  # 1-based position in the file (0 for file-level problems)
    reason: str  # precise and human readable, e.g. "PV1-19 visit number missing"
    raw_text: str  # the original text, as received
    control_id: Optional[str] = None


ADT_COLUMNS = tuple(f.name for f in dataclasses.fields(AdtMessage))
