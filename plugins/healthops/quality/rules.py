"""Reviewed rule files (``expectations/*.yml``) -> Great Expectations suites.

A rule file is the thing a reviewer signs off: one file per data asset (table),
one GX suite per file. Each rule is a catalog entry: id, plain-language
description, domain, Kahn et al. (2016) category, citation, severity
(blocking/warning/info), threshold (the share of evaluated rows allowed to
violate it, default 0) and owner. ``defaults:`` at the top of a file gives
``domain``, ``owner`` and ``threshold`` to every rule that does not set its own.
The GX suite is built from the file on every run, and every expectation carries
the rule's metadata in ``meta``, so what runs cannot drift from what was reviewed.

SQL rules (``UnexpectedRowsExpectation``, ``UnexpectedRowsShareExpectation``) are
templates: every ``*_query`` kwarg may use ``{batch}`` (GX substitutes the asset),
``{logical_date}`` (the run's date, as a DATE literal), ``{facility_tz}`` (the
facility time zone setting, as a text literal) and the rule's own ``params``
(numbers or plain strings, as literals). Values are validated and rendered as SQL
literals by the runner, never pasted from user input.

Rules of another engine: ``expectation: DbtSourceFreshness`` with kwargs
``{source, table, level: warn|error}`` is ``dbt source freshness`` of a dbt source
table (``healthops.quality.freshness`` runs it). Its thresholds live in the dbt
project's sources yml (the single source of truth); the rule file declares the
rule (id, severity, citation, owner). At load time the source table must exist in
the dbt project, be the file's data_asset, have a loaded_at_field and a freshness
threshold for the rule's level; threshold must be 0 (one row is evaluated: the
table), no params or queries. A file runs on one engine (``RuleFile.engine``): GX
suites are never built from such a file.

Evidence: ``evidence_columns:`` at the top of a file is the allow-list of the
columns whose values may be kept as evidence of a violation (the names a SQL
rule's ``unexpected_rows_query`` selects, or the columns a column rule looks at).
Values of any other column are never stored (``audit.rule_results``,
``audit.rule_violations``, the stored GX result) nor rendered (Data Docs); a file
without the list keeps counts only (``healthops.quality.evidence``). A column
named on ``PHI_COLUMNS`` (the deny-list) may never be on it.

``load_rules`` checks everything it can (structure, severities, duplicate ids,
expectation names, placeholders, the expectation's own argument validation) and
reports all problems of a file at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import inspect
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from healthops import config

SEVERITIES = ("blocking", "warning", "info")
KAHN_CATEGORIES = ("conformance", "completeness", "plausibility")
RULE_FIELDS = (
    "id",
    "description",
    "domain",
    "kahn_category",
    "severity",
    "citation",
    "threshold",
    "owner",
    "expectation",
    "kwargs",
)
OPTIONAL_RULE_FIELDS = ("params",)
# Catalog fields a file's ``defaults:`` may give every rule; threshold defaults to 0.
DEFAULTABLE = ("domain", "owner", "threshold")
TOP_FIELDS = ("suite", "data_asset", "description", "rules")
OPTIONAL_TOP_FIELDS = ("defaults", "evidence_columns")
# The deny-list: columns never kept as evidence, whatever a rule file allows (the
# PHI of raw.adt_messages, the warehouse columns that carry or reveal the visit
# number, room and bed, and the usual names of identifying columns; see
# docs/architecture.md#evidence-without-phi). The second guard behind each file's
# ``evidence_columns`` allow-list: a column on both is refused at load time.
PHI_COLUMNS = frozenset(
    {
        "mrn",
        "patient_name",
        "name",
        "first_name",
        "last_name",
        "given_name",
        "family_name",
        "birth_date",
        "date_of_birth",
        "dob",
        "sex",
        "ssn",
        "address",
        "phone",
        "email",
        "raw_text",
        "visit_number",
        "encounter_key",  # facility|visit number (PV1-19): evidence carries encounter_pseudonym
        "account_number",
        "room",
        "bed",
    }
)
# GX 1.x has its own severity on every expectation; keep it in step with ours.
GX_SEVERITY = {"blocking": "critical", "warning": "warning", "info": "info"}
# Set from the rule's own fields, never from kwargs (they would shadow the review).
RESERVED_KWARGS = (
    "meta",
    "severity",
    "description",
    "id",
    "notes",
    "result_format",
    "rendered_content",
    "catch_exceptions",
    "mostly",
    "threshold",
)
# SQL rules: GX's own, and ours with a denominator and a threshold (sql_expectations.py).
SQL_EXPECTATIONS = ("UnexpectedRowsExpectation", "UnexpectedRowsShareExpectation")
CUSTOM_EXPECTATIONS = ("UnexpectedRowsShareExpectation",)
# Placeholders the runner fills; {batch} is left for GX.
BUILTIN_PLACEHOLDERS = ("batch", "logical_date", "facility_tz")
# Stands in for the logical date when a file is checked at load time.
SAMPLE_DATE = dt.date(2000, 1, 1)
# A safe plain-string parameter (time zone names, codes): no quotes, no colons
# (SQLAlchemy's text() reads ":name" as a bind parameter), no braces.
_PLAIN_STRING = re.compile(r"^[A-Za-z0-9_ /+.\-]*$")
# {batch} is a table expression GX renders as "(select ...) AS subselect" or, in a
# query with a JOIN, as "(select ...)" (which the runner then aliases): so it must
# not carry an alias of its own. Write it inside a CTE: "with m as (select ... from {batch} where ...)".
_BATCH_FOLLOWER = re.compile(
    r"\{batch\}(?=\s*(?:\)|$|(?:where|group|order|limit|union|except|intersect|window)\b))", re.IGNORECASE
)
SEED_KWARG = "value_set_from_seed"
# Engines that run rule files. A rule's engine follows from its expectation: GX's
# classes (and ours in sql_expectations.py) run on GX; these names run elsewhere.
GX_ENGINE = "great_expectations"
FRESHNESS_ENGINE = "dbt_source_freshness"
NON_GX_EXPECTATIONS = {"DbtSourceFreshness": FRESHNESS_ENGINE}
FRESHNESS_KWARGS = ("source", "table", "level")
FRESHNESS_LEVELS = {"warn": "warn_after", "error": "error_after"}
FRESHNESS_PERIODS = ("minute", "hour", "day")

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
    kwargs: dict[str, Any]  # as passed to GX (seed references resolved; SQL still templated)
    domain: str
    owner: str
    threshold: float  # share of evaluated rows allowed to violate the rule (0: none)
    params: dict[str, Any] = field(default_factory=dict)  # values for the SQL templates
    # Non-GX rules: what the load-time check resolved from the engine's own config
    # (dbt source freshness: the table's loaded_at_field, warn_after, error_after).
    resolved: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def engine(self) -> str:
        return NON_GX_EXPECTATIONS.get(self.expectation, GX_ENGINE)

    @property
    def is_sql(self) -> bool:
        return self.expectation in SQL_EXPECTATIONS

    @property
    def column_name(self) -> str | None:
        """The column(s) a rule looks at, for audit.rule_results."""
        if self.engine == FRESHNESS_ENGINE:
            return self.resolved.get("loaded_at_field")
        k = self.kwargs
        if "column" in k:
            return k["column"]
        if "column_A" in k and "column_B" in k:
            return f"{k['column_A']},{k['column_B']}"
        if "column_list" in k:
            return ",".join(k["column_list"])
        return None

    @property
    def meta(self) -> dict[str, Any]:
        return {
            "rule_id": self.id,
            "severity": self.severity,
            "citation": self.citation,
            "kahn_category": self.kahn_category,
            "description": self.description,
            "domain": self.domain,
            "owner": self.owner,
            "threshold": self.threshold,
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
    # The allow-list of columns whose values may be kept as evidence (see the module doc).
    evidence_columns: frozenset[str] = frozenset()

    @property
    def data_asset(self) -> str:
        return f"{self.schema}.{self.table}"

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(r.domain for r in self.rules)

    @property
    def engine(self) -> str:
        """What runs the file: GX_ENGINE (one GX suite) or FRESHNESS_ENGINE. One per
        file (load_rules refuses a mix)."""
        return self.rules[0].engine


def load_rules(
    path: Path | str, *, seeds_dir: Path | str | None = None, dbt_project_dir: Path | str | None = None
) -> RuleFile:
    """Read and check a rule file. Raises ``RuleFileError`` listing every problem.
    ``dbt_project_dir`` (default: the project's) is where freshness rules find their
    sources."""
    path = Path(path)
    seeds = Path(seeds_dir) if seeds_dir else config.DBT_PROJECT_DIR / "seeds"
    dbt_dir = Path(dbt_project_dir) if dbt_project_dir else config.DBT_PROJECT_DIR
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
        if key not in TOP_FIELDS + OPTIONAL_TOP_FIELDS:
            problems.append(f"unknown top-level field {key!r}")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append("defaults must be a mapping")
        defaults = {}
    for key in defaults:
        if key not in DEFAULTABLE:
            problems.append(f"defaults may only set {', '.join(DEFAULTABLE)}, not {key!r}")
    defaults = {k: v for k, v in defaults.items() if k in DEFAULTABLE}
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
    evidence_columns, evidence_problems = _check_evidence_columns(doc.get("evidence_columns"))
    problems += evidence_problems
    rules_doc = doc.get("rules")
    if "rules" in doc and not (isinstance(rules_doc, list) and rules_doc):
        problems.append("rules must be a non-empty list")
        rules_doc = []

    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(rules_doc or [], start=1):
        if isinstance(item, dict):
            item = {"threshold": 0, **defaults, **item}
        rule, rule_problems = _check_rule(item, i, seeds, dbt_dir)
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

    engines = sorted({r.engine for r in rules})
    if len(engines) > 1:
        problems.append(
            f"a file runs on one engine, this one mixes {' and '.join(engines)} (put the rules in separate files)"
        )
    for rule in rules:
        if rule.engine == FRESHNESS_ENGINE and schema and table:
            asset = rule.resolved.get("relation")
            if asset and asset != f"{schema}.{table}":
                problems.append(
                    f"rule {rule.id}: dbt source {rule.kwargs['source']}.{rule.kwargs['table']} "
                    f"is the table {asset}, not the file's data_asset {schema}.{table}"
                )

    if not problems:
        # The expectation's own validation (argument names and types) is the last
        # word on kwargs; run it now so a bad file fails at load, not mid-run.
        for rule in rules:
            if rule.engine != GX_ENGINE:
                continue  # checked against its engine's config in _check_rule
            try:
                build_expectation(rule, SAMPLE_DATE)
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
        evidence_columns=evidence_columns,
    )


def _check_evidence_columns(value: Any) -> tuple[frozenset[str], list[str]]:
    """The file's allow-list of evidence columns, and its problems (a PHI column on
    it is a configuration error, not something to drop quietly)."""
    if value is None:
        return frozenset(), []
    if not (isinstance(value, list) and all(isinstance(c, str) and _IDENT.match(c) for c in value)):
        return frozenset(), ["evidence_columns must be a list of plain column names"]
    names = frozenset(c.lower() for c in value)
    phi = sorted(names & PHI_COLUMNS)
    if phi:
        return names, [
            f"evidence_columns lists {', '.join(phi)}, on the PHI deny-list (rules.PHI_COLUMNS): "
            "PHI is never kept as evidence; select a pseudonym or a code instead"
        ]
    return names, []


def load_catalog(
    directory: Path | str | None = None,
    *,
    seeds_dir: Path | str | None = None,
    dbt_project_dir: Path | str | None = None,
) -> list[RuleFile]:
    """Every rule file (``*.yml``) of the expectations directory, sorted by name.
    Rule ids are the catalog's keys: unique across files, not only within one."""
    directory = Path(directory) if directory else config.EXPECTATIONS_DIR
    files = [
        load_rules(p, seeds_dir=seeds_dir, dbt_project_dir=dbt_project_dir) for p in sorted(directory.glob("*.yml"))
    ]
    seen: dict[str, str] = {}
    problems = []
    for rf in files:
        for r in rf.rules:
            if r.id in seen:
                problems.append(f"rule id {r.id!r} is in both {seen[r.id]} and {rf.path.name}")
            seen.setdefault(r.id, rf.path.name)
    if problems:
        raise RuleFileError(directory, problems)
    return files


def rule_files(
    domain: str,
    directory: Path | str | None = None,
    *,
    seeds_dir: Path | str | None = None,
    dbt_project_dir: Path | str | None = None,
) -> list[RuleFile]:
    """The rule files holding rules of ``domain``, in catalog order. A file runs as
    one suite, so keep each file to one domain."""
    return [
        rf
        for rf in load_catalog(directory, seeds_dir=seeds_dir, dbt_project_dir=dbt_project_dir)
        if domain in rf.domains
    ]


def _check_rule(item: Any, index: int, seeds: Path, dbt_dir: Path) -> tuple[Rule | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"rule #{index} must be a mapping"]
    label = f"rule {item['id']}" if isinstance(item.get("id"), str) and item["id"] else f"rule #{index}"
    problems = [f"{label}: missing field {k!r}" for k in RULE_FIELDS if k not in item]
    problems += [f"{label}: unknown field {k!r}" for k in item if k not in RULE_FIELDS + OPTIONAL_RULE_FIELDS]
    for k in ("id", "description", "citation", "expectation", "owner"):
        if k in item and not (isinstance(item[k], str) and item[k].strip()):
            problems.append(f"{label}: {k} must be a non-empty string")
    domain = item.get("domain")
    if "domain" in item and not (isinstance(domain, str) and _IDENT.match(domain)):
        problems.append(f"{label}: domain must be a plain lower-case name, got {domain!r}")
    threshold = item.get("threshold")
    if "threshold" in item and not (
        isinstance(threshold, (int, float))
        and not isinstance(threshold, bool)
        and math.isfinite(threshold)
        and 0 <= threshold < 1
    ):
        problems.append(f"{label}: threshold must be a share of rows in [0, 1), got {threshold!r}")
        threshold = None
    params = item.get("params") or {}
    if not isinstance(params, dict):
        problems.append(f"{label}: params must be a mapping")
        params = {}
    for k, v in params.items():
        if not (isinstance(k, str) and _IDENT.match(k)) or k in BUILTIN_PLACEHOLDERS:
            problems.append(
                f"{label}: params name {k!r} must be a plain name other than {', '.join(BUILTIN_PLACEHOLDERS)}"
            )
        else:
            try:
                sql_literal(v)
            except ValueError as e:
                problems.append(f"{label}: params {k}: {e}")
    sev = item.get("severity")
    if "severity" in item and sev not in SEVERITIES:
        problems.append(f"{label}: severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    cat = item.get("kahn_category")
    if "kahn_category" in item and cat not in KAHN_CATEGORIES:
        problems.append(f"{label}: kahn_category {cat!r} is not one of {', '.join(KAHN_CATEGORIES)}")
    name = item.get("expectation")
    if isinstance(name, str) and name.strip() in NON_GX_EXPECTATIONS:
        kwargs = item.get("kwargs")
        resolved: dict[str, Any] = {}
        if "kwargs" in item:
            resolved, engine_problems = _check_freshness_rule(kwargs, dbt_dir)
            problems += [f"{label}: {p}" for p in engine_problems]
        if item.get("params"):
            problems.append(f"{label}: params are only for SQL rules ({name.strip()} takes none)")
        if isinstance(threshold, (int, float)) and threshold != 0:
            problems.append(
                f"{label}: threshold must be 0 for {name.strip()} (it evaluates one row, "
                "the source table; the tolerance is dbt's warn_after / error_after)"
            )
        if problems:
            return None, problems
        return Rule(
            id=item["id"].strip(),
            description=" ".join(item["description"].split()),
            kahn_category=cat,
            severity=sev,
            citation=item["citation"].strip(),
            expectation=name.strip(),
            kwargs=dict(kwargs),
            domain=domain,
            owner=item["owner"].strip(),
            threshold=0.0,
            resolved=resolved,
        ), []
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
            if isinstance(name, str):
                problems += [f"{label}: {p}" for p in _check_templates(name.strip(), kwargs, params)]
    if isinstance(name, str) and isinstance(threshold, (int, float)) and threshold > 0:
        problem = _check_threshold_support(name.strip())
        if problem:
            problems.append(f"{label}: {problem}")
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
        domain=domain,
        owner=item["owner"].strip(),
        threshold=float(threshold),
        params=dict(params),
    ), []


def _check_freshness_rule(kwargs: Any, dbt_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """A DbtSourceFreshness rule's kwargs against the dbt project: (what dbt will
    use, problems)."""
    if not isinstance(kwargs, dict):
        return {}, ["kwargs must be a mapping"]
    problems = [f"kwargs may not set {k!r} (the rule's own fields do)" for k in kwargs if k in RESERVED_KWARGS]
    problems += [
        f"unknown kwarg {k!r} for DbtSourceFreshness (it takes {', '.join(FRESHNESS_KWARGS)})"
        for k in kwargs
        if k not in FRESHNESS_KWARGS and k not in RESERVED_KWARGS
    ]
    problems += [f"DbtSourceFreshness needs kwarg {k!r}" for k in FRESHNESS_KWARGS if k not in kwargs]
    if any(k.endswith("_query") for k in kwargs):
        problems.append("DbtSourceFreshness takes no SQL (*_query kwargs); dbt's sources yml says what it reads")
    level = kwargs.get("level")
    if "level" in kwargs and level not in FRESHNESS_LEVELS:
        problems.append(f"level must be one of {', '.join(FRESHNESS_LEVELS)}, got {level!r}")
    source, table = kwargs.get("source"), kwargs.get("table")
    for k, v in (("source", source), ("table", table)):
        if k in kwargs and not (isinstance(v, str) and _IDENT.match(v)):
            problems.append(f"{k} must be a plain dbt name, got {v!r}")
    if problems:
        return {}, problems
    try:
        tables = dbt_source_tables(dbt_dir)
    except ValueError as e:
        return {}, [str(e)]
    found = tables.get((source, table))
    if found is None:
        known = sorted(f"{s}.{t}" for s, t in tables)
        hint = difflib.get_close_matches(f"{source}.{table}", known, n=1)
        return {}, [
            f"dbt source {source}.{table} is not in the dbt project's sources yml "
            f"({dbt_dir / 'models'})" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        ]
    where = f"dbt source {source}.{table} ({found['file']})"
    if not found.get("loaded_at_field"):
        problems.append(f"{where} has no loaded_at_field: dbt cannot tell its freshness on PostgreSQL")
    key = FRESHNESS_LEVELS[level]
    if not _time_set(found.get("freshness") and found["freshness"].get(key)):
        problems.append(
            f"{where} has no freshness {key} for a level {level!r} rule: "
            "the threshold lives in dbt's sources yml; set it there"
        )
    return {**found, "level": level}, problems


def dbt_source_tables(dbt_dir: Path | str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``(source, table) -> {relation, loaded_at_field, freshness, file}`` from the sources
    yml files of a dbt project's model paths. Freshness is merged source -> source
    config -> table -> table config as dbt-core 1.11 does (parser/sources.py
    merge_source_freshness: a level's ``null`` switches it off, a threshold given
    further down overrides). dbt_project.yml ``sources:`` configs are not read; the
    runner checks dbt's own criteria at run time too."""
    dbt_dir = Path(dbt_dir) if dbt_dir else config.DBT_PROJECT_DIR
    return _dbt_source_tables(str(dbt_dir), _yml_signature(dbt_dir))


def _model_paths(dbt_dir: Path) -> list[Path]:
    project = dbt_dir / "dbt_project.yml"
    paths = ["models"]
    if project.is_file():
        try:
            doc = yaml.safe_load(project.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{project}: not valid YAML: {e}") from None
        paths = doc.get("model-paths") or paths
    return [dbt_dir / p for p in paths]


def _yml_signature(dbt_dir: Path) -> tuple:
    """Paths and mtimes of the yml files that can hold sources (a cache key)."""
    files = [dbt_dir / "dbt_project.yml"]
    for d in _model_paths(dbt_dir):
        if d.is_dir():
            files += sorted(p for p in d.rglob("*.y*ml") if p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns) for p in files if p.is_file())


@lru_cache(maxsize=8)
def _dbt_source_tables(dbt_dir: str, signature: tuple) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path_str, _ in signature:
        path = Path(path_str)
        if path.name == "dbt_project.yml" and path.parent == Path(dbt_dir):
            continue
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
            continue
        for src in doc["sources"]:
            if not isinstance(src, dict) or not isinstance(src.get("name"), str):
                continue
            src_config = src.get("config") if isinstance(src.get("config"), dict) else {}
            for tbl in src.get("tables") or []:
                if not isinstance(tbl, dict) or not isinstance(tbl.get("name"), str):
                    continue
                tbl_config = tbl.get("config") if isinstance(tbl.get("config"), dict) else {}
                loaded_at = _first_set(
                    (tbl_config, "loaded_at_field"),
                    (tbl, "loaded_at_field"),
                    (src_config, "loaded_at_field"),
                    (src, "loaded_at_field"),
                )
                freshness = _merge_freshness(
                    src.get("freshness", {}),
                    src_config.get("freshness", {}),
                    tbl.get("freshness", {}),
                    tbl_config.get("freshness", {}),
                )
                schema = src.get("schema") or src["name"]
                identifier = tbl.get("identifier") or tbl["name"]
                out[(src["name"], tbl["name"])] = {
                    "relation": f"{schema}.{identifier}",
                    "loaded_at_field": loaded_at,
                    "freshness": freshness,
                    "file": str(path.relative_to(Path(dbt_dir))) if path.is_relative_to(dbt_dir) else str(path),
                }
    return out


def _first_set(*places: tuple[dict, str]) -> Any:
    for mapping, key in places:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _merge_freshness(*levels: Any) -> dict | None:
    """dbt's merge_source_freshness over raw yml values: ``{}`` (not given) keeps the
    level above, ``None`` (explicit null) switches freshness off."""
    current = levels[0] if isinstance(levels[0], dict) or levels[0] is None else {}
    for update in levels[1:]:
        if update is not None and not isinstance(update, dict):
            update = {}
        if current is not None and update is not None:
            merged = {**current, **{k: v for k, v in update.items() if k not in ("warn_after", "error_after")}}
            for key in ("warn_after", "error_after"):
                base, upd = current.get(key, {}), update.get(key, {})
                if _time_set(base) and _time_set(upd):
                    merged[key] = {**base, **upd}
                elif upd is None:
                    merged[key] = None
                else:
                    merged[key] = upd if _time_set(upd) else base
            current = merged
        elif (
            current is None and update and (_time_set(update.get("warn_after")) or _time_set(update.get("error_after")))
        ):
            current = update
        else:
            current = None
    return current


def _time_set(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    count = value.get("count")
    return (
        isinstance(count, int)
        and not isinstance(count, bool)
        and count > 0
        and value.get("period") in FRESHNESS_PERIODS
    )


def _check_threshold_support(name: str) -> str | None:
    """A threshold above 0 needs a denominator: GX's ``mostly`` on row-wise (map)
    expectations, ``threshold`` on ``UnexpectedRowsShareExpectation``."""
    if name in CUSTOM_EXPECTATIONS or name not in _expectation_names():
        return None
    if "mostly" in getattr(_gx().expectations, name).__fields__:
        return None
    return (
        f"threshold above 0 needs a share of rows, which {name} does not have "
        "(use a row-wise expectation or UnexpectedRowsShareExpectation)"
    )


def _check_templates(name: str, kwargs: dict, params: dict) -> list[str]:
    """Placeholders of the SQL kwargs are known, and {batch} is written unaliased."""
    problems = []
    queries = {k: v for k, v in kwargs.items() if k.endswith("_query")}
    if queries and name not in SQL_EXPECTATIONS:
        return [f"only {', '.join(SQL_EXPECTATIONS)} take SQL (*_query) kwargs"]
    if params and not queries:
        problems.append("params are only for SQL rules (*_query kwargs)")
    known = set(BUILTIN_PLACEHOLDERS) | set(params)
    for key, query in queries.items():
        if query is None and key == "observation_query":
            continue
        if not (isinstance(query, str) and query.strip()):
            problems.append(f"{key} must be a non-empty string")
            continue
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in Formatter().parse(query) if f is not None]
        except ValueError as e:
            problems.append(f"{key}: unpaired or malformed brace ({e}); double a literal brace")
            continue
        for f, spec, conv in fields:
            if f not in known:
                problems.append(f"{key}: unknown placeholder {{{f}}} (known: {', '.join(sorted(known))})")
            elif spec or conv:
                problems.append(f"{key}: placeholder {{{f}}} may not carry a format or conversion")
        n_batch = sum(1 for f, _, _ in fields if f == "batch")
        if n_batch == 0:
            problems.append(f"{key}: must read the asset through {{batch}}")
        elif len(_BATCH_FOLLOWER.findall(query)) != n_batch:
            problems.append(
                f"{key}: write {{batch}} without an alias, inside a CTE "
                "(with m as (select ... from {batch} where ...)); GX aliases it"
            )
    if name == "UnexpectedRowsShareExpectation" and "evaluated_rows_query" not in kwargs:
        problems.append("UnexpectedRowsShareExpectation needs evaluated_rows_query (the rows examined)")
    return problems


def sql_literal(value: Any) -> str:
    """A template value as a SQL literal: DATE '...', a finite number, or a plain
    quoted string. Anything else is refused."""
    if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, int, float, str)) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date, a number or a plain string")
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return repr(value)
    if not _PLAIN_STRING.match(value):
        raise ValueError(f"{value!r} may hold only letters, digits, space and _ / + . -")
    return f"'{value}'"


def render_query(template: str, values: dict[str, Any]) -> str:
    """Fill every placeholder but ``{batch}`` with its value as a SQL literal; keep
    literal braces doubled and ``{batch}`` for GX. In a query GX will see as a
    join, give the batch subquery the alias GX leaves out (PostgreSQL < 16 needs one)."""
    parts: list[tuple[str, str]] = []  # (text, kind): literal text, a value, or the batch
    for literal, name, _, _ in Formatter().parse(template):
        parts.append((literal, "text"))
        if name == "batch":
            parts.append(("{batch}", "batch"))
        elif name is not None:
            parts.append((sql_literal(values[name]), "value"))
    alias = " AS batch_rows" if _query_has_join("".join(t for t, _ in parts)) else ""
    return "".join(t.replace("{", "{{").replace("}", "}}") if kind != "batch" else t + alias for t, kind in parts)


def _query_has_join(query: str) -> bool:
    try:  # GX's own test, so we alias exactly when GX does not
        from great_expectations.expectations.metrics.query_metric_provider import _query_has_join_clause
    except ImportError:  # pragma: no cover - a GX upgrade moved it
        return re.search(r"\bjoin\b", query, re.IGNORECASE) is not None
    return _query_has_join_clause(query)


def template_values(rule: Rule, logical_date: dt.date, facility_tz: str | None = None) -> dict[str, Any]:
    if isinstance(logical_date, dt.datetime) or not isinstance(logical_date, dt.date):
        raise ValueError(f"logical_date must be a date, got {logical_date!r}")
    tz = facility_tz or config.facility_tz()
    ZoneInfo(tz)  # an unknown zone fails here, not in SQL
    return {**rule.params, "logical_date": logical_date, "facility_tz": tz}


def _check_expectation_name(name: str) -> str | None:
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
        n
        for n in dir(gx.expectations)
        if isinstance(c := getattr(gx.expectations, n), type)
        and issubclass(c, base)
        and not inspect.isabstract(c)
        and c is not base
    ) | frozenset(CUSTOM_EXPECTATIONS)


def _expectation_class(name: str):
    _gx()  # GX imported with its noise off before our expectations import it
    if name in CUSTOM_EXPECTATIONS:
        from healthops.quality import sql_expectations

        return getattr(sql_expectations, name)
    return getattr(_gx().expectations, name)


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


def build_expectation(rule: Rule, logical_date: dt.date | None = None, evidence_columns: frozenset[str] | None = None):
    """The GX expectation for one rule, carrying the rule's metadata; SQL templates
    filled for ``logical_date`` (a rule whose SQL needs the date refuses to build
    without one). ``evidence_columns`` (the file's allow-list) goes into the meta,
    so a GX result can be redacted from itself (``healthops.quality.evidence``)."""
    if rule.engine != GX_ENGINE:
        raise ValueError(f"rule {rule.id}: {rule.expectation} runs on {rule.engine}, not on GX")
    cls = _expectation_class(rule.expectation)
    kwargs = dict(rule.kwargs)
    queries = {k: v for k, v in kwargs.items() if k.endswith("_query") and isinstance(v, str)}
    if queries:
        needs_date = any(f == "logical_date" for q in queries.values() for _, f, _, _ in Formatter().parse(q))
        if logical_date is None and needs_date:
            raise ValueError(f"rule {rule.id}: its SQL needs the logical date; pass logical_date")
        values = template_values(rule, logical_date or SAMPLE_DATE)
        kwargs.update({k: render_query(v, values) for k, v in queries.items()})
    if rule.threshold > 0:
        if rule.expectation in CUSTOM_EXPECTATIONS:
            kwargs["threshold"] = rule.threshold
        else:  # GX's mostly counts the share of (non-missing) rows that pass
            kwargs["mostly"] = 1.0 - rule.threshold
    elif rule.expectation in CUSTOM_EXPECTATIONS:
        kwargs["threshold"] = 0.0
    meta = rule.meta
    if evidence_columns is not None:
        meta["evidence_columns"] = sorted(evidence_columns)
    return cls(
        **kwargs,
        meta=meta,
        description=rule.description,
        severity=GX_SEVERITY[rule.severity],
    )


def build_suite(rule_file: RuleFile, logical_date: dt.date | None = None):
    """A ``gx.ExpectationSuite`` with one expectation per rule, in file order."""
    if rule_file.engine != GX_ENGINE:
        raise ValueError(f"{rule_file.path.name} runs on {rule_file.engine}: it has no GX suite")
    gx = _gx()
    return gx.ExpectationSuite(
        name=rule_file.suite_name,
        expectations=[build_expectation(r, logical_date, rule_file.evidence_columns) for r in rule_file.rules],
        meta={
            "data_asset": rule_file.data_asset,
            "description": rule_file.description,
            "rules_file": rule_file.path.name,
            "rules_sha256": rule_file.sha256,
        },
    )


def _gx():
    # Imported through the runner so GX's import-time log noise is silenced first.
    from healthops.quality.gx_context import import_gx

    return import_gx()


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."


def rule_descriptions() -> dict[str, str]:
    """Rule id -> the reviewed rule file's description (what a reader of a report or
    an alert needs; the audit rows carry ids, severities and counts)."""
    return {r.id: " ".join(r.description.split()) for rf in load_catalog() for r in rf.rules}
