"""Load one receipt date of the HL7 ADT feed into ``raw`` with COPY.

The day's folder ``$HEALTHOPS_LANDING/adt/YYYY-MM-DD/`` is listed without following
links (``healthops.load.landing``): symbolic links, special files, folders inside it and
names that are not UTF-8 are refused, each recorded in ``audit.refused_files`` with its
reason; a file still being written is left for the next run. Each ready file is read
once, and those bytes are hashed and parsed. Then, in one transaction per file: a file
already loaded (same name and SHA-256) is skipped; a file whose bytes were loaded
before under another name is a duplicate delivery, recorded and not loaded again;
otherwise parse it, COPY usable messages into a temporary table, move the ones whose
(MSH-4, MSH-10) was not loaded before into ``raw.adt_messages``, keep resent copies of
a loaded message (same control id, same text) in ``raw.duplicates``, and send
everything else (parser rejections, a control id reused for other content) to
``raw.rejected`` with a reason; then record the batch in ``audit.load_batches``
(in = loaded + rejected + duplicate).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import date
from pathlib import Path

from healthops.load.batches import BatchResult, LoadSummary, loaded_before, require_utf8
from healthops.load.landing import open_folder, record_refusals
from healthops.sources.adt.parser import parse_bytes
from healthops.sources.adt.schema import ADT_COLUMNS, AdtMessage, Rejection
from healthops.warehouse.connection import connect
from healthops.warehouse.migrate import require_current

log = logging.getLogger(__name__)

SOURCE = "adt"
PATTERN = "*.hl7"
_COLS = ", ".join(ADT_COLUMNS)


def adt_folder(landing: Path, received_date: date) -> Path:
    return Path(landing) / "adt" / received_date.isoformat()


def adt_folder_parts(received_date: date) -> tuple[str, str]:
    """The day's folder as path components under the landing root."""
    return ("adt", received_date.isoformat())


def load_adt_date(
    url: str, landing: Path, received_date: date, dag_run_id: str | None = None, facility_tz: str | None = None
) -> LoadSummary:
    from healthops import config

    tz = facility_tz or config.facility_tz()
    summary = LoadSummary(SOURCE, received_date.isoformat())
    with open_folder(landing, adt_folder_parts(received_date), PATTERN) as folder:
        if not folder.exists and not folder.refused:
            log.warning(
                "no ADT folder for %s at %s: nothing received that day",
                received_date,
                adt_folder(landing, received_date),
            )
        with connect(url) as conn:
            require_current(conn)  # a warehouse behind this healthops: stop before touching it
            require_utf8(conn)
            record_refusals(conn, SOURCE, folder.refused, received_date, dag_run_id)
            for f in folder.files:
                data = folder.read(f)  # the one read: these bytes are hashed and parsed
                if data is not None:
                    summary.batches.append(_load_file(conn, f.rel, data, received_date, dag_run_id, tz))
        summary.refused, summary.left = list(folder.refused), list(folder.left)
    return summary


def _load_file(conn, rel: str, data: bytes, received_date: date, dag_run_id, tz) -> BatchResult:
    sha, size = hashlib.sha256(data).hexdigest(), len(data)
    with conn.transaction():
        done = loaded_before(conn, SOURCE, rel, sha)
        if done:
            log.info("%s already loaded as batch %s (sha256 %s): skipped", rel, done, sha[:12])
            return BatchResult(rel, done, "skipped")
        if data:  # an empty file repeats nothing
            # ... and one loader at a time per content, so that two names of the same
            # bytes loaded at once still make one load and one duplicate delivery
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{SOURCE}:sha256:{sha}",))
            first = conn.execute(
                """select batch_id, file_path, records_in from audit.load_batches
                   where source = %s and file_sha256 = %s and duplicate_of_batch_id is null
                   order by loaded_at, batch_id limit 1""",
                (SOURCE, sha),
            ).fetchone()
            if first:
                return _duplicate_delivery(conn, rel, sha, size, received_date, dag_run_id, *first)

        batch_id = uuid.uuid4()
        conn.execute("create temp table _adt_in (like raw.adt_messages including defaults) on commit drop")
        rejected: list[Rejection] = []
        n_in = 0
        with conn.cursor().copy(f"copy _adt_in (batch_id, received_date, file_path, {_COLS}) from stdin") as copy:
            for item in parse_bytes(data, default_tz=tz):
                n_in += 1
                if isinstance(item, Rejection):
                    rejected.append(item)
                    continue
                assert isinstance(item, AdtMessage)
                copy.write_row((batch_id, received_date, rel, *(getattr(item, c) for c in ADT_COLUMNS)))

        # The same (MSH-4, MSH-10) already in raw, or earlier in this file. An interface
        # engine resends a message after a timeout or on reconnect: the same text again
        # is a duplicate (kept in raw.duplicates, loaded once, not a rejection). The same
        # control id with other content is a sender's error that loses a message: rejected.
        repeats = conn.execute(
            """
            with ranked as (
                select i.*, row_number() over (partition by sending_facility, control_id
                                               order by message_index) as rn
                from _adt_in i
            )
            select r.message_index, r.control_id, r.sending_facility, r.raw_text,
                   coalesce(m.batch_id, r.batch_id) as first_batch_id,
                   coalesce(m.message_index, first.message_index) as first_message_index,
                   coalesce(m.raw_text, first.raw_text) = r.raw_text as same_text
            from ranked r
            left join raw.adt_messages m
              on m.sending_facility = r.sending_facility and m.control_id = r.control_id
            left join ranked first
              on first.sending_facility = r.sending_facility and first.control_id = r.control_id and first.rn = 1
            where m.control_id is not null or r.rn > 1
            order by r.message_index
            """
        ).fetchall()
        duplicates = []
        for idx, control_id, facility, raw_text, first_batch, first_idx, same_text in repeats:
            where = (
                "earlier in this file" if first_batch == batch_id else f"in batch {first_batch}"
            ) + f", message {first_idx}"
            if same_text:
                duplicates.append(
                    (batch_id, SOURCE, received_date, rel, idx, facility, control_id, first_batch, first_idx, raw_text)
                )
            else:
                rejected.append(
                    Rejection(
                        idx,
                        f"control id reused with different content: control id {control_id} from {facility} "
                        f"was already loaded ({where}) with other text; this message is not loaded",
                        raw_text,
                        control_id,
                    )
                )
        loaded = conn.execute(
            f"""
            insert into raw.adt_messages (batch_id, received_date, file_path, {_COLS})
            select batch_id, received_date, file_path, {_COLS}
            from (
                select i.*, row_number() over (partition by sending_facility, control_id
                                               order by message_index) as rn
                from _adt_in i
            ) i
            where rn = 1
              and not exists (select 1 from raw.adt_messages m
                              where m.sending_facility = i.sending_facility and m.control_id = i.control_id)
            """
        ).rowcount
        if duplicates:
            with conn.cursor().copy(
                "copy raw.duplicates (batch_id, source, received_date, file_path, message_index, sending_facility,"
                " control_id, first_batch_id, first_message_index, raw_text) from stdin"
            ) as copy:
                for row in duplicates:
                    copy.write_row(row)
        if rejected:
            with conn.cursor().copy(
                "copy raw.rejected (batch_id, source, received_date, file_path, message_index, control_id, reason,"
                " raw_text) from stdin"
            ) as copy:
                for r in rejected:
                    copy.write_row(
                        (batch_id, SOURCE, received_date, rel, r.message_index, r.control_id, r.reason, r.raw_text)
                    )
        conn.execute(
            """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, file_bytes,
                                               records_in, records_loaded, records_rejected, records_duplicate,
                                               dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (batch_id, SOURCE, received_date, rel, sha, size, n_in, loaded, len(rejected), len(duplicates), dag_run_id),
        )
        log.info(
            "%s: %d in, %d loaded, %d rejected, %d duplicate (batch %s)",
            rel,
            n_in,
            loaded,
            len(rejected),
            len(duplicates),
            batch_id,
        )
        return BatchResult(rel, str(batch_id), "loaded", n_in, loaded, len(rejected), len(duplicates))


def _duplicate_delivery(
    conn, rel: str, sha: str, size: int, received_date: date, dag_run_id, first_batch, first_path, n_in
) -> BatchResult:
    """The bytes of batch ``first_batch`` again, under another name (an interface engine
    or an operator dropping a file twice): nothing is parsed or loaded again, and its
    records count as duplicates, apart from rejections (docs/sources.md#duplicates-and-resends)."""
    batch_id = uuid.uuid4()
    conn.execute(
        """insert into audit.load_batches (batch_id, source, received_date, file_path, file_sha256, file_bytes,
                                           records_in, records_loaded, records_rejected, records_duplicate,
                                           dag_run_id, duplicate_of_batch_id)
           values (%s, %s, %s, %s, %s, %s, %s, 0, 0, %s, %s, %s)""",
        (batch_id, SOURCE, received_date, rel, sha, size, n_in, n_in, dag_run_id, first_batch),
    )
    log.warning(
        "%s is a duplicate delivery of %s (batch %s, same sha256 %s): not loaded again; its %d record(s) "
        "count as duplicates (batch %s)",
        rel,
        first_path,
        first_batch,
        sha[:12],
        n_in,
        batch_id,
    )
    return BatchResult(rel, str(batch_id), "duplicate", n_in, 0, 0, n_in)
