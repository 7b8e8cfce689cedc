"""Reviewed rule files (``expectations/*.yml``) -> Great Expectations suites.

A rule file is the thing a reviewer signs off: each rule has an id, a plain-language
description, a Kahn et al. (2016) category, a severity and a citation. The GX suite
is built from the file on every run, and every expectation carries the rule's
metadata in ``meta``, so what runs cannot drift from what was reviewed.

``load_rules`` checks everything it can (structure, severities, duplicate ids,
expectation names, the expectation's own argument validation) and reports all
problems of a file at once.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from healthops import config

SEVERITIES = ("blocking", "warning", "info")
KAHN_CATEGORIES = ("conformance", "completeness", "plausibility")
RULE_FIELDS = ("id", "description", "kahn_category", "severity", "citation", "expectation", "kwargs")
TOP_FIELDS = ("suite", "data_asset", "description", "rules")
# GX 1.x has its own severity on every expectation; keep it in step with ours.
GX_SEVERITY = {"blocking": "critical", "warning": "warning", "info": "info"}
# Set from the rule's own fields, never from kwargs (they would shadow the review).
RESERVED_KWARGS = ("meta", "severity", "description", "id", "notes", "result_format",
                   "rendered_content", "catch_exceptions")
SEED_KWARG = "value_set_from_seed"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RuleFileError(ValueError):
    """A rule file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    kahn_category: str
    severity: str
    citation: str
    expectation: str  # GX class name, e.g. ExpectColumnValuesToNotBeNull
    kwargs: dict[str, Any]  # as passed to GX (seed references resolved)

    @property
    def column_name(self) -> str | None:
        """The column(s) a rule looks at, for audit.rule_results."""
        k = self.kwargs
        if "column" in k:
            return k["column"]
        if "column_A" in k and "column_B" in k:
            return f"{k['column_A']},{k['column_B']}"
        if "column_list" in k:
            return ",".join(k["column_list"])
        return None

    @property
    def meta(self) -> dict[str, str]:
        return {
            "rule_id": self.id,
            "severity": self.severity,
            "citation": self.citation,
            "kahn_category": self.kahn_category,
            "description": self.description,
        }


@dataclass(frozen=True)
class RuleFile:
    path: Path
    suite_name: str
    schema: str
    table: str
    description: str
    rules: tuple[Rule, ...]
    sha256: str = field(repr=False)  # of the file as reviewed

    @property
    def data_asset(self) -> str:
        return f"{self.schema}.{self.table}"

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def load_rules(path: Path | str, *, seeds_dir: Path | str | None = None) -> RuleFile:
    """Read and check a rule file. Raises ``RuleFileError`` listing every problem."""
    path = Path(path)
    seeds = Path(seeds_dir) if seeds_dir else config.DBT_PROJECT_DIR / "seeds"
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise RuleFileError(path, [f"not valid YAML: {e}"]) from None
    if not isinstance(doc, dict):
        raise RuleFileError(path, ["top level must be a mapping with suite, data_asset, description, rules"])

    problems: list[str] = []
    for key in TOP_FIELDS:
        if key not in doc:
            problems.append(f"missing top-level field {key!r}")
    for key in doc:
        if key not in TOP_FIELDS:
            problems.append(f"unknown top-level field {key!r}")
    suite = doc.get("suite")
    if "suite" in doc and not (isinstance(suite, str) and suite.strip()):
        problems.append("suite must be a non-empty string")
    schema = table = None
    asset = doc.get("data_asset")
    if "data_asset" in doc:
        if not isinstance(asset, dict) or set(asset) != {"schema", "table"}:
            problems.append("data_asset must be a mapping with exactly 'schema' and 'table'")
        else:
            schema, table = asset["schema"], asset["table"]
            for k, v in (("schema", schema), ("table", table)):
                if not (isinstance(v, str) and _IDENT.match(v)):
                    problems.append(f"data_asset.{k} must be a plain SQL identifier, got {v!r}")
    rules_doc = doc.get("rules")
    if "rules" in doc and not (isinstance(rules_doc, list) and rules_doc):
        problems.append("rules must be a non-empty list")
        rules_doc = []

    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(rules_doc or [], start=1):
        rule, rule_problems = _check_rule(item, i, seeds)
        problems += rule_problems
        rid = item.get("id") if isinstance(item, dict) else None
        if isinstance(rid, str) and rid.strip():
            rid = rid.strip()
            if rid in seen:
                problems.append(f"duplicate rule id {rid!r} (rules #{seen[rid]} and #{i})")
            else:
                seen[rid] = i
        if rule is not None:
            rules.append(rule)

    if not problems:
        # The expectation's own validation (argument names and types) is the last
        # word on kwargs; run it now so a bad file fails at load, not mid-run.
        for rule in rules:
            try:
                build_expectation(rule)
            except Exception as e:  # pydantic.ValidationError and friends
                problems.append(f"rule {rule.id}: invalid kwargs for {rule.expectation}: {_short(e)}")
    if problems:
        raise RuleFileError(path, problems)
    return RuleFile(
        path=path,
        suite_name=suite.strip(),
        schema=schema,
        table=table,
        description=str(doc.get("description") or "").strip(),
        rules=tuple(rules),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _check_rule(item: Any, index: int, seeds: Path) -> tuple[Rule | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"rule #{index} must be a mapping"]
    label = f"rule {item['id']}" if isinstance(item.get("id"), str) and item["id"] else f"rule #{index}"
    problems = [f"{label}: missing field {k!r}" for k in RULE_FIELDS if k not in item]
    problems += [f"{label}: unknown field {k!r}" for k in item if k not in RULE_FIELDS]
    for k in ("id", "description", "citation", "expectation"):
        if k in item and not (isinstance(item[k], str) and item[k].strip()):
            problems.append(f"{label}: {k} must be a non-empty string")
    sev = item.get("severity")
    if "severity" in item and sev not in SEVERITIES:
        problems.append(f"{label}: severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    cat = item.get("kahn_category")
    if "kahn_category" in item and cat not in KAHN_CATEGORIES:
        problems.append(f"{label}: kahn_category {cat!r} is not one of {', '.join(KAHN_CATEGORIES)}")
    name = item.get("expectation")
    if isinstance(name, str) and name.strip():
        problem = _check_expectation_name(name)
        if problem:
            problems.append(f"{label}: {problem}")
    kwargs = item.get("kwargs")
    if "kwargs" in item:
        if not isinstance(kwargs, dict):
            problems.append(f"{label}: kwargs must be a mapping")
        else:
            for k in kwargs:
                if k in RESERVED_KWARGS:
                    problems.append(f"{label}: kwargs may not set {k!r} (the rule's own fields do)")
            try:
                kwargs = _resolve_seed_refs(kwargs, seeds)
            except ValueError as e:
                problems.append(f"{label}: {e}")
    if problems:
        return None, problems
    return Rule(
        id=item["id"].strip(),
        description=" ".join(item["description"].split()),
        kahn_category=cat,
        severity=sev,
        citation=item["citation"].strip(),
        expectation=name.strip(),
        kwargs=kwargs,
    ), []


def _check_expectation_name(name: str) -> str | None:
    gx = _gx()
    known = _expectation_names()
    if name in known:
        return None
    hint = difflib.get_close_matches(name, known, n=1)
    return f"unknown GX expectation {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")


@lru_cache(maxsize=1)
def _expectation_names() -> frozenset[str]:
    """Concrete expectation classes GX exports (ExpectColumn..., UnexpectedRowsExpectation)."""
    gx = _gx()
    base = gx.expectations.Expectation
    return frozenset(
        n for n in dir(gx.expectations)
        if isinstance(c := getattr(gx.expectations, n), type) and issubclass(c, base)
        and not inspect.isabstract(c) and c is not base
    )


def _resolve_seed_refs(kwargs: dict, seeds: Path) -> dict:
    """``value_set_from_seed: units.unit_code`` -> ``value_set: [sorted distinct values]``
    read from ``<seeds>/units.csv``: deterministic, and the same file dbt loads."""
    if SEED_KWARG not in kwargs:
        return dict(kwargs)
    if "value_set" in kwargs:
        raise ValueError(f"give either value_set or {SEED_KWARG}, not both")
    ref = kwargs[SEED_KWARG]
    seed, dot, column = ref.partition(".") if isinstance(ref, str) else ("", "", "")
    if not (dot and _IDENT.match(seed) and _IDENT.match(column)):
        raise ValueError(f"{SEED_KWARG} must look like '<seed>.<column>', got {ref!r}")
    out = {k: v for k, v in kwargs.items() if k != SEED_KWARG}
    out["value_set"] = seed_values(seeds / f"{seed}.csv", column)
    return out


def seed_values(csv_path: Path, column: str) -> list[str]:
    """Sorted distinct non-empty values of one column of a dbt seed CSV."""
    if not csv_path.is_file():
        raise ValueError(f"seed file {csv_path} not found")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ValueError(f"seed {csv_path.name} has no column {column!r}")
        values = sorted({(row[column] or "").strip() for row in reader} - {""})
    if not values:
        raise ValueError(f"seed {csv_path.name} column {column!r} has no values")
    return values


def build_expectation(rule: Rule):
    """The GX expectation for one rule, carrying the rule's metadata."""
    gx = _gx()
    cls = getattr(gx.expectations, rule.expectation)
    return cls(
        **rule.kwargs,
        meta=rule.meta,
        description=rule.description,
        severity=GX_SEVERITY[rule.severity],
    )


def build_suite(rule_file: RuleFile):
    """A ``gx.ExpectationSuite`` with one expectation per rule, in file order."""
    gx = _gx()
    return gx.ExpectationSuite(
        name=rule_file.suite_name,
        expectations=[build_expectation(r) for r in rule_file.rules],
        meta={
            "data_asset": rule_file.data_asset,
            "description": rule_file.description,
            "rules_file": rule_file.path.name,
            "rules_sha256": rule_file.sha256,
        },
    )


def _gx():
    # Imported through the runner so GX's import-time log noise is silenced first.
    from healthops.quality.gx_runner import import_gx

    return import_gx()


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."
