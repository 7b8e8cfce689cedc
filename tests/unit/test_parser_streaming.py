"""The ADT parser streams: memory stays bounded by the chunk size, not the input size,
and where the chunks are cut never changes the result."""

from __future__ import annotations

import sys
import tracemalloc
from functools import lru_cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import healthops.sources.adt.hl7 as hl7  # noqa: E402
from healthops.sources.adt.parser import parse_bytes, parse_chunks  # noqa: E402
from healthops.sources.adt.schema import AdtMessage, Rejection  # noqa: E402

from hl7_builders import batch, build_message, mllp  # noqa: E402

CHUNK = 16 * 1024  # bytes per chunk the "socket" delivers


@lru_cache(maxsize=None)
def _template(kind: int) -> bytes:
    text = build_message(
        ("A01", "A02", "A03", "A08")[kind % 4],
        control_id="C#######",
        visit="V#######",
        mrn="M#######",
        name="O\\T\\BRIEN^ZO\\XC3AB\\",
        msg_ts=f"202403{10 + kind % 3:02d}{kind % 24:02d}{kind % 60:02d}00",
        prior_unit="ICU" if kind % 4 == 1 else "",
    )
    return mllp(text.replace("\r", "\r\n"))


def _message(i: int) -> bytes:
    """Message i of a synthetic stream: MLLP-framed, \\r\\n terminators, escapes."""
    return _template(i % 120).replace(b"#######", b"%07d" % i)


def _stream(n: int, chunk: int = 0):
    """n messages as a generator of odd-sized chunks; the whole stream never exists at once."""
    chunk = chunk or CHUNK
    buf = b""
    sizes = (chunk, chunk - 1, chunk + 7, 13)
    k = 0
    for i in range(n):
        buf += _message(i)
        while len(buf) >= sizes[k % 4]:
            yield buf[: sizes[k % 4]]
            buf = buf[sizes[k % 4] :]
            k += 1
    if buf:
        yield buf


def test_memory_is_bounded_by_the_chunk_not_the_input():
    n = 20_000
    # The parser's caches (times, hours, birth dates, delimiters) are bounded by their
    # maxsize; start them empty so that the figure is the streaming working set.
    hl7.parse_ts.cache_clear()
    hl7.parse_date.cache_clear()
    hl7._HOURS.clear()
    size = sum(len(c) for c in _stream(n))
    count = 0
    tracemalloc.start()
    try:
        for item in parse_chunks(_stream(n)):
            assert isinstance(item, AdtMessage), item
            count += 1
            if count == n // 10:
                _, early_peak = tracemalloc.get_traced_memory()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert size > 4_000_000  # ~4.5 MB of HL7 went through
    # Everything traced counts, this test's own chunk generator included: the framing
    # holds a few copies of one chunk plus its segments (~8 chunks' worth at most).
    assert peak < size / 10, (peak, size)  # far below the input size
    assert peak < 16 * CHUNK, (peak, CHUNK)  # a small multiple of the chunk size
    # ... and does not grow with the input: 10x the messages, the same peak
    assert peak < early_peak * 1.25 + 16 * 1024, (early_peak, peak)


def _key(items) -> list:
    return [
        (
            type(i).__name__,
            i.message_index,
            i.raw_text,
            getattr(i, "reason", None),
            getattr(i, "control_id", None),
            getattr(i, "patient_name", None),
            getattr(i, "event_ts", None),
        )
        for i in items
    ]


def _mixed() -> bytes:
    """MLLP frames with \\r\\n, a bare \\n message, a batch, garbage, a BOM."""
    a = build_message("A01", control_id="A", name="M\\XC39C\\LLER^ZOË")
    b = build_message("A02", control_id="B", prior_unit="ICU")
    c = build_message("A03", control_id="C", discharge_ts="20240116113000-0800")
    return (
        b"\xef\xbb\xbf"
        + mllp(a.replace("\r", "\r\n"))
        + b"\r\n"
        + mllp(b)
        + c.replace("\r", "\n").encode()
        + batch([a, b]).encode()
        + b"not hl7\r\n"
        + mllp(c)
    )


def test_every_two_chunk_cut_parses_like_the_whole_buffer():
    data = _mixed()
    whole = _key(parse_bytes(data))
    assert [t for t, *_ in whole] == ["AdtMessage"] * 5 + ["Rejection", "AdtMessage"]
    for cut in range(len(data) + 1):  # inside MLLP bytes, between \r and \n, in the BOM
        assert _key(parse_chunks([data[:cut], data[cut:]])) == whole, cut


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_small_chunks_parse_like_the_whole_buffer(size):
    data = _mixed()
    chunks = (data[i : i + size] for i in range(0, len(data), size))
    assert _key(parse_chunks(chunks)) == _key(parse_bytes(data))


def test_boundaries_at_terminators_and_block_bytes():
    data = _mixed()
    whole = _key(parse_bytes(data))
    special = [i for i in range(1, len(data)) if data[i - 1 : i] in (b"\r", b"\n", b"\x0b", b"\x1c")]
    assert len(special) > 30
    # every chunk ends right after a terminator or MLLP byte (and the next one starts with \n, \r, ...)
    cuts = [0] + special + [len(data)]
    assert _key(parse_chunks(data[a:b] for a, b in zip(cuts, cuts[1:]))) == whole


def test_large_stream_split_anywhere_matches_whole_buffer():
    data = b"".join(_message(i) for i in range(300))
    whole = _key(parse_bytes(data))
    assert len(whole) == 300
    assert _key(parse_chunks(_chunks_of(data, (1, 7, 4093, 2, 500, 3)))) == whole
    assert _key(parse_chunks(_chunks_of(data, (CHUNK,)))) == whole


def _chunks_of(data: bytes, sizes: tuple[int, ...]):
    pos, k = 0, 0
    while pos < len(data):
        n = sizes[k % len(sizes)]
        yield data[pos : pos + n]
        pos += n
        k += 1


def test_bom_split_across_the_first_chunks():
    body = build_message(control_id="X").encode()
    for first in (b"\xef", b"\xef\xbb"):
        rest = (b"\xef\xbb\xbf" + body)[len(first) :]
        items = list(parse_chunks([b"", first, rest]))
        assert len(items) == 1 and isinstance(items[0], AdtMessage) and items[0].control_id == "X"
    # a lone BOM prefix is text outside any message, as before
    items = list(parse_chunks([b"\xef\xbb"]))
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert list(parse_chunks([b"\xef\xbb\xbf"])) == []
