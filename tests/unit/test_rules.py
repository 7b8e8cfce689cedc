"""The rule-file loader: the shipped census rules load as reviewed, the catalog
fields (domain, threshold, owner) are there for every rule, SQL templates are filled
with safe literals only, and every kind of bad file is refused with a message that
names the rule and the problem."""

from __future__ import annotations

import copy
import csv
import datetime as dt

import pytest
import yaml

from healthops import config
from healthops.quality.rules import (
    PHI_COLUMNS,
    RuleFileError,
    build_expectation,
    build_suite,
    load_catalog,
    load_rules,
    render_query,
    rule_files,
    sql_literal,
)

CENSUS_RULES = config.EXPECTATIONS_DIR / "census_daily.yml"

VALID = {
    "suite": "demo",
    "data_asset": {"schema": "marts", "table": "fct_demo"},
    "description": "A small valid rule file.",
    "defaults": {"domain": "demo", "owner": "data-engineering"},
    "rules": [
        {
            "id": "D-001",
            "description": "Key not null.",
            "kahn_category": "completeness",
            "severity": "blocking",
            "citation": "test",
            "expectation": "ExpectColumnValuesToNotBeNull",
            "kwargs": {"column": "k"},
        },
        {
            "id": "D-002",
            "description": "Unit known.",
            "kahn_category": "conformance",
            "severity": "warning",
            "citation": "test seed",
            "expectation": "ExpectColumnValuesToBeInSet",
            "kwargs": {"column": "unit_code", "value_set_from_seed": "units.unit_code"},
        },
    ],
}


@pytest.fixture()
def seeds(tmp_path):
    d = tmp_path / "seeds"
    d.mkdir()
    (d / "units.csv").write_text("facility_code,unit_code\nA,ICU\nA,MS5\nB,ICU\nB, \n")
    return d


def write(tmp_path, doc, name="rules.yml"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return p


def problems(tmp_path, seeds, doc) -> list[str]:
    with pytest.raises(RuleFileError) as exc:
        load_rules(write(tmp_path, doc), seeds_dir=seeds)
    return exc.value.problems


def mutated(fn):
    doc = copy.deepcopy(VALID)
    fn(doc)
    return doc


# --- the shipped rule file -----------------------------------------------------


def test_census_rules_load_as_reviewed():
    rf = load_rules(CENSUS_RULES)
    assert rf.suite_name == "census_daily"
    assert rf.data_asset == "marts.fct_census_daily"
    ids = [r.id for r in rf.rules]
    assert ids == [f"CEN-{i:03d}" for i in range(1, 14)]
    by_id = {r.id: r for r in rf.rules}
    # only over-capacity is a warning
    assert {r.id for r in rf.rules if r.severity != "blocking"} == {"CEN-012"}
    pair = by_id["CEN-012"].kwargs
    assert (pair["column_A"], pair["column_B"], pair["or_equal"]) == ("staffed_beds", "midnight_census", True)
    assert by_id["CEN-006"].citation.startswith("SSA POMS HI 00601.070")
    # the unit value set is the seed's, resolved at load time
    with open(config.DBT_PROJECT_DIR / "seeds" / "units.csv", newline="") as f:
        seed_units = sorted({row["unit_code"] for row in csv.DictReader(f)})
    assert by_id["CEN-011"].kwargs["value_set"] == seed_units
    assert "value_set_from_seed" not in by_id["CEN-011"].kwargs
    assert by_id["CEN-004"].column_name == "facility_code,unit_code,census_date"
    assert by_id["CEN-013"].column_name is None


def test_suite_expectations_carry_the_rule_metadata():
    rf = load_rules(CENSUS_RULES)
    suite = build_suite(rf)
    assert suite.name == "census_daily"
    assert len(suite.expectations) == len(rf.rules)
    for rule, exp in zip(rf.rules, suite.expectations):
        assert exp.meta == {
            "rule_id": rule.id,
            "severity": rule.severity,
            "citation": rule.citation,
            "kahn_category": rule.kahn_category,
            "description": rule.description,
            "domain": "census",
            "owner": "data-engineering",
            "threshold": 0.0,
            "evidence_columns": sorted(rf.evidence_columns),  # the file's allow-list
        }
        assert exp.description == rule.description
        assert exp.severity.value == {"blocking": "critical", "warning": "warning"}[rule.severity]
    assert suite.meta["rules_sha256"] == rf.sha256


def test_valid_minimal_file(tmp_path, seeds):
    rf = load_rules(write(tmp_path, VALID), seeds_dir=seeds)
    assert [r.id for r in rf.rules] == ["D-001", "D-002"]
    assert rf.rule("D-002").kwargs == {"column": "unit_code", "value_set": ["ICU", "MS5"]}
    # catalog fields from the file's defaults; threshold 0 when nobody sets it
    assert {(r.domain, r.owner, r.threshold) for r in rf.rules} == {("demo", "data-engineering", 0.0)}


# --- refused files ---------------------------------------------------------------


def test_unknown_expectation_name(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0].update(expectation="ExpectColumnValuesToNotBeNul"))
    (p,) = problems(tmp_path, seeds, doc)
    assert "rule D-001" in p and "unknown GX expectation 'ExpectColumnValuesToNotBeNul'" in p
    assert "did you mean 'ExpectColumnValuesToNotBeNull'" in p


def test_non_expectation_names_are_refused(tmp_path, seeds):
    # a real attribute of gx.expectations that is not an expectation class
    doc = mutated(lambda d: d["rules"][0].update(expectation="Expectation"))
    (p,) = problems(tmp_path, seeds, doc)
    assert "unknown GX expectation 'Expectation'" in p


@pytest.mark.parametrize(
    "missing", ["id", "description", "kahn_category", "severity", "citation", "expectation", "kwargs"]
)
def test_missing_rule_field(tmp_path, seeds, missing):
    doc = mutated(lambda d: d["rules"][1].pop(missing))
    ps = problems(tmp_path, seeds, doc)
    assert any(f"missing field {missing!r}" in p for p in ps), ps


def test_missing_top_level_field(tmp_path, seeds):
    doc = mutated(lambda d: d.pop("data_asset"))
    assert problems(tmp_path, seeds, doc) == ["missing top-level field 'data_asset'"]


def test_evidence_columns_are_the_files_allow_list(tmp_path, seeds):
    rf = load_rules(write(tmp_path, mutated(lambda d: d.update(evidence_columns=["unit_code", "K"]))), seeds_dir=seeds)
    assert rf.evidence_columns == {"unit_code", "k"}
    assert build_suite(rf).expectations[0].meta["evidence_columns"] == ["k", "unit_code"]
    assert load_rules(write(tmp_path, VALID), seeds_dir=seeds).evidence_columns == frozenset()  # none: counts only


def test_a_phi_column_on_the_evidence_allow_list_is_refused(tmp_path, seeds):
    doc = mutated(lambda d: d.update(evidence_columns=["unit_code", "MRN", "encounter_key"]))
    (problem,) = problems(tmp_path, seeds, doc)
    assert problem.startswith("evidence_columns lists encounter_key, mrn, on the PHI deny-list")
    assert "PHI is never kept as evidence" in problem
    assert {"mrn", "encounter_key", "visit_number", "room", "bed"} <= PHI_COLUMNS


@pytest.mark.parametrize("value", ["unit_code", [1], ["unit code"]])
def test_evidence_columns_must_be_a_list_of_names(tmp_path, seeds, value):
    doc = mutated(lambda d: d.update(evidence_columns=value))
    assert problems(tmp_path, seeds, doc) == ["evidence_columns must be a list of plain column names"]


def test_bad_severity(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0].update(severity="critical"))
    (p,) = problems(tmp_path, seeds, doc)
    assert p == "rule D-001: severity 'critical' is not one of blocking, warning, info"


def test_bad_kahn_category(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0].update(kahn_category="accuracy"))
    (p,) = problems(tmp_path, seeds, doc)
    assert "kahn_category 'accuracy'" in p


def test_duplicate_ids(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][1].update(id="D-001"))
    (p,) = problems(tmp_path, seeds, doc)
    assert p == "duplicate rule id 'D-001' (rules #1 and #2)"


def test_misspelled_field_is_not_ignored(tmp_path, seeds):
    def typo(d):
        d["rules"][0]["severty"] = d["rules"][0].pop("severity")

    ps = problems(tmp_path, seeds, mutated(typo))
    assert "rule D-001: missing field 'severity'" in ps
    assert "rule D-001: unknown field 'severty'" in ps


def test_kwargs_may_not_override_review_fields(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0]["kwargs"].update(meta={"rule_id": "X"}, severity="info"))
    ps = problems(tmp_path, seeds, doc)
    assert "rule D-001: kwargs may not set 'meta' (the rule's own fields do)" in ps
    assert "rule D-001: kwargs may not set 'severity' (the rule's own fields do)" in ps


def test_bad_kwargs_fail_at_load(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0].update(kwargs={"colum": "k"}))
    (p,) = problems(tmp_path, seeds, doc)
    assert p.startswith("rule D-001: invalid kwargs for ExpectColumnValuesToNotBeNull")


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("units", "must look like '<seed>.<column>'"),
        ("nope.unit_code", "seed file"),
        ("units.unit_name", "has no column 'unit_name'"),
    ],
)
def test_bad_seed_reference(tmp_path, seeds, ref, expected):
    doc = mutated(lambda d: d["rules"][1]["kwargs"].update(value_set_from_seed=ref))
    (p,) = problems(tmp_path, seeds, doc)
    assert p.startswith("rule D-002: ") and expected in p


def test_seed_reference_and_value_set_together(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][1]["kwargs"].update(value_set=["ICU"]))
    (p,) = problems(tmp_path, seeds, doc)
    assert "either value_set or value_set_from_seed" in p


def test_every_problem_is_reported_at_once(tmp_path, seeds):
    def many(d):
        d["rules"][0]["severity"] = "fatal"
        d["rules"][1]["expectation"] = "ExpectMagic"
        d["rules"].append(copy.deepcopy(d["rules"][0]) | {"severity": "info"})

    ps = problems(tmp_path, seeds, mutated(many))
    assert len(ps) == 3, ps
    assert "duplicate rule id 'D-001' (rules #1 and #3)" in ps


def test_bad_data_asset(tmp_path, seeds):
    doc = mutated(lambda d: d.update(data_asset={"schema": "marts", "table": "x; drop table y"}))
    (p,) = problems(tmp_path, seeds, doc)
    assert "data_asset.table must be a plain SQL identifier" in p


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rules: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_not_a_rule_file(tmp_path, seeds, text, expected):
    ps = problems(tmp_path, seeds, text)
    assert expected in ps[0]


def test_empty_rules(tmp_path, seeds):
    ps = problems(tmp_path, seeds, mutated(lambda d: d.update(rules=[])))
    assert ps == ["rules must be a non-empty list"]


def test_error_names_the_file(tmp_path, seeds):
    p = write(tmp_path, mutated(lambda d: d["rules"][0].update(severity="x")), "bad.yml")
    with pytest.raises(RuleFileError, match=r"bad\.yml: rule D-001: severity"):
        load_rules(p, seeds_dir=seeds)


# --- the catalog -------------------------------------------------------------------


def test_every_shipped_rule_is_a_complete_catalog_entry():
    rfs = load_catalog()
    rules = [r for rf in rfs for r in rf.rules]
    assert len({r.id for r in rules}) == len(rules) == 24 + 9
    for r in rules:
        assert r.id and r.description and r.citation and r.owner
        assert r.domain == ("workforce" if r.id.startswith("WFC-") else "census")
        assert r.severity in ("blocking", "warning", "info")
        assert r.kahn_category in ("conformance", "completeness", "plausibility")
        assert 0 <= r.threshold < 1
    sev = {r.id: r.severity for r in rules}
    assert {k for k, v in sev.items() if v == "warning"} == {
        "CEN-012",
        "CEN-015",
        "CEN-017",
        "CEN-019",
        "CEN-024",
        "CEN-022",
    } | {f"WFC-{i:03d}" for i in range(1, 10)}  # workforce findings are for the auditors: none holds reports back
    assert [rf.suite_name for rf in rule_files("census")] == [
        "census_adt_feed",
        "census_daily",
        "census_encounters",
        "census_load_batches",
        "census_location_timeline",
        "census_source_freshness",
    ]
    assert [rf.suite_name for rf in rule_files("workforce")] == [
        "workforce_direct_care_days",
        "workforce_fatigue_windows",
        "workforce_unit_staffing_interval",
        "workforce_worked_segments",
        "workforce_worker_compliance",
    ]
    assert rule_files("staffing") == []


def test_rule_ids_are_unique_across_files(tmp_path, seeds):
    write(tmp_path, VALID, "a.yml")
    write(tmp_path, mutated(lambda d: d.update(suite="other")), "b.yml")
    with pytest.raises(RuleFileError) as exc:
        load_catalog(tmp_path, seeds_dir=seeds)
    assert "rule id 'D-001' is in both a.yml and b.yml" in exc.value.problems


def test_rule_fields_override_defaults(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][1].update(owner="him", threshold=0.1))
    rf = load_rules(write(tmp_path, doc), seeds_dir=seeds)
    assert (rf.rule("D-001").owner, rf.rule("D-001").threshold) == ("data-engineering", 0.0)
    assert (rf.rule("D-002").owner, rf.rule("D-002").threshold) == ("him", 0.1)
    # a row-wise rule's threshold is GX's mostly
    assert build_expectation(rf.rule("D-002")).mostly == pytest.approx(0.9)
    assert build_expectation(rf.rule("D-001")).mostly == 1


@pytest.mark.parametrize("missing", ["domain", "owner"])
def test_catalog_field_needed_from_rule_or_defaults(tmp_path, seeds, missing):
    doc = mutated(lambda d: d["defaults"].pop(missing))
    assert problems(tmp_path, seeds, doc) == [
        f"rule D-001: missing field {missing!r}",
        f"rule D-002: missing field {missing!r}",
    ]


@pytest.mark.parametrize("value", [1, 1.5, -0.1, "5%", True])
def test_bad_threshold(tmp_path, seeds, value):
    doc = mutated(lambda d: d["rules"][0].update(threshold=value))
    (p,) = problems(tmp_path, seeds, doc)
    assert p.startswith("rule D-001: threshold must be a share of rows in [0, 1)")


def test_defaults_only_set_catalog_fields(tmp_path, seeds):
    doc = mutated(lambda d: d["defaults"].update(severity="info"))
    assert problems(tmp_path, seeds, doc) == ["defaults may only set domain, owner, threshold, not 'severity'"]


def test_threshold_needs_a_share(tmp_path, seeds):
    doc = mutated(
        lambda d: d["rules"].append(
            {
                "id": "D-003",
                "description": "Not empty.",
                "kahn_category": "completeness",
                "severity": "blocking",
                "citation": "test",
                "expectation": "ExpectTableRowCountToBeBetween",
                "kwargs": {"min_value": 1},
                "threshold": 0.1,
            }
        )
    )
    (p,) = problems(tmp_path, seeds, doc)
    assert p.startswith("rule D-003: threshold above 0 needs a share of rows")


# --- SQL rules --------------------------------------------------------------------


def sql_rule(**kwargs):
    rule = {
        "id": "S-001",
        "description": "No negative a.",
        "kahn_category": "plausibility",
        "severity": "blocking",
        "citation": "test",
        "expectation": "UnexpectedRowsShareExpectation",
        "kwargs": {
            "unexpected_rows_query": "select * from {batch} where a < 0",
            "evaluated_rows_query": "select * from {batch}",
        },
    }
    rule.update(kwargs)
    return mutated(lambda d: d.update(rules=[rule]))


def test_sql_rule_is_filled_in_for_the_logical_date(tmp_path, seeds):
    doc = sql_rule(
        params={"limit": 4, "code": "adt"},
        kwargs={
            "unexpected_rows_query": "with m as (select * from {batch} where d = {logical_date} and s = {code}) "
            "select * from m where n > {limit} and t = {facility_tz} and j = '{{}}'",
            "evaluated_rows_query": "select * from {batch}",
        },
    )
    rule = load_rules(write(tmp_path, doc), seeds_dir=seeds).rule("S-001")
    exp = build_expectation(rule, dt.date(2025, 3, 1))
    assert exp.unexpected_rows_query == (
        "with m as (select * from {batch} where d = DATE '2025-03-01' and s = 'adt') "
        "select * from m where n > 4 and t = 'America/Los_Angeles' and j = '{{}}'"
    )
    assert exp.threshold == 0.0 and exp.meta["rule_id"] == "S-001"
    with pytest.raises(ValueError, match="needs the logical date"):
        build_expectation(rule)


def test_join_queries_get_a_batch_alias():
    # GX leaves the batch subquery unaliased in a query with a JOIN (PostgreSQL < 16 needs one)
    assert render_query("with m as (select * from {batch}) select * from m join u using (k)", {}) == (
        "with m as (select * from {batch} AS batch_rows) select * from m join u using (k)"
    )
    assert render_query("with m as (select * from {batch}) select * from m -- no join here", {}) == (
        "with m as (select * from {batch}) select * from m -- no join here"
    )


@pytest.mark.parametrize(
    "value, literal",
    [
        (dt.date(2025, 3, 1), "DATE '2025-03-01'"),
        (4, "4"),
        (0.05, "0.05"),
        ("America/Los_Angeles", "'America/Los_Angeles'"),
    ],
)
def test_sql_literals(value, literal):
    assert sql_literal(value) == literal


@pytest.mark.parametrize(
    "value", ["x'; drop table t; --", "a:b", "{batch}", True, None, [1], float("nan"), dt.datetime(2025, 3, 1)]
)
def test_unsafe_values_are_refused(value):
    with pytest.raises(ValueError):
        sql_literal(value)


@pytest.mark.parametrize(
    "kwargs, params, expected",
    [
        ({"unexpected_rows_query": "select * from {batch} where d = {day}"}, None, "unknown placeholder {day}"),
        ({"unexpected_rows_query": "select * from {batch} b where b.a < 0"}, None, "write {batch} without an alias"),
        ({"unexpected_rows_query": "select * from marts.t where a < 0"}, None, "must read the asset through {batch}"),
        (
            {"unexpected_rows_query": "select * from {batch} where a = {logical_date!r}"},
            None,
            "may not carry a format or conversion",
        ),
        ({"unexpected_rows_query": "select * from {batch} where a in '{1'"}, None, "malformed brace"),
        ({"unexpected_rows_query": "select * from {batch} where s = {code}"}, {"code": "x'y"}, "params code: "),
        (
            {"unexpected_rows_query": "select * from {batch} where s = {logical_date}"},
            {"logical_date": 1},
            "params name 'logical_date' must be a plain name other than",
        ),
    ],
)
def test_bad_sql_rules(tmp_path, seeds, kwargs, params, expected):
    extra = {"params": params} if params else {}
    doc = sql_rule(kwargs={**kwargs, "evaluated_rows_query": "select * from {batch}"}, **extra)
    ps = problems(tmp_path, seeds, doc)
    assert any(expected in p for p in ps), ps


def test_share_rule_needs_a_denominator(tmp_path, seeds):
    doc = sql_rule(kwargs={"unexpected_rows_query": "select * from {batch} where a < 0"})
    (p,) = problems(tmp_path, seeds, doc)
    assert "needs evaluated_rows_query" in p


def test_gx_sql_rule_without_share(tmp_path, seeds):
    # GX's own UnexpectedRowsExpectation is accepted (no denominator, so no threshold)
    doc = sql_rule(
        expectation="UnexpectedRowsExpectation", kwargs={"unexpected_rows_query": "select * from {batch} where a < 0"}
    )
    rf = load_rules(write(tmp_path, doc), seeds_dir=seeds)
    assert rf.rule("S-001").is_sql
    bad = mutated(lambda d: d.update(rules=[dict(doc["rules"][0], threshold=0.1)]))
    (p,) = problems(tmp_path, seeds, bad)
    assert "threshold above 0 needs a share of rows" in p


def test_sql_kwargs_only_on_sql_rules(tmp_path, seeds):
    doc = mutated(lambda d: d["rules"][0]["kwargs"].update(unexpected_rows_query="select 1 from {batch}"))
    ps = problems(tmp_path, seeds, doc)
    assert any("take SQL (*_query) kwargs" in p for p in ps), ps
