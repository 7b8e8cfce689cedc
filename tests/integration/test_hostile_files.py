"""Hostile files in a night's landing folder, on a real PostgreSQL: a NUL in each
field (raw, and as the escape \\X00\\), a link to a file outside the landing root and
one inside, a FIFO, a folder inside the day's folder, a name that is not UTF-8, a
file still being written and the day's feed dropped again under a new name, beside
the good feed. Everything loadable loads; each NUL message is rejected naming its
field; every entry not read is refused with a reason an auditor can query; the file
still being written waits for the next run; the second delivery counts as duplicates,
not rejections; in = loaded + rejected + duplicate; and the night publishes."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest

from healthops import config, pipeline
from healthops.load.adt import load_adt_date
from healthops.quality import gx_runner
from healthops.reports.delivery import SmtpSettings
from healthops.reports.outbox import start_outbox
from healthops.synthetic.adt_feed import generate
from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import nightly_build

from hl7_builders import NUL_DECODED_FIELDS, NUL_FIELDS, build_message, nul_message

D = date(2026, 2, 2)
DAY = f"adt/{D}"
BATCHES = config.EXPECTATIONS_DIR / "census_load_batches.yml"
# The day's good feed: enough messages that the NUL ones (35) stay under the day's
# rejection limit (CEN-016: 5 %) without the second delivery counted in
GOOD = 700
REFUSED = {  # entry -> kind
    f"{DAY}/d_link_out.hl7": "outside_landing",
    f"{DAY}/e_link_in.hl7": "symlink",
    f"{DAY}/f_pipe.hl7": "special_file",
    f"{DAY}/g_nested": "folder",
    f"{DAY}/h_bad\\xff.hl7": "bad_name",
}


def nul_cases() -> list[tuple[str, str, str]]:
    """(control id, field, form) of every NUL message: each field raw, each field
    healthops decodes as \\X00\\ too."""
    raw = [(f"NUL-{f}", f, "\x00") for f in NUL_FIELDS]
    escaped = [(f"ESC-{f}", f, "\\X00\\") for f in NUL_DECODED_FIELDS]
    return raw + escaped


def good(cid: str, minute: int) -> str:
    return build_message(
        "A08", control_id=cid, visit=f"V{cid}", msg_ts=f"{D:%Y%m%d}{minute // 60 % 24:02d}{minute % 60:02d}"
    )


def write_hostile(folder: Path, outside: Path, nul: list[tuple[str, str, str]], follow: bool = True) -> set[str]:
    """The hostile entries beside a day's feed; the NUL messages ``nul`` in b_nul.hl7,
    each followed by a good one when ``follow``. Returns the control ids that must
    never load."""
    data = b""
    for i, (cid, field, form) in enumerate(nul):
        data += nul_message(field, form, control_id=cid).encode() + (good(f"AFTER-{i}", i).encode() if follow else b"")
    (folder / "b_nul.hl7").write_bytes(data)
    (outside / "secret.hl7").write_text(good("SECRET", 1))
    os.symlink(outside / "secret.hl7", folder / "d_link_out.hl7")
    os.symlink(folder / "b_nul.hl7", folder / "e_link_in.hl7")
    os.mkfifo(folder / "f_pipe.hl7")  # opened for reading, it would block the night
    (folder / "g_nested").mkdir()
    (folder / "g_nested" / "x.hl7").write_text(good("NESTED", 2))
    (folder / os.fsdecode(b"h_bad\xff.hl7")).write_text(good("BADNAME", 3))
    an_hour_ago = time.time() - 3600
    for p in folder.iterdir():
        if p.is_file() and not p.is_symlink():
            os.utime(p, (an_hour_ago, an_hour_ago))
    (folder / "i_growing.hl7").write_text(good("GROWING", 4))  # modified just now
    return {"SECRET", "NESTED", "BADNAME", "GROWING"}


@pytest.fixture()
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALTHOPS_LANDING_SETTLE_SECONDS", "60")
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    folder = landing / "adt" / D.isoformat()
    folder.mkdir(parents=True)
    outside.mkdir()
    (folder / "a_feed.hl7").write_text("".join(good(f"G{i:04d}", i) for i in range(GOOD)))
    never = write_hostile(folder, outside, nul_cases())
    shutil.copyfile(folder / "a_feed.hl7", folder / "c_feed_again.hl7")  # the feed dropped again
    os.utime(folder / "c_feed_again.hl7", (time.time() - 3600,) * 2)
    return landing, outside, never


def test_a_hostile_folder_loads_what_can_be_loaded_and_records_the_rest(warehouse_url, corpus):
    landing, outside, never = corpus
    nul = nul_cases()
    s = load_adt_date(warehouse_url, landing, D, "manual__hostile")
    d = s.as_dict()
    by_file = {b.file_path: (b.status, b.records_in, b.records_loaded, b.records_rejected) for b in s.batches}
    assert by_file == {
        f"{DAY}/a_feed.hl7": ("loaded", GOOD, GOOD, 0),
        f"{DAY}/b_nul.hl7": ("loaded", 2 * len(nul), len(nul), len(nul)),
        f"{DAY}/c_feed_again.hl7": ("duplicate", GOOD, 0, 0),
    }
    assert {r.rel: r.kind for r in s.refused} == REFUSED and s.left == [f"{DAY}/i_growing.hl7"]
    assert (d["records_in"], d["records_loaded"], d["records_rejected"], d["records_duplicate"]) == (
        2 * GOOD + 2 * len(nul),
        GOOD + len(nul),
        len(nul),
        GOOD,
    )
    assert (d["files_refused"], d["files_left"], d["files_duplicate"]) == (5, 1, 1)

    with connect(warehouse_url) as conn:
        rejected = conn.execute(
            "select control_id, reason, reason_category, raw_text from raw.rejected order by message_index"
        ).fetchall()
        batches = conn.execute(
            """select file_path, records_in, records_loaded, records_rejected, records_duplicate,
                      duplicate_of_batch_id is not null, file_sha256
               from audit.load_batches order by file_path"""
        ).fetchall()
        refused = conn.execute(
            "select file_path, kind, reason, dag_run_id from audit.refused_files order by file_path"
        ).fetchall()
        loaded_ids = {c for (c,) in conn.execute("select control_id from raw.adt_messages")}
        everything = conn.execute(
            """select string_agg(t, ' ') from (
                   select raw_text as t from raw.adt_messages union all select raw_text from raw.rejected
                   union all select reason from raw.rejected union all select file_path from audit.load_batches
                   union all select file_path || reason from audit.refused_files) x"""
        ).fetchone()[0]

    # each NUL message rejected, naming its field; the reason's category stays short
    assert len(rejected) == len(nul)
    for (cid, field, form), (control_id, reason, category, raw_text) in zip(nul, rejected):
        assert category == f"NUL byte in {field}", reason
        if form == "\x00":
            assert reason.endswith("(raw_text keeps each NUL byte written as \\x00)") and "\\x00" in raw_text
        else:
            assert "the escape sequence \\X00\\ decodes to NUL" in reason and "\\X00\\" in raw_text
        shown = "\\x00" if form == "\x00" else form  # the control id as kept: storable
        kept_id = {"MSH-1": None, "MSH-10": f"NUL{shown}MSH10"}.get(field, cid)
        assert control_id == kept_id, (field, control_id)
    # everything loadable loaded, nothing not to be read was read
    assert {f"G{i:04d}" for i in range(GOOD)} | {f"AFTER-{i}" for i in range(len(nul))} == loaded_ids
    assert not never & loaded_ids and "SECRET" not in everything and str(outside) not in everything
    # every batch reconciles; the second delivery points at the first and loads nothing
    assert all(n_in == ok + bad + dup for _, n_in, ok, bad, dup, _, _ in batches)
    assert [(b[0], b[5]) for b in batches] == [
        (f"{DAY}/a_feed.hl7", False),
        (f"{DAY}/b_nul.hl7", False),
        (f"{DAY}/c_feed_again.hl7", True),
    ]
    assert batches[0][6] == batches[2][6]
    # refused with reasons an auditor can query, named under the landing root
    assert {(p, k) for p, k, _, _ in refused} == set(REFUSED.items())
    assert all(reason and run == "manual__hostile" for _, _, reason, run in refused)

    # the day's load rules: the NUL messages are the only rejections, the second
    # delivery is no data-quality failure, and every batch reconciles with raw
    v = gx_runner.validate(warehouse_url, BATCHES, D)
    results = {o.rule_id: o for o in v.results}
    assert v.success, [(o.rule_id, o.detail) for o in v.results if not o.success]
    assert results["CEN-021"].rows_evaluated == 3
    assert results["CEN-016"].detail["observation"]["records_rejected"] == len(nul)

    # the night again: nothing new, the refusals recorded once
    again = load_adt_date(warehouse_url, landing, D, "manual__again").as_dict()
    assert (again["files_skipped"], again["records_in"], again["files_refused"]) == (3, 0, 5)
    with connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from audit.refused_files").fetchone() == (5,)
        assert conn.execute("select count(*) from audit.load_batches").fetchone() == (3,)
    # what the folder held and was never read stays on record: no role may rewrite it
    for statement in (
        "update audit.refused_files set reason = 'nothing'",
        "delete from audit.refused_files",
        "truncate audit.refused_files",
    ):
        with connect(warehouse_url) as conn:  # as the owner, triggers on
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)

    # the writer is done: the next run loads the file it left
    os.utime(landing / DAY / "i_growing.hl7", (time.time() - 3600,) * 2)
    last = load_adt_date(warehouse_url, landing, D)
    assert [(b.file_path, b.status, b.records_loaded) for b in last.batches if b.status != "skipped"] == [
        (f"{DAY}/i_growing.hl7", "loaded", 1)
    ]
    assert last.left == []


def test_a_file_delivered_again_on_a_later_day_and_a_third_time(warehouse_url, tmp_path):
    """A replay by the interface engine: yesterday's file in today's folder, twice."""
    landing = tmp_path / "landing"
    first = landing / "adt" / "2026-02-01"
    first.mkdir(parents=True)
    (first / "x.hl7").write_text(good("X1", 1) + build_message(control_id="X2", visit=""))  # one rejected
    load_adt_date(warehouse_url, landing, date(2026, 2, 1))
    today = landing / "adt" / D.isoformat()
    today.mkdir()
    for name in ("replay.hl7", "replay-2.hl7"):
        shutil.copyfile(first / "x.hl7", today / name)
    s = load_adt_date(warehouse_url, landing, D).as_dict()
    assert (s["files_duplicate"], s["records_in"], s["records_rejected"], s["records_duplicate"]) == (2, 4, 0, 4)
    with connect(warehouse_url) as conn:
        (first_batch,) = conn.execute(
            "select batch_id from audit.load_batches where received_date = '2026-02-01'"
        ).fetchone()
        assert conn.execute(
            "select count(*) from audit.load_batches where duplicate_of_batch_id = %s", (first_batch,)
        ).fetchone() == (2,)  # both point at the first delivery, not at each other
        assert conn.execute("select count(*) from raw.rejected").fetchone() == (1,)  # rejected once
    v = {o.rule_id: o for o in gx_runner.validate(warehouse_url, BATCHES, D).results}
    assert v["CEN-021"].success and v["CEN-016"].success and v["CEN-024"].success


def test_a_duplicate_delivery_that_does_not_match_its_first_fails_cen021(warehouse_url, tmp_path):
    landing = tmp_path / "landing"
    folder = landing / "adt" / D.isoformat()
    folder.mkdir(parents=True)
    (folder / "a.hl7").write_text(good("Y1", 1) + good("Y2", 2))
    load_adt_date(warehouse_url, landing, D)
    with connect(warehouse_url) as conn:  # a row claiming to repeat a.hl7 with other counts
        conn.execute(
            """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, file_bytes,
                                               records_in, records_loaded, records_rejected, records_duplicate,
                                               duplicate_of_batch_id)
               select gen_random_uuid(), source, received_date, 'adt/forged.hl7', file_sha256, file_bytes,
                      5, 0, 0, 5, batch_id from audit.load_batches"""
        )
    o = {o.rule_id: o for o in gx_runner.validate(warehouse_url, BATCHES, D).results}["CEN-021"]
    assert (o.success, o.rows_violating, o.rows_evaluated) == (False, 1, 2)
    (row,) = o.detail["unexpected_rows"]
    assert (row["file_path"], row["records_duplicate"], row["duplicates_kept"]) == ("adt/forged.hl7", 5, 2)


def test_the_night_with_hostile_files_publishes(warehouse_url, tmp_path, monkeypatch):
    """load -> dbt build -> validate -> publish, as the nightly DAG's tasks run them,
    on a day of the synthetic two-hospital feed with the hostile entries beside it: a
    sample of the NUL messages (the whole set, 35 of a day of about 230 messages,
    would be over the day's rejection limit, which holds a night back by design)."""
    monkeypatch.setenv("HEALTHOPS_LANDING_SETTLE_SECONDS", "60")
    landing, outside = config.landing(), tmp_path / "outside"  # the night reads $HEALTHOPS_LANDING
    outside.mkdir()
    feed = generate(landing, D, 1, seed=11, facilities=2)
    folder = landing / "adt" / D.isoformat()
    nul = [("NUL-PID-5", "PID-5", "\x00"), ("NUL-ZPI-2", "ZPI-2", "\x00"), ("ESC-PV1-19", "PV1-19", "\\X00\\")]
    write_hostile(folder, outside, nul, follow=False)  # an A08 of an unknown visit is no census data
    first = Path(feed["paths"][0])
    shutil.copyfile(first, folder / "zz_again.hl7")
    os.utime(folder / "zz_again.hl7", (time.time() - 3600,) * 2)
    run = "manual__hostile_night"

    loaded = pipeline.load_adt(D, run, url=warehouse_url)
    assert (loaded["files_duplicate"], loaded["files_refused"], loaded["files_left"]) == (1, 5, 1)
    assert loaded["records_rejected"] == feed["malformed"] + len(nul)
    nightly_build(warehouse_url)
    checked = pipeline.validate_census(D, run, url=warehouse_url)  # raises on a blocking failure
    assert checked["blocking_failures"] == []
    with connect(warehouse_url) as conn:
        load_rules = dict(
            conn.execute(
                """select r.rule_id, r.status from audit.rule_results r join audit.validation_runs v
                   using (validation_run_id) where r.rule_id in ('CEN-016', 'CEN-021', 'CEN-024')"""
            ).fetchall()
        )
    assert load_rules == {"CEN-016": "passed", "CEN-021": "passed", "CEN-024": "passed"}
    with start_outbox(tmp_path / "mail") as box:
        out = pipeline.publish_daily(
            "daily_census", D, run, url=warehouse_url, smtp=SmtpSettings.from_url(box.url), send=True
        )
        assert out["sent"] and len(box.messages()) == len(out["sent"])

    summary = pipeline.run_summary(warehouse_url, run, D)["load"]
    assert (summary["refused"], summary["duplicate_deliveries"], summary["left"]) == (
        5,
        1,
        [f"{DAY}/i_growing.hl7"],
    )
    assert summary["in"] == summary["loaded"] + summary["rejected"] + summary["duplicate"]
