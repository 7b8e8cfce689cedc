"""The audit trail as auditors rely on it: real GX validations write runs, rule
results and violating keys; every row is hash-chained; changing or deleting any
stored row (as a superuser, triggers off) makes `healthops audit verify` fail and
name that row; without that, the tables refuse UPDATE/DELETE/TRUNCATE; findings are
listed and reviewed through the CLI, and a reviewed finding is no longer open.

One warehouse with a validated history is built per module (three GX runs); each
test works on its own copy of it (CREATE DATABASE ... TEMPLATE), so tampering in one
test cannot leak into another."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from healthops import config
from healthops.quality import audit_heads, audit_trail, evidence, gx_runner, rules
from healthops.warehouse.connection import connect, libpq_url
from healthops.warehouse.migrate import migrate
from healthops.warehouse.schema import AUDIT_CHAIN, GENESIS_HASH, row_hash_sql

HEALTHOPS = str(Path(sys.executable).with_name("healthops"))
DAILY = config.EXPECTATIONS_DIR / "census_daily.yml"
ENCOUNTERS = config.EXPECTATIONS_DIR / "census_encounters.yml"
D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
TABLES = [t.name for t in AUDIT_CHAIN]

DDL = """
create table marts.fct_census_daily (
    facility_code text, unit_code text, census_date date, midnight_census integer,
    admissions integer, discharges integer, transfers_in integer, transfers_out integer,
    patient_days integer, staffed_beds integer);
create table marts.fct_encounters (
    facility_code text, encounter_key text, patient_key text, first_event_at timestamp,
    admit_at timestamp, discharge_at timestamp, length_of_stay_days integer, unit_path text,
    class_history text, encounter_status text);
"""
DAILY_ROWS = [
    ("NGH", "ICU", D1, 10, 2, 1, 1, 0, 10, 12),
    ("NGH", "ICU", D1, 10, 2, 1, 1, 0, 10, 12),  # duplicate key: CEN-004 (2 rows)
    ("NGH", "SDU", D1, 14, 1, 2, 0, 1, 14, 16),
    ("NGH", "PSY", D1, -1, 0, 1, 0, 0, 0, 14),  # negative census: CEN-005
    ("NGH", "XRAY", D1, 3, 3, 0, 0, 0, 3, None),  # unknown unit: CEN-011
    ("NGH", "PEDS", D1, 15, 2, 0, 0, 0, 15, 12),  # over capacity: CEN-012 (warning)
]
N_BACKWARDS = 12  # more than GX's sample (5): the kept keys come from re-running the rule's query
ENCOUNTER_ROWS = [
    (
        "NGH",
        f"E{i:03d}",
        f"P{i:03d}",
        None,
        dt.datetime(2025, 3, 1, 12),
        dt.datetime(2025, 3, 1, 11),
        None,
        "ICU",
        "inpatient",
        "discharged",
    )
    for i in range(N_BACKWARDS)
] + [
    (
        "NGH",
        "E900",
        "P900",
        None,
        dt.datetime(2025, 3, 1, 8),
        dt.datetime(2025, 3, 2, 8),
        1,
        "ICU",
        "inpatient",
        "discharged",
    )
]
DAILY_FAILS = {"CEN-004": 2, "CEN-005": 1, "CEN-011": 1, "CEN-012": 1}


# -- the validated history, built once, copied per test ---------------------------------
def _admin(pg_server):
    return psycopg.connect(libpq_url(pg_server), autocommit=True)


@pytest.fixture(scope="module")
def history(pg_server):
    """A warehouse after three real validations (census_daily for D1 and D2,
    census_encounters for D1) and three reviews of one D2 finding."""
    name = "audit_base_" + uuid.uuid4().hex[:8]
    with _admin(pg_server) as conn:
        conn.execute(f'create database "{name}"')
    url = f"{pg_server.rpartition('/')[0]}/{name}"
    try:
        migrate(url)
        with connect(url) as conn:
            conn.execute(DDL)
            with conn.cursor() as cur:
                cur.executemany("insert into marts.fct_census_daily values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", DAILY_ROWS)
                cur.executemany(
                    "insert into marts.fct_encounters values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", ENCOUNTER_ROWS
                )
        runs = {
            "daily_d1": gx_runner.validate_and_record(url, DAILY, D1, "scheduled__2025-03-01"),
            "encounters_d1": gx_runner.validate_and_record(url, ENCOUNTERS, D1, "scheduled__2025-03-01"),
            "daily_d2": gx_runner.validate_and_record(url, DAILY, D2, "scheduled__2025-03-02"),
        }
        with connect(url) as conn:
            (f,) = [f for f in audit_trail.open_findings(conn, since=D2, rule="CEN-012")]
            for i in range(3):
                audit_trail.review(conn, f.finding_id, f"auditor {i}", f"reviewed, round {i}")
        with _admin(pg_server) as conn:  # GX's pool still holds connections: a template needs none
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
        yield {"name": name, "runs": runs, "reviewed": f.finding_id}
    finally:
        with _admin(pg_server) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture()
def trail(pg_server, history):
    """A private copy of the history; its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    with _admin(pg_server) as conn:
        conn.execute(f'create database "{name}" template "{history["name"]}"')
    url = f"{pg_server.rpartition('/')[0]}/{name}"
    try:
        yield url
    finally:
        with _admin(pg_server) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def cli(url, *args, **env):
    env = {**os.environ, "HEALTHOPS_WAREHOUSE_URL": url, **env}
    return subprocess.run([HEALTHOPS, "audit", *args], env=env, capture_output=True, text=True, timeout=60)


def middle_row(conn, table):
    t = next(t for t in AUDIT_CHAIN if t.name == table)
    (n,) = conn.execute(f"select count(*) from audit.{table}").fetchone()
    seq = (n + 1) // 2
    key = conn.execute(f"select {', '.join(t.key)} from audit.{table} where chain_seq = %s", (seq,)).fetchone()
    return seq, dict(zip(t.key, (str(v) for v in key)))


# -- what persist keeps ---------------------------------------------------------------
def test_results_keys_and_chain_are_kept(trail, history):
    runs = history["runs"]
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
        assert result.ok, [str(p) for p in result.problems]
        counts = {t: conn.execute(f"select count(*) from audit.{t}").fetchone()[0] for t in TABLES}
        assert counts["validation_runs"] == 3 and counts["rule_results"] == 13 + 1 + 13
        assert counts["reviews"] == 3
        assert result.rows_checked == sum(counts.values())
        assert result.heads["audit.reviews"][0] == 3

        # every table's chain: 1..n, each row linked to the one before
        for t in TABLES:
            rows = conn.execute(f"select chain_seq, prev_hash, row_hash from audit.{t} order by chain_seq").fetchall()
            assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
            assert [r[1] for r in rows] == [GENESIS_HASH] + [r[2] for r in rows[:-1]]

        run = conn.execute(
            "select code_version, dag_run_id, rules_file, rules_sha256 from audit.validation_runs "
            "where validation_run_id = %s",
            (runs["daily_d1"].validation_run_id,),
        ).fetchone()
        assert run[1:3] == ("scheduled__2025-03-01", "census_daily.yml") and len(run[3]) == 64

        by_rule = {
            r[0]: r[1:]
            for r in conn.execute(
                """select rule_id, status, threshold, kahn_category, citation, domain, owner, severity,
                      rows_violating, evidence, violations_kept, violations_cap
               from audit.rule_results where validation_run_id = %s""",
                (runs["daily_d1"].validation_run_id,),
            )
        }
        assert {r for r, v in by_rule.items() if v[0] == "failed"} == set(DAILY_FAILS)
        assert all(v[0] == "passed" for r, v in by_rule.items() if r not in DAILY_FAILS)
        status, threshold, kahn, citation, domain, owner, severity, violating, evidence, kept, cap = by_rule["CEN-004"]
        assert (status, float(threshold), kahn, domain, owner, severity, violating) == (
            "failed",
            0.0,
            "plausibility",
            "census",
            "data-engineering",
            "blocking",
            2,
        )
        assert citation == "docs/definitions.md#daily-census-grain; Kahn 2016 uniqueness plausibility"
        assert (evidence, kept, cap) == ("gx_sample", 2, gx_runner.PARTIAL_VALUES)
        assert by_rule["CEN-001"][8:] == (None, None, None)  # passed: no evidence

        # a row-wise rule keeps GX's sample of key values
        def keys(run_id, rule):
            return [
                r[0]
                for r in conn.execute(
                    "select keys from audit.rule_violations where validation_run_id = %s and rule_id = %s "
                    "order by violation_no",
                    (run_id, rule),
                )
            ]

        assert (
            keys(runs["daily_d1"].validation_run_id, "CEN-004")
            == [{"facility_code": "NGH", "unit_code": "ICU", "census_date": "2025-03-01"}] * 2
        )
        assert keys(runs["daily_d1"].validation_run_id, "CEN-011") == [{"unit_code": "XRAY"}]
        assert keys(runs["daily_d1"].validation_run_id, "CEN-012") == [{"staffed_beds": 12, "midnight_census": 15}]

        # a SQL rule keeps every violating row's keys (up to the cap), not only GX's five
        enc = runs["encounters_d1"].validation_run_id
        assert conn.execute(
            "select rows_violating, evidence, violations_kept, violations_cap from audit.rule_results "
            "where validation_run_id = %s",
            (enc,),
        ).fetchone() == (N_BACKWARDS, "rows_query", N_BACKWARDS, audit_trail.VIOLATION_CAP)
        kept = keys(enc, "CEN-020")
        # the encounter as the salted pseudonym of its key: no visit number, no times
        salt = conn.execute("select salt from raw.pseudonym_salt").fetchone()[0]
        assert [k["encounter_pseudonym"] for k in kept] == [
            hashlib.sha256(f"{salt}|E{i:03d}".encode()).hexdigest() for i in range(N_BACKWARDS)
        ]
        assert set(kept[0]) == {"facility_code", "encounter_pseudonym"}
        for k in kept:  # keys and codes, never PHI
            assert not rules.PHI_COLUMNS & set(k)


def test_phi_columns_never_become_evidence():
    rows = [
        {"encounter_key": "E1", "mrn": "123", "Birth_Date": dt.date(1950, 1, 1), "patient_name": "X"},
        {"mrn": "only phi"},
    ]
    # the deny-list holds even against an allow-list that names PHI (load_rules refuses such a file)
    allowed = frozenset({"encounter_pseudonym", "unit_code", "mrn", "birth_date", "patient_name", "encounter_key"})
    rows[0]["encounter_pseudonym"], rows[0]["room"] = "ab12", "101"
    assert evidence.keep(rows, allowed) == [{"encounter_pseudonym": "ab12"}]
    # a column off the allow-list is dropped, PHI or not
    assert evidence.keep([{"unit_code": "ICU", "segment_start": "2025-03-01T10:00"}], allowed) == [{"unit_code": "ICU"}]


def test_verify_cli_reports_an_intact_chain(trail):
    out = cli(trail, "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    n = 3 + 27 + sum(DAILY_FAILS.values()) * 2 + N_BACKWARDS + 3
    assert out.stdout.startswith(f"chain intact: {n} rows\n")
    assert "audit.reviews" in out.stdout and "head seq 3" in out.stdout


# -- tampering ---------------------------------------------------------------------
TAMPER = {  # table: a content column change
    "validation_runs": "dag_run_id = 'manual__rewritten'",
    "rule_results": "rows_violating = coalesce(rows_violating, 0) + 1",
    "rule_violations": 'keys = \'{"encounter_key": "E999"}\'',
    "reviews": "note = 'nothing to see'",
}


@pytest.mark.parametrize("table", TABLES)
def test_editing_any_stored_row_fails_verify_naming_it(trail, table):
    with connect(trail) as conn:
        seq, key = middle_row(conn, table)
        conn.execute(f"alter table audit.{table} disable trigger user")
        conn.execute(f"update audit.{table} set {TAMPER[table]} where chain_seq = %s", (seq,))
        conn.execute(f"alter table audit.{table} enable trigger user")
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
    assert not result.ok
    (p,) = result.problems  # one change, one problem: the neighbours still link
    assert (p.table, p.chain_seq, p.key, p.reason) == (f"audit.{table}", seq, key, "content hash mismatch")

    out = cli(trail, "verify")
    assert out.returncode == 1
    assert f"audit.{table} seq {seq} (" in out.stdout
    assert all(str(v) in out.stdout for v in key.values())
    assert "content hash mismatch" in out.stdout


@pytest.mark.parametrize("table", TABLES)
def test_deleting_a_row_in_the_middle_fails_verify_naming_it(trail, history, table):
    with connect(trail) as conn:
        if table == "rule_results":  # one without dependants (a passed rule)
            seq, key = conn.execute(
                "select chain_seq, rule_id from audit.rule_results where status = 'passed' "
                "and chain_seq > 3 order by chain_seq limit 1"
            ).fetchone()
        else:
            seq, key = middle_row(conn, table)
        tables = [table]
        if table == "validation_runs":  # a run goes with its results and their keys
            tables = ["reviews", "rule_violations", "rule_results", "validation_runs"]
        for t in tables:
            conn.execute(f"alter table audit.{t} disable trigger user")
        if table == "validation_runs":
            run_id = key["validation_run_id"]
            for t in tables:
                conn.execute(f"delete from audit.{t} where validation_run_id = %s", (run_id,))
        else:
            conn.execute(f"delete from audit.{table} where chain_seq = %s", (seq,))
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
    assert not result.ok
    p = result.first
    assert (p.table, p.chain_seq, p.key, p.reason) == (f"audit.{table}", seq, None, "gap in seq")
    if table in ("rule_results", "rule_violations"):  # and the counts that tie the tables together
        assert {q.reason for q in result.problems} == {"gap in seq", "count mismatch"}

    out = cli(trail, "verify")
    assert out.returncode == 1
    assert f"audit.{table} seq {seq} (row missing): gap in seq" in out.stdout


def test_a_rewritten_hash_breaks_the_next_link(trail):
    # the forger changes a row and recomputes its hash: the next row no longer links to it
    t = next(t for t in AUDIT_CHAIN if t.name == "rule_violations")
    with connect(trail) as conn:
        seq, key = middle_row(conn, "rule_violations")
        conn.execute("alter table audit.rule_violations disable trigger user")
        conn.execute("update audit.rule_violations set keys = '{}' where chain_seq = %s", (seq,))
        conn.execute(
            f"update audit.rule_violations t set row_hash = {row_hash_sql(t, 't', 't.prev_hash')} where chain_seq = %s",
            (seq,),
        )
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
    (p,) = result.problems
    assert (p.table, p.chain_seq, p.reason) == ("audit.rule_violations", seq + 1, "broken link")
    assert f"seq {seq}" in p.detail


def test_a_row_slipped_in_with_the_trigger_off_is_caught(trail):
    with connect(trail) as conn:
        run_id, rule_id, last, head = conn.execute(
            "select validation_run_id, rule_id, violation_no, row_hash from audit.rule_violations "
            "order by chain_seq desc limit 1"
        ).fetchone()
        (n,) = conn.execute("select count(*) from audit.rule_violations").fetchone()
        conn.execute("alter table audit.rule_violations disable trigger user")
        conn.execute(
            "insert into audit.rule_violations values (%s, %s, %s, '{}', %s, %s, %s)",
            (run_id, rule_id, last + 1, n + 1, head, "f" * 64),
        )
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
    first, second = result.problems  # its hash is wrong, and its result did not count it
    assert (first.table, first.chain_seq, first.reason) == ("audit.rule_violations", n + 1, "content hash mismatch")
    assert (second.table, second.key, second.reason) == (
        "audit.rule_results",
        {"validation_run_id": str(run_id), "rule_id": rule_id},
        "count mismatch",
    )


@pytest.mark.parametrize("table", TABLES)
def test_update_delete_truncate_are_refused(trail, table):
    for statement in (
        f"update audit.{table} set chain_seq = chain_seq where chain_seq = 1",
        f"delete from audit.{table} where chain_seq = 1",
        f"truncate audit.{table} cascade",
    ):
        with connect(trail) as conn:  # as the superuser, triggers on
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
    with connect(trail) as conn:
        assert audit_trail.verify(conn).ok


def test_roles_may_not_change_history(trail):
    with connect(trail) as conn:
        for role in ("healthops_loader", "healthops_auditor"):
            for priv in ("UPDATE", "DELETE", "TRUNCATE"):
                (has,) = conn.execute(
                    "select has_table_privilege(%s, 'audit.rule_results', %s)", (role, priv)
                ).fetchone()
                assert not has, (role, priv)
        assert conn.execute(
            "select has_table_privilege('healthops_auditor', 'audit.reviews', 'INSERT')"
        ).fetchone() == (True,)


def test_concurrent_writers_do_not_fork_the_chain(trail):
    with connect(trail) as conn:
        ids = [f.finding_id for f in audit_trail.open_findings(conn)]

    def reviewer(who):
        for i in range(15):
            with connect(trail) as conn:
                audit_trail.review(conn, ids[i % len(ids)], who, f"note {i}")

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with connect(trail) as conn:
        result = audit_trail.verify(conn)
        assert result.ok, [str(p) for p in result.problems]
        assert result.heads["audit.reviews"][0] == 3 + 45


# -- findings and reviews -------------------------------------------------------------
def test_findings_are_listed_and_filtered(trail, history):
    out = cli(trail, "findings")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["finding", "logical", "date", "rule", "severity", "violating", "status", "description"]
    body = [line.split() for line in lines[1:-1]]
    # D1: four census rules and the encounters rule; D2: the same four less CEN-012 (reviewed)
    assert [(r[1], r[2]) for r in body] == (
        [("2025-03-01", r) for r in DAILY_FAILS]
        + [("2025-03-01", "CEN-020")]
        + [("2025-03-02", r) for r in DAILY_FAILS if r != "CEN-012"]
    )
    assert lines[-1] == "8 open findings"
    row = next(r for r in body if r[2] == "CEN-020")
    assert row[3:6] == ["blocking", f"{N_BACKWARDS}/{N_BACKWARDS + 1}", "open"]
    assert all(r[0].startswith("F-") for r in body)

    since = cli(trail, "findings", "--since", "2025-03-02")
    assert [line.split()[1] for line in since.stdout.splitlines()[1:-1]] == ["2025-03-02"] * 3
    rule = cli(trail, "findings", "--rule", "CEN-004")
    assert [line.split()[2] for line in rule.stdout.splitlines()[1:-1]] == ["CEN-004"] * 2
    both = cli(trail, "findings", "--since", "2025-03-02", "--rule", "cen-020")
    assert both.returncode == 0 and both.stdout.strip() == "no open findings since 2025-03-02 of rule cen-020"
    every = cli(trail, "findings", "--all", "--rule", "CEN-012")
    assert [line.split()[5] for line in every.stdout.splitlines()[1:-1]] == ["open", "reviewed"]

    with connect(trail) as conn:
        api = audit_trail.open_findings(conn, since=D2)
        assert [f.rule_id for f in api] == ["CEN-004", "CEN-005", "CEN-011"]
        (enc,) = audit_trail.open_findings(conn, rule="CEN-020")
        assert len(audit_trail.violations(conn, enc.finding_id)) == N_BACKWARDS


def test_review_through_the_cli_closes_the_finding(trail):
    with connect(trail) as conn:
        (f,) = audit_trail.open_findings(conn, rule="CEN-020")
        (passed,) = conn.execute("select chain_seq from audit.rule_results where status = 'passed' limit 1").fetchone()

    out = cli(trail, "review", f.finding_id, "--by", "Dana Auditor", "--note", "12 encounters fixed upstream")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"R-000004: review of {f.finding_id} by Dana Auditor recorded")

    listed = cli(trail, "findings").stdout
    assert f.finding_id not in listed and "7 open findings" in listed
    assert f.finding_id in cli(trail, "findings", "--all").stdout
    with connect(trail) as conn:
        assert conn.execute(
            "select reviewed_by, note, finding_id, chain_seq from audit.reviews order by chain_seq desc limit 1"
        ).fetchone() == ("Dana Auditor", "12 encounters fixed upstream", f.finding_id, 4)
        assert audit_trail.verify(conn).ok  # reviews are chained too

    for args, why in (
        (["F-999999", "--by", "x", "--note", "y"], "no finding 'F-999999'"),
        ([f"F-{passed:06d}", "--by", "x", "--note", "y"], "no finding"),  # a passed rule is no finding
        ([f.finding_id, "--by", "  ", "--note", "y"], "reviewer's name"),
        ([f.finding_id, "--by", "x", "--note", ""], "needs a note"),
    ):
        bad = cli(trail, "review", *args)
        assert bad.returncode == 2 and why in bad.stderr, (args, bad.stderr)
    with connect(trail) as conn:
        assert conn.execute("select count(*) from audit.reviews").fetchone() == (4,)


# -- anchored outside the database: the heads file -------------------------------------
def heads_key() -> bytes:
    return os.environ["HEALTHOPS_AUDIT_HMAC_KEY"].encode()  # every test's (tests/conftest.py)


def write_heads(url, night: str) -> Path:
    """The heads as a night leaves them, appended to $HEALTHOPS_OUT's heads file."""
    with connect(url) as conn:
        heads = audit_heads.read_heads(conn)
    audit_heads.append_heads(heads, heads_key(), dt.date.fromisoformat(night), f"scheduled__{night}")
    return audit_heads.heads_path()


def recompute_chain(conn, table: str) -> None:
    """What a superuser can do after changing rows: give every row of the table, in chain
    order, the prev_hash and row_hash the triggers would have given it, with the same SQL."""
    t = next(t for t in AUDIT_CHAIN if t.name == table)
    prev = GENESIS_HASH
    for (seq,) in conn.execute(f"select chain_seq from audit.{table} order by chain_seq").fetchall():
        (prev,) = conn.execute(
            f"update audit.{table} t set prev_hash = %(prev)s, row_hash = {row_hash_sql(t, 't', '%(prev)s::text')} "
            "where chain_seq = %(seq)s returning row_hash",
            {"prev": prev, "seq": seq},
        ).fetchone()


def test_the_heads_file_anchors_an_intact_chain(trail, history):
    path = write_heads(trail, "2025-03-02")
    with connect(trail) as conn:
        audit_trail.review(conn, history["reviewed"], "auditor 4", "later review")  # the chains grow after a night
    write_heads(trail, "2025-03-03")
    with connect(trail) as conn:
        check = audit_heads.verify_file(conn, path, heads_key())
    assert check.ok, [str(p) for p in check.problems]
    assert (check.lines, check.heads_checked, check.tables) == (2, 8, [f"audit.{t}" for t in TABLES])
    first, second = (r for _, r in check.records)
    assert (first["heads"]["audit.reviews"]["chain_seq"], first["heads"]["audit.reviews"]["rows"]) == (3, 3)
    assert second["heads"]["audit.reviews"]["chain_seq"] == 4 and second["prev_hmac"] == first["hmac"]

    out = cli(trail, "verify", "--against", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("chain intact: ")
    assert f"heads file intact: {path}: 2 line(s), 2 record(s), logical dates 2025-03-02 .. 2025-03-03" in out.stdout
    assert (
        "chain extends every recorded head: 8 head(s) checked in audit.validation_runs, audit.rule_results, "
        "audit.rule_violations, audit.reviews" in out.stdout
    )


@pytest.mark.parametrize("table", TABLES)
def test_a_chain_recomputed_by_a_superuser_passes_verify_but_not_the_heads_file(trail, table):
    """The issue's scenario: the night's heads are written; later a superuser turns the
    triggers off, edits a row and recomputes the chain from it; `verify` finds every
    hash right, the heads file finds the night's head replaced."""
    path = write_heads(trail, "2025-03-02")
    with connect(trail) as conn:
        seq, key = middle_row(conn, table)
        (head,) = conn.execute(f"select max(chain_seq) from audit.{table}").fetchone()
        conn.execute("set session_replication_role = replica")  # no trigger fires: the superuser's way round
        conn.execute(f"update audit.{table} set {TAMPER[table]} where chain_seq = %s", (seq,))
        recompute_chain(conn, table)
        conn.execute("set session_replication_role = origin")
    with connect(trail) as conn:
        assert audit_trail.verify(conn).ok  # the forgery the chain alone cannot see
        check = audit_heads.verify_file(conn, path, heads_key())
    (p,) = check.problems
    assert (p.line, p.table, p.chain_seq, p.reason) == (1, f"audit.{table}", head, "head rewritten")
    assert "recomputed after this line was written" in p.detail

    plain = cli(trail, "verify")
    assert plain.returncode == 0 and plain.stdout.startswith("chain intact"), plain.stdout + plain.stderr
    against = cli(trail, "verify", "--against", str(path))
    assert against.returncode == 1, against.stdout + against.stderr
    assert f"heads file check FAILED: {path}: 1 line(s)" in against.stdout
    assert f"  line 1: audit.{table} seq {head}: head rewritten: recorded row_hash " in against.stdout


def test_newest_rows_removed_with_their_counts_fail_against_the_heads_file(trail, history):
    """Removing the newest validation run with its results, violations and reviews
    leaves every chain and every count consistent; the heads recorded after it are gone."""
    path = write_heads(trail, "2025-03-02")
    run_id = history["runs"]["daily_d2"].validation_run_id
    with connect(trail) as conn:
        ends = {t: conn.execute(f"select max(chain_seq) from audit.{t}").fetchone()[0] for t in TABLES}
        conn.execute("set session_replication_role = replica")
        for t in ("reviews", "rule_violations", "rule_results", "validation_runs"):
            conn.execute(f"delete from audit.{t} where validation_run_id = %s", (run_id,))
        conn.execute("set session_replication_role = origin")
        now = {t: conn.execute(f"select max(chain_seq) from audit.{t}").fetchone()[0] for t in TABLES}
    with connect(trail) as conn:
        assert audit_trail.verify(conn).ok
        check = audit_heads.verify_file(conn, path, heads_key())
    assert [(p.line, p.table, p.chain_seq, p.reason) for p in check.problems] == [
        (1, f"audit.{t}", ends[t], "chain truncated") for t in TABLES
    ]
    by_table = {p.table: p.detail for p in check.problems}
    assert f"the chain now ends at seq {now['validation_runs']}" in by_table["audit.validation_runs"]
    assert "the chain now is empty" in by_table["audit.reviews"]


def test_the_cli_names_a_wrong_key_an_edited_line_and_a_missing_key(trail, tmp_path):
    path = write_heads(trail, "2025-03-02")
    write_heads(trail, "2025-03-03")
    wrong = cli(trail, "verify", "--against", str(path), HEALTHOPS_AUDIT_HMAC_KEY="w" * 40)
    assert wrong.returncode == 1
    assert "  line 1: another key: signed with key id " in wrong.stdout and "  line 2: another key" in wrong.stdout

    first, second = path.read_text().splitlines(keepends=True)
    edited = tmp_path / "edited.jsonl"
    edited.write_text(first.replace('"rows":3', '"rows":2', 1) + second)
    out = cli(trail, "verify", "--against", str(edited))
    assert out.returncode == 1
    assert "  line 1: HMAC mismatch: the line was changed after it was written" in out.stdout

    missing = cli(
        trail, "verify", "--against", str(path), HEALTHOPS_AUDIT_HMAC_KEY="", AIRFLOW_HOME=str(tmp_path / "airflow")
    )
    assert missing.returncode == 2
    assert "HEALTHOPS_AUDIT_HMAC_KEY" in missing.stderr and "healthops_audit_hmac" in missing.stderr
    nofile = cli(trail, "verify", "--against", str(tmp_path / "nope.jsonl"))
    assert nofile.returncode == 2 and "no heads file" in nofile.stderr


# -- upgrading a warehouse written before the chain --------------------------------
OLD_DDL = """
create schema audit;
create table audit.validation_runs (
    validation_run_id uuid primary key, suite_name text not null, data_asset text not null,
    logical_date date not null, dag_run_id text, code_version text not null, success boolean not null,
    evaluated_expectations integer not null, successful_expectations integer not null,
    run_at timestamptz not null default now(), gx_result jsonb not null);
create table audit.rule_results (
    validation_run_id uuid not null references audit.validation_runs, rule_id text not null,
    expectation_type text not null, column_name text, severity text not null, success boolean not null,
    rows_evaluated bigint, rows_violating bigint, violating_share numeric, detail jsonb not null,
    primary key (validation_run_id, rule_id));
"""


def test_history_written_before_the_chain_is_sealed_on_upgrade(make_database):
    warehouse_url = make_database()  # empty: an audit schema of an early release is written below
    old, new = uuid.uuid4(), uuid.uuid4()
    with connect(warehouse_url) as conn:
        conn.execute(OLD_DDL)
        for run, when in ((new, "2025-01-02 03:00+00"), (old, "2025-01-01 03:00+00")):
            conn.execute(
                "insert into audit.validation_runs values (%s, 's', 'marts.t', '2025-01-01', null, "
                "'0.1', false, 2, 1, %s, '{}')",
                (run, when),
            )
            conn.execute(
                "insert into audit.rule_results values (%s, 'R-2', 'x', null, 'blocking', false, 4, 1, "
                "0.25, '{}'), (%s, 'R-1', 'x', null, 'blocking', true, 4, 0, 0, '{}')",
                (run, run),
            )
    assert migrate(warehouse_url).adopted  # its tables found, kept and completed
    assert not migrate(warehouse_url).changed  # sealed once
    with connect(warehouse_url) as conn:
        assert audit_trail.verify(conn).ok
        assert conn.execute("select validation_run_id from audit.validation_runs order by chain_seq").fetchall() == [
            (old,),
            (new,),
        ]  # sealed in the order written
        assert conn.execute(
            "select validation_run_id, rule_id, status from audit.rule_results order by chain_seq"
        ).fetchall() == [(old, "R-1", "passed"), (old, "R-2", "failed"), (new, "R-1", "passed"), (new, "R-2", "failed")]
        assert [f.rule_id for f in audit_trail.open_findings(conn)] == ["R-2", "R-2"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update audit.rule_results set success = true")
