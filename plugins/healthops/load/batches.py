"""Batches: one landed file = one batch, identified by its path and sha256.

A file already loaded with the same hash is skipped, so re-running a date changes
nothing. Counts always reconcile: records_in = records_loaded + records_rejected
+ records_duplicate (enforced by a check constraint on audit.load_batches).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def ready_files(folder: Path, pattern: str) -> list[Path]:
    """Files that are fully written (writers create NAME.tmp and rename it)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.endswith(".tmp"))


@dataclass
class BatchResult:
    file_path: str
    batch_id: str | None
    status: str  # "loaded" | "skipped" (same file already loaded)
    records_in: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    records_duplicate: int = 0  # resent copies of a message already loaded (raw.duplicates)


@dataclass
class LoadSummary:
    source: str
    received_date: str
    batches: list[BatchResult] = field(default_factory=list)

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
            "records_in": self.total("records_in"),
            "records_loaded": self.total("records_loaded"),
            "records_rejected": self.total("records_rejected"),
            "records_duplicate": self.total("records_duplicate"),
        }
