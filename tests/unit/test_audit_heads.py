"""The heads file on its own, without a server: each line's HMAC covers its content and
the previous line's HMAC, so an edited, removed, inserted or reordered line, a line
signed with another key and a cut-off line are each named; the key comes from the
environment, the Airflow connection or (the embedded warehouse only) a file made once."""

from __future__ import annotations

import datetime as dt
import json
import stat

import pytest

from healthops import config
from healthops.errors import ConfigurationError
from healthops.quality import audit_heads
from healthops.quality.audit_heads import Head

KEY = b"k" * 40
OTHER = b"o" * 40
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def heads(n: int) -> dict[str, Head]:
    """The chains after night n: n runs, 13 results each, no violation yet, one review."""
    return {
        "audit.validation_runs": Head(n, f"{n:064x}", n),
        "audit.rule_results": Head(13 * n, f"{13 * n:064x}", 13 * n),
        "audit.rule_violations": Head(None, None, 0),
        "audit.reviews": Head(1, "a" * 64, 1),
    }


def write_nights(path, nights: int, key: bytes = KEY) -> list[bytes]:
    for n in range(1, nights + 1):
        audit_heads.append_heads(
            heads(n), key, dt.date(2026, 3, n), f"scheduled__2026-03-0{n}", path, now=T0 + dt.timedelta(days=n)
        )
    return path.read_bytes().splitlines(keepends=True)


def problems(data: bytes, key: bytes = KEY) -> list[tuple[int | None, str]]:
    return [(p.line, p.reason) for p in audit_heads.check_lines(data, key)[2]]


def test_a_record_is_one_canonical_line_signed_over_its_link(tmp_path):
    path = tmp_path / "heads.jsonl"
    first, second = write_nights(path, 2)
    rec = json.loads(first)
    assert list(rec) == sorted(audit_heads.FIELDS)  # keys sorted, no spaces: the bytes that were signed
    assert first == audit_heads.line_of(rec) and b" " not in first
    assert (rec["format"], rec["record"], rec["logical_date"], rec["dag_run_id"]) == (
        1,
        1,
        "2026-03-01",
        "scheduled__2026-03-01",
    )
    assert rec["written_at"] == "2026-03-03T08:00:00.000000Z"
    assert rec["heads"]["audit.rule_results"] == {"chain_seq": 13, "row_hash": f"{13:064x}", "rows": 13}
    assert rec["heads"]["audit.rule_violations"] == {"chain_seq": None, "row_hash": None, "rows": 0}
    assert rec["prev_hmac"] == audit_heads.GENESIS_HMAC
    assert json.loads(second)["prev_hmac"] == rec["hmac"]
    # the HMAC covers the link: a line moved elsewhere cannot keep its MAC and take a new link
    relinked = dict(rec, prev_hmac="1" * 64)
    assert audit_heads.sign(relinked, KEY) != rec["hmac"]
    assert KEY not in path.read_bytes() and KEY.decode() not in path.read_text()

    lines, authentic, found = audit_heads.check_lines(path.read_bytes(), KEY)
    assert (lines, [no for no, _ in authentic], found) == (2, [1, 2], [])


def test_file_and_folders_are_private(tmp_path):
    path = tmp_path / "out" / "audit" / "heads" / "heads.jsonl"
    write_nights(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_an_edited_line_fails_its_hmac_only(tmp_path):
    lines = write_nights(tmp_path / "h.jsonl", 3)
    rec = json.loads(lines[1])
    rec["heads"]["audit.rule_results"]["row_hash"] = "f" * 64  # a forger anchoring his recomputed chain
    lines[1] = audit_heads.line_of(rec)
    assert problems(b"".join(lines)) == [(2, "HMAC mismatch")]  # its neighbours still link to its hmac


def test_a_removed_line_breaks_the_link_after_it(tmp_path):
    lines = write_nights(tmp_path / "h.jsonl", 4)
    (p,) = audit_heads.check_lines(b"".join(lines[:1] + lines[2:]), KEY)[2]
    assert (p.line, p.reason) == (2, "broken link")
    assert p.detail.startswith("record 3 does not follow line 1 (record 1)")
    # the first line removed: the file no longer starts at record 1
    assert problems(b"".join(lines[1:])) == [(1, "broken link")]


def test_reordered_and_inserted_lines_break_links(tmp_path):
    lines = write_nights(tmp_path / "h.jsonl", 4)
    swapped = lines[:1] + [lines[2], lines[1]] + lines[3:]
    assert problems(b"".join(swapped)) == [(2, "broken link"), (3, "broken link"), (4, "broken link")]
    duplicated = lines[:2] + [lines[1]] + lines[2:]  # a night's line copied again
    assert problems(b"".join(duplicated)) == [(3, "broken link")]


def test_another_key_is_named_not_taken_for_an_edit(tmp_path):
    lines = write_nights(tmp_path / "h.jsonl", 2)
    found = audit_heads.check_lines(b"".join(lines), OTHER)
    assert found[1] == []  # nothing authentic under a wrong key
    assert [(p.line, p.reason) for p in found[2]] == [(1, "another key"), (2, "another key")]
    assert audit_heads.key_id(KEY) in found[2][0].detail and audit_heads.key_id(OTHER) in found[2][0].detail

    # a line forged with another key but this key's id: its HMAC does not match
    forged = json.loads(lines[1])
    forged["heads"]["audit.reviews"]["chain_seq"] = 7
    forged["hmac"] = audit_heads.sign(forged, OTHER)
    assert problems(lines[0] + audit_heads.line_of(forged)) == [(2, "HMAC mismatch")]


def test_a_cut_off_or_foreign_line_is_unreadable(tmp_path):
    lines = write_nights(tmp_path / "h.jsonl", 3)
    cut = lines[:2] + [lines[2][:40]]
    assert problems(b"".join(cut)) == [(3, "unreadable line")]
    foreign = lines[:1] + [b'{"hello": "world"}\n'] + lines[1:]
    found = audit_heads.check_lines(b"".join(foreign), KEY)[2]
    # the record after it cannot be linked to it, and is not blamed for it
    assert [(p.line, p.reason) for p in found] == [(2, "unreadable line")]
    assert "lacks format" in found[0].detail
    wrong_type = json.loads(lines[0])
    wrong_type["record"] = "1"
    assert problems(audit_heads.line_of(wrong_type)) == [(1, "unreadable line")]


def test_appending_refuses_a_cut_off_file_and_another_key(tmp_path):
    path = tmp_path / "h.jsonl"
    lines = write_nights(path, 2)
    with pytest.raises(audit_heads.HeadsFileError, match="another key"):
        audit_heads.append_heads(heads(3), OTHER, dt.date(2026, 3, 3), None, path)
    path.write_bytes(lines[0] + lines[1][:-10])
    with pytest.raises(audit_heads.HeadsFileError, match="cut-off line"):
        audit_heads.append_heads(heads(3), KEY, dt.date(2026, 3, 3), None, path)
    path.write_bytes(b"".join(lines))
    audit_heads.append_heads(heads(3), KEY, dt.date(2026, 3, 3), "manual__rerun", path)
    again = audit_heads.append_heads(heads(3), KEY, dt.date(2026, 3, 3), "manual__rerun", path)
    assert again["record"] == 4  # a re-run night appends: the file is a log
    assert audit_heads.check_lines(path.read_bytes(), KEY)[2] == []


# -- the key ---------------------------------------------------------------------------
OWN = "postgresql+psycopg://healthops:pw@db.example.org:5432/healthops"


def test_the_key_from_the_environment_or_the_connection(monkeypatch):
    monkeypatch.setenv(audit_heads.KEY_ENV, "e" * 32)
    assert audit_heads.hmac_key(OWN, from_connection=lambda conn_id: "c" * 32) == b"e" * 32
    monkeypatch.delenv(audit_heads.KEY_ENV)
    asked = []
    assert audit_heads.hmac_key(OWN, from_connection=lambda conn_id: asked.append(conn_id) or "c" * 32) == b"c" * 32
    assert asked == ["healthops_audit_hmac"]
    with pytest.raises(ConfigurationError, match="Airflow connection healthops_audit_hmac has 5 characters"):
        audit_heads.hmac_key(OWN, from_connection=lambda conn_id: "short")
    monkeypatch.setenv(audit_heads.KEY_ENV, "short")
    with pytest.raises(ConfigurationError, match=r"HEALTHOPS_AUDIT_HMAC_KEY has 5 characters; .* at least 32"):
        audit_heads.hmac_key(OWN)


def test_a_deployment_without_a_key_is_told_what_to_set(monkeypatch):
    monkeypatch.delenv(audit_heads.KEY_ENV)
    with pytest.raises(ConfigurationError) as e:
        audit_heads.hmac_key(OWN, from_connection=lambda conn_id: None)
    assert "HEALTHOPS_AUDIT_HMAC_KEY" in str(e.value) and "healthops_audit_hmac" in str(e.value)
    assert not (config.home() / audit_heads.LOCAL_KEY_FILE).exists()  # never a local default for its warehouse


def test_the_embedded_warehouse_gets_a_key_made_once(monkeypatch):
    monkeypatch.delenv(audit_heads.KEY_ENV)
    state = config.home() / "warehouse" / "credentials.json"  # as the embedded server leaves it
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"password": "generated", "port": 54329}))
    embedded = "postgresql+psycopg://postgres:generated@127.0.0.1:54329/healthops"

    def no_connection(conn_id):
        raise AssertionError("the embedded warehouse needs no Airflow connection")

    key = audit_heads.hmac_key(embedded, from_connection=no_connection)
    path = config.home() / audit_heads.LOCAL_KEY_FILE
    assert len(key) == 64 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_heads.hmac_key(embedded) == key  # made once, then read
    assert sorted(p.name for p in config.home().iterdir()) == sorted(["warehouse", audit_heads.LOCAL_KEY_FILE])
    monkeypatch.setenv(audit_heads.KEY_ENV, "e" * 32)
    assert audit_heads.hmac_key(embedded) == b"e" * 32  # the environment wins
    # another server on loopback (another port, or the same port with another password) is not it
    monkeypatch.delenv(audit_heads.KEY_ENV)
    for url in (embedded.replace("54329", "54330"), embedded.replace("generated", "other")):
        with pytest.raises(ConfigurationError, match="no key for the audit heads file"):
            audit_heads.hmac_key(url, from_connection=lambda conn_id: None)
