"""The source rules of the census catalog on a real PostgreSQL, real GX and real dbt:
load reconciliation (CEN-021: each batch's counters against the rows it left in
raw.adt_messages and raw.rejected) and dbt source freshness (CEN-022 warn, CEN-023
error, thresholds from dbt's sources yml, as of the end of the logical day).

Each rule passes on clean data and fails on a planted defect with the exact number
of violating rows; results land in the audit trail with those counts, and the hash
chain still verifies. Freshness fixtures always hold messages stamped after the
logical day: counting them would make every case fresh, so each failing case also
proves the as-of bound."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from healthops import config, pipeline
from healthops.load.adt import load_adt_date
from healthops.quality import audit_trail, freshness, gx_runner, rules
from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import run_dbt

from hl7_builders import build_message

# Parsed by the catalog coverage test: the rules this module proves can fail.
PROVES_RULES = {"CEN-021", "CEN-022", "CEN-023"}

TZ = "America/Los_Angeles"
D = dt.date(2025, 3, 1)
AS_OF = "2025-03-02T08:00:00+00:00"  # local midnight ending D (PST)
BATCHES = config.EXPECTATIONS_DIR / "census_load_batches.yml"
FRESHNESS = config.EXPECTATIONS_DIR / "census_source_freshness.yml"
HEALTHOPS = str(Path(sys.executable).with_name("healthops"))


@pytest.fixture(autouse=True)
def facility_tz(monkeypatch):
    monkeypatch.setenv("HEALTHOPS_FACILITY_TZ", TZ)


def local(d: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hh, mm), tzinfo=ZoneInfo(TZ))


# -- CEN-021: load reconciliation ---------------------------------------------------------
def hl7(cid, hhmm, day=D, **kw):
    kw.setdefault("visit", f"V{cid}")
    return build_message("A08", control_id=cid, msg_ts=f"{day:%Y%m%d}{hhmm}", **kw)


def write(landing: Path, day: dt.date, name: str, messages: list[str]) -> None:
    folder = landing / "adt" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(messages))


# (file, records in, loaded, rejected, duplicate) of the receipt date D, as the loader counts
# them; 1 rejected of 41 keeps the day's rejection rate (CEN-016, 5 %) passing
D_FILES = {"a.hl7": (21, 20, 1, 0), "b.hl7": (19, 18, 0, 1), "c.hl7": (1, 1, 0, 0)}


@pytest.fixture()
def landing(tmp_path):
    landing = tmp_path / "landing"
    prev = D - dt.timedelta(days=1)
    write(landing, prev, "a.hl7", [hl7("P1", "0900", prev), hl7("P2", "1000", prev)])
    write(
        landing, D, "a.hl7", [hl7(f"C{i:02d}", f"{i:02d}00") for i in range(1, 21)] + [hl7("C99", "2030", visit="")]
    )  # no PV1-19: raw.rejected
    write(
        landing, D, "b.hl7", [hl7(f"C{i:02d}", f"{i - 20:02d}30") for i in range(21, 39)] + [hl7("C01", "0100")]
    )  # C01 resent as it was: a duplicate, raw.duplicates
    write(landing, D, "c.hl7", [hl7("C39", "2300")])
    return landing


def load(url, landing):
    for day in (D - dt.timedelta(days=1), D):
        load_adt_date(url, landing, day)
    with connect(url) as conn:
        return {
            Path(p).name if d == D else f"prev/{Path(p).name}": b
            for p, d, b in conn.execute("select file_path, received_date, batch_id from audit.load_batches")
        }


def test_a_clean_load_reconciles_every_batch(warehouse_url, landing):
    batches = load(warehouse_url, landing)
    with connect(warehouse_url) as conn:
        counts = {
            Path(p).name: tuple(n)
            for p, *n in conn.execute(
                "select file_path, records_in, records_loaded, records_rejected, records_duplicate "
                "from audit.load_batches where received_date = %s",
                (D,),
            )
        }
    assert counts == D_FILES and len(batches) == 4
    s = gx_runner.validate(warehouse_url, BATCHES, D)
    o = {o.rule_id: o for o in s.results}["CEN-021"]
    assert (s.success, o.success, o.rows_evaluated, o.rows_violating) == (True, True, 3, 0)
    prev = {o.rule_id: o for o in gx_runner.validate(warehouse_url, BATCHES, D - dt.timedelta(days=1)).results}
    assert (prev["CEN-021"].rows_evaluated, prev["CEN-021"].rows_violating) == (1, 0)


TAMPER = {
    # two of a.hl7's four loaded messages vanish from raw.adt_messages
    "messages deleted": (
        "a.hl7",
        "delete from raw.adt_messages where batch_id = %(b)s and control_id in ('C02', 'C03')",
    ),
    # a.hl7's rejected message vanishes from the quarantine
    "rejection deleted": ("a.hl7", "delete from raw.rejected where batch_id = %(b)s"),
    # b.hl7's resent copy vanishes from raw.duplicates
    "duplicate deleted": ("b.hl7", "delete from raw.duplicates where batch_id = %(b)s"),
    # a message appears under c.hl7's batch that its load never counted
    "message added": (
        "c.hl7",
        """insert into raw.adt_messages (batch_id, received_date, file_path, message_index,
                                      control_id, sending_facility, message_type, trigger_event, message_ts,
                                      event_ts, visit_number, raw_text)
                                  select batch_id, received_date, file_path, 99, 'X1', sending_facility,
                                         message_type, trigger_event, message_ts, event_ts, visit_number, raw_text
                                  from raw.adt_messages where batch_id = %(b)s""",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPER))
def test_a_batch_that_no_longer_reconciles_fails_cen021(warehouse_url, landing, kind):
    batches = load(warehouse_url, landing)
    name, sql = TAMPER[kind]
    with connect(warehouse_url) as conn:  # the test's URL is a superuser's
        conn.execute(sql, {"b": batches[name]})
        # the day before is tampered with too: not this night's receipt, not counted
        conn.execute("delete from raw.adt_messages where batch_id = %s and control_id = 'P1'", (batches["prev/a.hl7"],))
    s = gx_runner.validate_and_record(warehouse_url, BATCHES, D, "scheduled__2025-03-01")
    o = {o.rule_id: o for o in s.results}["CEN-021"]
    assert (o.success, o.severity, o.rows_violating, o.rows_evaluated) == (False, "blocking", 1, 3)
    assert o.violating_share == pytest.approx(1 / 3)
    assert s.blocking_failures == ["CEN-021"]  # CEN-016 (the day's rejection rate) still passes
    n_in, n_ok, n_bad, n_dup = D_FILES[name]
    kept = {
        "messages deleted": (n_ok - 2, n_bad, n_dup),
        "rejection deleted": (n_ok, n_bad - 1, n_dup),
        "duplicate deleted": (n_ok, n_bad, n_dup - 1),
        "message added": (n_ok + 1, n_bad, n_dup),
    }[kind]
    (row,) = o.detail["unexpected_rows"]
    assert row == {
        "batch_id": str(batches[name]),
        "file_path": f"adt/{D}/{name}",
        "file_sha256": row["file_sha256"],
        "records_in": n_in,
        "records_loaded": n_ok,
        "messages_kept": kept[0],
        "records_rejected": n_bad,
        "rejections_kept": kept[1],
        "records_duplicate": n_dup,
        "duplicates_kept": kept[2],
    }
    assert len(row["file_sha256"]) == 64

    with connect(warehouse_url) as conn:
        rr = conn.execute(
            """select status, rows_evaluated, rows_violating, evidence, violations_kept, kahn_category, severity
               from audit.rule_results where rule_id = 'CEN-021'"""
        ).fetchone()
        keys = [
            k
            for (k,) in conn.execute(
                "select keys from audit.rule_violations where rule_id = 'CEN-021' order by violation_no"
            )
        ]
    assert rr == ("failed", 3, 1, "rows_query", 1, "completeness", "blocking")
    assert keys == [row]


def test_two_batches_out_of_three(warehouse_url, landing):
    batches = load(warehouse_url, landing)
    with connect(warehouse_url) as conn:
        for kind in ("messages deleted", "duplicate deleted"):
            name, sql = TAMPER[kind]
            conn.execute(sql, {"b": batches[name]})
    o = {o.rule_id: o for o in gx_runner.validate(warehouse_url, BATCHES, D).results}["CEN-021"]
    assert (o.rows_violating, o.rows_evaluated) == (2, 3)
    assert [r["file_path"] for r in o.detail["unexpected_rows"]] == [f"adt/{D}/a.hl7", f"adt/{D}/b.hl7"]


# -- CEN-022 / CEN-023: dbt source freshness ---------------------------------------------
AFTER_THE_DAY = [local(D + dt.timedelta(days=1), 0, 30), local(D + dt.timedelta(days=2), 9)]


def insert_messages(url, stamps, table="raw.adt_messages"):
    with connect(url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                f"""insert into {table} (batch_id, received_date, file_path, message_index, control_id,
                       sending_facility, message_type, trigger_event, message_ts, event_ts, visit_number, raw_text)
                   values (%s, %s, 'adt/x.hl7', %s, %s, 'NGH', 'ADT^A08', 'A08', %s, %s, 'V1', 'MSH|...')""",
                [(uuid.uuid4(), ts.date(), i, f"F{i:04d}", ts, ts) for i, ts in enumerate(stamps)],
            )


# newest message at or before local midnight ending D -> (age in hours, CEN-022 fails, CEN-023 fails)
CASES = {
    "fresh": ([local(D, 9), local(D, 23)], 1.0, False, False),
    "exactly 6 hours": ([local(D, 18)], 6.0, False, False),  # dbt: stale when older than warn_after
    "8 hours": ([local(D, 3), local(D, 16)], 8.0, True, False),
    "30 hours": ([local(D - dt.timedelta(days=1), 18)], 30.0, True, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_freshness_as_of_the_end_of_the_day(warehouse_url, case):
    stamps, age, warn_fails, error_fails = CASES[case]
    insert_messages(warehouse_url, stamps + AFTER_THE_DAY)
    s = gx_runner.validate_and_record(warehouse_url, FRESHNESS, D, "scheduled__2025-03-01")
    assert (s.engine, s.suite_name, s.data_asset) == (
        "dbt_source_freshness",
        "census_source_freshness",
        "raw.adt_messages",
    )
    by = {o.rule_id: o for o in s.results}
    expected = {"CEN-022": warn_fails, "CEN-023": error_fails}
    newest = max(stamps).astimezone(dt.timezone.utc).isoformat()
    for rule_id, fails in expected.items():
        o = by[rule_id]
        assert (o.success, o.rows_evaluated, o.rows_violating, o.violating_share) == (
            not fails,
            1,
            int(fails),
            float(fails),
        ), rule_id
        assert o.column_name == "message_ts" and o.expectation_type == "dbt_source_freshness"
        assert (o.detail["max_loaded_at"], o.detail["snapshotted_at"], o.detail["as_of"]) == (newest, AS_OF, AS_OF)
        assert o.detail["age_hours"] == age
        assert o.detail["criteria"] == {
            "warn_after": {"count": 6, "period": "hour"},
            "error_after": {"count": 24, "period": "hour"},
            "filter": None,
        }
    assert s.warnings == (["CEN-022"] if warn_fails else [])
    assert s.blocking_failures == (["CEN-023"] if error_fails else [])
    assert (s.evaluated_expectations, s.successful_expectations) == (2, 2 - warn_fails - error_fails)
    assert s.gx_result["engine"] == "dbt_source_freshness"
    (dbt_res,) = s.gx_result["dbt"]["results"]
    assert dbt_res["unique_id"] == "source.healthops.adt.adt_messages"
    assert dbt_res["status"] == ("error" if error_fails else "warn" if warn_fails else "pass")

    with connect(warehouse_url) as conn:
        run = conn.execute(
            "select suite_name, success, evaluated_expectations, successful_expectations, "
            "rules_file, rules_sha256, gx_result->>'engine' from audit.validation_runs"
        ).fetchone()
        results = {
            r[0]: r[1:]
            for r in conn.execute(
                """select rule_id, status, rows_evaluated, rows_violating, violating_share::float8, severity,
                      threshold::float8, citation is not null, evidence, violations_kept
               from audit.rule_results"""
            )
        }
        keys = {r: k for r, k in conn.execute("select rule_id, keys from audit.rule_violations")}
        verified = audit_trail.verify(conn)
    assert run[:5] == (
        "census_source_freshness",
        not (warn_fails or error_fails),
        2,
        2 - warn_fails - error_fails,
        "census_source_freshness.yml",
    )
    assert run[5] == rules.load_rules(FRESHNESS).sha256 and run[6] == "dbt_source_freshness"
    for rule_id, fails in expected.items():
        severity = "warning" if rule_id == "CEN-022" else "blocking"
        assert results[rule_id] == (
            "failed" if fails else "passed",
            1,
            int(fails),
            float(fails),
            severity,
            0.0,
            True,
            "dbt_freshness" if fails else None,
            1 if fails else None,
        ), rule_id
        if fails:  # the evidence: the table and how old it was, no rows of it
            assert keys[rule_id] == {
                "source": "adt.adt_messages",
                "loaded_at_field": "message_ts",
                "max_loaded_at": newest,
                "snapshotted_at": AS_OF,
                "age_hours": age,
                "status": dbt_res["status"],
            }
    assert set(keys) == {r for r, fails in expected.items() if fails}
    assert verified.ok, [str(p) for p in verified.problems]


def test_a_day_without_any_message_is_stale(warehouse_url):
    insert_messages(warehouse_url, AFTER_THE_DAY)  # only messages after the day
    s = gx_runner.validate(warehouse_url, FRESHNESS, D)
    assert [(o.rule_id, o.success, o.rows_violating) for o in s.results] == [
        ("CEN-022", False, 1),
        ("CEN-023", False, 1),
    ]
    assert s.results[1].detail["max_loaded_at"] == "0001-01-01T00:00:00+00:00"  # dbt: none is infinitely old


def test_a_dbt_runtime_error_fails_both_rules(warehouse_url):
    insert_messages(warehouse_url, [local(D, 23)])
    with connect(warehouse_url) as conn:
        conn.execute("alter table raw.adt_messages rename to adt_messages_moved")
    s = gx_runner.validate_and_record(warehouse_url, FRESHNESS, D, "manual__missing_table")
    assert [(o.rule_id, o.success, o.rows_violating, o.rows_evaluated) for o in s.results] == [
        ("CEN-022", False, None, 1),
        ("CEN-023", False, None, 1),
    ]
    assert s.blocking_failures == ["CEN-023"] and s.warnings == ["CEN-022"]
    for o in s.results:
        assert o.detail["status"] == "runtime error"
        assert 'relation "raw.adt_messages" does not exist' in o.detail["exception"]
    with connect(warehouse_url) as conn:
        statuses = conn.execute(
            "select rule_id, status, evidence, violations_kept from audit.rule_results order by rule_id"
        ).fetchall()
        assert audit_trail.verify(conn).ok
    assert statuses == [("CEN-022", "error", None, None), ("CEN-023", "error", None, None)]


def test_the_as_of_var_and_dbt_default(warehouse_url, monkeypatch):
    """The macro by hand: --vars gives the same instant as healthops' env var; with
    neither, dbt's own behaviour (now, no bound: the next days' messages count)."""
    monkeypatch.delenv(freshness.AS_OF_ENV, raising=False)
    insert_messages(warehouse_url, [local(D, 16)] + AFTER_THE_DAY)

    def run(*extra):
        with tempfile.TemporaryDirectory() as target:
            run_dbt(
                ["source", "freshness", "--select", "source:adt.adt_messages", "--target-path", target, *extra],
                warehouse_url,
                check=False,
                capture=True,
            )
            (res,) = json.loads((Path(target) / "sources.json").read_text())["results"]
            return res

    by_var = run("--vars", f'{{{freshness.AS_OF_VAR}: "{AS_OF}"}}')
    assert (by_var["snapshotted_at"], by_var["max_loaded_at"], by_var["status"]) == (
        AS_OF,
        "2025-03-02T00:00:00+00:00",
        "warn",
    )
    default = run()
    now = dt.datetime.now(dt.timezone.utc)
    assert abs(freshness._instant(default["snapshotted_at"]) - now) < dt.timedelta(minutes=10)
    assert default["max_loaded_at"] == AFTER_THE_DAY[-1].astimezone(dt.timezone.utc).isoformat()


# -- the night: validate_census -----------------------------------------------------------
def test_validate_census_runs_freshness_and_a_stale_feed_blocks(warehouse_url, tmp_path, monkeypatch):
    # D's receipt holds only messages stamped the day before, the newest 30 hours
    # before local midnight: the load reconciles (CEN-016, CEN-021 pass), the feed is stale.
    landing = tmp_path / "landing"
    prev = D - dt.timedelta(days=1)
    write(landing, D, "late.hl7", [hl7("L1", "0800", prev), hl7("L2", "1800", prev)])
    load_adt_date(warehouse_url, landing, D)
    catalog = rules.rule_files("census")
    picked = [rf for rf in catalog if rf.suite_name in ("census_load_batches", "census_source_freshness")]
    monkeypatch.setattr(rules, "rule_files", lambda domain: picked)
    with pytest.raises(pipeline.BlockingQualityFailure) as exc:
        pipeline.validate_census(D, "scheduled__2025-03-01", url=warehouse_url)
    assert "CEN-023" in str(exc.value) and "CEN-021" not in str(exc.value)
    with connect(warehouse_url) as conn:
        runs = conn.execute("select suite_name, success from audit.validation_runs order by chain_seq").fetchall()
        failed = conn.execute("select rule_id from audit.rule_results where not success order by 1").fetchall()
    assert runs == [("census_load_batches", True), ("census_source_freshness", False)]
    assert failed == [("CEN-022",), ("CEN-023",)]
    # Data Docs are GX's: the freshness run is left out of the site, not a reason to crash
    site = config.out() / "data_docs"
    assert [p.parent.parent.parent.name for p in (site / "validations").rglob("*.html")] == ["census_load_batches"]
    # the chain holds the freshness run like any other: `healthops audit verify` passes,
    # and the failed freshness rules are open findings
    env = {**os.environ, "HEALTHOPS_WAREHOUSE_URL": warehouse_url}
    proc = subprocess.run([HEALTHOPS, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    findings = subprocess.run([HEALTHOPS, "audit", "findings"], env=env, capture_output=True, text=True, timeout=300)
    assert findings.returncode == 0
    assert [line.split()[2] for line in findings.stdout.splitlines() if line.startswith("F-")] == ["CEN-022", "CEN-023"]


def test_the_census_mart_suite_still_runs_last(monkeypatch):
    seen = {}

    def capture(url, domain, d, dag_run_id=None, *, rules=None):
        seen["suites"] = [rf.suite_name for rf in rules]
        raise RuntimeError("captured")

    monkeypatch.setattr(gx_runner, "validate_domain_and_record", capture)
    with pytest.raises(RuntimeError, match="captured"):
        pipeline.validate_census(D, url="postgresql+psycopg://unused@127.0.0.1/unused")
    assert seen["suites"][-1] == "census_daily"
    assert "census_source_freshness" in seen["suites"] and len(seen["suites"]) == len(rules.rule_files("census"))
