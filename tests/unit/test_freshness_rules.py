"""Catalog rules run by dbt source freshness (``expectation: DbtSourceFreshness``):
the shipped rules load with dbt's thresholds behind them, and every way a rule file
could drift from the dbt project (unknown source, a level dbt has no threshold for,
a threshold of its own, SQL, a mix of engines, another table) is refused at load."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from healthops import config
from healthops.quality import freshness
from healthops.quality.rules import (
    FRESHNESS_ENGINE,
    GX_ENGINE,
    RuleFileError,
    build_expectation,
    build_suite,
    dbt_source_tables,
    load_catalog,
    load_rules,
    rule_files,
)

SHIPPED = config.EXPECTATIONS_DIR / "census_source_freshness.yml"

RULE = {
    "id": "F-001",
    "description": "Feed fresh.",
    "kahn_category": "completeness",
    "severity": "warning",
    "citation": "test",
    "expectation": "DbtSourceFreshness",
    "kwargs": {"source": "feed", "table": "messages", "level": "warn"},
}
VALID = {
    "suite": "feed_freshness",
    "data_asset": {"schema": "raw", "table": "messages"},
    "description": "Freshness of the feed.",
    "defaults": {"domain": "demo", "owner": "data-engineering"},
    "rules": [
        RULE,
        {
            **RULE,
            "id": "F-002",
            "severity": "blocking",
            "kwargs": {"source": "feed", "table": "messages", "level": "error"},
        },
    ],
}
SOURCES = {
    "version": 2,
    "sources": [
        {
            "name": "feed",
            "schema": "raw",
            "freshness": {"warn_after": {"count": 6, "period": "hour"}},
            "loaded_at_field": "message_ts",
            "tables": [
                {"name": "messages", "freshness": {"error_after": {"count": 24, "period": "hour"}}},
                {"name": "quiet", "freshness": None},  # freshness switched off for this table
                {
                    "name": "renamed",
                    "identifier": "messages_v2",
                    "config": {"freshness": {"warn_after": {"count": 2, "period": "hour"}}},
                },
            ],
        }
    ],
}


@pytest.fixture()
def dbt_dir(tmp_path):
    d = tmp_path / "dbt"
    (d / "models" / "staging").mkdir(parents=True)
    (d / "dbt_project.yml").write_text("name: demo\nmodel-paths: [models]\n")
    (d / "models" / "staging" / "_sources.yml").write_text(yaml.safe_dump(SOURCES, sort_keys=False))
    return d


def write(tmp_path, doc, name="rules.yml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def problems(tmp_path, dbt_dir, doc) -> list[str]:
    with pytest.raises(RuleFileError) as exc:
        load_rules(write(tmp_path, doc), dbt_project_dir=dbt_dir)
    return exc.value.problems


def mutated(fn):
    doc = copy.deepcopy(VALID)
    fn(doc)
    return doc


# --- the shipped rules ---------------------------------------------------------------


def test_shipped_freshness_rules_read_their_thresholds_from_dbt():
    rf = load_rules(SHIPPED)
    assert (rf.suite_name, rf.data_asset, rf.engine) == (
        "census_source_freshness",
        "raw.adt_messages",
        FRESHNESS_ENGINE,
    )
    by = {r.id: r for r in rf.rules}
    assert {i: (r.severity, r.kwargs["level"]) for i, r in by.items()} == {
        "CEN-022": ("warning", "warn"),
        "CEN-023": ("blocking", "error"),
    }
    for r in rf.rules:
        assert r.kwargs == {"source": "adt", "table": "adt_messages", "level": r.kwargs["level"]}
        assert (r.threshold, r.params, r.domain, r.kahn_category) == (0.0, {}, "census", "completeness")
        assert r.column_name == "message_ts"  # dbt's loaded_at_field: MSH-7, not loaded_at
        assert r.resolved["freshness"]["warn_after"] == {"count": 6, "period": "hour"}
        assert r.resolved["freshness"]["error_after"] == {"count": 24, "period": "hour"}
    # dbt's own source definition is the one the rules name
    assert dbt_source_tables()[("adt", "adt_messages")]["relation"] == "raw.adt_messages"


def test_freshness_file_is_in_the_census_catalog_and_never_a_gx_suite():
    rfs = rule_files("census")
    engines = {rf.suite_name: rf.engine for rf in rfs}
    assert engines.pop("census_source_freshness") == FRESHNESS_ENGINE
    assert set(engines.values()) == {GX_ENGINE}
    ids = [r.id for rf in load_catalog() for r in rf.rules]
    assert len(ids) == len(set(ids)) and {"CEN-021", "CEN-022", "CEN-023"} <= set(ids)
    rf = load_rules(SHIPPED)
    with pytest.raises(ValueError, match="no GX suite"):
        build_suite(rf)
    with pytest.raises(ValueError, match="not on GX"):
        build_expectation(rf.rules[0])


def test_valid_file_against_its_dbt_project(tmp_path, dbt_dir):
    rf = load_rules(write(tmp_path, VALID), dbt_project_dir=dbt_dir)
    assert rf.engine == FRESHNESS_ENGINE
    # source-level warn_after and table-level error_after are merged, as dbt does
    assert rf.rule("F-001").resolved["freshness"] == {
        "warn_after": {"count": 6, "period": "hour"},
        "error_after": {"count": 24, "period": "hour"},
    }
    assert rf.rule("F-001").column_name == "message_ts"  # inherited from the source


# --- drift between the catalog and dbt is refused ------------------------------------


def test_unknown_source_or_table(tmp_path, dbt_dir):
    doc = mutated(lambda d: d["rules"][0]["kwargs"].update(table="mesages"))
    (p,) = problems(tmp_path, dbt_dir, doc)
    assert p.startswith("rule F-001: dbt source feed.mesages is not in the dbt project's sources yml")
    assert "did you mean 'feed.messages'?" in p
    doc = mutated(lambda d: d["rules"][1]["kwargs"].update(source="nosuch"))
    assert problems(tmp_path, dbt_dir, doc)[0].startswith("rule F-002: dbt source nosuch.messages is not")


def test_level_without_a_threshold_in_dbt(tmp_path, dbt_dir):
    sources = copy.deepcopy(SOURCES)
    del sources["sources"][0]["tables"][0]["freshness"]  # only the source's warn_after is left
    (dbt_dir / "models" / "staging" / "_sources.yml").write_text(yaml.safe_dump(sources))
    assert problems(tmp_path, dbt_dir, VALID) == [
        "rule F-002: dbt source feed.messages (models/staging/_sources.yml) has no freshness error_after "
        "for a level 'error' rule: the threshold lives in dbt's sources yml; set it there"
    ]


def test_table_with_freshness_switched_off(tmp_path, dbt_dir):
    def to_quiet(d):
        d["data_asset"]["table"] = "quiet"
        for r in d["rules"]:
            r["kwargs"]["table"] = "quiet"

    found = problems(tmp_path, dbt_dir, mutated(to_quiet))
    assert [p.split(":")[0] for p in found] == ["rule F-001", "rule F-002"]
    assert all("has no freshness" in p for p in found)


def test_config_block_and_identifier_are_read(tmp_path, dbt_dir):
    def to_renamed(d):
        d["data_asset"]["table"] = "messages_v2"
        d["rules"] = [d["rules"][0]]
        d["rules"][0]["kwargs"]["table"] = "renamed"

    rf = load_rules(write(tmp_path, mutated(to_renamed)), dbt_project_dir=dbt_dir)
    assert rf.rules[0].resolved["freshness"]["warn_after"] == {"count": 2, "period": "hour"}
    assert rf.rules[0].resolved["relation"] == "raw.messages_v2"


def test_no_loaded_at_field(tmp_path, dbt_dir):
    sources = copy.deepcopy(SOURCES)
    del sources["sources"][0]["loaded_at_field"]
    (dbt_dir / "models" / "staging" / "_sources.yml").write_text(yaml.safe_dump(sources))
    found = problems(tmp_path, dbt_dir, VALID)
    assert len(found) == 2 and all("has no loaded_at_field" in p for p in found)


@pytest.mark.parametrize("value", [0.01, 0.5])
def test_threshold_above_zero(tmp_path, dbt_dir, value):
    doc = mutated(lambda d: d["rules"][0].update(threshold=value))
    assert problems(tmp_path, dbt_dir, doc) == [
        "rule F-001: threshold must be 0 for DbtSourceFreshness (it evaluates one row, the source "
        "table; the tolerance is dbt's warn_after / error_after)"
    ]
    # ... from the file's defaults too
    doc = mutated(lambda d: d["defaults"].update(threshold=value))
    assert len(problems(tmp_path, dbt_dir, doc)) == 2


def test_mixing_engines_in_one_file(tmp_path, dbt_dir):
    gx_rule = {
        **RULE,
        "id": "F-003",
        "expectation": "ExpectColumnValuesToNotBeNull",
        "kwargs": {"column": "message_ts"},
    }
    doc = mutated(lambda d: d["rules"].append(gx_rule))
    assert problems(tmp_path, dbt_dir, doc) == [
        "a file runs on one engine, this one mixes dbt_source_freshness and great_expectations "
        "(put the rules in separate files)"
    ]


def test_data_asset_must_be_the_source_table(tmp_path, dbt_dir):
    doc = mutated(lambda d: d["data_asset"].update(table="other"))
    assert problems(tmp_path, dbt_dir, doc) == [
        f"rule {i}: dbt source feed.messages is the table raw.messages, not the file's data_asset raw.other"
        for i in ("F-001", "F-002")
    ]


@pytest.mark.parametrize(
    "kwargs, params, expected",
    [
        (
            {"source": "feed", "table": "messages", "level": "stale"},
            None,
            "level must be one of warn, error, got 'stale'",
        ),
        ({"source": "feed", "table": "messages"}, None, "DbtSourceFreshness needs kwarg 'level'"),
        (
            {"source": "feed", "table": "messages", "level": "warn", "column": "x"},
            None,
            "unknown kwarg 'column' for DbtSourceFreshness (it takes source, table, level)",
        ),
        (
            {"source": "feed", "table": "messages", "level": "warn", "mostly": 0.5},
            None,
            "kwargs may not set 'mostly' (the rule's own fields do)",
        ),
        (
            {"source": "feed", "table": "messages", "level": "warn", "unexpected_rows_query": "select 1"},
            None,
            "DbtSourceFreshness takes no SQL (*_query kwargs); dbt's sources yml says what it reads",
        ),
        (
            {"source": "feed", "table": "messages", "level": "warn"},
            {"hours": 6},
            "params are only for SQL rules (DbtSourceFreshness takes none)",
        ),
        (
            {"source": "feed; drop", "table": "messages", "level": "warn"},
            None,
            "source must be a plain dbt name, got 'feed; drop'",
        ),
    ],
)
def test_bad_freshness_rules(tmp_path, dbt_dir, kwargs, params, expected):
    def change(d):
        d["rules"][0]["kwargs"] = kwargs
        if params:
            d["rules"][0]["params"] = params

    assert f"rule F-001: {expected}" in problems(tmp_path, dbt_dir, mutated(change))


def test_catalog_checks_freshness_rules_against_the_dbt_project(tmp_path, dbt_dir):
    write(tmp_path, VALID, "a.yml")
    assert [rf.engine for rf in load_catalog(tmp_path, dbt_project_dir=dbt_dir)] == [FRESHNESS_ENGINE]
    with pytest.raises(RuleFileError, match="is not in the dbt project's sources yml"):
        load_catalog(tmp_path)  # the real project has no source 'feed'


# --- the as-of instant -----------------------------------------------------------------


@pytest.mark.parametrize(
    "day, utc",
    [
        (dt.date(2025, 3, 1), "2025-03-02T08:00:00+00:00"),  # PST
        (dt.date(2025, 3, 9), "2025-03-10T07:00:00+00:00"),  # the 23-hour day: ends in PDT
        (dt.date(2025, 11, 2), "2025-11-03T08:00:00+00:00"),  # the 25-hour day: ends in PST
    ],
)
def test_as_of_is_local_midnight_ending_the_day(day, utc):
    assert freshness.as_of(day, "America/Los_Angeles").isoformat() == utc


def test_as_of_needs_a_date():
    with pytest.raises(ValueError):
        freshness.as_of(dt.datetime(2025, 3, 1, 12), "UTC")
