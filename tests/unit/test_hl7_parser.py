"""HL7 v2 ADT reader/parser: framing, terminators, batches, escapes, character sets,
repetitions, times, and every rejection reason."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from healthops.sources.adt.parser import parse_bytes, parse_chunks, parse_file  # noqa: E402
from healthops.sources.adt.schema import AdtMessage, Rejection  # noqa: E402

from hl7_builders import NUL_DECODED_FIELDS, NUL_FIELDS, batch, build_message, mllp, nul_message  # noqa: E402

LA = ZoneInfo("America/Los_Angeles")


def parse(data: str | bytes) -> list:
    return list(parse_bytes(data.encode("utf-8") if isinstance(data, str) else data))


def one(data: str | bytes):
    items = parse(data)
    assert len(items) == 1, items
    return items[0]


def reason(data: str | bytes) -> str:
    item = one(data)
    assert isinstance(item, Rejection), item
    return item.reason


# --------------------------------------------------------------------------- fields


def test_a01_fields():
    m = one(
        build_message(
            "A01",
            control_id="C1",
            msg_ts="20240115103000",
            recorded_ts="202401151025",
            pid3="X9^^^EPI^PI~M123^^^NGH^MR",
            name="DOE^JANE^Q",
            birth_date="19800102",
            sex="F",
            unit="ICU",
            room="201",
            bed="A",
            visit="V100",
            admit_ts="202401151020",
            version="2.5.1",
        )
    )
    assert isinstance(m, AdtMessage)
    assert (m.control_id, m.sending_facility, m.message_type, m.trigger_event, m.hl7_version) == (
        "C1",
        "NGH",
        "ADT",
        "A01",
        "2.5.1",
    )
    assert m.message_ts == datetime(2024, 1, 15, 10, 30, tzinfo=LA)
    assert m.recorded_ts == datetime(2024, 1, 15, 10, 25, tzinfo=LA)
    assert m.event_occurred_ts is None and m.event_ts == m.recorded_ts
    assert (m.patient_class, m.patient_type) == ("I", None)
    assert (m.unit, m.room, m.bed, m.location_facility) == ("ICU", "201", "A", "NGH")
    assert (m.prior_unit, m.prior_room, m.prior_bed) == (None, None, None)
    assert m.visit_number == "V100" and m.mrn == "M123"
    assert m.patient_name == "DOE^JANE" and m.birth_date == date(1980, 1, 2) and m.sex == "F"
    assert m.admit_ts == datetime(2024, 1, 15, 10, 20, tzinfo=LA) and m.discharge_ts is None
    assert m.message_index == 1
    assert m.raw_text.startswith("MSH|^~\\&|EPIC|NGH|") and m.raw_text.count("\r") == 3
    assert not m.raw_text.endswith("\r")


def test_event_ts_prefers_evn6_then_evn2_then_msh7():
    m = one(build_message(msg_ts="202401151030", recorded_ts="202401151020", occurred_ts="202401150900"))
    assert m.event_ts == datetime(2024, 1, 15, 9, 0, tzinfo=LA) == m.event_occurred_ts
    m = one(build_message(msg_ts="202401151030", recorded_ts="202401151020"))
    assert m.event_ts == datetime(2024, 1, 15, 10, 20, tzinfo=LA)
    m = one(build_message(msg_ts="202401151030", recorded_ts=""))
    assert m.event_ts == m.message_ts and m.recorded_ts is None
    m = one(build_message(msg_ts="202401151030", omit=["EVN"]))
    assert m.event_ts == m.message_ts


def test_a02_prior_location_and_a03_discharge():
    m = one(build_message("A02", unit="SDU", room="301", bed="B", prior_unit="ICU", prior_room="201", prior_bed="A"))
    assert (m.unit, m.prior_unit, m.prior_room, m.prior_bed) == ("SDU", "ICU", "201", "A")
    m = one(build_message("A03", discharge_ts="20240116113000-0800"))
    assert m.discharge_ts == datetime(2024, 1, 16, 19, 30, tzinfo=timezone.utc)


def test_observation_patient_type():
    m = one(build_message("A04", patient_class="O", patient_type="OBS", unit="TELE"))
    assert (m.patient_class, m.patient_type, m.unit) == ("O", "OBS", "TELE")


def test_trigger_from_evn1_when_msh9_has_no_trigger():
    m = one(build_message("A08", msh9="ADT", evn_event="A08"))
    assert m.trigger_event == "A08"


def test_mrn_is_the_mr_repetition():
    m = one(build_message(pid3="111^^^NGH^AN~222^^^NGH^MR~333^^^EPI^PI"))
    assert m.mrn == "222"
    m = one(build_message(pid3="111^^^NGH^AN"))
    assert m.mrn is None


def test_z_segments_ignored_but_kept_in_raw_text():
    msg = build_message(extra_segments=["ZPV|1|FALL RISK", "ZXX|whatever|PV1|bogus"])
    m = one(msg)
    assert m.unit == "ICU" and "ZPV|1|FALL RISK" in m.raw_text


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    "value,expected",
    [
        ("202401151030", datetime(2024, 1, 15, 10, 30, tzinfo=LA)),
        ("20240115103045", datetime(2024, 1, 15, 10, 30, 45, tzinfo=LA)),
        ("20240115103045.1234", datetime(2024, 1, 15, 10, 30, 45, 123400, tzinfo=LA)),
        ("20240715103045-0700", datetime(2024, 7, 15, 17, 30, 45, tzinfo=timezone.utc)),
        ("202401151030+0100", datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc)),
        ("20240715103045.5+0000", datetime(2024, 7, 15, 10, 30, 45, 500000, tzinfo=timezone.utc)),
    ],
)
def test_time_formats(value, expected):
    m = one(build_message(recorded_ts=value))
    assert m.event_ts == expected
    assert m.event_ts.utcoffset() is not None


def test_local_time_uses_facility_zone_and_dst():
    winter = one(build_message(recorded_ts="202401151030"))
    summer = one(build_message(recorded_ts="202407151030"))
    assert winter.event_ts.utcoffset() == timedelta(hours=-8)
    assert summer.event_ts.utcoffset() == timedelta(hours=-7)
    other = list(parse_bytes(build_message(recorded_ts="202401151030").encode(), default_tz="America/New_York"))[0]
    assert other.event_ts.utcoffset() == timedelta(hours=-5)


def test_time_with_ts_precision_component():
    m = one(build_message(recorded_ts="202401151030^M"))
    assert m.event_ts == datetime(2024, 1, 15, 10, 30, tzinfo=LA)


# --------------------------------------------------------------------------- framing, terminators


def _three() -> list[str]:
    return [build_message("A01", control_id=f"C{i}", visit=f"V{i}") for i in range(3)]


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segment_terminators(terminator):
    text = "".join(m.replace("\r", terminator) for m in _three())
    items = parse(text)
    assert [type(i) for i in items] == [AdtMessage] * 3
    assert [i.control_id for i in items] == ["C0", "C1", "C2"]
    assert [i.message_index for i in items] == [1, 2, 3]
    assert all("\n" not in i.raw_text and i.raw_text.count("\r") == 3 for i in items)


def test_mixed_terminators_and_blank_lines():
    a, b, c = _three()
    text = a + "\n\n" + b.replace("\r", "\r\n") + "\r\n  \r\n" + c.replace("\r", "\n")
    items = parse(text)
    assert [i.control_id for i in items] == ["C0", "C1", "C2"]


def test_mllp_framing():
    data = b"".join(mllp(m) for m in _three())
    items = parse(data)
    assert [i.control_id for i in items] == ["C0", "C1", "C2"]
    assert all(isinstance(i, AdtMessage) and "\x0b" not in i.raw_text and "\x1c" not in i.raw_text for i in items)
    # framing with \r\n terminators and newlines between frames
    data = b"\n".join(mllp(m.replace("\r", "\r\n")) for m in _three())
    assert [i.control_id for i in parse(data)] == ["C0", "C1", "C2"]


def test_mllp_last_segment_without_terminator():
    body = build_message().rstrip("\r").encode()
    m = one(b"\x0b" + body + b"\x1c\r")
    assert isinstance(m, AdtMessage) and m.visit_number == "V0001"


def test_batch_envelope_is_skipped():
    items = parse(batch(_three()))
    assert [type(i) for i in items] == [AdtMessage] * 3
    assert not any("BHS" in i.raw_text or "BTS" in i.raw_text or "FHS" in i.raw_text for i in items)
    items = parse(batch([m.replace("\r", "\r\n") for m in _three()], terminator="\r\n"))
    assert [i.control_id for i in items] == ["C0", "C1", "C2"]


def test_batch_inside_mllp():
    data = mllp(batch(_three()))
    assert [i.control_id for i in parse(data)] == ["C0", "C1", "C2"]


def test_utf8_bom_at_file_start():
    m = one(b"\xef\xbb\xbf" + build_message().encode())
    assert isinstance(m, AdtMessage)


def test_parse_file_reads_in_chunks(tmp_path, monkeypatch):
    import healthops.sources.adt.hl7 as hl7

    msgs = [build_message(control_id=f"C{i}", visit=f"V{i}", name="M\\XC39C\\LLER^ZOË") for i in range(50)]
    path = tmp_path / "x.hl7"
    path.write_bytes(b"".join(mllp(m.replace("\r", "\r\n")) for m in msgs))
    monkeypatch.setattr(hl7, "CHUNK_SIZE", 37)
    monkeypatch.setattr(hl7.iter_file_chunks, "__defaults__", (37,))
    items = list(parse_file(path))
    assert [i.control_id for i in items] == [f"C{i}" for i in range(50)]
    assert all(i.patient_name == "MÜLLER^ZOË" for i in items)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
def test_chunk_boundaries_do_not_matter(cuts):
    msgs = _three()
    data = (
        mllp(msgs[0].replace("\r", "\r\n"))
        + msgs[1].replace("\r", "\r\n").encode()
        + batch([msgs[2]]).encode()
        + b"garbage line\r"
    )
    whole = [(type(i).__name__, i.message_index, i.raw_text, getattr(i, "reason", None)) for i in parse(data)]
    chunks, pos = [], 0
    for c in cuts:
        chunks.append(data[pos : pos + c])
        pos += c
    chunks.append(data[pos:])
    split = [(type(i).__name__, i.message_index, i.raw_text, getattr(i, "reason", None)) for i in parse_chunks(chunks)]
    assert split == whole


# --------------------------------------------------------------------------- escapes, delimiters, charsets


def test_escape_sequences_are_decoded():
    m = one(build_message(name="O\\T\\BRIEN^A\\S\\B\\F\\C\\R\\D\\E\\E"))
    assert m.patient_name == "O&BRIEN^A^B|C~D\\E"
    m = one(build_message(name="JOS\\XC389\\^ANN\\H\\A\\N\\"))
    assert m.patient_name == "JOSÉ^ANNA"
    m = one(build_message(name="ODD\\Z12\\^X"))  # unknown sequences are kept
    assert m.patient_name == "ODD\\Z12\\^X"


def test_escaped_subcomponent_is_not_split():
    m = one(build_message(name="O\\T\\BRIEN&VAN^PAT"))  # raw & splits; escaped & does not
    assert m.patient_name == "O&BRIEN^PAT"


def test_non_default_delimiters():
    msg = build_message(
        name="O#T#BRIEN$ANN", pid3="1$$$NGH$AN!2$$$NGH$MR", unit="ICU", room="201", field_sep="%", delimiters="$!#@"
    )
    msg = msg.replace("^", "$")
    m = one(msg)
    assert m.patient_name == "O@BRIEN^ANN"
    assert (m.mrn, m.unit, m.room, m.trigger_event) == ("2", "ICU", "201", "A01")


def test_latin1_charset():
    msg = build_message(name="MÜLLER^JOSÉ", charset="8859/1")
    m = one(msg.encode("iso-8859-1"))
    assert m.patient_name == "MÜLLER^JOSÉ"
    m = one(build_message(name="M\\XDC\\LLER^X", charset="8859/1").encode("iso-8859-1"))
    assert m.patient_name == "MÜLLER^X"


def test_utf8_default_and_declared():
    assert one(build_message(name="NÚÑEZ^ZOË").encode()).patient_name == "NÚÑEZ^ZOË"
    assert one(build_message(name="NÚÑEZ^ZOË", charset="UNICODE UTF-8").encode()).patient_name == "NÚÑEZ^ZOË"


def test_each_message_uses_its_own_charset():
    a = build_message(control_id="A", name="MÜLLER^X", charset="8859/1").encode("iso-8859-1")
    b = build_message(control_id="B", name="MÜLLER^X").encode("utf-8")
    items = parse(a + b)
    assert [i.patient_name for i in items] == ["MÜLLER^X", "MÜLLER^X"]


def test_undecodable_utf8_is_rejected_and_file_continues():
    bad = build_message(control_id="BAD", name="MÜLLER^X").encode("iso-8859-1")  # latin-1 bytes, no MSH-18
    good = build_message(control_id="GOOD").encode()
    items = parse(bad + good)
    assert isinstance(items[0], Rejection)
    assert items[0].reason.startswith("undecodable bytes for character set utf-8")
    assert "0xDC" in items[0].reason and items[0].control_id == "BAD"
    assert isinstance(items[1], AdtMessage) and items[1].message_index == 2


def test_unsupported_charset():
    assert reason(build_message(charset="UNICODE UTF-16")) == "unsupported character set in MSH-18: 'UNICODE UTF-16'"


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"control_id": ""}, "MSH-10 message control id missing"),
        ({"facility": ""}, "MSH-4 sending facility missing"),
        ({"msh9": "ORU^R01^ORU_R01"}, "not an ADT message: MSH-9 is 'ORU^R01^ORU_R01'"),
        ({"msh9": ""}, "not an ADT message: MSH-9 message type is empty"),
        ({"event": "A99"}, "unknown trigger event 'A99' (MSH-9 'ADT^A99^ADT_A01')"),
        ({"msh9": "ADT", "evn_event": ""}, "trigger event missing: MSH-9.2 and EVN-1 are empty"),
        ({"msg_ts": ""}, "MSH-7 message time missing"),
        ({"msg_ts": "2024-01-15 10:30"}, "unparseable time in MSH-7: '2024-01-15 10:30'"),
        ({"recorded_ts": "20240115"}, "unparseable time in EVN-2: '20240115'"),
        ({"recorded_ts": "2024011510"}, "unparseable time in EVN-2: '2024011510'"),
        ({"recorded_ts": "202401152530"}, "unparseable time in EVN-2: '202401152530'"),
        ({"occurred_ts": "20240230101010"}, "unparseable time in EVN-6: '20240230101010'"),
        ({"admit_ts": "yesterday"}, "unparseable time in PV1-44: 'yesterday'"),
        ({"discharge_ts": "202401151030+9900"}, "unparseable time in PV1-45: '202401151030+9900'"),
        ({"birth_date": "1980"}, "unparseable date in PID-7: '1980'"),
        ({"omit": ["PV1"]}, "PV1 segment missing"),
        ({"visit": ""}, "PV1-19 visit number missing"),
        ({"patient_class": ""}, "PV1-2 patient class missing (required for A01)"),
        ({"name": "BAD\\XZZ\\^X"}, "invalid escape sequence in PID-5: \\XZZ\\"),
    ],
)
def test_rejection_reasons(kwargs, expected):
    # a second message behind the bad one so "PV1 missing" is not the end-of-file case
    bad = build_message(**kwargs)
    items = parse(bad + build_message(control_id="NEXT"))
    assert isinstance(items[0], Rejection), items[0]
    assert items[0].reason == expected
    assert items[0].raw_text == bad.rstrip("\r")
    assert isinstance(items[1], AdtMessage) and items[1].control_id == "NEXT"


@pytest.mark.parametrize("event", ["A01", "A02", "A04", "A06", "A07"])
def test_location_required(event):
    assert (
        reason(build_message(event, unit="", room="", bed="")) == f"PV1-3 assigned unit missing (required for {event})"
    )


@pytest.mark.parametrize("event", ["A03", "A08", "A11", "A12", "A13"])
def test_location_not_required(event):
    m = one(build_message(event, unit="", room="", bed=""))
    assert isinstance(m, AdtMessage) and m.unit is None


def test_a02_prior_location_not_required():
    m = one(build_message("A02", unit="SDU"))
    assert isinstance(m, AdtMessage) and m.prior_unit is None


def test_rejection_keeps_control_id():
    r = one(build_message(control_id="X1", visit=""))
    assert isinstance(r, Rejection) and r.control_id == "X1" and r.message_index == 1


def test_garbage_between_messages():
    a, b = build_message(control_id="A"), build_message(control_id="B")
    items = parse(a + "this is not HL7\rneither is this\r" + b)
    assert [type(i) for i in items] == [AdtMessage, Rejection, AdtMessage]
    assert items[1].message_index == 2 and items[2].message_index == 3
    assert items[1].reason.startswith("not an HL7 message: 2 line(s) of text outside any MSH-headed message")
    assert items[1].raw_text == "this is not HL7\rneither is this"


def test_garbage_before_first_message_and_non_message_file():
    items = parse("hello world\r" + build_message())
    assert [type(i) for i in items] == [Rejection, AdtMessage]
    items = parse(b"PK\x03\x04\x00\x00binary junk")
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert items[0].reason.startswith("not an HL7 message")


def test_empty_input():
    assert parse(b"") == [] and parse(b"\r\n\r\n") == []


# --------------------------------------------------------------------------- NUL bytes (not storable)

NUL_NOTE = " (raw_text keeps each NUL byte written as \\x00)"


@pytest.mark.parametrize("field", list(NUL_FIELDS))
def test_a_nul_byte_rejects_its_message_naming_the_field_and_the_file_goes_on(field):
    bad = nul_message(field, control_id="BAD")
    items = parse(bad + build_message(control_id="NEXT"))
    assert isinstance(items[0], Rejection), items[0]
    assert items[0].reason == f"NUL byte in {field}: PostgreSQL text cannot hold it" + NUL_NOTE
    # what is kept is storable, and tells where each NUL was
    assert items[0].raw_text == bad.rstrip("\r").replace("\x00", "\\x00")
    assert "\x00" not in (items[0].control_id or "")
    assert isinstance(items[1], AdtMessage) and items[1].control_id == "NEXT"


def test_the_control_id_of_a_message_rejected_for_a_nul_is_kept_storable():
    assert one(nul_message("PID-5", control_id="K1")).control_id == "K1"
    assert one(nul_message("MSH-10")).control_id == "NUL\\x00MSH10"
    assert one(nul_message("MSH-1", control_id="K1")).control_id is None  # no separator to find it by


def test_nul_bytes_in_several_fields_name_the_first_and_the_others():
    r = one(build_message(name="DOE\x00^JANE", unit="IC\x00U", room="2\x0001"))
    assert r.reason == "NUL byte in PID-5: PostgreSQL text cannot hold it; also in PV1-3" + NUL_NOTE


@pytest.mark.parametrize("field", NUL_DECODED_FIELDS)
def test_an_escape_that_decodes_to_nul_rejects_its_message_naming_the_field(field):
    bad = nul_message(field, "\\X00\\", control_id="BAD")
    items = parse(bad + build_message(control_id="NEXT"))
    assert isinstance(items[0], Rejection), items[0]
    assert items[0].reason == (
        f"NUL byte in {field}: the escape sequence \\X00\\ decodes to NUL, which PostgreSQL text cannot hold"
    )
    assert items[0].raw_text == bad.rstrip("\r")  # the escape itself is text: kept as received
    assert isinstance(items[1], AdtMessage) and items[1].control_id == "NEXT"


def test_a_nul_inside_a_longer_escape_and_in_a_latin1_message():
    assert one(build_message(name="A\\X410042\\^B")).reason.startswith("NUL byte in PID-5: the escape sequence")
    data = build_message(name="M\\X00\\LLER^X", charset="8859/1").encode("iso-8859-1")
    assert one(data).reason.startswith("NUL byte in PID-5")


def test_an_escape_to_nul_in_a_field_healthops_does_not_decode_is_loaded_as_text():
    m = one(build_message(extra_segments=["ZPI|1|A\\X00\\B"]))
    assert isinstance(m, AdtMessage) and "ZPI|1|A\\X00\\B" in m.raw_text


def test_nul_bytes_outside_any_message_are_kept_storable():
    items = parse(b"PK\x03\x04\x00\x00binary junk\r" + build_message().encode())
    assert [type(i) for i in items] == [Rejection, AdtMessage]
    assert items[0].raw_text == "PK\x03\x04\\x00\\x00binary junk"
    assert items[0].reason == (
        "not an HL7 message: 1 line(s) of text outside any MSH-headed message, "
        "starting 'PK\\x03\\x04\\x00\\x00binary junk'" + NUL_NOTE
    )


def _storable(item) -> bool:
    """Every text of a parsed item can be stored as PostgreSQL text (UTF-8, no NUL)."""
    texts = [v for v in vars(item).values() if isinstance(v, str)]
    # encode() raises on a lone surrogate; an empty text (b"", falsy) is storable too
    return all("\x00" not in t for t in texts) and all(isinstance(t.encode("utf-8"), bytes) for t in texts)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=4)), min_size=1, max_size=6
    )
)
def test_whatever_bytes_a_file_holds_every_text_parsed_is_storable(insertions):
    """Bytes dropped anywhere into a good message (NULs, invalid UTF-8, delimiters,
    terminators): whatever the parser yields can be stored, so the COPY of the file
    cannot fail on it."""
    data = bytearray((build_message(control_id="A") + build_message(control_id="B", name="M\\X00\\^X")).encode())
    for pos, blob in insertions:
        data[pos:pos] = blob
    items = parse(bytes(data))
    assert items and all(_storable(i) for i in items)


# --------------------------------------------------------------------------- truncated files


def test_truncated_file_missing_pv1():
    a = build_message(control_id="A")
    cut = build_message(control_id="B")
    cut = cut[: cut.index("PV1|")]
    items = parse(a + cut)
    assert isinstance(items[0], AdtMessage)
    assert isinstance(items[1], Rejection) and items[1].control_id == "B"
    assert items[1].reason == "file ends mid-message: PV1 segment missing (last message incomplete)"


def test_truncated_file_cut_inside_last_segment():
    cut = build_message(control_id="B", visit="V12345")
    cut = cut[: cut.index("V12345")]  # PV1-19 never arrived, no final terminator
    assert reason(cut) == "file ends mid-message: PV1-19 visit number missing"


def test_truncated_mllp_frame():
    data = mllp(build_message(control_id="A")) + b"\x0b" + build_message(control_id="B").encode()
    items = parse(data)
    assert isinstance(items[0], AdtMessage)
    assert items[1].reason == "file ends mid-message: MLLP end block (0x1C 0x0D) missing"


def test_mllp_end_block_missing_mid_file():
    data = b"\x0b" + build_message(control_id="A").encode() + mllp(build_message(control_id="B"))
    items = parse(data)
    assert isinstance(items[0], Rejection) and items[0].reason.startswith("MLLP end block (0x1C) missing")
    assert isinstance(items[1], AdtMessage)


def test_truncated_batch():
    text = batch(_three())
    text = text[: text.index("BTS|")]
    items = parse(text)
    assert [type(i) for i in items] == [AdtMessage, AdtMessage, Rejection]
    assert items[2].reason == "file ends mid-message: batch trailer (BTS/FTS) missing after the last message"


def test_complete_last_message_without_final_terminator_is_fine():
    m = one(build_message().rstrip("\r"))
    assert isinstance(m, AdtMessage)


def test_duplicates_are_not_removed_by_the_parser():
    a = build_message(control_id="SAME")
    assert [i.control_id for i in parse(a + a)] == ["SAME", "SAME"]


def test_parsed_message_is_a_complete_adt_message():
    from healthops.sources.adt.schema import ADT_COLUMNS

    m = one(build_message(occurred_ts="202401150900", discharge_ts="202401161000"))
    rebuilt = AdtMessage(**{c: getattr(m, c) for c in ADT_COLUMNS})
    assert rebuilt == m and hash(rebuilt) == hash(m)
    assert set(vars(m)) == set(ADT_COLUMNS)


def test_non_ascii_digits_are_not_times():
    assert reason(build_message(recorded_ts="٢٠٢٤٠١١٥١٠٣٠")).startswith("unparseable time in EVN-2")


# --------------------------------------------------------------------------- fast paths (times, ASCII)


def _regex_ts(value: str, tz: str) -> datetime:
    """The general (regex) path of parse_ts, the reference for its fast paths."""
    import healthops.sources.adt.hl7 as hl7

    m = hl7._TS.fullmatch(value)
    if m is None:
        raise ValueError(value)
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    tzinfo = hl7._fixed_offset(sign, int(oh), int(om)) if sign else ZoneInfo(tz)
    us = int(frac.ljust(6, "0")) if frac else 0
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s) if s else 0, us, tzinfo=tzinfo)


@pytest.mark.parametrize(
    "value",
    [
        "20241103013000",
        "202411030130",
        "20241103015959",
        "20241103020000",  # fall back: 01:xx twice
        "20240310023000",
        "202403100200",
        "20240310035959",
        "20240310015959",  # spring forward: 02:xx missing
        "20240229120000",
        "20230229120000",
        "20240115250000",
        "20240115106000",
        "20240115103060",
        "00000115103000",
        "99991231235959",
        "20241301103000",
        "20240100103000",
        "20240115103045-0800",
        "202401151030+0530",
        "20240715103045+0000",
        "20240115103045-2400",
        "20240115103045+0060",
        "202401151030-0",
        "2024011510304-0800",
        "20240115103045.5-0800",
        "٢٠٢٤٠١١٥١٠٣٠",
        "2024011510３0",
    ],
)
@pytest.mark.parametrize("tz", ["America/Los_Angeles", "America/New_York", "Europe/London", "UTC"])
def test_fast_time_paths_match_the_regex_path(value, tz):
    from healthops.sources.adt.hl7 import parse_ts

    try:
        expected = _regex_ts(value, tz)
    except ValueError:
        for _ in range(2):  # an invalid date-hour is never cached as valid
            with pytest.raises(ValueError):
                parse_ts(value, tz)
        return
    got = parse_ts(value, tz)
    assert got == expected
    assert (got.fold, got.tzinfo, got.utcoffset()) == (expected.fold, expected.tzinfo, expected.utcoffset())
    assert got.replace(tzinfo=None) == expected.replace(tzinfo=None)  # same wall clock


def test_dst_ambiguous_and_nonexistent_local_times():
    # 2024-11-03 01:30 happens twice in Los Angeles: the first (PDT, fold=0) is taken
    m = one(build_message(recorded_ts="20241103013000", occurred_ts="202411030130"))
    assert m.recorded_ts == datetime(2024, 11, 3, 1, 30, tzinfo=LA) and m.recorded_ts.fold == 0
    assert m.recorded_ts.utcoffset() == timedelta(hours=-7) == m.event_occurred_ts.utcoffset()
    # 2024-03-10 02:30 never happens: kept as the wall-clock time with fold=0 (offset before the gap)
    m = one(build_message(recorded_ts="20240310023000"))
    assert m.recorded_ts == datetime(2024, 3, 10, 2, 30, tzinfo=LA) and m.recorded_ts.fold == 0
    assert (m.recorded_ts.hour, m.recorded_ts.minute) == (2, 30)
    assert m.recorded_ts.utcoffset() == timedelta(hours=-8)
    # the same local hour in another zone, same message bytes
    ny = list(parse_bytes(build_message(recorded_ts="20241103013000").encode(), default_tz="America/New_York"))[0]
    assert ny.recorded_ts.utcoffset() == timedelta(hours=-4) and ny.recorded_ts.fold == 0


def test_charset_rejection_keeps_control_id_with_and_without_non_ascii_bytes():
    ascii_msg = build_message(control_id="Q1", charset="UNICODE UTF-16").encode()
    other = build_message(control_id="Q2", charset="UNICODE UTF-16", name="MÜLLER^X").encode()
    r1, r2 = parse(ascii_msg + other)
    assert (r1.reason, r1.control_id) == ("unsupported character set in MSH-18: 'UNICODE UTF-16'", "Q1")
    assert (r2.reason, r2.control_id) == ("unsupported character set in MSH-18: 'UNICODE UTF-16'", "Q2")
    assert r1.raw_text == ascii_msg.decode().rstrip("\r") and r2.raw_text == other.decode().rstrip("\r")


def test_invalid_escape_in_control_id_keeps_the_raw_control_id():
    r = one(build_message(control_id="C\\XZZ\\1"))
    assert isinstance(r, Rejection) and r.reason == "invalid escape sequence in MSH-10: \\XZZ\\"
    assert r.control_id == "C\\XZZ\\1"


def test_ascii_message_declaring_latin1_decodes_hex_escapes_as_latin1():
    data = build_message(name="M\\XDC\\LLER^JOS\\XC9\\", charset="8859/1").encode("ascii")
    assert one(data).patient_name == "MÜLLER^JOSÉ"


def test_repeated_times_and_birth_dates_give_equal_values():
    a, b = parse(
        build_message(control_id="A", recorded_ts="20240115103045", birth_date="19800102")
        + build_message(control_id="B", recorded_ts="20240115103045", birth_date="19800102")
    )
    assert a.recorded_ts == b.recorded_ts == datetime(2024, 1, 15, 10, 30, 45, tzinfo=LA)
    assert a.birth_date == b.birth_date == date(1980, 1, 2)
