"""Evidence without PHI: what of a rule's violating values may be kept.

A rule file's ``evidence_columns`` (``healthops.quality.rules``) is the allow-list;
``rules.PHI_COLUMNS`` is the deny-list behind it. Both are applied here, to every
place a violating value could end up:

- the GX result of a run (``redact_validation_result``, in place, right after GX
  returns it): it becomes ``audit.validation_runs.gx_result``, the rule outcomes'
  ``detail`` (``audit.rule_results.detail``) and, through the GX store, Data Docs;
- the GX result copied into the Data Docs store (``healthops.quality.data_docs``
  redacts it again before it is written or rendered);
- the evidence rows of ``audit.rule_violations`` (``keep``).

A column rule (``column``, ``column_A``/``column_B``, ``column_list``) whose columns
are not all on the allow-list keeps its counts only: GX's lists of unexpected
values, their counts and indexes, and an ``observed_value`` that is not a count
are removed. A SQL rule's evidence rows keep only allowed columns. The allow-list
travels in each expectation's ``meta.evidence_columns``, so a result is redacted
from itself; a result without one keeps no values.
"""

from __future__ import annotations

from typing import Any, Iterable

from healthops.quality.rules import PHI_COLUMNS

# GX result keys that carry the values (or the positions) of violating rows.
VALUE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "unexpected_rows",
)
# Expectations whose observed_value is a count of rows, not a value of the column.
COUNT_OBSERVED = ("unexpected_rows_expectation", "unexpected_rows_share_expectation")


def allowed(meta: dict | None) -> frozenset[str]:
    """The columns whose values a result may keep: its allow-list less the deny-list."""
    names = (meta or {}).get("evidence_columns") or ()
    return frozenset(str(c).lower() for c in names) - PHI_COLUMNS


def rule_columns(kwargs: dict | None) -> list[str]:
    k = kwargs or {}
    if "column" in k:
        return [k["column"]]
    if "column_A" in k and "column_B" in k:
        return [k["column_A"], k["column_B"]]
    return list(k.get("column_list") or [])


def keep(rows: Iterable[dict], columns: frozenset[str]) -> list[dict]:
    """Each row with only the allowed, non-PHI columns; rows left empty are dropped."""
    out = []
    for row in rows:
        kept = {k: v for k, v in row.items() if str(k).lower() in columns and str(k).lower() not in PHI_COLUMNS}
        if kept:
            out.append(kept)
    return out


def redact_result(result: dict | None, expectation_type: str, kwargs: dict | None, meta: dict | None) -> None:
    """Remove from one expectation's ``result`` dict (in place) every value it may not keep."""
    if not result:
        return
    columns = allowed(meta)
    targets = [result]
    if isinstance(result.get("details"), dict):
        targets.append(result["details"])
    looked_at = [str(c).lower() for c in rule_columns(kwargs)]
    values_allowed = bool(looked_at) and all(c in columns for c in looked_at)
    for target in targets:
        for key in VALUE_KEYS:
            if key not in target:
                continue
            value = target[key]
            if key == "unexpected_rows" and isinstance(value, list) and all(isinstance(r, dict) for r in value):
                target[key] = keep(value, columns)  # SQL rules: rows of named columns
            elif not values_allowed:
                del target[key]
    if looked_at and not values_allowed and expectation_type not in COUNT_OBSERVED:
        # a column statistic (min, max, mean) of a column not allowed is a value too
        result.pop("observed_value", None)


def redact_validation_result(result: Any) -> Any:
    """A GX ``ExpectationSuiteValidationResult`` redacted in place (and returned)."""
    for r in result.results:
        cfg = r.expectation_config
        redact_result(r.result, cfg.type, cfg.kwargs, cfg.meta)
    return result


def redact_json(gx_result: dict) -> dict:
    """The same, for a GX result as JSON (``to_json_dict``); in place, returned."""
    for r in gx_result.get("results") or []:
        cfg = r.get("expectation_config") or {}
        redact_result(r.get("result"), cfg.get("type", ""), cfg.get("kwargs"), cfg.get("meta"))
    return gx_result
