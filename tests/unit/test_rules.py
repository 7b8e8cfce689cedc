"""The rule-file loader: the shipped census rules load as reviewed, and every kind of
bad file is refused with a message that names the rule and the problem."""
from __future__ import annotations

import copy
import csv

import pytest
import yaml

from healthops import config
from healthops.quality.rules import RuleFileError, build_suite, load_rules

CENSUS_RULES = config.EXPECTATIONS_DIR / "census_daily.yml"

VALID = {
    "suite": "demo",
    "data_asset": {"schema": "marts", "table": "fct_demo"},
    "description": "A small valid rule file.",
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
        }
        assert exp.description == rule.description
        assert exp.severity.value == {"blocking": "critical", "warning": "warning"}[rule.severity]
    assert suite.meta["rules_sha256"] == rf.sha256


def test_valid_minimal_file(tmp_path, seeds):
    rf = load_rules(write(tmp_path, VALID), seeds_dir=seeds)
    assert [r.id for r in rf.rules] == ["D-001", "D-002"]
    assert rf.rule("D-002").kwargs == {"column": "unit_code", "value_set": ["ICU", "MS5"]}


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


@pytest.mark.parametrize("missing", ["id", "description", "kahn_category", "severity",
                                     "citation", "expectation", "kwargs"])
def test_missing_rule_field(tmp_path, seeds, missing):
    doc = mutated(lambda d: d["rules"][1].pop(missing))
    ps = problems(tmp_path, seeds, doc)
    assert any(f"missing field {missing!r}" in p for p in ps), ps


def test_missing_top_level_field(tmp_path, seeds):
    doc = mutated(lambda d: d.pop("data_asset"))
    assert problems(tmp_path, seeds, doc) == ["missing top-level field 'data_asset'"]


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


@pytest.mark.parametrize("ref, expected", [
    ("units", "must look like '<seed>.<column>'"),
    ("nope.unit_code", "seed file"),
    ("units.unit_name", "has no column 'unit_name'"),
])
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


@pytest.mark.parametrize("text, expected", [
    ("rules: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "top level must be a mapping"),
])
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
