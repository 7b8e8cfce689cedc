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

RULES = config.EXPECTATIONS_DIR / "census_daily.yml"
D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
ALL_RULES = [f"CEN-{i:03d}" for i in range(1, 14)]
# Rules this module proves can fail, each with an exact count of violating rows
# (test_each_rule_fails_with_its_exact_count); tests/unit/test_rule_coverage.py
# checks that the modules' PROVES_RULES together cover the whole catalog.
PROVES_RULES = {
    "CEN-001",
    "CEN-002",
    "CEN-003",
    "CEN-004",
    "CEN-005",
    "CEN-006",
    "CEN-007",
    "CEN-008",
    "CEN-009",
    "CEN-010",
    "CEN-011",
    "CEN-012",
    "CEN-013",
}

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

COLUMNS = (
    "facility_code",
    "unit_code",
    "census_date",
    "midnight_census",
    "admissions",
    "discharges",
    "transfers_in",
    "transfers_out",
    "patient_days",
    "staffed_beds",
)
SEED_UNITS = ("ICU", "SDU", "TELE", "MS5", "PEDS", "PSY")  # NGH's inpatient units in the units seed


def row(i: int, **changes) -> tuple:
    """A row that passes every rule, on a key (unit, date after D2) that no CLEAN row
    and no other ``row(j)`` has: a change to one column then violates that column's
    rule and nothing else, not uniqueness (CEN-004) nor the unit list (CEN-011)."""
    r = dict(
        facility_code="NGH",
        unit_code=SEED_UNITS[i % len(SEED_UNITS)],
        census_date=D2 + dt.timedelta(days=1 + i),
        midnight_census=5,
        admissions=1,
        discharges=1,
        transfers_in=0,
        transfers_out=0,
        patient_days=5,
        staffed_beds=10,
    )
    r.update(changes)
    return tuple(r[c] for c in COLUMNS)


# One case per rule: (rule, the table's rows: CLEAN plus rows planted to violate
# that rule, rows violating, {rule: rows GX skips as missing}). Counts differ from rule
# to rule, so a result booked under the wrong rule cannot pass. Nulls: row-wise GX
# expectations (to-be-between, in-set, column pairs with
# ignore_row_if=either_value_is_missing) skip null values instead of failing them;
# only the not-null rules count them. The skipped counts say so.
PROOFS = [
    ("CEN-001", CLEAN + [row(i, facility_code=None) for i in range(2)], 2, {}),
    # a null unit is not an unknown unit: CEN-011 skips it
    ("CEN-002", CLEAN + [row(i, unit_code=None) for i in range(3)], 3, {"CEN-011": 3}),
    ("CEN-003", CLEAN + [row(0, census_date=None)], 1, {}),
    # a second copy of a CLEAN row (a pair) and a key three times over: every row of
    # a duplicated key violates, the CLEAN original included, so 4 rows planted, 5 counted
    ("CEN-004", CLEAN + [CLEAN[0], row(0), row(0), row(0)], 5, {}),
    # plus a null census: not negative, so not counted (nor by CEN-006/CEN-012, which skip it)
    (
        "CEN-005",
        CLEAN + [row(i, midnight_census=-1 - i, patient_days=0) for i in range(4)] + [row(4, midnight_census=None)],
        4,
        {"CEN-005": 1, "CEN-006": 1, "CEN-012": 1},
    ),
    # plus a null patient_days: ignore_row_if=either_value_is_missing skips the pair
    ("CEN-006", CLEAN + [row(i, patient_days=4) for i in range(6)] + [row(6, patient_days=None)], 6, {"CEN-006": 1}),
    ("CEN-007", CLEAN + [row(i, admissions=-1) for i in range(7)], 7, {}),
    ("CEN-008", CLEAN + [row(i, discharges=-2) for i in range(8)], 8, {}),
    ("CEN-009", CLEAN + [row(i, transfers_in=-1) for i in range(9)], 9, {}),
    ("CEN-010", CLEAN + [row(i, transfers_out=-3) for i in range(10)], 10, {}),
    # unknown units have no reference data, so no staffed beds: CEN-012 skips them
    ("CEN-011", CLEAN + [row(i, unit_code=f"X{i:02d}", staffed_beds=None) for i in range(11)], 11, {"CEN-012": 11}),
    ("CEN-012", CLEAN + [row(i, midnight_census=13, patient_days=13, staffed_beds=12) for i in range(12)], 12, {}),
    # table-level: no rows to count; the rule's count is the observed row count
    ("CEN-013", [], 0, {}),
]
# On an empty table GX reports no count (None) as the violating rows of its
# single-column rules, but 0 for the multi-column ones.
MULTI_COLUMN = {"CEN-004", "CEN-006", "CEN-012"}


def make_mart(url, rows):
    with connect(url) as conn:
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
    (run_id, suite, asset, logical_date, dag_run_id, code_version, success, n_eval, n_ok, run_at, gx_result) = runs[0]
    assert run_id == s.validation_run_id
    assert (suite, asset, logical_date, dag_run_id) == (
        "census_daily",
        "marts.fct_census_daily",
        D2,
        "scheduled__2025-03-02",
    )
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
    for rid, rule_id, exp_type, column, _severity, ok, evaluated, violating, share, detail in rules:
        assert rid == run_id and ok is True
        if rule_id == "CEN-013":  # table-level: observed row count, no per-row counts
            assert (exp_type, column, evaluated, violating, share) == (
                "expect_table_row_count_to_be_between",
                None,
                None,
                None,
                None,
            )
            assert detail == {"observed_value": len(CLEAN)}
        else:
            assert (evaluated, violating, float(share)) == (len(CLEAN), 0, 0.0)
    by_rule = {r[1]: r for r in rules}
    assert by_rule["CEN-012"][2:5] == (
        "expect_column_pair_values_a_to_be_greater_than_b",
        "staffed_beds,midnight_census",
        "warning",
    )


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
    assert (
        detail["CEN-004"]["partial_unexpected_list"]
        == [{"facility_code": "NGH", "unit_code": "ICU", "census_date": "2025-03-01"}] * 2
    )
    # the over-capacity rule skips the unknown unit (no staffed beds) instead of failing it
    assert detail["CEN-012"]["missing_count"] == 1
    for d in by_rule.values():
        assert len(d[9].get("partial_unexpected_list", [])) <= gx_runner.PARTIAL_VALUES


def rule_result_rows(url, run_id):
    with connect(url) as conn:
        rows = conn.execute(
            """select rule_id, severity, success, status, rows_evaluated, rows_violating,
                      violating_share, violations_kept, detail
               from audit.rule_results where validation_run_id = %s""",
            (run_id,),
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_every_rule_has_a_proof():
    assert [p[0] for p in PROOFS] == ALL_RULES
    assert PROVES_RULES == set(ALL_RULES) == {r.id for r in load_rules(RULES).rules}


@pytest.mark.parametrize("rule_id, rows, violating, skipped", PROOFS, ids=[p[0] for p in PROOFS])
def test_each_rule_fails_with_its_exact_count(warehouse_url, rule_id, rows, violating, skipped):
    make_mart(warehouse_url, rows)
    s = gx_runner.validate_and_record(warehouse_url, RULES, D2, f"manual__{rule_id}")

    severity = load_rules(RULES).rule(rule_id).severity
    assert not s.success and s.publishable == (severity != "blocking")
    assert s.blocking_failures == ([rule_id] if severity == "blocking" else [])
    assert s.warnings == ([rule_id] if severity == "warning" else [])
    assert (s.evaluated_expectations, s.successful_expectations) == (13, 12)
    by = {o.rule_id: o for o in s.results}
    o = by[rule_id]
    table_level = o.expectation_type == "expect_table_row_count_to_be_between"
    if table_level:
        assert (o.success, o.severity, o.rows_violating, o.rows_evaluated, o.violating_share) == (
            False,
            severity,
            None,
            None,
            None,
        )
        assert o.detail == {"observed_value": violating}
    else:
        assert (o.success, o.severity, o.rows_violating, o.rows_evaluated) == (False, severity, violating, len(rows))
        assert o.violating_share == pytest.approx(violating / len(rows))
    for other in ALL_RULES:  # the planted rows trip their own rule only
        if other == rule_id:
            continue
        if other == "CEN-013":
            assert by[other].success and by[other].detail == {"observed_value": len(rows)}
        else:
            no_count = not rows and other not in MULTI_COLUMN
            assert (by[other].success, by[other].rows_violating, by[other].rows_evaluated) == (
                True,
                None if no_count else 0,
                len(rows),
            ), other
    missing = {r: by[r].detail.get("missing_count", 0) for r in ALL_RULES if r != "CEN-013"}
    assert {r: n for r, n in missing.items() if n} == skipped

    # the audit trail keeps the same verdict and count, and the evidence behind it
    kept = rule_result_rows(warehouse_url, s.validation_run_id)
    assert set(kept) == set(ALL_RULES)
    sev, ok, status, evaluated, n_bad, share, n_kept, detail = kept[rule_id]
    if table_level:  # nothing to point at but the row count
        assert (sev, ok, status, evaluated, n_bad, share, n_kept) == (severity, False, "failed", None, None, None, None)
        assert detail == {"observed_value": violating}
    else:
        assert (sev, ok, status, evaluated, n_bad, n_kept) == (
            severity,
            False,
            "failed",
            len(rows),
            violating,
            min(violating, gx_runner.PARTIAL_VALUES),
        )
        assert float(share) == pytest.approx(violating / len(rows))
        assert detail["unexpected_count"] == violating
    for other, (_, ok, status, _, n_bad, _, n_kept, _) in kept.items():
        if other != rule_id:
            assert (ok, status, n_bad, n_kept) == (True, "passed", by[other].rows_violating, None), other


def test_partial_lists_stay_short(warehouse_url):
    many_unknown = [("NGH", f"U{i:02d}", D1, 1, 1, 0, 0, 0, 1, None) for i in range(30)]
    make_mart(warehouse_url, CLEAN + many_unknown)
    s = gx_runner.validate_and_record(warehouse_url, RULES, D1)
    (o,) = [o for o in s.results if o.rule_id == "CEN-011"]
    assert o.rows_violating == 30
    assert len(o.detail["partial_unexpected_list"]) == gx_runner.PARTIAL_VALUES
    (res,) = [r for r in s.gx_result["results"] if r["expectation_config"]["meta"]["rule_id"] == "CEN-011"]
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
