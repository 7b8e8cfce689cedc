"""Reading a landing folder safely: what is listed, what is refused, and each file
read once.

A landing day folder (``$HEALTHOPS_LANDING/adt/YYYY-MM-DD/``) holds regular files. What
else a writer, an operator or an intruder may leave there is refused, never read, and
named relative to the landing root (docs/sources.md#landing-hygiene):

- a symbolic link, to a file or a folder, inside the landing root or not: following
  links would let any file the worker can read end up in ``raw.rejected``;
- a FIFO, socket or device: opening a FIFO blocks until someone writes to it;
- a folder inside the day folder: files are read from the day folder itself only;
- a name that is not UTF-8: it could not be stored as the batch's file path.

The day folder and the folders above it (up to the landing root, which is a setting
and may itself be a link) must be real folders: a link among them refuses the day.

Each path component is opened relative to its parent's descriptor without following
links (``O_NOFOLLOW``, ``dir_fd``), so a link swapped in after the listing is not
followed either. A file is read once, into memory, and those bytes are both hashed
and parsed. A file that changed between the listing and the end of its reading
(size, modification time or inode), or that was modified within the settle window
(``HEALTHOPS_LANDING_SETTLE_SECONDS``, default 0), is still being written: it is left
for the next run, not refused.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from healthops import config

log = logging.getLogger(__name__)

# Why an entry was refused: the values of audit.refused_files.kind.
SYMLINK = "symlink"
OUTSIDE_LANDING = "outside_landing"  # a symbolic link whose target is outside the landing root
SPECIAL_FILE = "special_file"
FOLDER = "folder"
BAD_NAME = "bad_name"
UNKNOWN_FILE = "unknown_file"  # a file of the source's pattern that is none of its files (an HR day's *.csv)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: should a FIFO be swapped in after the listing, opening it returns at once.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class LandedFile:
    """A regular file as listed: its name in the folder and what the listing saw."""

    name: str
    rel: str  # relative to the landing root, e.g. adt/2026-02-02/a.hl7
    size: int
    mtime_ns: int
    dev: int
    ino: int


@dataclass(frozen=True)
class Refusal:
    rel: str  # relative to the landing root, as listed; never a link's target
    kind: str
    reason: str


@dataclass
class LandingFolder:
    """One landing folder, opened without following links: its ready files (name
    order), what it refused, and the files left for the next run. Use as a context
    manager; ``read`` reads a listed file."""

    rel: str
    exists: bool = False
    files: list[LandedFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # still being written (rel)
    _fd: int | None = field(default=None, repr=False)

    def __enter__(self) -> "LandingFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, f: LandedFile) -> bytes | None:
        """The file's bytes, read once; None when it is still being written (changed
        since the listing, replaced, or gone): it is then added to ``left``."""
        assert self._fd is not None, "the folder is closed"
        try:
            fd = os.open(f.name, _FILE_FLAGS, dir_fd=self._fd)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ELOOP):
                raise  # unreadable (permissions): a deployment's problem, not the file's
            # gone, or replaced by a link, since the listing: the next run sees what it is
            return self._leave(f, f"it changed since the listing ({e.strerror})")
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode) or _changed(f, before):
                return self._leave(f, "it changed since the listing")
            with open(fd, "rb", buffering=0, closefd=False) as fh:
                data = fh.readall()  # sized from fstat: the file's bytes held once, not twice
            if len(data) != f.size or _changed(f, os.fstat(fd)):
                return self._leave(f, "it changed while it was read")
            return data
        finally:
            os.close(fd)

    def _leave(self, f: LandedFile, why: str) -> None:
        log.warning("%s is still being written (%s): left for the next run", f.rel, why)
        self.left.append(f.rel)
        return None


def record_refusals(conn, source: str, refused: list[Refusal], received_date, dag_run_id: str | None) -> None:
    """Record each refused entry in ``audit.refused_files`` once per day: a re-run of
    the date adds nothing."""
    if not refused:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """insert into audit.refused_files (source, received_date, file_path, kind, reason, dag_run_id)
               values (%s, %s, %s, %s, %s, %s) on conflict do nothing""",
            [(source, received_date, r.rel, r.kind, r.reason, dag_run_id) for r in refused],
        )


def _changed(f: LandedFile, st: os.stat_result) -> bool:
    return (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino) != (f.size, f.mtime_ns, f.dev, f.ino)


def open_folder(landing: Path, parts: tuple[str, ...], pattern: str, settle: float | None = None) -> LandingFolder:
    """List ``landing/<parts...>`` (e.g. ``("adt", "2026-02-02")``): the regular files
    whose name matches ``pattern`` (``*.hl7``) and are not ``.tmp``, and what is refused.
    A missing folder has ``exists`` False and nothing in it."""
    root = Path(landing).resolve()  # the setting itself may be a link: it is configuration
    folder = LandingFolder("/".join(parts))
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return folder
    try:
        for depth, part in enumerate(parts):
            rel = "/".join(parts[: depth + 1])
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return folder
            if not stat.S_ISDIR(st.st_mode):
                r = _refusal(root, rel, st)
                folder.refused.append(Refusal(r.rel, r.kind, f"{r.reason}; no file of the day is read"))
                log.warning("%s refused: %s", rel, folder.refused[-1].reason)
                return folder
            parent, fd = fd, os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(parent)
        folder.exists, folder._fd, fd = True, fd, None
    finally:
        if fd is not None:
            os.close(fd)
    try:
        _list(folder, root, pattern, config.landing_settle_seconds() if settle is None else settle)
    except BaseException:
        folder.close()
        raise
    return folder


def _list(folder: LandingFolder, root: Path, pattern: str, settle: float) -> None:
    now_ns = time.time_ns()
    entries = []
    with os.scandir(folder._fd) as it:
        for entry in it:
            try:
                entries.append((entry.name, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue  # removed while listed
    for name, st in sorted(entries):
        if name.endswith(".tmp"):
            continue  # being written: renamed when complete
        rel = f"{folder.rel}/{name}"
        if stat.S_ISREG(st.st_mode):
            if not fnmatch.fnmatchcase(name, pattern):
                continue  # not a file of this source (a checksum, a readme): not ours to judge
            if not _is_utf8(name):
                folder.refused.append(Refusal(_printable(rel), BAD_NAME, _BAD_NAME))
            elif settle and now_ns - st.st_mtime_ns < settle * 1e9:
                log.warning(
                    "%s was modified %.1f s ago, within the settle window of %g s: left for the next run",
                    rel,
                    (now_ns - st.st_mtime_ns) / 1e9,
                    settle,
                )
                folder.left.append(rel)
            else:
                folder.files.append(LandedFile(name, rel, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino))
            continue
        folder.refused.append(_refusal(root, rel, st))
    for r in folder.refused:
        log.warning("%s refused: %s", r.rel, r.reason)


_BAD_NAME = "the name is not UTF-8: it cannot be recorded as it is, and the entry is not read"


def _refusal(root: Path, rel: str, st: os.stat_result) -> Refusal:
    """Why the entry ``rel`` (relative to the landing root ``root``) is not read."""
    shown = _printable(rel)
    if not _is_utf8(rel):
        return Refusal(shown, BAD_NAME, _BAD_NAME)
    if stat.S_ISLNK(st.st_mode):
        # Where it points decides only the kind (a link out of the landing root is what
        # an intruder would plant); the target is neither opened nor recorded.
        if Path(os.path.realpath(root / rel)).is_relative_to(root):
            return Refusal(shown, SYMLINK, "a symbolic link: links are never followed; its target is not read")
        return Refusal(
            shown,
            OUTSIDE_LANDING,
            "a symbolic link to a path outside the landing root: links are never followed; its target is "
            "neither read nor named",
        )
    if stat.S_ISDIR(st.st_mode):
        return Refusal(
            shown,
            FOLDER,
            "a folder inside the day's folder: files are read from the day's folder itself only; nothing in it is read",
        )
    if not stat.S_ISREG(st.st_mode):
        what = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        return Refusal(shown, SPECIAL_FILE, f"{what}, not a regular file: never opened")
    return Refusal(shown, SPECIAL_FILE, "a file where a folder was expected")  # the day's folder, or adt/


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # a name that is not UTF-8 holds surrogate escapes
    except UnicodeEncodeError:
        return False
    return True


def _printable(rel: str) -> str:
    """``rel`` as storable text: bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")
