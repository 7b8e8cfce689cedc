"""The HR export's files as docs/sources.md#hr-export specifies them: per file its
columns, their types, which must not be empty, the allowed values, the key that is
unique within one day's file and the raw table the rows land in.

The spec is the one definition the parser, the loader and the tests read: a column
added here (and to ``raw.hr_*`` by a migration) is read, checked and loaded."""

from __future__ import annotations

from dataclasses import dataclass

TEXT, DATE, TIMESTAMP, NUMBER = "text", "date", "timestamp", "number"

WORKER_TYPES = ("EMPLOYEE", "CONTRACT")
WORKER_STATUSES = ("ACTIVE", "LEAVE", "TERMINATED")
CREDENTIAL_TYPES = ("RN", "LPN", "CNA", "BLS", "ACLS", "PALS")
EXCLUSION_LISTS = ("OIG_LEIE", "SAM")
SCREENING_RESULTS = ("CLEAR", "POSSIBLE_MATCH", "CONFIRMED_MATCH")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    required: bool = True  # an empty value rejects the record
    allowed: tuple[str, ...] | None = None  # the spec's values; None: any text
    phi: bool = False  # never quoted in a rejection's reason
    digits: tuple[int, int] | None = None  # NUMBER: (precision, scale) of the raw column


@dataclass(frozen=True)
class FileSpec:
    name: str  # workers.csv
    table: str  # raw.hr_workers
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique within one file
    key_label: str  # the reason's category for a key repeated with other content

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def control_id(self, values: dict[str, str]) -> str | None:
        """The record's id in ``raw.rejected.control_id``: the worker id, or
        ``cost_center/job_code`` for a position; None when it cannot be read."""
        if "worker_id" in self.key:
            return values.get("worker_id") or None
        cc, job = values.get("cost_center"), values.get("job_code")
        return f"{cc}/{job}" if cc and job else None


FILES: dict[str, FileSpec] = {
    spec.name: spec
    for spec in (
        FileSpec(
            "workers.csv",
            "raw.hr_workers",
            (
                Column("worker_id"),
                Column("last_name", required=False, phi=True),
                Column("first_name", required=False, phi=True),
                Column("birth_date", DATE, required=False, phi=True),
                Column("hire_date", DATE),
                Column("termination_date", DATE, required=False),
                Column("worker_type", allowed=WORKER_TYPES),
                Column("job_code"),
                Column("home_cost_center"),
                Column("standard_hours_per_week", NUMBER, digits=(5, 2)),
                Column("status", allowed=WORKER_STATUSES),
                Column("last_modified", TIMESTAMP, required=False),
            ),
            key=("worker_id",),
            key_label="duplicate worker id",
        ),
        FileSpec(
            "credentials.csv",
            "raw.hr_credentials",
            (
                Column("worker_id"),
                Column("credential_type", allowed=CREDENTIAL_TYPES),
                Column("credential_number"),
                Column("issuing_state", required=False),
                Column("issue_date", DATE),
                Column("expiry_date", DATE, required=False),
                Column("verified_date", DATE, required=False),
            ),
            key=("worker_id", "credential_type", "credential_number"),
            key_label="duplicate credential",
        ),
        FileSpec(
            "training.csv",
            "raw.hr_training",
            (Column("worker_id"), Column("course_code"), Column("completed_date", DATE)),
            key=("worker_id", "course_code", "completed_date"),
            key_label="duplicate training record",
        ),
        FileSpec(
            "exclusion_screening.csv",
            "raw.hr_exclusion_screening",
            (
                Column("worker_id"),
                Column("screened_date", DATE),
                Column("list", allowed=EXCLUSION_LISTS),
                Column("result", allowed=SCREENING_RESULTS),
            ),
            key=("worker_id", "screened_date", "list"),
            key_label="duplicate screening",
        ),
        FileSpec(
            "positions.csv",
            "raw.hr_positions",
            (
                Column("cost_center"),
                Column("job_code"),
                Column("budgeted_fte", NUMBER, digits=(8, 2)),
                Column("effective_date", DATE),
            ),
            key=("cost_center", "job_code", "effective_date"),
            key_label="duplicate position",
        ),
    )
}
