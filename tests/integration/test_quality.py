"""The census rules run by real GX against a real PostgreSQL: a clean mart passes
every rule; planted defects fail exactly the rules they should, with exact counts
and the right severity; every run is kept in the audit schema, reruns append."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

import healthops
from healthops import config
from healthops.quality import gx_runner
from healthops.quality.rules import load_rules
from healthops.warehouse.connection import connect, url_parts
from healthops.warehouse.schema import ensure_schema

RULES = config.EXPECTATIONS_DIR / "census_daily.yml"
D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
ALL_RULES = [f"CEN-{i:03d}" for i in range(1, 14)]

DDL = """
create table marts.fct_census_daily (
    facility_code   text,
    unit_code       text,
    census_date     date,
    midnight_census integer,
    admissions      integer,
    discharges      integer,
    transfers_in    integer,
    transfers_out   integer,
    patient_days    integer,
    staffed_beds    integer
)
"""

# facility, unit, date, census, adm, dis, xfer_in, xfer_out, patient_days, staffed_beds
CLEAN = [
    ("NGH", "ICU", D1, 10, 2, 1, 1, 0, 10, 12),
    ("NGH", "ICU", D2, 12, 3, 1, 0, 0, 13, 12),  # full, plus one same-day admit+discharge
    ("NGH", "SDU", D1, 14, 1, 2, 0, 1, 14, 16),
    ("NGH", "SDU", D2, 0, 0, 0, 0, 0, 0, 16),
    ("NGH", "TELE", D1, 20, 4, 3, 2, 2, 21, 24),
    ("NGH", "MS5", D1, 30, 6, 5, 1, 3, 30, 32),
]
NEGATIVE = [  # 2 negative midnight census rows (a movement booked twice, say)
    ("NGH", "PSY", D1, -1, 0, 1, 0, 0, 0, 14),
    ("NGH", "PSY", D2, -2, 0, 1, 0, 0, 0, 14),
]
DUPLICATE = [CLEAN[0]]  # 1 duplicated key: both rows of the pair violate
UNKNOWN_UNIT = [("NGH", "XRAY", D1, 3, 3, 0, 0, 0, 3, None)]  # not in the units seed
OVER_CAPACITY = [("NGH", "PEDS", D1, 15, 2, 0, 0, 0, 15, 12)]  # 15 patients, 12 staffed beds
DIRTY = CLEAN + NEGATIVE + DUPLICATE + UNKNOWN_UNIT + OVER_CAPACITY

EXPECTED_VIOLATIONS = {"CEN-004": 2, "CEN-005": 2, "CEN-011": 1, "CEN-012": 1}


def make_mart(url, rows):
    with connect(url) as conn:
        ensure_schema(conn)
        conn.execute("drop table if exists marts.fct_census_daily")
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into marts.fct_census_daily values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def audit_rows(url):
    with connect(url) as conn:
        runs = conn.execute(
            """select validation_run_id, suite_name, data_asset, logical_date, dag_run_id,
                      code_version, success, evaluated_expectations, successful_expectations,
                      run_at, gx_result
               from audit.validation_runs order by run_at"""
        ).fetchall()
        rules = conn.execute(
            """select validation_run_id, rule_id, expectation_type, column_name, severity, success,
                      rows_evaluated, rows_violating, violating_share, detail
               from audit.rule_results order by validation_run_id, rule_id"""
        ).fetchall()
    return runs, rules


def test_clean_mart_passes_every_rule(warehouse_url):
    make_mart(warehouse_url, CLEAN)
    s = gx_runner.validate_and_record(warehouse_url, RULES, D2, "scheduled__2025-03-02")

    assert s.success and s.publishable
    assert s.blocking_failures == [] and s.warnings == []
    assert [o.rule_id for o in s.results] == ALL_RULES  # file order
    assert all(o.success for o in s.results)
    assert (s.evaluated_expectations, s.successful_expectations) == (13, 13)

    runs, rules = audit_rows(warehouse_url)
    assert len(runs) == 1
    (run_id, suite, asset, logical_date, dag_run_id, code_version, success, n_eval, n_ok,
     run_at, gx_result) = runs[0]
    assert run_id == s.validation_run_id
    assert (suite, asset, logical_date, dag_run_id) == (
        "census_daily", "marts.fct_census_daily", D2, "scheduled__2025-03-02")
    assert code_version.startswith(healthops.__version__)
    assert (success, n_eval, n_ok) == (True, 13, 13)
    assert run_at.tzinfo is not None
    # the GX result as GX wrote it, tied to the reviewed file it ran from
    assert gx_result["success"] is True
    assert len(gx_result["results"]) == 13
    assert gx_result["meta"]["healthops"]["rules_sha256"] == load_rules(RULES).sha256
    assert {r["expectation_config"]["meta"]["rule_id"] for r in gx_result["results"]} == set(ALL_RULES)
    assert url_parts(warehouse_url)["password"] not in json.dumps(gx_result)

    assert [r[1] for r in rules] == ALL_RULES
    for (rid, rule_id, exp_type, column, severity, ok, evaluated, violating, share, detail) in rules:
        assert rid == run_id and ok is True
        if rule_id == "CEN-013":  # table-level: observed row count, no per-row counts
            assert (exp_type, column, evaluated, violating, share) == (
                "expect_table_row_count_to_be_between", None, None, None, None)
            assert detail == {"observed_value": len(CLEAN)}
        else:
            assert (evaluated, violating, float(share)) == (len(CLEAN), 0, 0.0)
    by_rule = {r[1]: r for r in rules}
    assert by_rule["CEN-012"][2:5] == (
        "expect_column_pair_values_a_to_be_greater_than_b", "staffed_beds,midnight_census", "warning")


def test_planted_defects_fail_exactly_their_rules(warehouse_url):
    make_mart(warehouse_url, DIRTY)
    s = gx_runner.validate_and_record(warehouse_url, RULES, D2, "manual__defects")

    assert not s.success and not s.publishable
    assert s.blocking_failures == ["CEN-004", "CEN-005", "CEN-011"]
    assert s.warnings == ["CEN-012"]
    assert (s.evaluated_expectations, s.successful_expectations) == (13, 9)
    got = {o.rule_id: o.rows_violating for o in s.results if not o.success}
    assert got == EXPECTED_VIOLATIONS
    for o in s.results:
        if o.success and o.rule_id != "CEN-013":
            assert o.rows_violating == 0, o

    runs, rules = audit_rows(warehouse_url)
    assert [(r[6], r[7], r[8]) for r in runs] == [(False, 13, 9)]
    by_rule = {r[1]: r for r in rules}
    n = len(DIRTY)
    for rule_id, count in EXPECTED_VIOLATIONS.items():
        _, _, _, _, severity, ok, evaluated, violating, share, _ = by_rule[rule_id]
        assert (ok, evaluated, violating) == (False, n, count)
        assert float(share) == pytest.approx(count / n)
        assert severity == ("warning" if rule_id == "CEN-012" else "blocking")
    assert all(by_rule[r][5] for r in ALL_RULES if r not in EXPECTED_VIOLATIONS)

    # the evidence behind each finding: the offending keys/values, a few at most
    detail = {r: by_rule[r][9] for r in EXPECTED_VIOLATIONS}
    assert sorted(detail["CEN-005"]["partial_unexpected_list"]) == [-2, -1]
    assert detail["CEN-011"]["partial_unexpected_list"] == ["XRAY"]
    assert detail["CEN-012"]["partial_unexpected_list"] == [[12, 15]]
    assert detail["CEN-004"]["partial_unexpected_list"] == [
        {"facility_code": "NGH", "unit_code": "ICU", "census_date": "2025-03-01"}] * 2
    # the over-capacity rule skips the unknown unit (no staffed beds) instead of failing it
    assert detail["CEN-012"]["missing_count"] == 1
    for d in by_rule.values():
        assert len(d[9].get("partial_unexpected_list", [])) <= gx_runner.PARTIAL_VALUES


def test_partial_lists_stay_short(warehouse_url):
    many_unknown = [("NGH", f"U{i:02d}", D1, 1, 1, 0, 0, 0, 1, None) for i in range(30)]
    make_mart(warehouse_url, CLEAN + many_unknown)
    s = gx_runner.validate_and_record(warehouse_url, RULES, D1)
    (o,) = [o for o in s.results if o.rule_id == "CEN-011"]
    assert o.rows_violating == 30
    assert len(o.detail["partial_unexpected_list"]) == gx_runner.PARTIAL_VALUES
    (res,) = [r for r in s.gx_result["results"]
              if r["expectation_config"]["meta"]["rule_id"] == "CEN-011"]
    assert len(res["result"]["partial_unexpected_list"]) == gx_runner.PARTIAL_VALUES


def test_empty_mart_blocks(warehouse_url):
    make_mart(warehouse_url, [])
    s = gx_runner.validate(warehouse_url, RULES, D1)
    assert s.blocking_failures == ["CEN-013"]
    (o,) = [o for o in s.results if o.rule_id == "CEN-013"]
    assert o.detail == {"observed_value": 0}


def test_reruns_append_history(warehouse_url):
    make_mart(warehouse_url, CLEAN)
    first = gx_runner.validate_and_record(warehouse_url, RULES, D2, "scheduled__2025-03-02")
    make_mart(warehouse_url, DIRTY)  # e.g. a late ADT message rebuilt the mart badly
    second = gx_runner.validate_and_record(warehouse_url, RULES, D2, "manual__rerun")

    assert first.validation_run_id != second.validation_run_id
    runs, rules = audit_rows(warehouse_url)
    assert [(r[0], r[3], r[4], r[6]) for r in runs] == [
        (first.validation_run_id, D2, "scheduled__2025-03-02", True),
        (second.validation_run_id, D2, "manual__rerun", False),
    ]
    per_run = {}
    for r in rules:
        per_run.setdefault(r[0], {})[r[1]] = r[5]
    assert all(per_run[first.validation_run_id].values())  # the first verdict is kept as it was
    assert [k for k, ok in per_run[second.validation_run_id].items() if not ok] == sorted(EXPECTED_VIOLATIONS)


def test_gx_is_quiet_and_private(warehouse_url):
    make_mart(warehouse_url, CLEAN)
    gx_runner.validate(warehouse_url, RULES, D1)
    ctx = gx_runner.get_context()
    assert ctx.variables.progress_bars.globally is False
    assert ctx.variables.progress_bars.metric_calculations is False
    assert ctx.variables.analytics_enabled is False
    assert logging.getLogger("great_expectations._docs_decorators").level == logging.WARNING
    # one context per process, set up once per warehouse and table
    assert gx_runner.get_context() is ctx
