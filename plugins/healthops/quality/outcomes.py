"""What a validation of a rule file yields, whichever engine ran it (Great
Expectations, or the freshness rules' dbt engine): one ``RuleOutcome`` per rule and
a ``ValidationSummary`` per run, which the audit trail records."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

import healthops
from healthops import config
from healthops.quality.rules import GX_ENGINE

# Values of failing rows kept per rule (in gx_result and in rule_results.detail):
# enough to find the rows, short enough to keep findings free of bulk data.
PARTIAL_VALUES = 5


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    severity: str
    success: bool
    rows_violating: int | None
    description: str
    expectation_type: str
    column_name: str | None
    rows_evaluated: int | None
    violating_share: float | None  # rows_violating / rows_evaluated (the table, or a SQL rule's evaluated rows)
    detail: dict


@dataclass
class ValidationSummary:
    validation_run_id: uuid.UUID
    suite_name: str
    data_asset: str
    logical_date: dt.date
    dag_run_id: str | None
    code_version: str
    run_at: dt.datetime
    success: bool  # GX's verdict: every rule passed (warnings included)
    evaluated_expectations: int
    successful_expectations: int
    blocking_failures: list[str]
    warnings: list[str]
    results: list[RuleOutcome]
    gx_result: dict = field(repr=False)  # GX's result; for another engine, its result (see "engine" in it)
    timings: dict[str, float] = field(default_factory=dict)  # seconds, by step
    engine: str = GX_ENGINE  # what ran the rule file (rules.GX_ENGINE, rules.FRESHNESS_ENGINE)

    @property
    def publishable(self) -> bool:
        """A blocking failure stops report publication; a warning does not."""
        return not self.blocking_failures


@lru_cache(maxsize=1)
def code_version() -> str:
    """healthops version, plus the git short sha when the code runs from a checkout."""
    version = healthops.__version__
    try:
        sha = subprocess.run(
            ["git", "-C", str(config.REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{sha}" if sha else version
