"""ADT files -> raw (COPY) -> dbt -> marts.fct_census_daily on a real PostgreSQL,
checked against numbers computed by hand from the rules of docs/definitions.md#census-and-utilization.

The feed (facility NGH, dates in February 2026: no DST change):
  received 2026-02-02, a.hl7
    V1  A01 ICU 08:00
    V2  A01 MS5 10:00, A03 discharged 18:00 (PV1-45)      -> same-day stay on MS5
    V3  A01 TELE 09:00, A02 TELE->ICU 14:00
    V4  A04 ED 11:00 (emergency), A06 to MS5 15:00        -> admission by conversion
    V5  A01 PEDS 12:00, A11 cancel                        -> voided
    V6  A01 MS5 13:00 class O, PV1-18 OBS                 -> observation, not inpatient
    one message without PV1-19                            -> raw.rejected
  received 2026-02-02, b.hl7
    the V1 A01 again (same MSH-10, same text: a resend)    -> duplicate, raw.duplicates
  received 2026-02-03
    V1  A02 ICU->SDU 09:00, then A12 cancel                -> V1 stays in ICU
    V3  A03 11:00, then A13 cancel                         -> V3 stays in ICU
    V4  A03 16:00
  received 2026-02-04 (late: V7's admission happened on 02-02)
    V7  A01 MS5 2026-02-02 22:00
    V3  A03 10:00
"""

from datetime import date

import pytest

from healthops.load.adt import load_adt_date
from healthops.warehouse.connection import connect

from hl7_builders import build_message
from reporting_build import census_build

D1, D2, D3 = date(2026, 2, 2), date(2026, 2, 3), date(2026, 2, 4)


def msg(event, cid, visit, when, **kw):
    return build_message(event, control_id=cid, visit=visit, msg_ts=when, **kw)


def write(landing, day, name, messages):
    folder = landing / "adt" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(messages))


@pytest.fixture()
def feed(tmp_path):
    landing = tmp_path / "landing"
    write(
        landing,
        D1,
        "a.hl7",
        [
            msg("A01", "C1", "V1", "202602020800", unit="ICU"),
            msg("A01", "C2", "V2", "202602021000", unit="MS5"),
            msg("A03", "C3", "V2", "202602021805", unit="MS5", discharge_ts="202602021800"),
            msg("A01", "C4", "V3", "202602020900", unit="TELE"),
            msg("A02", "C5", "V3", "202602021400", unit="ICU", prior_unit="TELE"),
            msg("A04", "C6", "V4", "202602021100", unit="ED", patient_class="E"),
            msg("A06", "C7", "V4", "202602021500", unit="MS5", patient_class="I"),
            msg("A01", "C8", "V5", "202602021200", unit="PEDS"),
            msg("A11", "C9", "V5", "202602021230", unit="PEDS"),
            msg("A01", "C10", "V6", "202602021300", unit="MS5", patient_class="O", patient_type="OBS"),
            msg("A01", "C11", "", "202602021300", unit="MS5"),  # no PV1-19
        ],
    )
    write(landing, D1, "b.hl7", [msg("A01", "C1", "V1", "202602020800", unit="ICU")])
    write(
        landing,
        D2,
        "a.hl7",
        [
            msg("A02", "C20", "V1", "202602030900", unit="SDU", prior_unit="ICU"),
            msg("A12", "C21", "V1", "202602030930", unit="ICU", prior_unit="SDU"),
            msg("A03", "C22", "V3", "202602031100", unit="ICU"),
            msg("A13", "C23", "V3", "202602031130", unit="ICU"),
            msg("A03", "C24", "V4", "202602031600", unit="MS5"),
        ],
    )
    write(
        landing,
        D3,
        "a.hl7",
        [
            msg("A01", "C30", "V7", "202602022200", unit="MS5"),
            msg("A03", "C31", "V3", "202602041000", unit="ICU"),
        ],
    )
    return landing


COLS = "midnight_census, admissions, discharges, transfers_in, transfers_out, patient_days"


def mart(url):
    with connect(url) as conn:
        rows = conn.execute(
            f"select unit_code, census_date, {COLS} from marts.fct_census_daily order by 1, 2"
        ).fetchall()
    return {(u, d): tuple(v) for u, d, *v in rows}


def test_load_reconciles_and_is_idempotent(warehouse_url, feed):
    s = load_adt_date(warehouse_url, feed, D1).as_dict()
    assert s["files"] == 2 and s["files_loaded"] == 2
    assert (s["records_in"], s["records_loaded"], s["records_rejected"], s["records_duplicate"]) == (12, 10, 1, 1)
    with connect(warehouse_url) as conn:
        reasons = [r for (r,) in conn.execute("select reason from raw.rejected order by reason")]
        dups = conn.execute("""select d.file_path, d.message_index, d.control_id, m.file_path, m.message_index
                               from raw.duplicates d join raw.adt_messages m
                                 on m.batch_id = d.first_batch_id and m.message_index = d.first_message_index
                               """).fetchall()
        batches = conn.execute(
            "select records_in, records_loaded, records_rejected, records_duplicate, file_sha256 "
            "from audit.load_batches order by file_path"
        ).fetchall()
    assert len(reasons) == 1 and "PV1-19" in reasons[0]
    assert dups == [("adt/2026-02-02/b.hl7", 1, "C1", "adt/2026-02-02/a.hl7", 1)]  # the copy, and the loaded one
    assert [b[:4] for b in batches] == [(11, 10, 1, 0), (1, 0, 0, 1)]
    assert all(len(b[4]) == 64 for b in batches)
    again = load_adt_date(warehouse_url, feed, D1).as_dict()
    assert again["files_skipped"] == 2 and again["records_in"] == 0
    with connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from raw.adt_messages").fetchone() == (10,)
        assert conn.execute("select count(*) from raw.rejected").fetchone() == (1,)
        assert conn.execute("select count(*) from raw.duplicates").fetchone() == (1,)
        assert conn.execute("select count(*) from audit.load_batches").fetchone() == (2,)


def test_a_control_id_reused_for_other_content_is_rejected_not_a_duplicate(warehouse_url, feed):
    """A resend repeats the message; a sender that reuses MSH-10 for another message
    would lose that message: it is rejected with a reason, counted, never loaded."""
    load_adt_date(warehouse_url, feed, D1)
    write(
        feed,
        D1,
        "c.hl7",
        [
            msg("A01", "C2", "V2", "202602021000", unit="SDU"),  # C2 was V2's admission to MS5
            msg("A01", "C40", "V8", "202602022300", unit="PEDS"),
            msg("A01", "C40", "V8", "202602022300", unit="PEDS"),  # resent within the file: a duplicate
            msg("A01", "C40", "V9", "202602022310", unit="PSY"),  # C40 again, another patient: rejected
        ],
    )
    s = load_adt_date(warehouse_url, feed, D1).as_dict()
    assert (s["files_loaded"], s["records_in"], s["records_loaded"], s["records_rejected"], s["records_duplicate"]) == (
        1,
        4,
        1,
        2,
        1,
    )
    with connect(warehouse_url) as conn:
        rejected = conn.execute(
            "select message_index, control_id, reason from raw.rejected where file_path like '%%c.hl7' order by 1"
        ).fetchall()
        dups = conn.execute(
            "select message_index, first_message_index from raw.duplicates where file_path like '%%c.hl7'"
        ).fetchall()
        kept = conn.execute(
            "select unit from raw.adt_messages where control_id in ('C2', 'C40') order by control_id"
        ).fetchall()
    assert [(i, c) for i, c, _ in rejected] == [(1, "C2"), (4, "C40")]
    assert rejected[0][2].startswith(
        "control id reused with different content: control id C2 from NGH was already loaded (in batch "
    )
    assert "(earlier in this file, message 2)" in rejected[1][2]
    assert dups == [(3, 2)]
    assert kept == [("MS5",), ("PEDS",)]  # the first message of each control id, as loaded


def test_census_mart_matches_hand_counts(warehouse_url, feed):
    for d in (D1, D2):
        load_adt_date(warehouse_url, feed, d)
    census_build(warehouse_url)
    before_late = mart(warehouse_url)
    #                                  census adm dis in out pdays
    assert before_late[("MS5", D1)] == (1, 2, 1, 0, 0, 2)

    load_adt_date(warehouse_url, feed, D3)
    census_build(warehouse_url)
    m = mart(warehouse_url)
    expected = {
        ("ICU", D1): (2, 1, 0, 1, 0, 2),
        ("TELE", D1): (0, 1, 0, 0, 1, 0),
        ("MS5", D1): (2, 3, 1, 0, 0, 3),  # V4 (A06), V7 (late A01) at midnight; V2 same-day
        ("PEDS", D1): (0, 0, 0, 0, 0, 0),  # A11 voided the admit
        ("SDU", D1): (0, 0, 0, 0, 0, 0),
        ("ICU", D2): (2, 0, 0, 0, 0, 2),  # A12 voided the transfer, A13 the discharge
        ("SDU", D2): (0, 0, 0, 0, 0, 0),
        ("MS5", D2): (1, 0, 1, 0, 0, 1),
        ("ICU", D3): (1, 0, 1, 0, 0, 1),
        ("MS5", D3): (1, 0, 0, 0, 0, 1),
    }
    for key, want in expected.items():
        assert m[key] == want, key
    # every unit of the seed except the ED, for every day, nothing else
    assert {u for u, _ in m} == {"ICU", "SDU", "TELE", "MS5", "PEDS", "PSY"}
    assert {d for _, d in m} == {D1, D2, D3}
    # balance: yesterday's census + admissions + transfers in - discharges - transfers out = today's
    for (u, d), (c, a, dis, tin, tout, _) in m.items():
        prev = m.get((u, date.fromordinal(d.toordinal() - 1)), (0,))[0]
        assert prev + a + tin - dis - tout == c, (u, d)
    # (re-running a whole day changes nothing: tests/integration/test_faults.py runs a night
    # twice and compares every relation with a clean run)


def test_observation_encounters_intervals_and_periods(warehouse_url, feed):
    for d in (D1, D2, D3):
        load_adt_date(warehouse_url, feed, d)
        census_build(warehouse_url)  # nightly, incremental after the first
    with connect(warehouse_url) as conn:
        obs = dict(
            ((u, d), (c, od, sd))
            for u, d, c, od, sd in conn.execute(
                "select unit_code, census_date, observation_census, observation_days, discharged_stay_days "
                "from marts.fct_census_daily"
            )
        )
        enc = {
            k: v
            for k, *v in conn.execute(
                "select encounter_key, encounter_status, length_of_stay_days, unit_path, class_history, "
                "patient_key is not null and length(patient_key) = 64 from marts.fct_encounters"
            )
        }
        interval = {
            (u, t.strftime("%m-%d %H:%M")): (p, i, o)
            for u, t, p, i, o in conn.execute(
                "select unit_code, interval_start, patients_present, inpatients_present, observation_present "
                "from marts.fct_census_interval"
            )
        }
        period = conn.execute(
            "select days_in_period, patient_days, average_daily_census, discharges, average_length_of_stay "
            "from marts.fct_census_period where unit_code = 'ALL' and period_type = 'month'"
        ).fetchall()
        leaked = conn.execute(
            "select count(*) from information_schema.columns where table_schema = 'marts' "
            "and column_name in ('mrn', 'patient_name', 'birth_date', 'raw_text')"
        ).fetchone()[0]
    # V6 is in observation on MS5 from 02-02 13:00 on: an outpatient, counted on its own
    assert [obs[("MS5", d)][:2] for d in (D1, D2, D3)] == [(1, 1)] * 3
    # ALOS numerator: V2 same-day (1 day) on 02-02, V4 (02-02 -> 02-03, 1 day), V3 (02-02 -> 02-04, 2 days)
    assert (obs[("MS5", D1)][2], obs[("MS5", D2)][2], obs[("ICU", D3)][2]) == (1, 1, 2)
    #                       status       LOS   unit path      class history
    assert enc["NGH|V1"][:4] == ["in_house", None, "ICU", "inpatient"]
    assert enc["NGH|V2"][:4] == ["discharged", 1, "MS5", "inpatient"]
    assert enc["NGH|V3"][:4] == ["discharged", 2, "TELE > ICU", "inpatient"]
    assert enc["NGH|V4"][:4] == ["discharged", 1, "ED > MS5", "emergency > inpatient"]
    assert enc["NGH|V5"][:4] == ["cancelled", None, None, None]
    assert enc["NGH|V6"][:4] == ["in_house", None, "MS5", "observation"]
    assert all(v[4] for k, v in enc.items() if k != "NGH|V5")  # pseudonymized, never the MRN
    assert leaked == 0
    # 15-minute presence: present at any moment of [t, t + 15 min)
    assert interval[("ICU", "02-02 07:45")] == (0, 0, 0)
    assert interval[("ICU", "02-02 08:00")] == (1, 1, 0)
    assert interval[("ICU", "02-02 14:00")] == (2, 2, 0)
    assert interval[("TELE", "02-02 13:45")] == (1, 1, 0)
    assert interval[("TELE", "02-02 14:00")] == (0, 0, 0)
    assert interval[("ED", "02-02 11:00")] == (1, 0, 0)
    assert interval[("MS5", "02-02 13:00")] == (2, 1, 1)
    # February so far: 5 + 3 + 2 patient days over 3 days; 3 discharges, (1 + 1 + 2) / 3 days
    assert [tuple(map(float, r)) for r in period] == [(3, 10, 3.33, 3, 1.33)]
