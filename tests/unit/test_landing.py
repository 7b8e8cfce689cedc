"""Listing and reading a landing folder (healthops.load.landing): what is refused
and why, what is left for the next run, and each file read once. Real files, links,
FIFOs and sockets in a temporary folder; no database."""

from __future__ import annotations

import os
import socket
import time

import pytest

from healthops import config
from healthops.load.landing import (
    BAD_NAME,
    FOLDER,
    OUTSIDE_LANDING,
    SPECIAL_FILE,
    SYMLINK,
    open_folder,
)

DAY = ("adt", "2026-02-02")
REL = "adt/2026-02-02"


@pytest.fixture()
def landing(tmp_path):
    root = tmp_path / "landing"
    (root / "adt" / "2026-02-02").mkdir(parents=True)
    return root


def day(landing):
    return landing / "adt" / "2026-02-02"


def listing(landing, settle=0.0):
    return open_folder(landing, DAY, "*.hl7", settle)


def refused(folder) -> dict[str, str]:
    return {r.rel: r.kind for r in folder.refused}


def test_regular_files_are_listed_in_name_order_and_others_ignored(landing):
    for name in ("b.hl7", "a.hl7", "c.hl7.tmp", "README.txt", ".hidden.hl7"):
        (day(landing) / name).write_text("x")
    with listing(landing) as f:
        assert f.exists and [x.rel for x in f.files] == [f"{REL}/.hidden.hl7", f"{REL}/a.hl7", f"{REL}/b.hl7"]
        assert f.refused == [] and f.left == []
        assert f.read(f.files[1]) == b"x"


def test_a_missing_folder_lists_nothing(tmp_path):
    with listing(tmp_path / "nowhere") as f:
        assert (f.exists, f.files, f.refused) == (False, [], [])


def test_links_fifos_sockets_folders_and_bad_names_are_refused_never_opened(landing, tmp_path):
    d = day(landing)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the landing root")
    (d / "good.hl7").write_text("MSH")
    os.symlink(secret, d / "out.hl7")
    os.symlink(d / "good.hl7", d / "in.hl7")
    os.symlink("../2026-02-01/gone.hl7", d / "dangling.hl7")  # inside the root, target missing
    os.symlink(tmp_path, d / "outdir")
    os.mkfifo(d / "pipe.hl7")  # opened for reading, it would block until a writer came
    (d / "nested").mkdir()
    (d / "nested" / "x.hl7").write_text("MSH")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(d / "sock"))
        (d / b"bad\xff.hl7".decode("utf-8", "surrogateescape")).write_text("MSH")
        with listing(landing) as f:
            assert [x.rel for x in f.files] == [f"{REL}/good.hl7"]
            assert refused(f) == {
                f"{REL}/bad\\xff.hl7": BAD_NAME,
                f"{REL}/dangling.hl7": SYMLINK,
                f"{REL}/in.hl7": SYMLINK,
                f"{REL}/nested": FOLDER,
                f"{REL}/out.hl7": OUTSIDE_LANDING,
                f"{REL}/outdir": OUTSIDE_LANDING,
                f"{REL}/pipe.hl7": SPECIAL_FILE,
                f"{REL}/sock": SPECIAL_FILE,
            }
            reasons = {r.rel.rsplit("/", 1)[1]: r.reason for r in f.refused}
    assert reasons["pipe.hl7"] == "a FIFO (named pipe), not a regular file: never opened"
    assert reasons["sock"] == "a socket, not a regular file: never opened"
    assert reasons["nested"].startswith("a folder inside the day's folder")
    assert reasons["out.hl7"].startswith("a symbolic link to a path outside the landing root")
    # where a link points is never recorded
    assert all(str(tmp_path) not in r.reason and "secret" not in r.reason for r in f.refused)


@pytest.mark.parametrize("linked", ["adt", "adt/2026-02-02"])
def test_a_linked_day_folder_or_source_folder_refuses_the_day(tmp_path, linked):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "2026-02-02").mkdir(parents=True)
    (elsewhere / "2026-02-02" / "a.hl7").write_text("MSH")
    root = tmp_path / "landing"
    root.mkdir()
    if linked != "adt":
        (root / "adt").mkdir()
    os.symlink(elsewhere if linked == "adt" else elsewhere / "2026-02-02", root / linked)
    with listing(root) as f:
        assert (f.exists, f.files) == (False, [])
        assert [(r.rel, r.kind) for r in f.refused] == [(linked, OUTSIDE_LANDING)]
        assert f.refused[0].reason.endswith("; no file of the day is read")


def test_the_landing_root_itself_may_be_a_link(tmp_path, landing):
    (day(landing) / "a.hl7").write_text("MSH")
    os.symlink(landing, tmp_path / "link")
    with listing(tmp_path / "link") as f:
        assert [x.rel for x in f.files] == [f"{REL}/a.hl7"] and f.refused == []


def test_a_file_that_grows_after_the_listing_is_left_for_the_next_run(landing):
    path = day(landing) / "a.hl7"
    path.write_bytes(b"MSH|one\r")
    with listing(landing) as f:
        with open(path, "ab") as w:  # the writer is still at work
            w.write(b"MSH|two\r")
        assert f.read(f.files[0]) is None
        assert f.left == [f"{REL}/a.hl7"]
    with listing(landing) as f:  # the next run reads it whole
        assert f.read(f.files[0]) == b"MSH|one\rMSH|two\r" and f.left == []


def test_a_file_swapped_for_a_link_or_a_fifo_after_the_listing_is_not_followed(landing, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    a, b = day(landing) / "a.hl7", day(landing) / "b.hl7"
    a.write_text("MSH")
    b.write_text("MSH")
    with listing(landing) as f:
        a.unlink()
        os.symlink(secret, a)
        b.unlink()
        os.mkfifo(b)
        assert [f.read(x) for x in f.files] == [None, None]  # and no open blocked on the FIFO
        assert f.left == [f"{REL}/a.hl7", f"{REL}/b.hl7"]


def test_within_the_settle_window_a_file_is_left_and_after_it_read(landing):
    fresh, old = day(landing) / "fresh.hl7", day(landing) / "old.hl7"
    fresh.write_text("MSH")
    old.write_text("MSH")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    with listing(landing, settle=60) as f:
        assert [x.rel for x in f.files] == [f"{REL}/old.hl7"] and f.left == [f"{REL}/fresh.hl7"]
    with listing(landing, settle=0) as f:
        assert len(f.files) == 2


def test_the_settle_window_setting(monkeypatch):
    monkeypatch.delenv("HEALTHOPS_LANDING_SETTLE_SECONDS", raising=False)
    assert config.landing_settle_seconds() == 0
    monkeypatch.setenv("HEALTHOPS_LANDING_SETTLE_SECONDS", "30")
    assert config.landing_settle_seconds() == 30
    for bad in ("-1", "soon", "inf", "nan"):
        monkeypatch.setenv("HEALTHOPS_LANDING_SETTLE_SECONDS", bad)
        with pytest.raises(ValueError, match="0 or more"):
            config.landing_settle_seconds()
