"""Evidence without PHI, with real GX runs on a real PostgreSQL: a column rule on a
column off its file's ``evidence_columns`` (here the visit-number key) keeps its
counts but no unexpected values, in audit.rule_results, audit.validation_runs,
audit.rule_violations and the Data Docs site; an allowed column keeps its values; a
SQL rule keeps only allowed columns of its rows; the GX store and the site are
owner-only (0700 directories, 0600 files). The census rules' pseudonymized
evidence is proved in test_census_rules (test_planted_defects_...)."""

from __future__ import annotations

import datetime as dt
import json
import stat

import yaml

from healthops import config
from healthops.quality import data_docs, gx_runner
from healthops.warehouse.connection import connect

D = dt.date(2025, 3, 1)
VISIT = "V7712345"  # stands for a visit number (PV1-19): it must never be stored or rendered
# a length of stay off the allow-list: nine digits, which a timestamp's microseconds or
# a run id's hex do not hold by chance (4242 once turned up in a time's microseconds)
STAY = 731904268
DDL = """
create table marts.fct_encounters (
    facility_code text, encounter_key text, patient_key text, first_event_at timestamp,
    admit_at timestamp, discharge_at timestamp, length_of_stay_days integer, unit_path text,
    class_history text, encounter_status text)
"""
ROWS = [
    ("NGH", f"NGH|{VISIT}", "P1", None, dt.datetime(2025, 3, 1, 8), None, STAY, "ICU", "inpatient", "in_house"),
    ("SMC", "SMC|A0001", "P2", None, dt.datetime(2025, 3, 1, 9), None, 2, "ICU", "inpatient", "in_house"),
]


def _rule(rule_id, expectation, kwargs):
    return {
        "id": rule_id,
        "description": f"probe {rule_id}",
        "kahn_category": "conformance",
        "severity": "warning",
        "citation": "test",
        "expectation": expectation,
        "kwargs": kwargs,
    }


RULES = {
    "suite": "phi_probe",
    "data_asset": {"schema": "marts", "table": "fct_encounters"},
    "description": "Rules that fail on purpose, on PHI and non-PHI columns.",
    "evidence_columns": ["facility_code", "unit_path"],
    "defaults": {"domain": "probe", "owner": "data-engineering"},
    "rules": [
        # on the visit-number key (PHI, not allowed): counts only
        _rule("PHI-001", "ExpectColumnValuesToMatchRegex", {"column": "encounter_key", "regex": "^SMC"}),
        # a statistic of a column not allowed is a value too
        _rule("PHI-002", "ExpectColumnMaxToBeBetween", {"column": "length_of_stay_days", "max_value": 10}),
        # an allowed column keeps GX's sample
        _rule("PHI-003", "ExpectColumnValuesToBeInSet", {"column": "facility_code", "value_set": ["SMC"]}),
        # a SQL rule keeps only the allowed columns of its rows
        _rule(
            "PHI-004",
            "UnexpectedRowsExpectation",
            {
                "unexpected_rows_query": (
                    "with e as (select facility_code, encounter_key, admit_at, length_of_stay_days from {batch}"
                    " where length_of_stay_days > 10) select * from e"
                )
            },
        ),
    ],
}


def _tree(root):
    return [root, *sorted(root.rglob("*"))]


def test_values_of_columns_off_the_allow_list_are_never_stored_or_rendered(warehouse_url, tmp_path):
    with connect(warehouse_url) as conn:
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany("insert into marts.fct_encounters values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", ROWS)
    path = tmp_path / "phi_probe.yml"
    path.write_text(yaml.safe_dump(RULES, sort_keys=False))

    summary = gx_runner.validate_and_record(warehouse_url, path, D, "manual__phi")
    built = data_docs.build([summary])
    assert built["runs"] == 1

    by_rule = {o.rule_id: o for o in summary.results}
    assert not any(o.success for o in by_rule.values())
    assert by_rule["PHI-001"].rows_violating == 1  # the count is kept ...
    assert "partial_unexpected_list" not in by_rule["PHI-001"].detail  # ... the value is not
    assert "observed_value" not in by_rule["PHI-002"].detail
    assert by_rule["PHI-003"].detail["partial_unexpected_list"] == ["NGH"]

    with connect(warehouse_url, autocommit=True) as conn:
        results = {
            r[0]: r[1:]
            for r in conn.execute(
                "select rule_id, rows_violating, detail, evidence, violations_kept from audit.rule_results"
            )
        }
        violations = {
            (r[0], r[1]): r[2] for r in conn.execute("select rule_id, violation_no, keys from audit.rule_violations")
        }
        stored = json.dumps(
            [
                conn.execute("select gx_result from audit.validation_runs").fetchone()[0],
                [list(v) for v in results.values()],
                list(violations.values()),
            ],
            default=str,
        )
    assert results["PHI-001"][0] == 1 and results["PHI-001"][2:] == (None, None)  # no evidence rows
    assert results["PHI-003"][2:] == ("gx_sample", 1)
    assert violations == {("PHI-003", 1): {"facility_code": "NGH"}, ("PHI-004", 1): {"facility_code": "NGH"}}
    for value in (VISIT, str(STAY), "2025-03-01T08:00:00"):
        assert value not in stored, value

    site, store = data_docs.site_dir(), data_docs.store_dir()
    html = [p for p in site.rglob("*.html") if "validations" in p.parts]
    assert html and any("PHI-001" in p.read_text() or "encounter_key" in p.read_text() for p in html)
    for root in (site, store):
        for p in _tree(root):
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
            if p.is_file() and "static" not in p.relative_to(root).parts:  # GX's own css, js, images
                text = p.read_text(errors="replace")
                assert VISIT not in text and str(STAY) not in text, p
    assert config.home() in store.parents and config.out() in site.parents
