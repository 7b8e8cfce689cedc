"""Batches: one landed file = one batch, identified by its path and sha256.

A file already loaded with the same hash is skipped, so re-running a date changes
nothing; a file whose bytes were loaded before under another name is a duplicate
delivery (a batch row of its own, counting every record as a duplicate). Counts
always reconcile: records_in = records_loaded + records_rejected + records_duplicate
(enforced by a check constraint on audit.load_batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healthops.errors import ConfigurationError
from healthops.load.landing import Refusal


@dataclass
class BatchResult:
    file_path: str
    batch_id: str | None
    status: str  # "loaded" | "skipped" (same file already loaded) | "duplicate" (its bytes loaded under another name)
    records_in: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    records_duplicate: int = 0  # resent copies of a loaded message (raw.duplicates); all of a duplicate delivery


@dataclass
class LoadSummary:
    source: str
    received_date: str
    batches: list[BatchResult] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)  # entries not read (audit.refused_files)
    left: list[str] = field(default_factory=list)  # files still being written: for the next run

    @property
    def files(self) -> int:
        return len(self.batches)

    def total(self, attr: str) -> int:
        return sum(getattr(b, attr) for b in self.batches)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "received_date": self.received_date,
            "files": self.files,
            "files_loaded": sum(b.status == "loaded" for b in self.batches),
            "files_skipped": sum(b.status == "skipped" for b in self.batches),
            "files_duplicate": sum(b.status == "duplicate" for b in self.batches),
            "files_refused": len(self.refused),
            "files_left": len(self.left),
            "records_in": self.total("records_in"),
            "records_loaded": self.total("records_loaded"),
            "records_rejected": self.total("records_rejected"),
            "records_duplicate": self.total("records_duplicate"),
            "refused": [{"file": r.rel, "kind": r.kind, "reason": r.reason} for r in self.refused],
            "left": list(self.left),
        }


def require_utf8(conn) -> None:
    """Stop unless the warehouse database is UTF-8: in any other encoding some of the
    text the sources carry (every character set of docs/sources.md#character-sets, any
    character of a UTF-8 CSV) could not be stored, and one such record would fail its
    file's COPY."""
    encoding = conn.info.parameter_status("server_encoding")
    if encoding != "UTF8":
        raise ConfigurationError(
            f"the warehouse database's encoding is {encoding}: healthops needs a UTF8 database "
            "(create database ... encoding 'UTF8')"
        )


def loaded_before(conn, source: str, rel: str, sha: str) -> str | None:
    """Inside the file's load transaction: one loader at a time per file (a retried task
    racing its zombie must not double-load), then the batch id under which these bytes
    were already loaded from this path, or None. A re-run of a date skips such a file."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{source}:{rel}",))
    done = conn.execute(
        "select batch_id from audit.load_batches where source = %s and file_path = %s and file_sha256 = %s",
        (source, rel, sha),
    ).fetchone()
    return str(done[0]) if done else None
