"""Load one day's HR export snapshot into ``raw.hr_*`` with COPY
(docs/sources.md#hr-export).

The day's folder ``$HEALTHOPS_LANDING/hr/YYYY-MM-DD/`` is listed without following
links (``healthops.load.landing``), as the ADT feed's is: links, special files, folders
inside it and names that are not UTF-8 are refused, and so is a ``*.csv`` that is none
of the export's five files (kind ``unknown_file``): recorded in
``audit.refused_files``, never read. A file still being written (``.tmp``, or changed
while read) is left for the next run.

Each of the five files is read once; those bytes are hashed and parsed
(``healthops.sources.hr.parser``). Then, in one transaction per file: the same path
and SHA-256 already loaded is skipped (re-running a date changes nothing); otherwise
the usable records are COPYed into the file's raw table with the folder's date as
``snapshot_date``, the rejections into ``raw.rejected`` (source ``hr``), and the batch
recorded in ``audit.load_batches`` (in = loaded + rejected + duplicate).

Unlike the ADT feed, the same bytes under another day's folder are that day's
snapshot, loaded again: a file that did not change (``positions.csv`` rarely does) is
still the complete state of that day. The same day's file delivered again with other
bytes is a new batch; staging reads each day's newest batch of a file.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import date
from pathlib import Path

from healthops.load.batches import BatchResult, LoadSummary, loaded_before, require_utf8
from healthops.load.landing import UNKNOWN_FILE, Refusal, open_folder, record_refusals
from healthops.sources.hr.parser import parse_csv
from healthops.sources.hr.spec import FILES
from healthops.warehouse.connection import connect
from healthops.warehouse.migrate import require_current

log = logging.getLogger(__name__)

SOURCE = "hr"
PATTERN = "*.csv"
_UNKNOWN_REASON = (
    "not a file of the HR export (" + ", ".join(FILES) + "): not read; rename it to one of them or remove it"
)


def hr_folder_parts(snapshot_date: date) -> tuple[str, str]:
    """The day's folder as path components under the landing root."""
    return ("hr", snapshot_date.isoformat())


def load_hr_date(url: str, landing: Path, snapshot_date: date, dag_run_id: str | None = None) -> LoadSummary:
    from healthops import config

    tz = config.facility_tz()
    summary = LoadSummary(SOURCE, snapshot_date.isoformat())
    with open_folder(landing, hr_folder_parts(snapshot_date), PATTERN) as folder:
        if not folder.exists and not folder.refused:
            log.warning("no HR folder for %s at %s: no snapshot that day", snapshot_date, folder.rel)
        unknown = [f for f in folder.files if f.name not in FILES]
        refused = folder.refused + [Refusal(f.rel, UNKNOWN_FILE, _UNKNOWN_REASON) for f in unknown]
        for r in refused[len(folder.refused) :]:
            log.warning("%s refused: %s", r.rel, r.reason)
        with connect(url) as conn:
            require_current(conn)  # a warehouse behind this healthops: stop before touching it
            require_utf8(conn)
            record_refusals(conn, SOURCE, refused, snapshot_date, dag_run_id)
            for f in folder.files:
                if f.name not in FILES:
                    continue
                data = folder.read(f)  # the one read: these bytes are hashed and parsed
                if data is not None:
                    summary.batches.append(_load_file(conn, f.name, f.rel, data, snapshot_date, dag_run_id, tz))
        missing = sorted(set(FILES) - {f.name for f in folder.files} - {r.rsplit("/", 1)[-1] for r in folder.left})
        if folder.exists and missing:
            log.warning("HR snapshot %s has no %s", snapshot_date, ", ".join(missing))
        summary.refused, summary.left = refused, list(folder.left)
    return summary


def _load_file(conn, name: str, rel: str, data: bytes, snapshot_date: date, dag_run_id, tz: str) -> BatchResult:
    sha, size = hashlib.sha256(data).hexdigest(), len(data)
    with conn.transaction():
        done = loaded_before(conn, SOURCE, rel, sha)
        if done:
            log.info("%s already loaded as batch %s (sha256 %s): skipped", rel, done, sha[:12])
            return BatchResult(rel, done, "skipped")

        parsed = parse_csv(name, data, tz)
        spec = parsed.spec
        if parsed.extra_columns:
            log.info("%s: column(s) %s are not in the spec: ignored", rel, ", ".join(parsed.extra_columns))
        batch_id = uuid.uuid4()
        if parsed.records:
            cols = ", ".join(spec.column_names)
            with conn.cursor().copy(
                f"copy {spec.table} (batch_id, snapshot_date, file_path, record_index, {cols}) from stdin"
            ) as copy:
                for r in parsed.records:
                    copy.write_row((batch_id, snapshot_date, rel, r.record_index, *r.values))
        if parsed.rejected:
            with conn.cursor().copy(
                "copy raw.rejected (batch_id, source, received_date, file_path, message_index, control_id, reason,"
                " raw_text) from stdin"
            ) as copy:
                for r in parsed.rejected:
                    copy.write_row(
                        (batch_id, SOURCE, snapshot_date, rel, r.record_index, r.control_id, r.reason, r.raw_text)
                    )
        n_in, loaded, rejected, dup = parsed.records_in, len(parsed.records), len(parsed.rejected), parsed.duplicates
        conn.execute(
            """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, file_bytes,
                                               records_in, records_loaded, records_rejected, records_duplicate,
                                               dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (batch_id, SOURCE, snapshot_date, rel, sha, size, n_in, loaded, rejected, dup, dag_run_id),
        )
        log.info(
            "%s: %d in, %d loaded, %d rejected, %d duplicate (batch %s)", rel, n_in, loaded, rejected, dup, batch_id
        )
        return BatchResult(rel, str(batch_id), "loaded", n_in, loaded, rejected, dup)
